"""wrk against one server on loopback, and what that server saw meanwhile (for benchmarks.load).

:func:`run` sends ``GET /psf`` from wrk's Lua, which makes each query from a counter (``base`` starts
each run on queries never asked before). Workloads: ``shared``, each of wrk's threads walks the same
sequence of distinct queries, so a query is asked about twice, at about the same time (issue 21's
measure); ``distinct``, every query is asked once; ``repeated``, ``REPEATED`` queries again and again. wrk reports the
latency percentiles from its own histogram (p50, p90, p99, p99.9, max).

:func:`scrape` and :func:`server_side` turn the server's ``/metrics`` before and after a run into what
happened inside it: requests by time spent in the app, the event loop's lag, garbage-collector pauses,
batch computations and cache lookups. A slow answer the client saw but the app did not spent its time
outside the app (in the socket, unread: README.md, "Load").
"""

from __future__ import annotations

import math
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

REPEATED = 200
# Kronecker steps (irrational): the n-th query's values, one per condition, fill each range evenly
_STEPS = (0.7548776662466927, 0.5698402909980532, 0.6180339887498949, 0.4142135623730950, 0.7320508075688772,
          0.2360679774997897)
_LUA = """
local names, lo, span, steps = {names}, {lo}, {span}, {steps}
local i, stride, offset, base, cycle = 0, {stride}, {offset}, {base}, {cycle}
local counter = 0
function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
end
function request()
  local n = base + ((i * stride + id * offset) % cycle)
  i = i + 1
  local parts = {{}}
  for j = 1, #names do
    parts[j] = names[j] .. "=" .. string.format("%.6f", lo[j] + span[j] * ((n * steps[j]) % 1))
  end
  return wrk.format("GET", "/psf?" .. table.concat(parts, "&") .. "&format=npy")
end
function done(summary, latency, requests)
  io.write(string.format("PSF_WRK %d %d %d %d %d %d %d %d %d %d\\n", latency:percentile(50),
    latency:percentile(90), latency:percentile(99), latency:percentile(99.9), latency.max, summary.requests,
    summary.errors.status, summary.errors.timeout, summary.errors.connect + summary.errors.read +
    summary.errors.write, summary.duration))
end
"""


def _lua(values: list[str]) -> str:
    return "{" + ", ".join(values) + "}"


WORKLOADS = ("shared", "distinct", "repeated")


def run(port: int, ranges: dict[str, tuple[float, float]], *, connections: int, seconds: float, workdir: Path,
        base: int, workload: str) -> dict[str, Any]:
    """One wrk run of ``GET /psf`` (npy) over ``ranges`` (name -> (lo, hi)); latencies in ms."""
    threads = max(1, min(2, os.cpu_count() or 1))
    names = list(ranges)
    script = workdir / f"wrk_{port}.lua"
    script.write_text(_LUA.format(
        names=_lua([f'"{n}"' for n in names]), lo=_lua([repr(ranges[n][0]) for n in names]),
        span=_lua([repr(ranges[n][1] - ranges[n][0]) for n in names]),
        steps=_lua([repr(s) for s in _STEPS[:len(names)]]), base=base,
        stride=1 if workload == "shared" else threads, offset=0 if workload == "shared" else 1,
        cycle=REPEATED if workload == "repeated" else 2**40))
    proc = subprocess.run(["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s",
                           "-s", str(script), f"http://127.0.0.1:{port}"],
                          capture_output=True, text=True, timeout=seconds + 60)
    found = re.search(r"^PSF_WRK ([\d ]+)$", proc.stdout, re.MULTILINE)
    if found is None:
        raise RuntimeError(f"wrk failed (exit {proc.returncode}): {proc.stdout[-1500:]} {proc.stderr[-1500:]}")
    p50, p90, p99, p999, top, requests, non_2xx, timeouts, socket_errors, duration_us = map(int, found.group(1).split())
    return {"req_per_s": round(requests / (duration_us / 1e6), 1), "requests": requests,
            "p50_ms": p50 / 1e3, "p90_ms": p90 / 1e3, "p99_ms": p99 / 1e3, "p99_9_ms": p999 / 1e3,
            "max_ms": top / 1e3, "non_2xx": non_2xx, "timeouts": timeouts, "socket_errors": socket_errors}


# -- the server's side ----------------------------------------------------------------------------
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(port: int) -> Samples:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=30).text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def _histogram(before: Samples, after: Samples, name: str, **labels: str) -> dict[str, float]:
    """A histogram's change between two scrapes: count, sum and cumulative counts by bucket (le)."""
    out: dict[str, float] = {}
    for (sample, keys), value in after.items():
        if not sample.startswith(name) or any(dict(keys).get(k) != v for k, v in labels.items()):
            continue
        delta = value - before.get((sample, keys), 0.0)
        if sample == name + "_bucket":
            le = dict(keys)["le"]
            out[le] = out.get(le, 0.0) + delta
        elif sample in (name + "_count", name + "_sum"):
            key = sample[len(name) + 1:]
            out[key] = out.get(key, 0.0) + delta
    return out


def _over(hist: dict[str, float], seconds: float) -> int:
    """How many observations exceeded ``seconds`` (a bucket bound)."""
    return round(hist.get("count", 0.0) - hist.get(repr(seconds), hist.get(str(seconds), 0.0)))


def _max_at_most(hist: dict[str, float]) -> float | None:
    """The smallest bucket bound that holds every observation [s] (None: none observed)."""
    count = hist.get("count", 0.0)
    if not count:
        return None
    bounds = sorted((float(le), n) for le, n in hist.items() if le not in ("count", "sum"))
    return next((le for le, n in bounds if n >= count), math.inf)


def server_side(before: Samples, after: Samples) -> dict[str, Any]:
    """What the server saw during a run (from two scrapes of its /metrics)."""
    app = _histogram(before, after, "psf_http_request_duration_seconds", route="/psf", method="GET")
    lag = _histogram(before, after, "psf_event_loop_lag_seconds")
    gc = _histogram(before, after, "psf_gc_pause_seconds")
    compute = _histogram(before, after, "psf_compute_seconds")
    lookups = {result: after.get(("psf_cache_lookups_total", (("result", result),)), 0.0)
               - before.get(("psf_cache_lookups_total", (("result", result),)), 0.0) for result in ("hit", "miss")}
    return {"in_app": {"answered": round(app.get("count", 0)), "over_50ms": _over(app, 0.05),
                       "over_100ms": _over(app, 0.1), "max_at_most_s": _max_at_most(app)},
            "loop_lag": {"samples": round(lag.get("count", 0)), "over_50ms": _over(lag, 0.05),
                         "total_s": round(lag.get("sum", 0.0), 3), "max_at_most_s": _max_at_most(lag)},
            "gc": {"collections": round(gc.get("count", 0)), "total_pause_s": round(gc.get("sum", 0.0), 3),
                   "max_at_most_s": _max_at_most(gc)},
            "compute": {"batches": round(compute.get("count", 0)), "total_s": round(compute.get("sum", 0.0), 3),
                        "max_at_most_s": _max_at_most(compute)},
            "cache": {k: round(v) for k, v in lookups.items()}}
