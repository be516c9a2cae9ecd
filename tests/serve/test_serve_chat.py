"""Multi-turn chat: the protein stays attached to the conversation (request field or the user turn that carried
it), system prompts and earlier turns reach the chat template, and a conversation without a protein is a 400.
Driven through the official ``openai`` client."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from sepit.errors import SepitError
from sepit.model.configuration import PROTEIN_TOKEN
from sepit.serve import ServeSettings, create_app
from sepit.serve.conversation import NoProteinError, chat_messages, read_conversation
from sepit.serve.schemas import ChatRequest

openai = pytest.importorskip("openai")

SEQ, OTHER = "MVLSPADKTNVKAAWGKV", "MKTAYIAKQRGAVLIPF"
FIRST, FOLLOW_UP = "What is the function of this protein?", "And where is it located?"


@pytest.fixture(scope="module")
def client(sepit_model):
    settings = ServeSettings(model_name="tiny", default_max_new_tokens=5, max_new_tokens=64, max_sequence_length=64)
    with TestClient(create_app(sepit_model, settings)) as http:
        yield openai.OpenAI(base_url="http://testserver/v1", api_key="none", http_client=http, max_retries=0)


def _prompt_tokens(sepit_model, chat) -> int:
    return int(sepit_model.processor(SEQ, messages=chat)["input_ids"].shape[1])


def test_follow_up_keeps_the_protein_and_the_earlier_turns(client, sepit_model):
    first_turn = {"role": "user", "content": FIRST, "protein": {"sequence": SEQ}}
    first = client.chat.completions.create(model="tiny", messages=[first_turn], max_tokens=5)
    reply = first.choices[0].message.content
    history = [first_turn, {"role": "assistant", "content": reply}, {"role": "user", "content": FOLLOW_UP}]
    follow = client.chat.completions.create(model="tiny", messages=history, max_tokens=5)
    assert follow.choices[0].message.content
    expected = [{"role": "user", "content": f"{PROTEIN_TOKEN}\n{FIRST}"}, {"role": "assistant", "content": reply},
                {"role": "user", "content": FOLLOW_UP}]
    assert follow.usage.prompt_tokens == _prompt_tokens(sepit_model, expected)
    assert follow.usage.prompt_tokens > first.usage.prompt_tokens
    # the same conversation with the protein in the request's extension field gives the same answer
    plain = [{"role": m["role"], "content": m["content"]} for m in history]
    again = client.chat.completions.create(model="tiny", messages=plain, max_tokens=5,
                                           extra_body={"protein": {"sequence": SEQ}})
    assert again.choices[0].message.content == follow.choices[0].message.content


def test_system_prompt_goes_into_the_template(client, sepit_model):
    messages = [{"role": "system", "content": "You annotate proteins tersely."}, {"role": "user", "content": FIRST}]
    reply = client.chat.completions.create(model="tiny", messages=messages, max_tokens=5,
                                           extra_body={"protein": {"sequence": SEQ}})
    expected = [messages[0], {"role": "user", "content": f"{PROTEIN_TOKEN}\n{FIRST}"}]
    assert reply.usage.prompt_tokens == _prompt_tokens(sepit_model, expected)


def test_a_conversation_without_a_protein_is_a_400(client):
    with pytest.raises(openai.BadRequestError, match="no protein"):
        client.chat.completions.create(model="tiny", max_tokens=4, messages=[
            {"role": "user", "content": FIRST}, {"role": "assistant", "content": "x"},
            {"role": "user", "content": FOLLOW_UP}])


def _body(messages, **extra) -> ChatRequest:
    return ChatRequest(messages=messages, **extra)


def test_the_placeholder_goes_into_the_turn_that_carried_the_protein():
    conv = read_conversation(_body([{"role": "developer", "content": "Be brief."},
                                    {"role": "user", "content": "Hello"}, {"role": "assistant", "content": "Hi"},
                                    {"role": "user", "content": FIRST, "protein": {"sequence": SEQ}},
                                    {"role": "assistant", "content": "A kinase."},
                                    {"role": "user", "content": FOLLOW_UP}]))
    chat = chat_messages({**conv.item_fields(), "question": conv.question, "choices": ["yes", "no"]})
    assert [m["role"] for m in chat] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert [i for i, m in enumerate(chat) if PROTEIN_TOKEN in m["content"]] == [3]
    assert chat[-1]["content"] == f"{FOLLOW_UP} Answer yes or no." and conv.protein.sequence == SEQ


@pytest.mark.parametrize("messages, extra, error, message", [
    ([{"role": "user", "content": FIRST}], {}, NoProteinError, "no protein"),
    ([{"role": "user", "content": FIRST, "protein": {"sequence": SEQ}}, {"role": "assistant", "content": "x"},
      {"role": "user", "content": FOLLOW_UP, "protein": {"sequence": OTHER}}], {}, SepitError, "one protein"),
    ([{"role": "assistant", "content": "x", "protein": {"sequence": SEQ}}, {"role": "user", "content": FIRST}],
     {}, SepitError, "only a user message"),
    ([{"role": "user", "content": f"{PROTEIN_TOKEN} {FIRST}"}], {"protein": {"sequence": SEQ}}, SepitError,
     "reserved token"),
    ([{"role": "user", "content": FIRST}, {"role": "assistant", "content": "x"}], {"protein": {"sequence": SEQ}},
     SepitError, "question: empty"),
])
def test_bad_conversations_are_named(messages, extra, error, message):
    with pytest.raises(error, match=message):
        read_conversation(_body(messages, **extra))
