"""Load benchmark: the real server under 200 connections, on loopback, bounded in time and count.

    python -m benchmarks.load --store DIR [--model NAME] [--connections 200] [--seconds 15] [--rounds 2]
                              [--out DIR] [--quick]

Starts ``python -m serving`` on 127.0.0.1 (its default settings, so the access log is on) and measures:

1. ``wrk`` (when installed): distinct ``GET /psf`` queries at N connections, req/s, p50 / p99 and
   non-2xx answers and the server's CPU time per request, with the access log on and off in rounds
   taken in turn; the log's cost is one minus the median of the rounds' on / off req/s ratios, and
   the median extra CPU per request (steadier on a shared machine);
2. locust (headless, ``benchmarks/locustfile.py``): the request mix (single, batch 64, grid 8 x 6,
   interpolate 8) at N users: req/s and p50 / p99 per route, answers by status, every 200 checked
   to be a valid PSF array and every 503 to carry Retry-After;
3. ``AsyncPSFClient`` with N concurrent ``psf()`` calls: PSFs/s against wrk's req/s of step 1 (and
   with ``coalesce=False``), and its answers against the in-process model.

``--quick`` (the test suite's smoke run, under 20 s): only step 2, a few seconds, with a small
admission queue so that deliberate 503s are part of what is checked. Writes ``load.json`` to ``--out``
and prints a table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
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

from benchmarks.serving_bench import ROOT, random_conditions, start_server, stop_server
from models_store import Store
from models_store.engine import OnnxModel

TARGETS = {"errors_other_than_503": 0, "get_p99_ms": 50.0, "access_log_cost": 0.10, "client_vs_wrk": 0.5}
_WRK_LUA = """
local q, i = {queries}, 0
request = function()
  i = i + 1
  return wrk.format("GET", q[(i + {offset}) % #q + 1])
end
"""


# -- wrk ------------------------------------------------------------------------------------------
def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()
    return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]


def _cpu_s(pid: int) -> float:
    import psutil

    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def wrk(port: int, pid: int, targets: list[str], connections: int, seconds: float, workdir: Path,
        offset: int) -> dict:
    """One wrk run; also the server's CPU time per answered request, which, unlike req/s, does not
    move with what the neighbours on a shared machine are doing."""
    script = workdir / "queries.lua"
    script.write_text(_WRK_LUA.format(queries="{" + ",".join(json.dumps(t) for t in targets) + "}",
                                      offset=offset))
    threads = max(1, min(2, os.cpu_count() or 1))
    cpu = _cpu_s(pid)
    proc = subprocess.run(["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency",
                           "-s", str(script), f"http://127.0.0.1:{port}"],
                          capture_output=True, text=True, timeout=seconds + 60)
    out = proc.stdout
    cpu = _cpu_s(pid) - cpu
    if "Requests/sec:" not in out:
        raise RuntimeError(f"wrk failed (exit {proc.returncode}): {out[-1500:]} {proc.stderr[-1500:]}")
    percentiles = dict(re.findall(r"^\s+(50|99)%\s+(\S+)\s*$", out, re.MULTILINE))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sockets = re.search(r"Socket errors: (.*)$", out, re.MULTILINE)
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    return {"req_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            "server_cpu_us_per_request": round(cpu / max(1, requests) * 1e6, 1),
            "p50_ms": _ms(percentiles["50"]), "p99_ms": _ms(percentiles["99"]),
            "non_2xx": int(errors.group(1)) if errors else 0, "socket_errors": sockets.group(1) if sockets else None}


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
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--rounds", type=int, default=2, help="wrk rounds with the access log on and off")
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
                result |= full_run(args, model, proc.pid, port, env, workdir)
        finally:
            stop_server(proc)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    (args.out / "load.json").write_text(json.dumps(result, indent=2, default=float))
    report(result)
    print(f"wrote {args.out / 'load.json'}")
    return 0


def full_run(args: argparse.Namespace, model: OnnxModel, pid: int, port: int, env: dict[str, str],
             workdir: Path) -> dict:
    out: dict[str, Any] = {}
    rng = np.random.default_rng(0)
    columns = random_conditions(model.manifest, 20000, rng)
    targets = ["/psf?" + "&".join(f"{k}={v[i]}" for k, v in columns.items()) + "&format=npy"
               for i in range(len(columns["field"]))]
    if shutil.which("wrk") is None:
        out["wrk"] = "wrk is not installed (apt-get install wrk): no GET /psf or access-log figures"
    else:
        quiet_proc, quiet_port = start_server(args.store, {**env, "PSF_ACCESS_LOG": "false"}, workdir / "quiet.log")
        try:
            rounds = []
            for r in range(args.rounds):  # in turn, so drift on a shared machine hits both alike
                on = wrk(port, pid, targets, args.connections, args.seconds, workdir, offset=2 * r * 5000)
                off = wrk(quiet_port, quiet_proc.pid, targets, args.connections, args.seconds, workdir,
                          offset=(2 * r + 1) * 5000)
                rounds.append({"log_on": on, "log_off": off})
        finally:
            stop_server(quiet_proc)
        ratios = [r["log_on"]["req_per_s"] / r["log_off"]["req_per_s"] for r in rounds]
        cpu = [r["log_on"]["server_cpu_us_per_request"] / r["log_off"]["server_cpu_us_per_request"] for r in rounds]
        out["wrk"] = {"rounds": rounds, "access_log_cost": round(1 - statistics.median(ratios), 3),
                      "access_log_cpu_cost": round(statistics.median(cpu) - 1, 3),
                      "get_req_per_s": statistics.median(r["log_on"]["req_per_s"] for r in rounds),
                      "get_p99_ms": statistics.median(r["log_on"]["p99_ms"] for r in rounds)}
    small = {k: v[:4000] for k, v in columns.items()}
    rate = asyncio.run(client_rate(f"http://127.0.0.1:{port}", small, args.connections, args.seconds))
    answers = rate.pop("answers")
    same = all(np.array_equal(psf, model.psf(**{k: v[i] for k, v in small.items()})[0]) for i, psf in answers.items())
    alone = asyncio.run(client_rate(f"http://127.0.0.1:{port}", small, args.connections, args.seconds, False))
    out["client"] = {**rate, "answers_checked": len(answers), "same_answers": same,
                     "psfs_per_s_without_coalescing": alone["psfs_per_s"]}
    if isinstance(out.get("wrk"), dict):
        out["client"]["vs_wrk"] = round(rate["psfs_per_s"] / out["wrk"]["get_req_per_s"], 3)
    return out


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
        for i, rnd in enumerate(wrk_result["rounds"]):
            for key in ("log_on", "log_off"):
                w = rnd[key]
                print(f"wrk GET /psf round {i + 1} {key}: {w['req_per_s']:.0f} req/s, p50 {w['p50_ms']:.1f} ms, "
                      f"p99 {w['p99_ms']:.1f} ms, non-2xx {w['non_2xx']}, socket errors {w['socket_errors']}, "
                      f"server CPU {w['server_cpu_us_per_request']:.0f} us/request")
        print(f"access log cost: {wrk_result['access_log_cost']:.1%} of GET /psf throughput, "
              f"{wrk_result['access_log_cpu_cost']:.1%} more server CPU per request (target <= 10 %)")
    elif wrk_result:
        print(wrk_result)
    if "client" in r:
        c = r["client"]
        print(f"AsyncPSFClient, {r['connections']} concurrent psf(): {c['psfs_per_s']:.0f} PSFs/s"
              + (f" = {c['vs_wrk']:.2f} x wrk's req/s (target >= 0.5)" if "vs_wrk" in c else "")
              + f"; {c['answers_checked']} answers equal the in-process model: {c['same_answers']}; "
              f"without coalescing {c['psfs_per_s_without_coalescing']:.0f} PSFs/s")


if __name__ == "__main__":
    sys.exit(main())
