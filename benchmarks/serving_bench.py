"""Serving benchmark: latency, batch throughput and micro-batching, side by side in one run.

    python -m benchmarks.serving_bench --store DIR [--model NAME] [--out DIR] [--seconds S] [--rounds R] [--clients N]

Starts ``python -m serving`` twice on loopback (micro-batching on and off; access log off, answer
cache on but every query distinct) and measures, with a keep-alive asyncio client:

1. single ``GET /psf`` (npy) latency p50 / p99, one request at a time (and the same for a repeated,
   cached query);
2. ``POST /psf/batch`` of 256 conditions: PSFs/s from the median request time, against the median
   ``OnnxModel.psf`` call in this process (same conditions, the server's onnxruntime thread count),
   the two taken in turn;
3. N concurrent clients sending single queries for S seconds: requests/s and errors, batching on vs
   off, in R rounds taken in turn (the ratio is the median of the rounds' ratios);
4. in-process PSFs/s at batch 4096 (through the CUDA provider when a GPU is present);
5. one PSF-graph call of 256 rows with ``session.run`` against IOBinding (median µs), which is
   how the serving runtime's choice of plain ``run`` is checked.

Prints a table and writes ``serving_bench.json`` to ``--out``. The machine's load average is
recorded: on a shared machine the figures move with the neighbours.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from models_store import Store
from models_store.engine import OnnxModel, choose_providers, provider_names
from serving.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
TARGETS = {"get_p50_ms": 1.5, "get_p99_ms": 5.0, "batch_ratio": 0.5, "microbatch_ratio": 3.0}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- a lean HTTP/1.1 keep-alive client (httpx per request would cost more than the server) ------
class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        # a read buffer that holds a whole batch answer, so reading it does not pause the socket each 128 KiB
        return cls(*await asyncio.open_connection("127.0.0.1", port, limit=1 << 24))

    async def request(self, method: str, target: str, body: bytes = b"") -> tuple[int, bytes]:
        head = f"{method} {target} HTTP/1.1\r\nHost: bench\r\nContent-Length: {len(body)}\r\n"
        if body:
            head += "Content-Type: application/json\r\n"
        self.writer.write(head.encode() + b"\r\n" + body)
        status_line = await self.reader.readline()
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
        return int(status_line.split()[1]), await self.reader.readexactly(length)

    def close(self) -> None:
        self.writer.close()


def random_conditions(manifest: Any, n: int, rng: np.random.Generator) -> dict[str, list[float]]:
    spec = {c.name: c for c in manifest.conditions}
    columns = {name: rng.uniform(c.min, c.max, n).round(6).tolist() for name, c in spec.items()}
    columns["field"] = rng.uniform(spec["field"].min, min(spec["field"].max, 0.99), n).round(6).tolist()
    columns["azimuth"] = rng.uniform(0.0, 360.0, n).round(3).tolist()
    return columns


def query_string(columns: dict[str, list[float]], i: int) -> str:
    return "&".join(f"{k}={v[i]}" for k, v in columns.items()) + "&format=npy"


# -- measurements -----------------------------------------------------------------------------
async def single_latency(port: int, columns: dict[str, list[float]], n: int, repeat: bool) -> dict[str, float]:
    conn = await Connection.open(port)
    times = []
    for i in range(n):
        target = "/psf?" + query_string(columns, 0 if repeat else i)
        start = time.perf_counter()
        status, _ = await conn.request("GET", target)
        times.append(time.perf_counter() - start)
        assert status == 200, status
    conn.close()
    ms = np.array(times[n // 5:]) * 1e3  # the first fifth warms up
    return {"p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)), "requests": len(ms)}


async def batch_rate(port: int, bodies: list[bytes], size: int) -> float:
    """PSFs/s from the median time of one POST /psf/batch (the first body warms up, not counted)."""
    conn = await Connection.open(port)
    await conn.request("POST", "/psf/batch", bodies[0])
    times = []
    for body in bodies[1:]:
        start = time.perf_counter()
        status, payload = await conn.request("POST", "/psf/batch", body)
        times.append(time.perf_counter() - start)
        assert status == 200, payload[:200]
    conn.close()
    return size / float(np.median(times))


async def batch_side_by_side(port: int, model: OnnxModel, batches: list[dict[str, list[float]]],
                             name: str) -> dict[str, float]:
    """PSFs/s of one ``POST /psf/batch`` and of one in-process ``OnnxModel.psf`` call on the same
    conditions, taken in turn batch by batch (drift on a shared machine hits both alike), from the
    median times; the first batch warms up and is not counted."""
    conn = await Connection.open(port)
    http, local = [], []
    for i, batch in enumerate(batches):
        body = json.dumps({**batch, "model": name}).encode()
        start = time.perf_counter()
        status, payload = await conn.request("POST", "/psf/batch", body)
        elapsed = time.perf_counter() - start
        assert status == 200, payload[:200]
        start = time.perf_counter()
        model.psf(**batch)
        if i:
            http.append(elapsed)
            local.append(time.perf_counter() - start)
    conn.close()
    size = len(batches[0]["field"])
    return {"http_psf_per_s": size / float(np.median(http)), "in_process_psf_per_s": size / float(np.median(local))}


async def concurrent(port: int, columns: dict[str, list[float]], clients: int, seconds: float) -> dict[str, float]:
    n = len(columns["field"])
    counts = {"ok": 0, "errors": 0}
    stop = time.perf_counter() + seconds

    async def client(c: int) -> None:
        conn = await Connection.open(port)
        i = c
        while time.perf_counter() < stop:
            try:
                status, _ = await conn.request("GET", "/psf?" + query_string(columns, i % n))
                counts["ok" if status == 200 else "errors"] += 1
            except (OSError, asyncio.IncompleteReadError):
                counts["errors"] += 1
                conn = await Connection.open(port)
            i += clients
        conn.close()

    start = time.perf_counter()
    await asyncio.gather(*(client(c) for c in range(clients)))
    elapsed = time.perf_counter() - start
    return {"requests_per_s": counts["ok"] / elapsed, "errors": counts["errors"], "ok": counts["ok"]}


def in_process_rate(model: OnnxModel, columns: dict[str, list[float]], size: int, rounds: int) -> float:
    """PSFs/s from the median time of one ``OnnxModel.psf`` call of ``size`` conditions."""
    chunks = [{k: v[i * size:(i + 1) * size] for k, v in columns.items()} for i in range(rounds)]
    model.psf(**chunks[0])
    times = []
    for chunk in chunks:
        start = time.perf_counter()
        model.psf(**chunk)
        times.append(time.perf_counter() - start)
    return size / float(np.median(times))


def graph_run_times(model: OnnxModel, columns: dict[str, list[float]], size: int, rounds: int) -> dict[str, float]:
    """Median µs of one PSF-graph call of ``size`` rows: ``session.run`` against IOBinding with the
    output bound to a preallocated host array (the answers must end on the host either way)."""
    condition = model.conditions(**{k: v[:size] for k, v in columns.items()})[0]
    session, graph = model.sessions["psf"], model.manifest.graphs["psf"]
    out = np.empty((size, model.kernel_size, model.kernel_size), np.float32)
    binding = session.io_binding()

    def plain() -> None:
        session.run(graph.outputs, {"condition": condition})

    def bound() -> None:
        binding.bind_cpu_input("condition", condition)
        binding.bind_output(graph.outputs[0], "cpu", 0, np.float32, out.shape, out.ctypes.data)
        session.run_with_iobinding(binding)

    times: dict[str, list[float]] = {"run_us": [], "iobinding_us": []}
    for _ in range(rounds):  # interleaved, so drift on a shared machine hits both alike
        for key, fn in (("run_us", plain), ("iobinding_us", bound)):
            start = time.perf_counter()
            fn()
            times[key].append((time.perf_counter() - start) * 1e6)
    return {key: float(np.median(v[1:])) for key, v in times.items()}


def batch_totals(port: int) -> tuple[float, float]:
    """(PSFs computed, onnxruntime calls) so far, from the server's /metrics."""
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=30).text
    values = {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples}
    return values.get("psf_batch_size_sum", 0.0), values.get("psf_batch_size_count", 0.0)


# -- servers ----------------------------------------------------------------------------------
def start_server(store: Path, env: dict[str, str], log: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "serving", "--store", str(store), "--port", str(port)],
                            cwd=ROOT, env={**os.environ, "PSF_ACCESS_LOG": "false", **env},
                            stdout=log.open("w"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return proc, port
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"server did not start; see {log}")
        time.sleep(0.3)


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    proc.wait(timeout=60)


async def measure_on_server(port: int, data: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    return {"get_uncached": await single_latency(port, data["single"], args.requests, repeat=False),
            "get_cached": await single_latency(port, data["single"], args.requests // 2, repeat=True),
            "batch256": await batch_side_by_side(port, data["model"], data["batches"], data["name"])}


async def concurrency_rounds(ports: dict[str, int], data: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """``args.rounds`` concurrency runs on each server, taken in turn (on, off, on, off, ...), so
    drift on a shared machine hits both alike; the ratio is the median of the rounds' ratios."""
    runs: dict[str, list[dict[str, float]]] = {label: [] for label in ports}
    rng = np.random.default_rng(1)
    for _ in range(args.rounds):
        for label, port in ports.items():
            # queries no server has seen: an answer from the cache would flatter either side
            columns = random_conditions(data["manifest"], 50_000, rng)
            psfs, calls = batch_totals(port)
            run = await concurrent(port, columns, args.clients, args.seconds)
            psfs_after, calls_after = batch_totals(port)
            run["mean_batch_size"] = (psfs_after - psfs) / max(calls_after - calls, 1)
            runs[label].append(run)
    on, off = runs["batching_on"], runs["batching_off"]
    summary = {label: {"requests_per_s": float(np.median([r["requests_per_s"] for r in rs])),
                       "errors": sum(r["errors"] for r in rs),
                       "mean_batch_size": float(np.median([r["mean_batch_size"] for r in rs]))}
               for label, rs in runs.items()}
    ratios = [a["requests_per_s"] / max(b["requests_per_s"], 1e-9) for a, b in zip(on, off, strict=True)]
    return {**summary, "ratios": ratios, "ratio": float(np.median(ratios)), "runs": runs}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.serving_bench", description=__doc__.split("\n")[0])
    parser.add_argument("--store", required=True, type=Path)
    parser.add_argument("--model", help="model name (default: the first in the store)")
    parser.add_argument("--out", type=Path, default=Path("bench_out"))
    parser.add_argument("--requests", type=int, default=1500, help="sequential GETs for the latency figures")
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each concurrency run")
    parser.add_argument("--rounds", type=int, default=3, help="concurrency runs per server, taken in turn")
    args = parser.parse_args(argv)
    store = Store(args.store)
    name = args.model or store.models()[0]
    manifest = store.manifest(name)
    rng = np.random.default_rng(0)
    batches = [random_conditions(manifest, 256, rng) for _ in range(41)]
    data = {"single": random_conditions(manifest, args.requests, rng),
            "batches": batches, "name": name, "manifest": manifest}
    args.out.mkdir(parents=True, exist_ok=True)
    threads = Settings(store=args.store).threads
    load_before = os.getloadavg()

    model = data["model"] = OnnxModel.from_store(store, name, threads=threads)
    results: dict[str, Any] = {"model": f"{name}@{manifest.version}", "cpu_count": os.cpu_count(),
                               "clients": args.clients,
                               "ort_threads": threads, "providers": provider_names(choose_providers())}
    big = random_conditions(manifest, 4096 * 4, rng)
    results["in_process_batch4096_psf_per_s"] = in_process_rate(model, big, 4096, 4)
    results["psf_graph_batch256"] = graph_run_times(model, big, 256, 41)

    servers = {label: start_server(args.store, env, args.out / f"server_{label}.log")
               for label, env in (("batching_on", {}), ("batching_off", {"PSF_MICROBATCH": "false"}))}
    try:
        ports = {label: port for label, (_, port) in servers.items()}
        results["batching_on"] = asyncio.run(measure_on_server(ports["batching_on"], data, args))
        results["concurrent"] = asyncio.run(concurrency_rounds(ports, data, args))
    finally:
        for proc, _ in servers.values():
            stop_server(proc)
    results["load_average_before"], results["load_average_after"] = load_before, os.getloadavg()
    report(results)
    (args.out / "serving_bench.json").write_text(json.dumps(results, indent=2))
    print(f"\nwrote {args.out / 'serving_bench.json'}")
    return 0


def report(r: dict[str, Any]) -> None:
    on, conc = r["batching_on"], r["concurrent"]
    batch_ratio = on["batch256"]["http_psf_per_s"] / on["batch256"]["in_process_psf_per_s"]
    r["ratios"] = {"batch256_vs_in_process": batch_ratio, "microbatching_on_vs_off": conc["ratio"]}
    c_on, c_off = conc["batching_on"], conc["batching_off"]
    rows = [
        ("GET /psf npy p50 (distinct queries)", f"{on['get_uncached']['p50_ms']:.3f} ms",
         f"<= {TARGETS['get_p50_ms']} ms"),
        ("GET /psf npy p99 (distinct queries)", f"{on['get_uncached']['p99_ms']:.3f} ms",
         f"<= {TARGETS['get_p99_ms']} ms"),
        ("GET /psf npy p50 / p99 (cached)",
         f"{on['get_cached']['p50_ms']:.3f} / {on['get_cached']['p99_ms']:.3f} ms", ""),
        ("POST /psf/batch 256, PSFs/s", f"{on['batch256']['http_psf_per_s']:,.0f}", ""),
        ("in-process OnnxModel.psf 256, PSFs/s (in turn)", f"{on['batch256']['in_process_psf_per_s']:,.0f}", ""),
        ("  batch ratio", f"{batch_ratio:.2f}x", f">= {TARGETS['batch_ratio']}x"),
        (f"{r['clients']} clients, single GETs, batching on, req/s",
         f"{c_on['requests_per_s']:,.0f} ({c_on['errors']} errors, mean batch {c_on['mean_batch_size']:.1f})",
         "median of rounds"),
        (f"{r['clients']} clients, single GETs, batching off, req/s",
         f"{c_off['requests_per_s']:,.0f} ({c_off['errors']} errors)", "median of rounds"),
        ("  micro-batching ratio",
         f"{conc['ratio']:.2f}x (rounds: " + ", ".join(f"{x:.2f}" for x in conc["ratios"]) + ")",
         f">= {TARGETS['microbatch_ratio']}x"),
        ("in-process batch 4096, PSFs/s", f"{r['in_process_batch4096_psf_per_s']:,.0f}", f"({r['providers'][0]})"),
        ("PSF graph, batch 256: run / IOBinding", (f"{r['psf_graph_batch256']['run_us']:,.0f} / "
         f"{r['psf_graph_batch256']['iobinding_us']:,.0f} µs"), ""),
    ]
    print(f"\nmodel {r['model']}, {r['cpu_count']} CPUs, onnxruntime threads {r['ort_threads']}, "
          f"load average before {r['load_average_before'][0]:.2f}, after {r['load_average_after'][0]:.2f}")
    width = max(len(row[0]) for row in rows)
    for label, value, target in rows:
        print(f"{label:<{width}}  {value:<40} {target}")


if __name__ == "__main__":
    sys.exit(main())
