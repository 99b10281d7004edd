"""Limits that keep one caller from taking the server down: sizes (413) and load (503 + Retry-After)."""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from models_store.wire import Limits


class LimitExceeded(Exception):
    """A request larger than the server accepts (HTTP 413); the message names the limit."""


class Overloaded(Exception):
    """Too much work already admitted (HTTP 503 with Retry-After)."""

    def __init__(self, message: str, retry_after_s: int) -> None:
        self.retry_after_s = retry_after_s
        super().__init__(message)


def check_size(what: str, value: int, limit: int, setting: str) -> None:
    if value > limit:
        raise LimitExceeded(f"{what}={value} is over this server's limit of {limit} ({setting})")


class BodyLimitMiddleware:
    """Refuses request bodies over ``max_bytes`` with a 413 naming the limit: at once from
    Content-Length, else as soon as a chunked body grows past it."""

    def __init__(self, app: ASGIApp, limits: Limits) -> None:
        self.app, self.max_bytes = app, limits.max_body_bytes
        self._limit_headers = [(k.lower().encode(), v.encode()) for k, v in limits.headers().items()]

    def _message(self, size: str) -> str:
        return (f"request body of {size} bytes is over this server's limit of {self.max_bytes} bytes "
                "(PSF_MAX_BODY_MB); send fewer conditions per request")

    async def _refuse(self, send: Send, size: str) -> None:
        body = json.dumps({"detail": self._message(size)}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"connection", b"close"),
                                (b"content-length", str(len(body)).encode()), *self._limit_headers]})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await self._refuse(send, length.decode())
            return
        if length is not None:  # the server stops reading at the announced length
            await self.app(scope, receive, send)
            return
        seen, cut = 0, False

        async def counting_receive() -> Message:
            # a body without a length (chunked): cut it off at the limit, as if the client had gone
            nonlocal seen, cut
            if cut:
                return {"type": "http.disconnect"}
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                cut = True
                return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if not cut:  # the app's own answer to a cut-off body is not the answer
                await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception:
            if not cut:
                raise
        if cut:
            await self._refuse(send, f"more than {self.max_bytes}")
