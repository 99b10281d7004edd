"""Prometheus series of one server, and the ASGI middleware that times every request.

Each app owns its own CollectorRegistry, so several apps in one process (tests) do not collide.
With several uvicorn workers, ``python -m serving`` sets PROMETHEUS_MULTIPROC_DIR and /metrics adds
up every worker's files (prometheus-client's multiprocess mode).
"""

from __future__ import annotations

import os
import time
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .inflight import RequestsInFlight

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
_LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_PAUSE_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0)
LAG_PROBE_S = 0.01
_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384)


class Metrics:
    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        labels = ["route", "method", "status"]
        self.requests = Counter("psf_http_requests", "HTTP requests answered", labels, registry=r)
        self.latency = Histogram("psf_http_request_duration_seconds", "time from request to the end of the "
                                 "response", labels, buckets=_LATENCY_BUCKETS, registry=r)
        self.in_flight = Gauge("psf_http_requests_in_flight", "requests being answered", registry=r,
                               multiprocess_mode="livesum")
        self.batch_size = Histogram("psf_batch_size", "PSFs per onnxruntime call of the PSF graph (mean batch "
                                    "size = _sum / _count)", buckets=_SIZE_BUCKETS, registry=r)
        self.batch_requests = Histogram("psf_batch_requests", "requests merged into one onnxruntime call",
                                        buckets=_SIZE_BUCKETS, registry=r)
        self.queue_depth = Gauge("psf_queue_depth", "PSFs admitted and not yet answered", registry=r,
                                 multiprocess_mode="livesum")
        self.rejected = Counter("psf_overload_rejections", "requests refused with 503 because the queue was full",
                                registry=r)
        self.cache = Counter("psf_cache_lookups", "answer-cache lookups", ["result"], registry=r)
        self.loaded = Gauge("psf_model_loaded", "1 for every model version loaded", ["model", "version"],
                            registry=r, multiprocess_mode="max")
        self.alias = Gauge("psf_model_alias_version", "version each alias is served from", ["model", "alias"],
                           registry=r, multiprocess_mode="max")
        self.refused = Counter("psf_model_refused", "versions refused (sha256 mismatch or not loadable)",
                               ["model", "version"], registry=r)
        # where a slow answer's time went: the event loop's lag, the collector's pauses, one batch's compute
        self.loop_lag = Histogram("psf_event_loop_lag_seconds", "how late the event loop woke a task sleeping "
                                  f"{LAG_PROBE_S * 1000:g} ms (time spent on other work)", buckets=_PAUSE_BUCKETS,
                                  registry=r)
        self.gc_pause = Histogram("psf_gc_pause_seconds", "pauses of Python's garbage collector", ["generation"],
                                  buckets=_PAUSE_BUCKETS, registry=r)
        self.compute = Histogram("psf_compute_seconds", "wall time of one PSF computation (a merged batch: "
                                 "onnxruntime and orientation)", buckets=_LATENCY_BUCKETS, registry=r)
        self._request_series: dict[tuple[str, str, str], tuple[Any, Any]] = {}

    def count_request(self, route: str, method: str, status: str, seconds: float) -> None:
        """One answered request: its count and its latency, under (route, method, status)."""
        key = (route, method, status)
        series = self._request_series.get(key)
        if series is None:  # bound once: a labels() lookup per request costs more than the count
            series = self._request_series[key] = (self.requests.labels(*key), self.latency.labels(*key))
        series[0].inc()
        series[1].observe(seconds)

    def render(self) -> tuple[bytes, str]:
        if os.environ.get(MULTIPROC_ENV):
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class RequestMeter:
    """The start and the end of one HTTP request: the in-flight gauge, the micro-batcher's count of
    requests in flight, and the request's count and latency. The metrics middleware and the GET /psf
    fast path both go through it, so both are measured alike."""

    def __init__(self, metrics: Metrics, in_flight: RequestsInFlight) -> None:
        self.metrics, self.in_flight = metrics, in_flight

    def enter(self) -> float:
        """A request begins; returns its start time for :meth:`count`."""
        self.in_flight.count += 1
        self.metrics.in_flight.inc()
        return time.perf_counter()

    def leave(self) -> None:
        """A request is no longer being answered here (done, or handed to the full app)."""
        self.in_flight.count -= 1
        self.metrics.in_flight.dec()

    def count(self, route: str, method: str, status: str, start: float) -> None:
        self.metrics.count_request(route, method, status, time.perf_counter() - start)


class MetricsMiddleware:
    """Counts and times every HTTP request by route template (not raw path), method and status."""

    def __init__(self, app: ASGIApp, meter: RequestMeter) -> None:
        self.app, self.meter = app, meter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        meter, status = self.meter, 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        start = meter.enter()
        try:
            await self.app(scope, receive, send_status)
        finally:
            meter.leave()
            route = scope.get("route")
            meter.count(getattr(route, "path", None) or "unmatched", scope["method"], str(status), start)
