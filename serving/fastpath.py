"""GET /psf for the common case, answered in front of FastAPI's layers.

Rendering code sends single-PSF queries by the thousand, and on a small model each one costs more
in FastAPI's routing, middleware and pydantic layers than in onnxruntime. The app
(``app.PSFApp``) hands every ``GET /psf`` to :class:`PSFFastPath` first, which answers a plain
query itself: every parameter given once and a known one, numbers that parse, ``format`` npy or
json, and the model loaded (the API key, when one is set, was checked in front of it:
security.py). The answer is made by the same parts as the route's (registry, answer cache, micro-batcher, ``OnnxModel``, encoders), so it is the same
bytes; ``PSF_FAST_PATH=false`` turns it off.

Anything else -- a parameter missing, misspelt or out of range, a PNG preview, an unknown model, an
overloaded queue -- is handed to the full app untouched, and the full app owns every error message.
A query is handed over only when no PSF was computed for it, so nothing is computed twice; the one
exception, an answer with non-finite values (a model bug), is handed over from the answer cache for
the full app to report as a 500. A failure of the model itself ends the request with a 500, as it
does in the route.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import unquote_plus

import numpy as np

from models_store import ConditionError

from .deps import Server
from .encoding import NPY_MEDIA_TYPE, json_bytes, model_headers, npy_bytes
from .limits import Overloaded
from .metrics import ASGIApp, Receive, Scope, Send
from .registry import InvalidReference, ModelNotFound, ModelUnavailable
from .routes.params import COLUMNS

_NAMES = frozenset((*COLUMNS, "model", "version", "format"))
_FORMATS = {"npy": NPY_MEDIA_TYPE, "json": "application/json"}
_ROUTE = ("/psf", "GET")


def parse_plain_query(raw: bytes) -> dict[str, str] | None:
    """``a=1&b=2`` -> {name: text}, or None when anything is unusual (the full app then says what)."""
    params: dict[str, str] = {}
    for part in raw.decode("latin-1").split("&"):
        if not part:
            continue
        name, eq, value = part.partition("=")
        if "%" in part or "+" in part:
            name, value = unquote_plus(name), unquote_plus(value)
        if not eq or name not in _NAMES or name in params:
            return None
        params[name] = value
    return params


def _number(text: str) -> float | None:
    if "_" in text:  # 1_0: unusual, so the route judges it (pydantic, too, reads it as 10)
        return None
    try:
        return float(text)
    except ValueError:
        return None


class PSFFastPath:
    """ASGI app for ``GET /psf``: plain queries answered here, everything else handed to ``app``
    (the full application, which the fast path sits in front of)."""

    def __init__(self, app: ASGIApp, state: Any) -> None:
        self.app, self.state = app, state  # state: the FastAPI app's state, which holds the Server

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        server: Server | None = getattr(self.state, "server", None)
        if scope["type"] != "http" or scope["path"] != "/psf" or scope["method"] != "GET" or server is None:
            await self.app(scope, receive, send)
            return
        params = parse_plain_query(scope["query_string"])
        if params is None:
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        metrics = server.metrics
        metrics.active_requests += 1  # the micro-batcher waits for requests on their way to it
        metrics.in_flight.inc()
        try:
            answer = await self._answer(server, params)
        except Exception:  # a model failure: a 500, as from the route
            metrics.count_request(*_ROUTE, "500", time.perf_counter() - start)
            raise
        finally:
            metrics.active_requests -= 1
            metrics.in_flight.dec()
        if answer is None:
            await self.app(scope, receive, send)
            return
        headers, body = answer
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        metrics.count_request(*_ROUTE, "200", time.perf_counter() - start)

    async def _answer(self, server: Server, params: dict[str, str]) -> tuple[list[tuple[bytes, bytes]], bytes] | None:
        fmt = params.pop("format", "json")
        if fmt not in _FORMATS:
            return None
        name, version = params.pop("model", None), params.pop("version", None)
        query: dict[str, float | None] = dict.fromkeys(COLUMNS)
        for key, text in params.items():
            query[key] = _number(text)
            if query[key] is None:
                return None
        try:
            onnx = server.registry.get(name, version, block=False)
            if onnx is None:  # not loaded yet: the full app loads it off the event loop
                return None
            cache_key = ("psf", onnx.name, onnx.version, *query.values())
            psf = server.cache.get(cache_key)
            if psf is None:
                psf = server.cache.put(cache_key, (await server.batcher.psf_query(onnx, query))[0])
        except (ConditionError, InvalidReference, ModelNotFound, ModelUnavailable, Overloaded):
            return None  # the full app says what was wrong
        if not np.isfinite(psf).all():
            return None  # the route's check_finite names the model in its 500
        if fmt == "npy":
            body = npy_bytes(psf)
            headers = [(k.lower().encode(), v.encode()) for k, v in model_headers(onnx).items()]
        else:
            body, headers = json_bytes(onnx, "psf", psf), []
        headers += [(b"content-type", _FORMATS[fmt].encode()), (b"content-length", str(len(body)).encode())]
        return headers, body
