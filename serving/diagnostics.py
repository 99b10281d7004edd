"""Where a slow answer's time went, measured all the time at little cost: the event loop's lag and the
garbage collector's pauses (``/metrics``: ``psf_event_loop_lag_seconds``, ``psf_gc_pause_seconds``;
the batcher times each computation, ``psf_compute_seconds``). ``python -m benchmarks.load`` reads them
for every round, beside the request latencies the server and the client each see.

A task sleeps ``LAG_PROBE_S`` again and again; how much later than asked it wakes is the time the
loop spent on other work, which every request waiting on the loop waited too (about 100 wake-ups a
second). The collector reports each pass through ``gc.callbacks``.
"""

from __future__ import annotations

import asyncio
import gc
import time
from typing import Any

from .metrics import LAG_PROBE_S, Metrics


async def watch_loop(metrics: Metrics, interval_s: float = LAG_PROBE_S) -> None:
    """Observe the loop's lag until cancelled."""
    lag = metrics.loop_lag
    while True:
        start = time.perf_counter()
        await asyncio.sleep(interval_s)
        lag.observe(max(0.0, time.perf_counter() - start - interval_s))


class GCWatch:
    """Times every collection of Python's garbage collector while installed."""

    def __init__(self, metrics: Metrics) -> None:
        self._series = [metrics.gc_pause.labels(str(g)) for g in range(3)]
        self._start = 0.0

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._start = time.perf_counter()
        else:
            self._series[min(int(info["generation"]), 2)].observe(time.perf_counter() - self._start)

    def install(self) -> None:
        gc.callbacks.append(self._callback)

    def remove(self) -> None:
        if self._callback in gc.callbacks:
            gc.callbacks.remove(self._callback)
