"""The FastAPI application: ``create_app(settings)`` wires settings, the registry and the routers.

Run it with ``python -m serving`` or ``uvicorn --factory serving.app:create_app``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from models_store import Store

from .accesslog import AccessLog
from .batcher import Batcher
from .cache import AnswerCache
from .deps import Server
from .diagnostics import GCWatch, watch_loop
from .errors import install_error_handlers
from .fastpath import PSFFastPath
from .inflight import RequestsInFlight
from .limits import BodyLimitMiddleware
from .metrics import Metrics, MetricsMiddleware, RequestMeter
from .openapi import openapi_document
from .reload import start_polling
from .routes import batch, geometry, health, interpolate, latent, models, psf, v2
from .routes import metrics as metrics_route
from .security import guarded
from .settings import Settings, get_settings
from .versions import Registry

log = logging.getLogger(__name__)
DESCRIPTION = """PSFs of a lens from a trained surrogate model, in physical units.

Positions: `field` (fraction of the sensor half-diagonal) with `azimuth` (degrees, 0 = +x,
counter-clockwise, default 90), or `x`, `y` (fractions of the sensor half-width / half-height).
`depth` in metres, `wavelength` in nanometres, `focus` in metres. Each model accepts only the ranges
it was trained on (`GET /models/{name}`); anything else is refused with 422 naming the parameter,
the value and the allowed range. Every route takes `model` and `version` (a number or an alias).
"""


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    metrics: Metrics = app.state.metrics
    registry = Registry(Store(settings.store), default_model=settings.default_model, prefer_gpu=settings.prefer_gpu,
                        tensorrt=settings.tensorrt, threads=settings.threads, metrics=metrics)
    # loaded before the port opens: small models load in well under a second, and every later
    # request then finds its model ready
    await asyncio.to_thread(registry.refresh)
    if not registry.ready:  # not fatal: /readyz says why until a model is published
        log.warning("not ready: %s", registry.why_not_ready())
    batcher = Batcher(metrics, app.state.meter.in_flight, enabled=settings.microbatch, max_rows=settings.microbatch_max,
                      max_delay_s=settings.microbatch_delay_ms / 1000, max_pending=settings.max_queue,
                      retry_after_s=settings.retry_after_s, threads=settings.compute_threads)
    cache = AnswerCache(settings.cache_bytes, metrics, admit_after=settings.cache_admit_after)
    app.state.server = Server(settings, registry, batcher, cache, metrics)
    poller = start_polling(registry, settings.reload_interval_s)
    lag_watch, gc_watch = asyncio.get_running_loop().create_task(watch_loop(metrics)), GCWatch(metrics)
    gc_watch.install()
    access_log: AccessLog | None = app.state.access_log
    if access_log is not None:
        access_log.start()
    try:
        yield
    finally:
        if access_log is not None:
            access_log.close()
        gc_watch.remove()
        lag_watch.cancel()
        # uvicorn runs this after in-flight requests have drained (or graceful_timeout_s passed)
        if poller is not None:
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poller
        await batcher.close()


class PSFApp(FastAPI):
    """FastAPI with layers in front of all of its own (``front``): the access log (accesslog.py),
    CORS and the API key when configured (security.py), then plain ``GET /psf`` queries answered at once
    (fastpath.py); everything else, and every query the fast path hands back, takes the usual way."""

    front: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.front is not None:
            await self.front(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)

    async def full(self, scope: Scope, receive: Receive, send: Send) -> None:
        await super().__call__(scope, receive, send)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings if settings is not None else get_settings()
    app = PSFApp(title="PSF surrogate", description=DESCRIPTION, lifespan=_lifespan)
    app.state.settings = settings
    app.state.metrics = metrics = Metrics()
    # one meter for the middleware and the fast path; its in-flight count is the micro-batcher's
    app.state.meter = meter = RequestMeter(metrics, RequestsInFlight())
    install_error_handlers(app)
    for router in (health.router, v2.health_router, psf.router, batch.router, interpolate.router, latent.router,
                   geometry.router, models.router, metrics_route.router, v2.router):
        app.include_router(router)
    # the last added runs first: count and time every request, including those refused for size
    app.add_middleware(BodyLimitMiddleware, limits=settings.limits)
    app.add_middleware(MetricsMiddleware, meter=meter)
    app.openapi = partial(openapi_document, app)  # type: ignore[method-assign]
    inner: ASGIApp = PSFFastPath(app.full, app.state) if settings.fast_path else app.full
    front = guarded(inner, settings, metrics)
    app.state.access_log = AccessLog(front) if settings.access_log else None
    front = app.state.access_log or front
    app.front = front if front is not app.full else None
    return app
