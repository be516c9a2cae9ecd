"""How a question is shown to the LLM, shared by training, prediction, ``ask`` and the server so that a model
sees at inference exactly the prompt form it was trained on."""

from __future__ import annotations

import string

YES_NO = ("yes", "no")


def format_question(question: str, choices: list[str] | None = None) -> str:
    """Question text for the user turn (the processor adds the protein placeholder).

    Yes/no questions get an explicit instruction; multiple-choice questions list lettered options.
    """
    question = question.strip()
    if not choices:
        return question
    if [c.lower() for c in choices] == list(YES_NO):
        return question if question.lower().endswith("yes or no.") else f"{question} Answer yes or no."
    letters = string.ascii_uppercase
    options = "\n".join(f"{letters[i]}) {c}" for i, c in enumerate(choices))
    return f"{question}\nOptions:\n{options}\nAnswer with one of the options."
