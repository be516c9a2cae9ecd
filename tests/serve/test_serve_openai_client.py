"""The official ``openai`` Python client talks to `sepit serve` unchanged: models, a completion, a stream,
the protein passed through ``extra_body``, the API key as its bearer token, and errors as ``APIStatusError``."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from sepit.serve import ServeSettings, create_app

openai = pytest.importorskip("openai")

SEQ = "MVLSPADKTNVKAAWGKV"


@pytest.fixture(scope="module")
def client(sepit_model):
    settings = ServeSettings(model_name="tiny", default_max_new_tokens=6, max_new_tokens=64, max_sequence_length=64,
                             api_key="s3cret")
    with TestClient(create_app(sepit_model, settings)) as http:  # an httpx.Client: the SDK sends through it
        yield openai.OpenAI(base_url="http://testserver/v1", api_key="s3cret", http_client=http, max_retries=0)


def _ask(client, **kwargs):
    return client.chat.completions.create(
        model="tiny", messages=[{"role": "user", "content": "What is the function of this protein?"}],
        max_tokens=6, extra_body={"protein": {"sequence": SEQ}}, **kwargs)


def test_models_and_completion(client):
    assert [m.id for m in client.models.list()] == ["tiny"]
    reply = _ask(client)
    assert reply.object == "chat.completion" and reply.choices[0].message.role == "assistant"
    assert reply.choices[0].message.content and reply.usage.completion_tokens == 6


def test_stream_matches_completion(client):
    full = _ask(client).choices[0].message.content
    chunks = list(_ask(client, stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.strip() == full and chunks[-1].choices[0].finish_reason == "length"


def test_errors_reach_the_client(client):
    with pytest.raises(openai.UnprocessableEntityError, match="invalid residue"):
        client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "hi"}], max_tokens=4,
                                       extra_body={"protein": {"sequence": "MKV#L"}})
    wrong_key = client.with_options(api_key="nope")
    with pytest.raises(openai.AuthenticationError):
        wrong_key.models.list()
