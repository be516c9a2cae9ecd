"""The FastAPI app: ``/v1/chat/completions`` (OpenAI-compatible, streaming too), ``/v1/ask``, ``/v1/models``,
``/healthz`` and the page at ``/``. Errors are JSON ``{"error": {"message", "type", ...}}``:
401 API key, 413 body too large, 400 bad JSON or a chat without any protein, 404 unknown ``model``, 422
invalid input (pydantic or :class:`SepitError`; a request over a server limit has code ``LimitError`` and names
the limit), 503 queue full, 504 timeout, 500 anything else (the server keeps serving). A request that times out
or whose client disconnects has its job cancelled: the engine stops its generation and option scoring.
"""

from __future__ import annotations

import asyncio
import time
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from sepit import __version__
from sepit.errors import SepitError
from sepit.eval.generate import GenerationSettings
from sepit.retrieval.evidence import attach_evidence, grounding
from sepit.serve import openai
from sepit.serve.conversation import NoProteinError, read_conversation
from sepit.serve.engine import Engine, QueueFullError, TokenStream
from sepit.serve.guard import Guard
from sepit.serve.protein import check_prompt, crop, model_item
from sepit.serve.schemas import AskRequest, AskResponse, ChatRequest
from sepit.serve.settings import ServeSettings

STATIC = Path(__file__).parent / "static"


class RequestTimeoutError(SepitError):
    """The answer did not come within ``request_timeout_s`` (HTTP 504)."""


class ClientGoneError(SepitError):
    """The client closed the connection before the answer came (nobody reads the reply)."""


class UnknownModelError(SepitError):
    """A chat request named a model this server does not serve (HTTP 404)."""


def create_app(sepit, settings: ServeSettings | None = None) -> FastAPI:
    """An app around a loaded :class:`sepit.api.Sepit`; one :class:`Engine` worker owns the model."""
    settings = settings or ServeSettings()
    engine = Engine(sepit, settings.max_batch_size, settings.batch_wait_ms, settings.max_queue,
                    settings.max_scoring_tokens)

    @asynccontextmanager
    async def lifespan(_app):
        yield
        engine.close()

    app = FastAPI(title="sepit", version=__version__, lifespan=lifespan,
                  description="Ask questions about proteins. See docs/serving.md.")
    app.state.engine, app.state.settings = engine, settings
    _add_error_handlers(app)
    _add_routes(app, sepit, engine, settings)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_middleware(Guard, api_key=settings.api_key, max_body_bytes=settings.max_body_bytes)
    return app


def _generation(settings: ServeSettings, max_new_tokens: int | None, temperature: float | None = None,
                top_p: float | None = None) -> GenerationSettings:
    n = max_new_tokens or settings.default_max_new_tokens
    if n > settings.max_new_tokens:
        raise SepitError(f"max_tokens: {n} exceeds the server limit of {settings.max_new_tokens}")
    if not temperature:
        return GenerationSettings(max_new_tokens=n)
    return GenerationSettings(max_new_tokens=n, do_sample=True, temperature=temperature, top_p=top_p or 1.0)


async def _wait(job, timeout: float, request: Request | None = None, poll_s: float = 0.25):
    """The job's result; on timeout, a closed connection or a cancelled handler the job is cancelled, which
    stops its model work (generation at the next token, option scoring at the next forward)."""
    future, deadline = asyncio.wrap_future(job.future), time.monotonic() + timeout
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RequestTimeoutError(f"no answer within the server's {timeout:g} s request timeout")
            done, _ = await asyncio.wait({future}, timeout=min(left, poll_s))
            if done:
                return future.result()
            if request is not None and await request.is_disconnected():
                raise ClientGoneError("the client closed the connection")
    finally:
        if not job.future.done():
            job.cancelled.set()


def _add_routes(app: FastAPI, sepit, engine: Engine, settings: ServeSettings) -> None:
    name = settings.model_name
    max_residues = min(settings.max_residues or sepit.processor.max_residues, sepit.processor.max_residues)

    def prepare(protein, question: str, choices: list[str] | None, category: str | None = None,
                retrieval: bool = True, extra: dict | None = None) -> tuple[dict, list | None]:
        """Checked, cropped model item and its evidence (runs in a thread: structure parsing, homology search,
        tokenization). The search uses the whole sequence, the model sees the crop; ``extra``: the chat's
        earlier turns (:meth:`Conversation.item_fields`)."""
        item = model_item(protein, question, choices, settings)
        evidence = attach_evidence(sepit.retriever, item, category, retrieval)  # sets item["context"]
        item = {**crop(item, max_residues), **(extra or {})}
        return check_prompt(item, sepit.processor, settings), evidence

    @app.get("/", include_in_schema=False)
    async def page():
        return FileResponse(STATIC / "index.html")

    @app.get("/healthz")
    async def healthz():
        return {"status": "ok", "model": name, "device": str(sepit.device), "pending": engine.pending,
                "cancelled": engine.cancelled_jobs}

    @app.get("/v1/models")
    async def models():
        return {"object": "list", "data": [{"id": name, "object": "model", "created": 0, "owned_by": "sepit"}]}

    @app.post("/v1/ask", response_model=AskResponse)
    async def ask(body: AskRequest, request: Request):
        gen = _generation(settings, body.max_new_tokens)
        item, evidence = await asyncio.to_thread(prepare, body, body.question, body.choices, body.category,
                                                 body.retrieval)
        result = await _wait(engine.submit(item, gen), settings.request_timeout_s, request)
        text, choice, probs = result.text, result.choice, result.probabilities
        if evidence is not None and probs:  # closed-set with retrieval: the model's scores + the evidence's vote
            grounded = sepit.retriever.closed_answer(probs, {**item, "choices": body.choices}, evidence)
            text, choice, probs = grounded["text"], grounded["choice"], grounded["option_probs"]
        return AskResponse(answer=text, choice=choice, probabilities=probs, structure=item["structure"],
                           protein=item["protein"], **grounding(text, evidence))

    @app.post("/v1/chat/completions")
    async def chat(body: ChatRequest, request: Request):
        if body.model is not None and body.model != name:
            raise UnknownModelError(f"The model '{body.model}' does not exist on this server; it serves '{name}' "
                                    "(see GET /v1/models)")
        gen = _generation(settings, body.max_completion_tokens or body.max_tokens, body.temperature, body.top_p)
        conversation = read_conversation(body)
        item, evidence = await asyncio.to_thread(prepare, conversation.protein, conversation.question,
                                                 body.answer_choices, body.category, body.retrieval,
                                                 conversation.item_fields())
        if not body.stream:
            result = await _wait(engine.submit(item, gen), settings.request_timeout_s, request)
            return openai.completion(result, name, item["structure"], item["protein"], evidence)
        stream = TokenStream(sepit.processor.tokenizer, asyncio.get_running_loop())
        job = engine.submit(item, gen, stream)
        usage = body.stream_options is not None and body.stream_options.include_usage
        return StreamingResponse(_events(job, stream, openai.ChunkWriter(name), item, usage,
                                         settings.request_timeout_s, evidence),
                                 media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


async def _events(job, stream: TokenStream, writer: openai.ChunkWriter, item: dict, usage: bool,
                  timeout: float, evidence: list | None = None):
    """Server-sent events of one streamed answer; an error after the first byte is an ``error`` event."""
    deadline = time.monotonic() + timeout
    try:
        yield writer.chunk({"role": "assistant", "content": ""})
        while (piece := await asyncio.wait_for(stream.pieces.get(), deadline - time.monotonic())) is not None:
            yield writer.chunk({"content": piece})
        result = await _wait(job, max(deadline - time.monotonic(), 0.001))
        yield writer.chunk({}, result.finish_reason,
                           sepit=openai.extras(result, item["structure"], item["protein"], evidence))
        if usage:
            yield writer.usage_chunk(result)
    except TimeoutError:
        yield openai.sse(openai.error_body(f"no answer within the server's {timeout:g} s request timeout",
                                           "timeout"))
    except Exception as err:  # the response has started: report in-band, keep serving
        yield openai.sse(openai.error_body(str(err), _kind(err)))
    finally:
        job.cancelled.set()  # a closed connection stops the generation at its next token
    yield openai.sse("[DONE]")


def _kind(err: Exception) -> str:
    if isinstance(err, RequestTimeoutError):
        return "timeout"
    return "invalid_request_error" if isinstance(err, SepitError) else "internal_error"


def _add_error_handlers(app: FastAPI) -> None:
    def reply(status: int, message: str, kind: str, param: str | None = None, code: str | None = None):
        return JSONResponse(openai.error_body(message, kind, param, code), status_code=status)

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, err: RequestValidationError):
        errors = err.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            return reply(400, "request body is not valid JSON", "invalid_request_error")
        first = errors[0] if errors else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        message = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()) if p != 'body') or 'body'}: {e.get('msg')}"
                            for e in errors[:5])
        return reply(422, message, "invalid_request_error", where or None)

    @app.exception_handler(NoProteinError)
    async def no_protein(_request: Request, err: NoProteinError):
        return reply(400, str(err), "invalid_request_error", "protein", type(err).__name__)

    @app.exception_handler(QueueFullError)
    async def busy(_request: Request, err: QueueFullError):
        return reply(503, str(err), "server_busy")

    @app.exception_handler(RequestTimeoutError)
    async def timeout(_request: Request, err: RequestTimeoutError):
        return reply(504, str(err), "timeout")

    @app.exception_handler(ClientGoneError)
    async def gone(_request: Request, err: ClientGoneError):
        return reply(499, str(err), "client_closed_request")

    @app.exception_handler(UnknownModelError)
    async def unknown_model(_request: Request, err: UnknownModelError):
        return reply(404, str(err), "invalid_request_error", "model", "model_not_found")

    @app.exception_handler(SepitError)
    async def bad_input(_request: Request, err: SepitError):
        return reply(422, str(err), "invalid_request_error", code=type(err).__name__)

    @app.exception_handler(HTTPException)
    async def http_error(_request: Request, err: HTTPException):
        return reply(err.status_code, str(err.detail), "not_found" if err.status_code == 404 else "http_error")

    @app.exception_handler(Exception)
    async def internal(_request: Request, err: Exception):
        return reply(500, f"internal error: {type(err).__name__}: {err}", "internal_error")
