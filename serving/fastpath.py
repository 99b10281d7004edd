"""GET /psf for the common case, answered in front of FastAPI's layers.

Rendering code sends single-PSF queries by the thousand, and on a small model each one costs more
in FastAPI's routing, middleware and pydantic layers than in onnxruntime. The app
(``app.PSFApp``) hands every ``GET /psf`` to :class:`PSFFastPath` first, which answers a plain
query itself: every parameter given once and a known one, numbers that parse, ``format`` npy or
json, and the model loaded (the API key, when one is set, was checked in front of it:
security.py). It is not a second implementation: it calls the route's own functions
(``routes.psf``: :func:`plain_psf_request`, :func:`psf_answer`; ``encoding.encode``) and the
request meter the metrics middleware uses, and only skips FastAPI's routing, dependency solving and
``Response`` object. ``PSF_FAST_PATH=false`` turns it off.

Anything else -- a parameter missing, misspelt or out of range, a PNG preview, an unknown model, an
overloaded queue -- is handed to the full app untouched, and the full app owns every error message.
A query is handed over only when no PSF was computed for it, so nothing is computed twice; the one
exception, an answer with non-finite values (a model bug), is handed over from the answer cache for
the full app to report as a 500. A failure of the model itself ends the request with a 500, as it
does in the route.
"""

from __future__ import annotations

from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from models_store import ConditionError

from .deps import Server
from .encoding import Headers, encode, is_finite
from .limits import Overloaded
from .metrics import RequestMeter
from .routes.psf import PSFRequest, plain_psf_request, psf_answer
from .versions import InvalidReference, ModelNotFound, ModelUnavailable

_ROUTE = ("/psf", "GET")
Answer = tuple[list[tuple[bytes, bytes]], bytes]
RawHeaders = list[tuple[bytes, bytes]]


class PSFFastPath:
    """ASGI app for ``GET /psf``: plain queries answered here, everything else handed to ``app``
    (the full application, which the fast path sits in front of)."""

    def __init__(self, app: ASGIApp, state: Any) -> None:
        self.app, self.state = app, state  # state: the FastAPI app's state (the Server and the meter)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        server: Server | None = getattr(self.state, "server", None)
        if scope["type"] != "http" or scope["path"] != "/psf" or scope["method"] != "GET" or server is None:
            await self.app(scope, receive, send)
            return
        q = plain_psf_request(scope["query_string"])
        if q is None or q.fmt == "png" or q.geometry:
            await self.app(scope, receive, send)
            return
        meter: RequestMeter = self.state.meter
        start = meter.enter()  # counted in flight: the micro-batcher waits for requests on their way to it
        try:
            answer = await self._answer(server, q)
        except Exception:  # a model failure: a 500, as from the route
            meter.count(*_ROUTE, "500", start)
            raise
        finally:
            meter.leave()
        if answer is None:
            await self.app(scope, receive, send)
            return
        headers, body = answer
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        meter.count(*_ROUTE, "200", start)

    async def _answer(self, server: Server, q: PSFRequest) -> Answer | None:
        try:
            onnx = server.registry.get(q.model, q.version, block=False)
            if onnx is None:  # not loaded yet: the full app loads it off the event loop
                return None
            psf = await psf_answer(server, onnx, q.query)
        except (ConditionError, InvalidReference, ModelNotFound, ModelUnavailable, Overloaded):
            return None  # the full app says what was wrong
        if not is_finite(psf):
            return None  # the route's check_finite names the model in its 500
        body, headers = encode(onnx, psf, q.fmt, server.limits, dtype=q.dtype)
        return [*_raw(headers), (b"content-length", str(len(body)).encode())], body


# encoding.encode's headers as ASGI wants them (bytes, lower-case names), made once per set of headers
_RAW_BY_HEADERS: dict[Headers, RawHeaders] = {}


def _raw(headers: Headers) -> RawHeaders:
    raw = _RAW_BY_HEADERS.get(headers)
    if raw is None:
        if len(_RAW_BY_HEADERS) > 256:  # models come and go with reloads: keep the table small
            _RAW_BY_HEADERS.clear()
        raw = _RAW_BY_HEADERS[headers] = [(k.lower().encode(), v.encode()) for k, v in headers]
    return raw
