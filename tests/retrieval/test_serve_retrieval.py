"""The server with a reference index: /v1/ask and the chat-completions ``sepit`` extension carry the evidence
(with UniProt links) and checked citations; ``retrieval: false`` answers without; the page shows the table."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from sepit.api import Sepit
from sepit.retrieval.index import Entry, write_index
from sepit.serve import ServeSettings, create_app
from tests.serve.conftest import talkative_tiny_sepit

TARGET = "MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQAPILSRVGDGTQDNLSGAEKAVQVKVKALPDAQFEVV"


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    folder = tmp_path_factory.mktemp("serve-index") / "index"
    write_index(folder, [Entry("P11111", TARGET, {"function": "Binds heme."}, {"go_mf": ["heme binding"]}),
                         Entry("P22222", "W" * 40, {"function": "Unrelated."})],
                {"fingerprint": "x", "split": ["train"]}, method="opal")
    model = Sepit(*talkative_tiny_sepit(seed=0), device="cpu", index=folder)
    with TestClient(create_app(model, ServeSettings(default_max_new_tokens=4))) as c:
        yield c


def test_ask_returns_evidence_with_links(client):
    body = client.post("/v1/ask", json={"sequence": TARGET[2:], "question": "What does it do?",
                                        "category": "function"}).json()
    assert [e["accession"] for e in body["evidence"]] == ["P11111"]
    hit = body["evidence"][0]
    assert hit["annotation"] == "Binds heme." and hit["identity"] == 1.0
    assert hit["url"] == "https://www.uniprot.org/uniprotkb/P11111/entry"
    assert isinstance(body["citations"], list) and isinstance(body["unsupported_citations"], list)
    plain = client.post("/v1/ask", json={"sequence": TARGET, "question": "What?", "retrieval": False}).json()
    assert plain["evidence"] is None
    none = client.post("/v1/ask", json={"sequence": "GSGSGSGS", "question": "What?"}).json()
    assert none["evidence"] == [] and "no annotated homolog" in none["evidence_note"]


def test_chat_extension_field_carries_evidence_streamed_or_not(client):
    req = {"messages": [{"role": "user", "content": "Does it bind heme?"}], "protein": {"sequence": TARGET},
           "answer_choices": ["yes", "no"], "category": "go_mf"}
    full = client.post("/v1/chat/completions", json=req).json()
    assert full["sepit"]["evidence"][0]["annotation"] == "heme binding" and full["sepit"]["probabilities"]
    with client.stream("POST", "/v1/chat/completions", json={**req, "stream": True}) as r:
        events = [json.loads(line[6:]) for line in r.iter_lines() if line.startswith("data: {")]
    assert events[-1]["sepit"]["evidence"][0]["accession"] == "P11111"


def test_page_has_the_evidence_table(client):
    assert 'id="evidence"' in client.get("/").text
    assert "uniprot.org/uniprotkb/" in client.get("/static/app.js").text
