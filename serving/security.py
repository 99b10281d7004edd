"""Who may call: the API key, checked in front of everything else, and CORS (off unless configured).

With ``PSF_API_KEY`` set, a request for anything but the health probes (``/healthz``, ``/readyz``,
``/v2/health/*``; and the docs, when ``PSF_DOCS_PUBLIC``) must carry one of the keys in ``X-API-Key``,
else it gets a 401 before the fast path, FastAPI's routing or the body are touched. The given key is
hashed and compared with ``hmac.compare_digest`` against the hash of every accepted key, all of them,
so the time taken tells neither how much of a guess was right, nor how long a key is, nor which key
matched. Keys are never logged: uvicorn's access log holds the request line only, and the 401 does not
echo what was sent.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time

from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from models_store.wire import API_KEY_HEADER, LIMIT_HEADERS, MODEL_HEADERS

from .metrics import Metrics
from .settings import Settings

HEADER = API_KEY_HEADER
# health probes, the Open Inference Protocol's among them, answer without a key
OPEN_PATHS = frozenset({"/healthz", "/readyz", "/v2/health/live", "/v2/health/ready"})
DOCS_PATHS = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"})
_HEADER_KEY = HEADER.lower().encode()


def _digest(key: bytes) -> bytes:
    return hashlib.sha256(key).digest()


class APIKeyGuard:
    """ASGI layer: requests without an accepted key get 401; the rest go on to ``app``."""

    def __init__(self, app: ASGIApp, keys: tuple[str, ...], *, open_paths: frozenset[str],
                 metrics: Metrics | None = None) -> None:
        self.app, self.open_paths, self.metrics = app, open_paths, metrics
        self._digests = tuple(_digest(key.encode()) for key in keys)

    def accepts(self, given: bytes | None) -> bool:
        if given is None:
            return False
        digest, ok = _digest(given), False
        for expected in self._digests:  # no early exit: every key costs the same time
            ok |= hmac.compare_digest(digest, expected)
        return ok

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.open_paths:
            await self.app(scope, receive, send)
            return
        given = next((v for k, v in scope["headers"] if k == _HEADER_KEY), None)
        if self.accepts(given):
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        what = "missing" if given is None else "wrong"
        body = json.dumps({"detail": f"API key {what}: send it in the {HEADER} header"}).encode()
        await send({"type": "http.response.start", "status": 401,
                    "headers": [(b"content-type", b"application/json"), (b"www-authenticate", b"APIKey"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
        if self.metrics is not None:  # refused before routing: counted under no route
            self.metrics.count_request("unauthorized", scope["method"], "401", time.perf_counter() - start)


def guarded(app: ASGIApp, settings: Settings, metrics: Metrics | None = None) -> ASGIApp:
    """``app`` behind the API key (when one is set) and CORS (when origins are set), CORS outermost so
    a browser's preflight, which carries no key, is answered."""
    if settings.api_keys:
        open_paths = OPEN_PATHS | DOCS_PATHS if settings.docs_public else OPEN_PATHS
        app = APIKeyGuard(app, settings.api_keys, open_paths=open_paths, metrics=metrics)
    origins = settings.cors_origin_list
    if origins:
        app = CORSMiddleware(app, allow_origins=origins, allow_methods=["GET", "POST"],
                             allow_headers=[HEADER, "Content-Type"],
                             expose_headers=[*MODEL_HEADERS, *LIMIT_HEADERS.values()])
    return app
