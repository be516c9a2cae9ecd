"""OpenAI chat-completion bodies: the full response and the server-sent-event chunks of a stream.

SEPIT extras ride in a ``sepit`` object (``choice``, ``probabilities``, ``structure``, ``protein``) that OpenAI clients
ignore; in a stream it comes with the last chunk (the one with ``finish_reason``).
"""

from __future__ import annotations

import json
import time
import uuid

from sepit.serve.engine import Result


def completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


def usage(result: Result) -> dict:
    return {"prompt_tokens": result.prompt_tokens, "completion_tokens": result.completion_tokens,
            "total_tokens": result.prompt_tokens + result.completion_tokens}


def extras(result: Result, structure: dict, protein: dict | None = None, evidence: list | None = None) -> dict:
    """``protein``: ``{"residues", "cropped", "cropped_to"}`` (cropped to the model's max residues or not);
    ``evidence``: with retrieval, the hits shown; adds evidence, citations, unsupported_citations."""
    from sepit.retrieval.evidence import grounding

    return {"choice": result.choice, "probabilities": result.probabilities, "structure": structure,
            "protein": protein, **grounding(result.text, evidence)}


def completion(result: Result, model: str, structure: dict, protein: dict | None = None,
               evidence: list | None = None) -> dict:
    return {"id": completion_id(), "object": "chat.completion", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": result.text},
                         "logprobs": None, "finish_reason": result.finish_reason}],
            "usage": usage(result), "sepit": extras(result, structure, protein, evidence)}


class ChunkWriter:
    """``data: {...}\\n\\n`` lines of one streamed completion (same id and timestamp in every chunk)."""

    def __init__(self, model: str):
        self.id, self.created, self.model = completion_id(), int(time.time()), model

    def chunk(self, delta: dict, finish_reason: str | None = None, **more) -> str:
        body = {"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}], **more}
        return sse(body)

    def usage_chunk(self, result: Result) -> str:
        return sse({"id": self.id, "object": "chat.completion.chunk", "created": self.created,
                    "model": self.model, "choices": [], "usage": usage(result)})


def sse(body: dict | str) -> str:
    return f"data: {body if isinstance(body, str) else json.dumps(body)}\n\n"


def error_body(message: str, kind: str, param: str | None = None, code: str | None = None) -> dict:
    """OpenAI's error shape: ``{"error": {"message", "type", "param", "code"}}``."""
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}
