"""The HTTP/1.1 protocol the server runs: uvicorn's httptools protocol with a bound on the request head.

httptools (llhttp) sets no limit on the size of a request line or its headers, and uvicorn adds none:
a client could send headers without end and the server would keep every byte. Here a request head
(request line and headers) over ``max_head_bytes`` is answered ``431 Request Header Fields Too Large``
and the connection closed:

- a head that arrives whole is measured exactly (target + every name and value) when it is
  complete, and refused before the app sees it;
- a head still incomplete is counted as its bytes arrive and refused as soon as it passes the
  bound, so what is held stays within the bound plus one read (at most 256 KiB).

The h11 parser, which has such a bound (``h11_max_incomplete_event_size``), answered about half the
requests per second of httptools on this machine (README.md, "Security"), so it is not used.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.types import Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

DEFAULT_MAX_HEAD_BYTES = 16 * 1024
_PER_HEADER = 4  # ": " and CRLF


def _body(limit: int) -> bytes:
    return json.dumps({"detail": f"request headers are over this server's limit of {limit} bytes "
                                 "(PSF_MAX_HEADER_KB)"}).encode()


def refusal(limit: int) -> bytes:
    """The whole 431 answer, as written to a connection that is then closed."""
    body = _body(limit)
    return (b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/json\r\n"
            b"connection: close\r\ncontent-length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """httptools, refusing request heads over ``max_head_bytes`` with 431."""

    def __init__(self, *args: Any, max_head_bytes: int = DEFAULT_MAX_HEAD_BYTES, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_head_bytes = max_head_bytes
        self._in_head = False  # between the first byte of a request and the end of its headers
        self._head_bytes = 0  # bytes received while in the head (after the read that began it)
        self._head_size = 0  # the head as parsed: target, names and values

    def data_received(self, data: bytes) -> None:
        if self._in_head:
            self._head_bytes += len(data)
        super().data_received(data)
        if self._in_head and self._head_bytes > self.max_head_bytes and not self.transport.is_closing():
            self.transport.write(refusal(self.max_head_bytes))  # the app never saw this request
            self.transport.close()

    def on_message_begin(self) -> None:
        self._in_head, self._head_bytes, self._head_size = True, 0, 0
        super().on_message_begin()

    def on_url(self, url: bytes) -> None:
        self._head_size += len(url)
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_size += len(name) + len(value) + _PER_HEADER
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        if self._head_size <= self.max_head_bytes:
            super().on_headers_complete()
            return
        app, self.app = self.app, _Refuse(self.max_head_bytes)  # answered in place of the app, as
        try:  # uvicorn answers a request over its concurrency limit
            super().on_headers_complete()
        finally:
            self.app = app


class _Refuse:
    """ASGI app answering 431 and closing the connection."""

    def __init__(self, limit: int) -> None:
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = _body(self.limit)
        await send({"type": "http.response.start", "status": 431,
                    "headers": [(b"content-type", b"application/json"), (b"connection", b"close"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
