"""In-process API tests (FastAPI test client) of every endpoint, streaming, batching and each kind of bad input."""

from __future__ import annotations

import asyncio
import base64
import gzip
import json

import httpx
import pytest
from fastapi.testclient import TestClient
from tiny_sepit import PDB_SEQUENCE, pdb_text

from sepit.serve import ServeSettings, create_app

SEQ = "MVLSPADKTNVKAAWGKV"
QUESTION = "What is the function of this protein?"


def make_client(sepit_model, **settings) -> TestClient:
    defaults = {"model_name": "tiny", "default_max_new_tokens": 6, "max_new_tokens": 64, "max_sequence_length": 64,
                "max_structure_bytes": 4096, "max_body_bytes": 16384}
    return TestClient(create_app(sepit_model, ServeSettings(**{**defaults, **settings})))


@pytest.fixture(scope="module")
def client(sepit_model):
    with make_client(sepit_model) as c:
        yield c


def chat_body(**extra) -> dict:
    return {"model": "tiny", "messages": [{"role": "system", "content": "Be brief."},
                                          {"role": "user", "content": QUESTION}],
            "protein": {"sequence": SEQ}, "max_tokens": 6, **extra}


def events(text: str) -> list:
    lines = [line[6:] for line in text.split("\n\n") if line.startswith("data: ")]
    assert lines[-1] == "[DONE]"
    return [json.loads(line) for line in lines[:-1]]


def test_health_models_and_page(client):
    health = client.get("/healthz").json()
    assert health["status"] == "ok" and health["model"] == "tiny" and health["device"] == "cpu"
    assert client.get("/v1/models").json()["data"][0]["id"] == "tiny"
    page = client.get("/")
    assert page.status_code == 200 and "<form id=\"ask-form\"" in page.text
    assert "chat/completions" in client.get("/static/app.js").text


def test_ask_open_and_closed(client):
    open_ = client.post("/v1/ask", json={"sequence": SEQ, "question": QUESTION})
    assert open_.status_code == 200, open_.text
    assert open_.json()["answer"] and open_.json()["probabilities"] is None
    closed = client.post("/v1/ask", json={"sequence": SEQ, "question": "Does it bind heme?",
                                          "choices": ["yes", "no"]}).json()
    assert set(closed["probabilities"]) == {"yes", "no"}
    assert sum(closed["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
    assert closed["choice"] == max(closed["probabilities"], key=closed["probabilities"].get)


def test_ask_with_structure_text_and_gzip(client):
    plain = client.post("/v1/ask", json={"structure": {"content": pdb_text(), "format": "pdb"},
                                         "question": QUESTION})
    assert plain.status_code == 200, plain.text
    info = plain.json()["structure"]
    assert info["chain"] == "A" and info["length"] == len(PDB_SEQUENCE) and info["file"] == "uploaded.pdb"
    packed = base64.b64encode(gzip.compress(pdb_text().encode())).decode()
    zipped = client.post("/v1/ask", json={"sequence": PDB_SEQUENCE, "chain": "A", "question": QUESTION,
                                          "structure": {"content": packed, "format": "pdb.gz", "encoding": "base64"}})
    assert zipped.status_code == 200, zipped.text
    assert zipped.json()["structure"]["identity"] == 1.0


def test_chat_completion_matches_openai_shape(client):
    body = client.post("/v1/chat/completions", json=chat_body()).json()
    assert body["object"] == "chat.completion" and body["model"] == "tiny"
    choice = body["choices"][0]
    assert choice["message"]["role"] == "assistant" and choice["message"]["content"]
    assert choice["finish_reason"] == "length" and body["usage"]["completion_tokens"] == 6
    assert body["usage"]["total_tokens"] == body["usage"]["prompt_tokens"] + 6
    parts = chat_body(messages=[{"role": "system", "content": "Be brief."},
                                {"role": "user", "content": [{"type": "text", "text": QUESTION}]}])
    again = client.post("/v1/chat/completions", json=parts).json()
    assert again["choices"][0]["message"]["content"] == choice["message"]["content"]


def test_chat_stream_equals_full_answer(client):
    full = client.post("/v1/chat/completions", json=chat_body(answer_choices=["yes", "no"])).json()
    with client.stream("POST", "/v1/chat/completions",
                       json=chat_body(answer_choices=["yes", "no"], stream=True,
                                      stream_options={"include_usage": True})) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        chunks = events(response.read().decode())
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert len({c["id"] for c in chunks}) == 1
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert len([c for c in chunks if c["choices"] and c["choices"][0]["delta"].get("content")]) > 1
    assert text.strip() == full["choices"][0]["message"]["content"]
    last = [c for c in chunks if c["choices"]][-1]
    assert last["choices"][0]["finish_reason"] == "length"
    assert last["sepit"]["probabilities"] == pytest.approx(full["sepit"]["probabilities"], abs=1e-5)
    assert chunks[-1]["usage"] == full["usage"]


def bad_requests():
    big = "A" * 65
    huge_pdb = pdb_text() + "REMARK " + "x" * 5000 + "\n"
    yield "/v1/ask", {"sequence": "MKT1", "question": "q"}, 422, "invalid residue '1' at position 4"
    yield "/v1/ask", {"sequence": big, "question": "q"}, 422, "65 residues exceed the server limit of 64"
    yield "/v1/ask", {"sequence": SEQ, "question": "   "}, 422, "question: empty"
    yield "/v1/ask", {"sequence": SEQ}, 422, "question: Field required"
    yield "/v1/ask", {"question": "q"}, 422, "give a sequence and/or a structure"
    yield "/v1/ask", {"sequence": SEQ, "question": "q", "choices": ["yes"]}, 422, "between 2 and 26 options"
    yield "/v1/ask", {"sequence": SEQ, "question": "q", "choices": ["a", "a"]}, 422, "distinct"
    yield "/v1/ask", {"sequence": SEQ, "question": "q", "max_new_tokens": 65}, 422, "exceeds the server limit of 64"
    yield "/v1/ask", {"sequence": SEQ, "question": "q", "chain": "A"}, 422, "chain: given without a structure"
    yield "/v1/ask", {"question": "q", "structure": {"content": "not a structure", "format": "pdb"}}, 422, \
        "structure (uploaded.pdb)"
    yield "/v1/ask", {"question": "q", "structure": {"content": pdb_text(), "format": "pdb"}, "chain": "Z"}, 422, \
        "no protein chain 'Z'"
    yield "/v1/ask", {"question": "q", "structure": {"content": pdb_text(), "format": "xyz"}}, 422, \
        "structure.format: Input should be"
    yield "/v1/ask", {"question": "q", "structure": {"content": "@@@", "format": "pdb.gz", "encoding": "base64"}}, \
        422, "not valid base64"
    yield "/v1/ask", {"question": "q", "structure": {"content": "x", "format": "cif.gz"}}, 422, \
        "needs encoding 'base64'"
    yield "/v1/ask", {"question": "q", "structure": {"content": huge_pdb, "format": "pdb"}}, 422, \
        "exceed the server limit of 4096 bytes"
    yield "/v1/ask", {"sequence": SEQ, "question": "q", "colour": "red"}, 422, "colour: Extra inputs"
    yield "/v1/chat/completions", chat_body(protein=None), 400, "protein: missing"
    yield "/v1/chat/completions", chat_body(n=2), 422, "n: Input should be less than or equal to 1"
    yield "/v1/chat/completions", chat_body(messages=[]), 422, "messages: List should have at least 1 item"
    yield "/v1/chat/completions", chat_body(messages=[{"role": "system", "content": "x"}]), 422, "question: empty"
    yield "/v1/chat/completions", chat_body(temperature=5), 422, "temperature: Input should be less than"
    yield "/v1/chat/completions", chat_body(stream=True, max_tokens=1000), 422, "max_tokens: 1000 exceeds"


@pytest.mark.parametrize(("path", "body", "status", "message"), list(bad_requests()),
                         ids=[f"{i}-{m[:30]}" for i, (_, _, _, m) in enumerate(bad_requests())])
def test_bad_input_is_a_json_4xx(client, path, body, status, message):
    response = client.post(path, json=body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert message in error["message"] and error["type"] == "invalid_request_error"


def test_malformed_and_oversized_bodies_then_still_serving(client):
    bad_json = client.post("/v1/ask", content=b"{bad", headers={"Content-Type": "application/json"})
    assert bad_json.status_code == 400 and "not valid JSON" in bad_json.json()["error"]["message"]
    too_big = client.post("/v1/ask", json={"sequence": SEQ, "question": "q" * 20000})
    assert too_big.status_code == 413 and "exceeds the server limit of 16384" in too_big.json()["error"]["message"]
    assert client.get("/v1/nothing").status_code == 404
    assert client.get("/v1/ask").json()["error"]["message"] == "Method Not Allowed"
    assert client.post("/v1/ask", json={"sequence": SEQ, "question": QUESTION}).status_code == 200


def test_api_key(sepit_model):
    with make_client(sepit_model, api_key="s3cret") as c:
        assert c.get("/healthz").status_code == 200 and c.get("/").status_code == 200
        missing = c.get("/v1/models")
        assert missing.status_code == 401 and "API key" in missing.json()["error"]["message"]
        assert c.get("/v1/models", headers={"Authorization": "Bearer wrong"}).status_code == 401
        ok = c.post("/v1/ask", json={"sequence": SEQ, "question": QUESTION},
                    headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200


def test_concurrent_requests_are_batched_and_match_single_answers(sepit_model):
    app = create_app(sepit_model, ServeSettings(default_max_new_tokens=5, max_batch_size=8, batch_wait_ms=200))
    questions = [f"{QUESTION} ({i})" for i in range(6)]

    async def ask_all():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            replies = await asyncio.gather(*(c.post("/v1/ask", json={"sequence": SEQ[: 8 + i], "question": q})
                                             for i, q in enumerate(questions)))
            return [r.json()["answer"] for r in replies]

    batched = asyncio.run(ask_all())
    engine = app.state.engine
    assert engine.batches_run < len(questions)
    singles = [sepit_model.ask(q, sequence=SEQ[: 8 + i], max_new_tokens=5).text for i, q in enumerate(questions)]
    assert batched == singles
    engine.close()


def test_timeout_and_busy_are_reported_and_serving_goes_on(sepit_model, monkeypatch):
    with make_client(sepit_model, request_timeout_s=0.001) as c:
        slow = c.post("/v1/ask", json={"sequence": SEQ, "question": QUESTION, "max_new_tokens": 64})
        assert slow.status_code == 504 and slow.json()["error"]["type"] == "timeout"
        with c.stream("POST", "/v1/chat/completions", json=chat_body(stream=True, max_tokens=64)) as response:
            chunks = response.read().decode()
        assert '"type": "timeout"' in chunks and chunks.endswith("data: [DONE]\n\n")
        monkeypatch.setattr(c.app.state.engine.jobs, "qsize", lambda: 10**6)
        busy = c.post("/v1/ask", json={"sequence": SEQ, "question": QUESTION})
        assert busy.status_code == 503 and "server busy" in busy.json()["error"]["message"]
        monkeypatch.undo()
        assert c.get("/healthz").json()["status"] == "ok"
