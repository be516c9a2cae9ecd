"""ASGI middleware in front of every route: the API key (``/v1/*`` only) and the request body size limit.

The body is read here, at most ``max_body_bytes`` of it, before any parsing; a larger one is answered 413
without reaching the app. The page (``/``, ``/static``) and ``/healthz`` stay public.
"""

from __future__ import annotations

import hmac

from starlette.responses import JSONResponse

from sepit.serve.openai import error_body


class Guard:
    def __init__(self, app, api_key: str | None, max_body_bytes: int):
        self.app, self.api_key, self.max_body_bytes = app, api_key, max_body_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if self.api_key and scope["path"].startswith("/v1/") and not self._authorized(headers):
            body = error_body("missing or wrong API key: send 'Authorization: Bearer <key>'", "authentication_error")
            response = JSONResponse(body, status_code=401, headers={"WWW-Authenticate": "Bearer"})
            return await response(scope, receive, send)
        if scope["method"] not in ("POST", "PUT", "PATCH"):
            return await self.app(scope, receive, send)
        declared = headers.get("content-length", "0")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            return await self._too_large(scope, receive, send, int(declared))
        body, more = bytearray(), True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.max_body_bytes:
                return await self._too_large(scope, receive, send, len(body))
        return await self.app(scope, _replay(bytes(body), receive), send)

    def _authorized(self, headers: dict) -> bool:
        return hmac.compare_digest(headers.get("authorization", "").encode(), f"Bearer {self.api_key}".encode())

    async def _too_large(self, scope, receive, send, size: int):
        message = f"request body of {size} bytes exceeds the server limit of {self.max_body_bytes} bytes"
        response = JSONResponse(error_body(message, "request_too_large"), status_code=413)
        return await response(scope, receive, send)


def _replay(body: bytes, receive):
    """A ``receive`` that gives the buffered body once, then defers (disconnect detection during streams)."""
    sent = False

    async def replay():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
