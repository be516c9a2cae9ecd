"""The page in a real browser: Playwright drives Debian's headless Chromium (no browser download) against a
server on 127.0.0.1; it submits a sequence and a question and sees the streamed answer and the options."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import uvicorn

from sepit.serve import ServeSettings, create_app

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).parent / "artifacts"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def server_url(sepit_model):
    app = create_app(sepit_model, ServeSettings(model_name="tiny-debug", default_max_new_tokens=12))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def page(server_url):
    sync_api = pytest.importorskip("playwright.sync_api")
    if not CHROMIUM.is_file():
        pytest.skip(f"{CHROMIUM} missing: apt-get install -y chromium (scripts/install.sh does)")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        page = browser.new_page(viewport={"width": 1000, "height": 900})
        page.goto(server_url + "/")
        yield page
        browser.close()


def test_page_streams_an_answer_with_option_probabilities(page):
    page.wait_for_function("document.getElementById('model-name').textContent === 'tiny-debug'", timeout=10_000)
    page.select_option("#example", index=4)  # "Does this protein bind DNA? (yes|no)": fills question + options
    page.fill("#sequence", ">example protein\nMVLSPADKTNVKAAWGKV\nGAHAGEYGAEALERMF")
    page.click("#ask")
    page.wait_for_selector("body[data-state]", timeout=30_000)
    status = page.inner_text("#status")
    assert page.get_attribute("body", "data-state") == "done", status
    assert page.input_value("#question") == "Does this protein bind DNA?"
    assert page.inner_text("#answer").strip()
    options = page.locator("#options tbody tr")
    assert options.count() == 2 and sorted(options.nth(i).locator("td").first.inner_text() for i in range(2)) == \
        ["no", "yes"]
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "serve_page.png"
    page.screenshot(path=str(shot), full_page=True)
    print(f"screenshot: {shot}")


def test_page_keeps_a_conversation_for_follow_up_questions(page):
    turns = page.locator("#conversation li")
    assert turns.count() == 2 and page.inner_text("#ask") == "Ask a follow-up"  # the first question and answer
    page.fill("#question", "Where is it located?")
    page.fill("#choices", "")
    page.evaluate("delete document.body.dataset.state")
    page.click("#ask")
    page.wait_for_selector("body[data-state]", timeout=30_000)
    assert page.get_attribute("body", "data-state") == "done", page.inner_text("#status")
    assert [turns.nth(i).get_attribute("class") for i in range(turns.count())] == ["user", "assistant"] * 2
    assert turns.nth(2).inner_text() == "Where is it located?" and page.inner_text("#answer").strip()
    page.fill("#sequence", "MKTAYIAKQR")  # another protein: a new conversation
    assert turns.count() == 0 and page.inner_text("#ask") == "Ask"


def test_page_shows_the_error_of_a_bad_sequence(page):
    page.fill("#sequence", "MKT1")
    page.fill("#question", "What is it?")
    page.fill("#choices", "")
    page.evaluate("delete document.body.dataset.state")
    page.click("#ask")
    page.wait_for_selector("body[data-state]", timeout=30_000)
    assert page.get_attribute("body", "data-state") == "error"
    assert "invalid residue '1' at position 4" in page.inner_text("#status")
