"""The request mix of ``python -m benchmarks.load``, for locust (headless, started by load.py).

Each simulated user sends, without pause, single ``GET /psf`` queries (80 %), ``POST /psf/batch`` of
64 conditions, ``GET /psf/grid`` 8 x 6 and ``POST /interpolate`` of 8 steps, each query distinct.
Every answer is checked: a 200 must be a valid PSF array of the route's shape (finite, non-negative,
each kernel summing to 1), a 503 must carry Retry-After; anything else counts as an error by status.
At the end the figures go as JSON to ``$PSF_LOAD_REPORT``. Only loopback hosts are accepted, and
the run stops itself after ``$PSF_LOAD_MAX_REQUESTS`` requests (and locust's --run-time).
"""

from __future__ import annotations

import io
import json
import os
import random
from collections import Counter
from urllib.parse import urlsplit

import numpy as np
from locust import FastHttpUser, events, task

RANGES = json.loads(os.environ.get("PSF_LOAD_RANGES", "{}"))  # {name: [min, max]} of the served model
MAX_REQUESTS = int(os.environ.get("PSF_LOAD_MAX_REQUESTS", "1000000"))
K = int(os.environ.get("PSF_LOAD_KERNEL", "0"))
statuses: dict[str, Counter] = {}
invalid: Counter = Counter()
no_retry_after: Counter = Counter()


@events.test_start.add_listener
def _loopback_only(environment, **_: object) -> None:
    host = urlsplit(environment.host or "").hostname
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit(f"benchmarks.load sends traffic only to loopback, not to {environment.host!r}")


def condition() -> dict[str, float]:
    out = {name: round(random.uniform(lo, hi), 6) for name, (lo, hi) in RANGES.items() if name != "azimuth"}
    out["field"] = round(random.uniform(0.0, 0.99), 6)
    out["azimuth"] = round(random.uniform(0.0, 360.0), 3)
    return out


def valid(content: bytes, shape: tuple[int, ...]) -> bool:
    try:
        arr = np.load(io.BytesIO(content), allow_pickle=False)
    except ValueError:
        return False
    if arr.shape != shape or arr.dtype != np.float32 or not np.isfinite(arr).all() or arr.min() < 0:
        return False
    return bool(np.allclose(arr.reshape(-1, K * K).sum(axis=1), 1.0, atol=1e-4))


class PSFUser(FastHttpUser):
    def _check(self, name: str, response, shape: tuple[int, ...]) -> None:
        status = str(response.status_code)
        statuses.setdefault(name, Counter())[status] += 1
        if response.status_code == 200 and not valid(response.content, shape):
            invalid[name] += 1
            response.failure("not a valid PSF array")
        elif response.status_code == 503:
            if not response.headers.get("Retry-After"):
                no_retry_after[name] += 1
            response.failure("503")
        elif response.status_code != 200:
            response.failure(f"status {status}")
        if sum(sum(c.values()) for c in statuses.values()) >= MAX_REQUESTS:
            self.environment.runner.quit()

    def _send(self, method: str, name: str, path: str, shape: tuple[int, ...], **kwargs: object) -> None:
        with self.client.request(method, path, name=name, catch_response=True, **kwargs) as response:
            self._check(name, response, shape)

    @task(80)
    def psf(self) -> None:
        self._send("GET", "GET /psf", "/psf", (K, K), params={**condition(), "format": "npy"})

    @task(7)
    def batch(self) -> None:
        rows = [condition() for _ in range(64)]
        body = {name: [row[name] for row in rows] for name in rows[0]}
        self._send("POST", "POST /psf/batch", "/psf/batch", (64, K, K), json=body)

    @task(7)
    def grid(self) -> None:
        c = condition()
        params = {"nx": 8, "ny": 6, "depth": c["depth"], "wavelength": c["wavelength"], "format": "npy"}
        self._send("GET", "GET /psf/grid", "/psf/grid", (6, 8, K, K), params=params)

    @task(6)
    def interpolate(self) -> None:
        body = {"start": condition(), "end": condition(), "steps": 8, "method": "slerp"}
        self._send("POST", "POST /interpolate", "/interpolate", (8, K, K), json=body)


@events.quitting.add_listener
def _report(environment, **_: object) -> None:
    routes = {}
    for (name, _method), entry in environment.stats.entries.items():
        routes[name] = {"requests": entry.num_requests, "req_per_s": round(entry.total_rps, 1),
                        "p50_ms": entry.get_response_time_percentile(0.5),
                        "p99_ms": entry.get_response_time_percentile(0.99),
                        "statuses": dict(statuses.get(name, {})), "invalid": invalid[name],
                        "503_without_retry_after": no_retry_after[name]}
    total = environment.stats.total
    report = {"routes": routes, "requests": total.num_requests, "req_per_s": round(total.total_rps, 1),
              "p99_ms": total.get_response_time_percentile(0.99)}
    with open(os.environ["PSF_LOAD_REPORT"], "w") as fh:
        json.dump(report, fh, indent=2)
