"""Load benchmark: the real server under 200 connections, on loopback, bounded in time and count.

    python -m benchmarks.load --store DIR [--model NAME] [--connections 200] [--seconds 10] [--rounds 3]
                              [--out DIR] [--quick]

Starts ``python -m serving`` on 127.0.0.1 at its defaults (access log on), and beside it the same
server with one setting changed (``VARIANTS``: answer cache off, the uvloop event loop, access log
off), and measures:

1. ``wrk`` (when installed; ``benchmarks/wrk.py``): ``GET /psf`` at N connections, in rounds where
   every server takes its turn: distinct queries (never asked before, so the cache never answers and
   churns once full) on every server, and ``wrk.REPEATED`` queries asked again and again with the cache
   on and off. Per round: req/s, latency p50 / p90 / p99 / p99.9 / max and errors as wrk saw them,
   and from the server's /metrics what happened inside it (requests over 50 ms in the app, the event
   loop's lag, garbage-collector pauses, computations, cache hits and misses); then the medians;
2. the answer cache alone, filled past its bound by distinct answers: the time of a put (with its
   evictions) and of a get;
3. locust (headless, ``benchmarks/locustfile.py``): the request mix (single, batch 64, grid 8 x 6,
   interpolate 8) at N users: req/s and p50 / p99 per route, answers by status, every 200 checked
   to be a valid PSF array and every 503 to carry Retry-After;
4. ``AsyncPSFClient`` with N concurrent ``psf()`` calls: PSFs/s against wrk's req/s of step 1 (and
   with ``coalesce=False``), and its answers against the in-process model.

``--quick`` (the test suite's smoke run, under 20 s): only step 3, a few seconds, with a small
admission queue so that deliberate 503s are part of what is checked. Writes ``load.json`` to ``--out``
and prints a table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import wrk
from benchmarks.serving_bench import ROOT, random_conditions, start_server, stop_server
from models_store import Store
from models_store.engine import OnnxModel
from serving.cache import AnswerCache
from serving.settings import Settings

TARGETS = {"errors_other_than_503": 0, "get_p99_ms": 50.0, "worst_p99_ms": 100.0, "client_vs_wrk": 0.5}
_WRK_LUA = """
local q, i = {queries}, 0
request = function()
  i = i + 1
  return wrk.format("GET", q[(i + {offset}) % #q + 1])
end
"""


# -- locust ---------------------------------------------------------------------------------------
def locust_mix(port: int, manifest: Any, users: int, seconds: float, max_requests: int, workdir: Path) -> dict:
    report = workdir / "locust.json"
    ranges = {c.name: [c.min, c.max] for c in manifest.conditions}
    env = {**os.environ, "PSF_LOAD_REPORT": str(report), "PSF_LOAD_RANGES": json.dumps(ranges),
           "PSF_LOAD_KERNEL": str(manifest.kernel_size), "PSF_LOAD_MAX_REQUESTS": str(max_requests)}
    locust = Path(sys.executable).with_name("locust")
    proc = subprocess.run([str(locust), "-f", str(ROOT / "benchmarks" / "locustfile.py"), "--headless",
                           "--users", str(users), "--spawn-rate", str(users),
                           "--run-time", f"{max(1, round(seconds))}s",
                           "--host", f"http://127.0.0.1:{port}", "--only-summary", "--stop-timeout", "5",
                           "--loglevel", "WARNING"],
                          capture_output=True, text=True, timeout=seconds + 90, env=env, cwd=workdir)
    if not report.is_file():
        raise RuntimeError(f"locust wrote no report (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    result = json.loads(report.read_text())
    errors: Counter[str] = Counter()
    for route in result["routes"].values():
        errors.update({status: n for status, n in route["statuses"].items() if status != "200"})
    result["errors_by_status"] = dict(errors)
    return result


# -- the Python client ----------------------------------------------------------------------------
async def client_rate(url: str, columns: dict[str, list[float]], concurrency: int, seconds: float,
                      coalesce: bool = True) -> dict:
    from clients import AsyncPSFClient

    n = len(columns["field"])
    answers: dict[int, np.ndarray] = {}
    count = 0

    async def one(worker: int, client: AsyncPSFClient, stop: float) -> None:
        nonlocal count
        i = worker
        while time.perf_counter() < stop:
            query = {k: v[i % n] for k, v in columns.items()}
            psf = await client.psf(**query)
            if len(answers) < 256:
                answers.setdefault(i % n, np.asarray(psf))
            count += 1
            i += concurrency

    async with AsyncPSFClient(url, timeout=60.0, coalesce=coalesce) as client:
        await one(0, client, time.perf_counter() + 0.5)  # connections up, model warm
        count, start = 0, time.perf_counter()
        await asyncio.gather(*(one(w, client, start + seconds) for w in range(concurrency)))
        elapsed = time.perf_counter() - start
    return {"psfs_per_s": round(count / elapsed, 1), "answers": answers}


# -- the run --------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.load", description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", required=True, type=Path)
    parser.add_argument("--model", help="model name (default: the store's first)")
    parser.add_argument("--connections", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3, help="wrk rounds, every server in turn in each")
    parser.add_argument("--max-requests", type=int, default=2_000_000, help="locust stops after this many")
    parser.add_argument("--out", type=Path, default=Path("bench_out"))
    parser.add_argument("--quick", action="store_true", help="only the locust mix, a few seconds, small queue")
    args = parser.parse_args(argv)
    store = Store(args.store)
    name = args.model or store.models()[0]
    model = OnnxModel.from_store(store, name)
    args.out.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="psf-load-"))
    result: dict[str, Any] = {"model": f"{name}@{model.version}", "kernel_size": model.kernel_size,
                              "connections": args.connections, "seconds": args.seconds, "quick": args.quick,
                              "cpus": os.cpu_count(), "load_average": os.getloadavg(), "targets": TARGETS}
    # the server's own defaults, but for the chosen model; --quick admits little so that 503s happen
    env = {"PSF_DEFAULT_MODEL": name, "PSF_ACCESS_LOG": "true"}
    if args.quick:
        env |= {"PSF_MAX_BATCH": "64", "PSF_MAX_GRID": "64", "PSF_MAX_STEPS": "64", "PSF_MAX_QUEUE": "160"}
    try:
        proc, port = start_server(args.store, env, workdir / "server.log")
        try:
            result["mix"] = locust_mix(port, model.manifest, args.connections, args.seconds, args.max_requests,
                                       workdir)
            if not args.quick:
                result |= full_run(args, model, port, env, workdir)
        finally:
            stop_server(proc)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    (args.out / "load.json").write_text(json.dumps(result, indent=2, default=float))
    report(result)
    print(f"wrote {args.out / 'load.json'}")
    return 0


# the servers compared, all at the defaults but for one setting each
VARIANTS = {"defaults": {}, "cache_off": {"PSF_CACHE_MB": "0"}, "uvloop": {"PSF_LOOP": "uvloop"},
            "log_off": {"PSF_ACCESS_LOG": "false"}}
_WORKLOADS = {"defaults": wrk.WORKLOADS, "cache_off": wrk.WORKLOADS, "uvloop": ("shared", "repeated"),
              "log_off": ("shared",)}


def wrk_rounds(args: argparse.Namespace, model: OnnxModel, ports: dict[str, int], workdir: Path) -> dict:
    """``args.rounds`` rounds; in each, every server takes wrk in turn (drift on a shared machine hits
    them alike): the issue's shared workload on every variant, distinct and repeated queries with the
    cache on and off."""
    spec = {c.name: (c.min, c.max) for c in model.manifest.conditions if c.name != "azimuth"}
    ranges = {**spec, "field": (spec["field"][0], min(spec["field"][1], 0.99)), "azimuth": (0.0, 360.0)}
    runs: dict[str, list[dict]] = {}
    for _ in range(args.rounds):
        for label, port in ports.items():
            for workload in _WORKLOADS[label]:
                before = wrk.scrape(port)
                done = sum(map(len, runs.values()))  # each run on queries no run asked (< 10^6 a run)
                result = wrk.run(port, ranges, connections=args.connections, seconds=args.seconds, workdir=workdir,
                                 base=done * 10**6, workload=workload)
                result["server"] = wrk.server_side(before, wrk.scrape(port))
                result["load_average"] = os.getloadavg()[0]
                runs.setdefault(f"{label} {workload}", []).append(result)
    summary = {name: {key: statistics.median(run[key] for run in rs)
                      for key in ("req_per_s", "p50_ms", "p90_ms", "p99_ms", "p99_9_ms")}
               | {"worst_p99_ms": max(run["p99_ms"] for run in rs), "errors": sum(
                   run["non_2xx"] + run["timeouts"] + run["socket_errors"] for run in rs)}
               for name, rs in runs.items()}
    return {"runs": runs, "median": summary}


def full_run(args: argparse.Namespace, model: OnnxModel, port: int, env: dict[str, str], workdir: Path) -> dict:
    out: dict[str, Any] = {"cache_churn": cache_churn()}
    if shutil.which("wrk") is None:
        out["wrk"] = "wrk is not installed (apt-get install wrk): no GET /psf figures"
    else:
        servers = {label: start_server(args.store, {**env, **extra}, workdir / f"{label}.log")
                   for label, extra in VARIANTS.items() if label != "defaults"}
        try:
            ports = {"defaults": port} | {label: p for label, (_, p) in servers.items()}
            out["wrk"] = wrk_rounds(args, model, ports, workdir)
        finally:
            for proc, _ in servers.values():
                stop_server(proc)
    rng = np.random.default_rng(0)
    small = random_conditions(model.manifest, 4000, rng)
    rate = asyncio.run(client_rate(f"http://127.0.0.1:{port}", small, args.connections, args.seconds))
    answers = rate.pop("answers")
    same = all(np.array_equal(psf, model.psf(**{k: v[i] for k, v in small.items()})[0]) for i, psf in answers.items())
    alone = asyncio.run(client_rate(f"http://127.0.0.1:{port}", small, args.connections, args.seconds, False))
    out["client"] = {**rate, "answers_checked": len(answers), "same_answers": same,
                     "psfs_per_s_without_coalescing": alone["psfs_per_s"]}
    if isinstance(out.get("wrk"), dict):
        out["client"]["vs_wrk"] = round(rate["psfs_per_s"] / out["wrk"]["median"]["defaults shared"]["req_per_s"], 3)
    return out


def cache_churn(entries: int = 200_000, kernel: int = 32) -> dict[str, float]:
    """The answer cache alone, at its default bound, filled and then churned by distinct answers:
    microseconds per put (with its evictions) and per get, p50 / p99 / max."""
    cache = AnswerCache(Settings().cache_bytes)
    psf = np.zeros((kernel, kernel), np.float32)
    puts, gets = [], []
    for i in range(entries):
        start = time.perf_counter()
        cache.put(("psf", "m", 1, i / 7, None, None, None, 5.0, 550.0, None), psf.copy())
        middle = time.perf_counter()
        cache.get(("psf", "m", 1, (i // 2) / 7, None, None, None, 5.0, 550.0, None))
        puts.append(middle - start)
        gets.append(time.perf_counter() - middle)
    put_us, get_us = np.array(puts) * 1e6, np.array(gets) * 1e6
    return {"entries_held": len(cache), "puts": entries, "put_us_p50": float(np.median(put_us)),
            "put_us_p99": float(np.percentile(put_us, 99)), "put_us_max": float(put_us.max()),
            "get_us_p50": float(np.median(get_us)), "get_us_p99": float(np.percentile(get_us, 99)),
            "get_us_max": float(get_us.max())}


def report(r: dict[str, Any]) -> None:
    mix = r["mix"]
    print(f"\nload on {r['model']} (k={r['kernel_size']}), {r['connections']} connections, {r['seconds']} s"
          + (" [QUICK]" if r["quick"] else ""))
    print("| route | requests | req/s | p50 ms | p99 ms | not 200 | invalid | 503 w/o Retry-After |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, route in sorted(mix["routes"].items()):
        other = {s: n for s, n in route["statuses"].items() if s != "200"}
        print(f"| {name} | {route['requests']} | {route['req_per_s']} | {route['p50_ms']} | {route['p99_ms']} "
              f"| {other or 0} | {route['invalid']} | {route['503_without_retry_after']} |")
    print(f"| all | {mix['requests']} | {mix['req_per_s']} | | {mix['p99_ms']} | {mix['errors_by_status'] or 0} | | |")
    wrk_result = r.get("wrk")
    if isinstance(wrk_result, dict):
        print("\n| wrk GET /psf | round | req/s | p50 | p90 | p99 | p99.9 | max ms | errors | in app > 50 ms | "
              "loop lag > 50 ms | max lag <= s | GC pauses (s) | cache hit / miss | load |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        for name, rs in wrk_result["runs"].items():
            for i, w in enumerate(rs):
                s = w["server"]
                print(f"| {name} | {i + 1} | {w['req_per_s']:,.0f} | {w['p50_ms']:.1f} | {w['p90_ms']:.1f} | "
                      f"{w['p99_ms']:.1f} | {w['p99_9_ms']:.1f} | {w['max_ms']:.0f} | "
                      f"{w['non_2xx'] + w['timeouts'] + w['socket_errors']} | {s['in_app']['over_50ms']} | "
                      f"{s['loop_lag']['over_50ms']} | {s['loop_lag']['max_at_most_s']} | "
                      f"{s['gc']['collections']} ({s['gc']['total_pause_s']}) | {s['cache']['hit']} / "
                      f"{s['cache']['miss']} | {w['load_average']:.1f} |")
        print("medians of rounds:")
        for name, m in wrk_result["median"].items():
            print(f"  {name}: {m['req_per_s']:,.0f} req/s, p50 {m['p50_ms']:.1f}, p99 {m['p99_ms']:.1f} (worst "
                  f"{m['worst_p99_ms']:.1f}), p99.9 {m['p99_9_ms']:.1f} ms, {m['errors']} errors")
        print(f"targets: defaults shared p99 <= {TARGETS['get_p99_ms']} ms (worst round <= "
              f"{TARGETS['worst_p99_ms']} ms), 0 errors; cache on no slower than off")
    elif wrk_result:
        print(wrk_result)
    if "cache_churn" in r:
        c = r["cache_churn"]
        print(f"answer cache alone, {c['puts']:,} distinct 4 KiB answers into the default bound ({c['entries_held']:,} "
              f"held): put {c['put_us_p50']:.1f} / {c['put_us_p99']:.1f} / {c['put_us_max']:.0f} us, get "
              f"{c['get_us_p50']:.1f} / {c['get_us_p99']:.1f} / {c['get_us_max']:.0f} us (p50 / p99 / max)")
    if "client" in r:
        c = r["client"]
        print(f"AsyncPSFClient, {r['connections']} concurrent psf(): {c['psfs_per_s']:.0f} PSFs/s"
              + (f" = {c['vs_wrk']:.2f} x wrk's req/s (target >= 0.5)" if "vs_wrk" in c else "")
              + f"; {c['answers_checked']} answers equal the in-process model: {c['same_answers']}; "
              f"without coalescing {c['psfs_per_s_without_coalescing']:.0f} PSFs/s")


if __name__ == "__main__":
    sys.exit(main())
