"""A chat request's conversation -> the protein and the turns the model sees (multi-turn chat).

The protein comes from the request's ``protein`` field or from a user message's own ``protein`` field (sent
with the turn that introduced it; a client resends its history, so it stays attached to the conversation).
System/developer messages become the template's system turn; earlier user and assistant turns go into the
chat template in order; the protein placeholder goes into the user turn that carried the protein (the first
user turn for the request-level field). The last message is the question. A conversation without any protein
is :class:`NoProteinError` (HTTP 400).
"""

from __future__ import annotations

from dataclasses import dataclass

from sepit.errors import SepitError
from sepit.model.configuration import PROTEIN_END_TOKEN, PROTEIN_START_TOKEN, PROTEIN_TOKEN
from sepit.prompts import format_question
from sepit.serve.schemas import ChatRequest, ProteinField

RESERVED = (PROTEIN_TOKEN, PROTEIN_START_TOKEN, PROTEIN_END_TOKEN)
ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}


class NoProteinError(SepitError):
    """A conversation in which no turn carries a protein (HTTP 400)."""


@dataclass
class Conversation:
    protein: ProteinField
    history: list[dict]  # turns before the question: {"role", "content"}
    question: str  # the last user message
    protein_turn: int  # index in history + [question] of the user turn holding the protein

    def item_fields(self) -> dict:
        """Extra fields of the engine item (read by :func:`chat_messages`)."""
        return {"history": self.history, "protein_turn": self.protein_turn}


def read_conversation(body: ChatRequest) -> Conversation:
    turns: list[dict] = []
    protein, protein_turn = body.protein, None
    for i, message in enumerate(body.messages):
        if message.role not in ROLES:
            raise SepitError(f"messages[{i}]: role {message.role!r} is not supported (system, developer, user, "
                             "assistant)")
        text = message.text()
        token = next((t for t in RESERVED if t in text), None)
        if token is not None:
            raise SepitError(f"messages[{i}]: holds the reserved token {token}; attach the protein with a "
                             "'protein' field instead")
        if message.protein is not None:
            if message.role != "user":
                raise SepitError(f"messages[{i}]: only a user message can carry a protein")
            if protein is not None and protein != message.protein:
                raise SepitError(f"messages[{i}]: a conversation is about one protein; it already has a "
                                 "different one (start a new conversation)")
            if protein_turn is None:
                protein, protein_turn = message.protein, len(turns)
        turns.append({"role": ROLES[message.role], "content": text})
    if not turns or turns[-1]["role"] != "user" or not turns[-1]["content"].strip():
        raise SepitError("question: empty (the last message must be the user's question)")
    if protein is None:
        raise NoProteinError("protein: missing; the conversation has no protein (add a 'protein' object with a "
                             "sequence and/or structure to the request or to the user message that asks about it)")
    if protein_turn is None:
        protein_turn = next(i for i, t in enumerate(turns) if t["role"] == "user")
    return Conversation(protein, turns[:-1], turns[-1]["content"], protein_turn)


def chat_messages(item: dict) -> list[dict]:
    """The chat of an engine item: its history, then the (formatted) question, with the protein placeholder
    in its turn. An item without history gives the single-turn chat the model was trained on."""
    chat = [dict(t) for t in item.get("history", [])]
    chat.append({"role": "user", "content": format_question(item["question"], item.get("choices"),
                                                           item.get("context"))})
    turn = chat[item.get("protein_turn", len(chat) - 1)]
    turn["content"] = f"{PROTEIN_TOKEN}\n{turn['content']}"
    return chat
