"""Issue 10 regressions on the server: every costly dimension of a request is limited (and the refusal names the
limit), gzip uploads are decompressed with a cap, timed-out or abandoned requests stop their model work, an
unknown model name is a 404 and cropped proteins are reported."""

from __future__ import annotations

import asyncio
import base64
import functools
import gzip
import io
import json
import threading
import time
import tracemalloc

import pytest
from fastapi.testclient import TestClient
from tiny_sepit import PDB_SEQUENCE, pdb_text

from sepit.errors import Cancelled, LimitError, StructureError
from sepit.eval.generate import GenerationSettings
from sepit.serve import ServeSettings, create_app
from sepit.serve.protein import gunzip_capped

SEQ = "MVLSPADKTNVKAAWGKV"
QUESTION = "What is the function of this protein?"


def make_client(sepit_model, **settings) -> TestClient:
    defaults = {"model_name": "tiny", "default_max_new_tokens": 4, "max_new_tokens": 64, "max_body_bytes": 2**20}
    return TestClient(create_app(sepit_model, ServeSettings(**{**defaults, **settings})))


@pytest.fixture(scope="module")
def client(sepit_model):
    with make_client(sepit_model) as c:
        yield c


def chat_body(**extra) -> dict:
    return {"model": "tiny", "messages": [{"role": "user", "content": QUESTION}], "protein": {"sequence": SEQ},
            "max_tokens": 4, **extra}


def limit_error(response, *fragments: str) -> str:
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "LimitError", error
    for fragment in fragments:
        assert fragment in error["message"], error["message"]
    return error["message"]


def gzip_bomb(expanded_bytes: int) -> bytes:
    """A gzip member of ``expanded_bytes`` of PDB-looking text made by compressing in pieces (never held whole)."""
    line = b"REMARK 999 " + b"X" * 68 + b"\n"
    block = line * (2**20 // len(line))
    buffer = io.BytesIO()
    out = gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=9)
    for _ in range(expanded_bytes // len(block)):
        out.write(block)
    out.close()
    return buffer.getvalue()


# --- 8 KB of choices (the probe drove the server to 12.7 GB) ---
def test_8kb_of_choices_is_refused_naming_the_limit(client):
    choices = [f"option {i} " + "x" * 300 for i in range(26)]  # ~8 KB
    ask = client.post("/v1/ask", json={"sequence": SEQ, "question": QUESTION, "choices": choices})
    limit_error(ask, "choices[0]", "limit of 200", "--max-choice-chars")
    chat = client.post("/v1/chat/completions", json=chat_body(answer_choices=choices))
    limit_error(chat, "choices[0]", "--max-choice-chars")
    assert client.post("/v1/ask", json={"sequence": SEQ, "question": QUESTION,
                                        "choices": ["x" * 200, "y" * 200]}).status_code == 200


def test_prompt_tokens_are_limited(sepit_model):
    with make_client(sepit_model, max_prompt_tokens=80) as c:
        ok = c.post("/v1/ask", json={"sequence": SEQ, "question": QUESTION, "choices": ["yes", "no"]})
        assert ok.status_code == 200, ok.text
        long_q = c.post("/v1/ask", json={"sequence": SEQ, "question": QUESTION + " word" * 60})
        limit_error(long_q, "prompt:", "limit of 80", "--max-prompt-tokens")
        many = c.post("/v1/ask", json={"sequence": SEQ, "question": QUESTION,
                                       "choices": [f"choice number {i}" for i in range(20)]})
        limit_error(many, "--max-prompt-tokens")
        protein = c.post("/v1/ask", json={"sequence": SEQ * 5, "question": QUESTION})
        limit_error(protein, "--max-prompt-tokens")


def test_option_scoring_forward_size_follows_the_token_budget(sepit_model, monkeypatch):
    """Items per option-scoring batch follow max_scoring_tokens: 6 closed-set requests answered in one engine
    batch are scored 6, 3 or 1 at a time (prompts ~100 tokens), and no forward exceeds the budget in positions
    whose logits it keeps (the memory bound)."""
    from sepit.serve.engine import Engine, Job
    from sepit.serve.protein import check_prompt, model_item
    from sepit.serve.schemas import AskRequest

    settings = ServeSettings(model_name="tiny")
    body = AskRequest(sequence=SEQ, question=QUESTION, choices=["a", "b", "c", "d", "e", "f"])
    item = check_prompt({**model_item(body, QUESTION, body.choices, settings), "protein": {}}, sepit_model.processor,
                        settings)
    assert 60 < item["scoring_tokens"] < 150
    import sepit.serve.engine as engine_module

    calls, scoring = [], []
    real, real_score = sepit_model.model.forward, engine_module.score_options

    def score_spy(*args, **kwargs):
        scoring.append(True)
        try:
            return real_score(*args, **kwargs)
        finally:
            scoring.clear()

    @functools.wraps(real)  # generate() reads the forward's signature
    def spy(*args, **kwargs):
        if not scoring:  # generation
            pass
        elif kwargs.get("logits_to_keep") == 1:  # the scoring's prompt pass: one logit per item
            calls.append(("prompt", kwargs["input_ids"].shape[0]))
        elif "cache" in kwargs:  # the option pass after the cached prompt: logits at every option token
            calls.append(("options", kwargs["input_ids"].numel()))
        return real(*args, **kwargs)

    monkeypatch.setattr(sepit_model.model, "forward", spy)
    monkeypatch.setattr(engine_module, "score_options", score_spy)
    gen = GenerationSettings(max_new_tokens=2)
    for budget, per_batch in ((10_000, 6), (300, 300 // item["scoring_tokens"]), (100, 1)):
        calls.clear()
        engine = Engine(sepit_model, max_batch_size=8, max_scoring_tokens=budget)
        results = engine._answer([Job(dict(item), gen) for _ in range(6)])
        assert all(set(r.probabilities) == set(item["choices"]) for r in results)
        prompts = [n for kind, n in calls if kind == "prompt"]
        assert sum(prompts) == 6 and max(prompts) == per_batch, (budget, calls)
        assert all(n <= max(budget, item["scoring_tokens"]) for kind, n in calls if kind == "options"), calls


# --- gzip bomb: capped streaming decompression ---
def test_gunzip_capped_never_holds_more_than_the_limit():
    bomb = gzip_bomb(64 * 2**20)  # 64 MiB of text, ~100 KB compressed
    assert len(bomb) < 2**20
    tracemalloc.start()
    with pytest.raises(LimitError, match="exceeds the server limit of 1048576 bytes"):
        gunzip_capped(bomb, 2**20)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 4 * 2**20, peak  # the limit plus a chunk (and copies of the growing buffer), not 64 MiB
    two_members = gzip.compress(b"abc") + gzip.compress(b"def")
    assert gunzip_capped(two_members, 100) == b"abcdef"
    with pytest.raises(StructureError, match="truncated"):
        gunzip_capped(gzip.compress(pdb_text().encode())[:-30], 2**20)
    with pytest.raises(StructureError, match="corrupt gzip"):
        gunzip_capped(b"\x1f\x8b\x08\x00" + b"\xff" * 40, 2**20)


def test_gzip_bomb_upload_is_refused_and_valid_gzip_still_works(sepit_model):
    with make_client(sepit_model, max_structure_unzipped_bytes=2**20) as c:
        bomb = base64.b64encode(gzip_bomb(16 * 2**20)).decode()
        refused = c.post("/v1/ask", json={"question": QUESTION,
                                          "structure": {"content": bomb, "format": "pdb.gz", "encoding": "base64"}})
        limit_error(refused, "decompressed", "--max-structure-unzipped-mb")
        disguised = c.post("/v1/ask", json={"question": QUESTION,  # gzip bytes sent as a plain .pdb
                                            "structure": {"content": bomb, "format": "pdb", "encoding": "base64"}})
        limit_error(disguised, "decompressed")
        packed = base64.b64encode(gzip.compress(pdb_text().encode())).decode()
        ok = c.post("/v1/ask", json={"question": QUESTION,
                                     "structure": {"content": packed, "format": "pdb.gz", "encoding": "base64"}})
        assert ok.status_code == 200, ok.text
        assert ok.json()["structure"]["file"] == "uploaded.pdb" and ok.json()["structure"]["identity"] == 1.0
        cut = base64.b64encode(gzip.compress(pdb_text().encode())[:-30]).decode()
        truncated = c.post("/v1/ask", json={"question": QUESTION,
                                            "structure": {"content": cut, "format": "pdb.gz", "encoding": "base64"}})
        assert truncated.status_code == 422 and "truncated gzip" in truncated.json()["error"]["message"]


# --- unknown model name ---
def test_unknown_model_name_is_404_openai_style(client):
    missing = client.post("/v1/chat/completions", json=chat_body(model="gpt-4o"))
    assert missing.status_code == 404, missing.text
    error = missing.json()["error"]
    assert error["code"] == "model_not_found" and error["param"] == "model" and "'gpt-4o'" in error["message"]
    streamed = client.post("/v1/chat/completions", json=chat_body(model="nope", stream=True))
    assert streamed.status_code == 404
    assert client.post("/v1/chat/completions", json=chat_body()).status_code == 200
    assert client.post("/v1/chat/completions", json={k: v for k, v in chat_body().items()
                                                     if k != "model"}).status_code == 200


# --- cropping is reported ---
def test_cropped_protein_is_reported_and_the_answer_is_the_cropped_ones(sepit_model):
    with make_client(sepit_model, max_residues=8) as c:
        long = c.post("/v1/ask", json={"sequence": SEQ, "question": QUESTION}).json()
        assert long["protein"] == {"residues": len(SEQ), "cropped": True, "cropped_to": 8}
        short = c.post("/v1/ask", json={"sequence": SEQ[:8], "question": QUESTION}).json()
        assert short["protein"] == {"residues": 8, "cropped": False, "cropped_to": None}
        assert long["answer"] == short["answer"] == sepit_model.ask(QUESTION, sequence=SEQ[:8],
                                                                      max_new_tokens=4).text
        chat = c.post("/v1/chat/completions", json=chat_body()).json()
        assert chat["sepit"]["protein"]["cropped_to"] == 8
        with c.stream("POST", "/v1/chat/completions", json=chat_body(stream=True)) as response:
            text = response.read().decode()
        assert '"cropped_to": 8' in text
        structure = c.post("/v1/ask", json={"question": QUESTION,
                                            "structure": {"content": pdb_text(), "format": "pdb"}}).json()
        assert structure["protein"] == {"residues": len(PDB_SEQUENCE), "cropped": True, "cropped_to": 8}


# --- cancellation: timed-out or abandoned requests stop their model work ---
class SlowForward:
    """Wraps the model's forward: each call sleeps ``delay`` seconds and is counted."""

    def __init__(self, model, delay: float):
        self.real, self.delay, self.calls = model.forward, delay, 0
        self.lock = threading.Lock()
        functools.update_wrapper(self, self.real)  # generate() reads the forward's signature

    def __call__(self, *args, **kwargs):
        with self.lock:
            self.calls += 1
        time.sleep(self.delay)
        return self.real(*args, **kwargs)


def closed_body(n_options: int) -> dict:
    return {"sequence": SEQ, "question": QUESTION, "max_new_tokens": 1,
            "choices": [f"option {i}" for i in range(n_options)]}


def wait_done(job, seconds: float = 20.0):
    deadline = time.monotonic() + seconds
    while not job.future.done() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert job.future.done()
    return job.future.exception()


def test_timed_out_request_stops_its_option_scoring(sepit_model, monkeypatch):
    slow = SlowForward(sepit_model.model, 0.7)
    monkeypatch.setattr(sepit_model.model, "forward", slow)
    jobs = []
    with make_client(sepit_model, request_timeout_s=1.0, max_batch_size=1) as c:
        engine = c.app.state.engine
        submit = engine.submit
        monkeypatch.setattr(engine, "submit", lambda *a, **k: jobs.append(submit(*a, **k)) or jobs[-1])
        # 1 generation forward + the scoring's prompt pass and option pass: ~2.1 s of work for a 1 s timeout;
        # the request times out during the prompt pass, so the option pass never runs
        timed_out = c.post("/v1/ask", json=closed_body(12))
        assert timed_out.status_code == 504, timed_out.text
        assert isinstance(wait_done(jobs[0]), Cancelled)
        abandoned_at = slow.calls
        assert abandoned_at < 3, f"all {abandoned_at} forwards ran although the request timed out"
        assert engine.cancelled_jobs == 1 and c.get("/healthz").json()["cancelled"] == 1
        next_one = c.post("/v1/ask", json={"sequence": SEQ, "question": QUESTION, "max_new_tokens": 1})
        assert next_one.status_code == 200, next_one.text
        assert slow.calls == abandoned_at + 1  # only the new request's forward: nothing of the old one ran


def test_timed_out_stream_stops_its_generation(sepit_model, monkeypatch):
    slow = SlowForward(sepit_model.model, 0.2)
    monkeypatch.setattr(sepit_model.model, "forward", slow)
    with make_client(sepit_model, request_timeout_s=0.8) as c:
        with c.stream("POST", "/v1/chat/completions", json=chat_body(stream=True, max_tokens=40)) as response:
            text = response.read().decode()
        assert '"type": "timeout"' in text
        deadline = time.monotonic() + 10
        while c.app.state.engine.cancelled_jobs < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert c.app.state.engine.cancelled_jobs == 1
        assert slow.calls < 40


def test_client_disconnect_cancels_the_job(sepit_model, monkeypatch):
    """A raw ASGI call whose client goes away 0.5 s after sending the body: the handler notices and the
    engine drops the work (the test client never disconnects, so this drives the app directly)."""
    slow = SlowForward(sepit_model.model, 0.3)
    monkeypatch.setattr(sepit_model.model, "forward", slow)
    app = create_app(sepit_model, ServeSettings(model_name="tiny", max_batch_size=1, request_timeout_s=60))
    engine = app.state.engine
    body = json.dumps(closed_body(12)).encode()
    start, sent = time.monotonic(), []

    async def receive():
        if not sent:
            sent.append("body")
            return {"type": "http.request", "body": body, "more_body": False}
        if time.monotonic() - start > 0.5:
            return {"type": "http.disconnect"}
        await asyncio.sleep(3600)

    replies = []

    async def send(message):
        replies.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/v1/ask", "raw_path": b"/v1/ask", "query_string": b"", "root_path": "",
             "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
             "client": ("test", 1), "server": ("test", 80)}
    asyncio.run(asyncio.wait_for(app(scope, receive, send), 30))
    deadline = time.monotonic() + 10
    while engine.cancelled_jobs < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert engine.cancelled_jobs == 1
    assert slow.calls < 13
    assert replies[0]["status"] == 499
    engine.close()


def test_a_job_cancelled_while_queued_never_runs(sepit_model, monkeypatch):
    from sepit.eval.generate import GenerationSettings
    from sepit.serve.engine import Engine

    slow = SlowForward(sepit_model.model, 0.3)
    monkeypatch.setattr(sepit_model.model, "forward", slow)
    engine = Engine(sepit_model, max_batch_size=1, batch_wait_ms=0)
    item = {"sequence": SEQ, "question": QUESTION, "choices": []}
    first = engine.submit(item, GenerationSettings(max_new_tokens=3))
    queued = engine.submit({**item, "question": "Another?"}, GenerationSettings(max_new_tokens=3))
    queued.cancelled.set()  # given up while the first one runs
    assert wait_done(first) is None and isinstance(wait_done(queued), Cancelled)
    assert slow.calls == 3 and engine.cancelled_jobs == 1  # the first one's three forwards only
    engine.close()


def test_serve_options_reach_the_settings_and_bad_values_exit_2(capsys):
    from sepit.cli import build_parser
    from sepit.commands.serve import settings_from_args

    args = build_parser().parse_args(["serve", "--model", ".", "--max-choice-chars", "50", "--max-prompt-tokens",
                                      "512", "--max-structure-unzipped-mb", "2", "--max-residues", "100",
                                      "--max-scoring-tokens", "256"])
    s = settings_from_args(args)
    assert (s.max_choice_chars, s.max_prompt_tokens, s.max_structure_unzipped_bytes, s.max_residues,
            s.max_scoring_tokens) == (50, 512, 2 * 2**20, 100, 256)
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["serve", "--model", ".", "--max-choice-chars", "0"])
    assert exit_.value.code == 2 and "argument --max-choice-chars: must be at least 1" in capsys.readouterr().err
