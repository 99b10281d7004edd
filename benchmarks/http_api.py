"""Our model over HTTP: the real server (``python -m serving``, started as benchmarks.serving_bench
starts it) on a loopback port, serving a store that holds only the model under test. Single ``GET /psf``
latency over distinct queries, ``POST /psf/batch`` throughput (both npy, through serving_bench's lean
keep-alive client, which costs far less than the server), the answers' accuracy at the held-out points,
and the server's resident memory."""

from __future__ import annotations

import asyncio
import io
import json
import shutil
import statistics
import tempfile
from pathlib import Path

import numpy as np
import psutil

from models_store import Store

from .fixtures import Bench
from .serving_bench import Connection, batch_rate, random_conditions, single_latency, start_server, stop_server

NOT_AVAILABLE = "batch route not available in this build"


def _mib(n_bytes: float) -> float:
    return round(n_bytes / 2**20, 1)


def peak_rss_bytes(pid: int) -> int | None:
    """The kernel's high-water mark of a process's resident memory (Linux), else None."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def memory(pid: int) -> dict:
    peak = peak_rss_bytes(pid)
    rss = psutil.Process(pid).memory_info().rss
    return {"rss_mib": _mib(rss), "peak_rss_mib": None if peak is None else _mib(peak)}


def single_model_store(bench: Bench, root: Path) -> Path:
    """A store holding only the model version under test, so the server loads exactly one model."""
    m = bench.manifest
    shutil.copytree(bench.folder, root / m.name / "versions" / str(m.version))
    Store(root).set_alias(m.name, "latest", m.version)
    return root


def _npy(status: int, body: bytes) -> np.ndarray:
    assert status == 200, f"HTTP {status}: {body[:300]!r}"
    return np.load(io.BytesIO(body), allow_pickle=False)


def _held_out(bench: Bench) -> dict[str, list[float]]:
    return {name: bench.conditions[:, i].tolist() for i, name in enumerate(bench.columns)}


async def _get_answers(bench: Bench, port: int) -> np.ndarray:
    m, columns = bench.manifest, _held_out(bench)
    conn = await Connection.open(port)
    try:
        out = []
        for i in range(len(bench.conditions)):
            query = "&".join(f"{name}={values[i]!r}" for name, values in columns.items())
            out.append(_npy(*await conn.request("GET", f"/psf?{query}&model={m.name}&version={m.version}&format=npy")))
        return np.stack(out)
    finally:
        conn.close()


async def _post(port: int, body: bytes) -> tuple[int, bytes]:
    conn = await Connection.open(port)
    try:
        return await conn.request("POST", "/psf/batch?format=npy", body)
    finally:
        conn.close()


def _body(bench: Bench, columns: dict[str, list[float]]) -> bytes:
    return json.dumps({**columns, "model": bench.manifest.name, "version": bench.manifest.version}).encode()


def _single(bench: Bench, port: int) -> dict:
    p = bench.profile
    distinct = random_conditions(bench.manifest, p.http_requests, np.random.default_rng(1))
    timing = asyncio.run(single_latency(port, distinct, p.http_requests, repeat=False))
    timing["psfs_per_s"] = 1e3 / timing["p50_ms"]
    return {"method": "ours over HTTP, GET /psf (npy)", "kind": "ours_http", "ks": bench.kernel_size,
            "accuracy_ks": bench.kernel_size, "batch": 1, **timing,
            "accuracy": bench.score(asyncio.run(_get_answers(bench, port))),
            "psfs_per_s_note": "1 / p50 latency: one client, one request at a time",
            "client": "serving_bench.single_latency: keep-alive, sequential, distinct random queries (azimuth "
                      "0-360, so no answer is cached); the first fifth are warm-up"}


def _batch(bench: Bench, port: int) -> dict:
    p = bench.profile
    status, body = asyncio.run(_post(port, _body(bench, _held_out(bench))))
    if status in (404, 405):
        return {"method": "ours over HTTP, POST /psf/batch (npy)", "available": False, "note": NOT_AVAILABLE,
                "status_code": status}
    accuracy = bench.score(_npy(status, body))
    rng = np.random.default_rng(2)
    rates = []
    for _ in range(p.repeats):  # distinct bodies: the answer cache must not answer
        bodies = [_body(bench, random_conditions(bench.manifest, p.batch, rng)) for _ in range(4)]
        rates.append(asyncio.run(batch_rate(port, bodies, p.batch)))
    return {"method": f"ours over HTTP, POST /psf/batch {p.batch} (npy)", "kind": "ours_http", "available": True,
            "ks": bench.kernel_size, "accuracy_ks": bench.kernel_size, "batch": p.batch,
            "psfs_per_s": statistics.median(rates), "runs_psfs_per_s": [round(r, 1) for r in rates],
            "repeats": p.repeats, "accuracy": accuracy,
            "client": "serving_bench.batch_rate: keep-alive, 1 warm-up + 3 timed distinct bodies per run (median), "
                      "median of runs"}


def run(bench: Bench, log=print) -> dict:
    m = bench.manifest
    with tempfile.TemporaryDirectory(prefix="psf-bench-") as tmp:
        store = single_model_store(bench, Path(tmp) / "store")
        env = {"PSF_THREADS": str(bench.threads), "OMP_NUM_THREADS": str(bench.threads)}
        proc, port = start_server(store, env, Path(tmp) / "server.log")
        try:
            rss = {"after_load": memory(proc.pid)}
            single = _single(bench, port)
            batch = _batch(bench, port)
            rss["after_benchmark"] = memory(proc.pid)
        finally:
            stop_server(proc)
    log(f"  GET /psf: p50 {single['p50_ms']:.3f} ms, p99 {single['p99_ms']:.3f} ms over {single['requests']} requests")
    answer = f"{batch['psfs_per_s']:.1f} PSFs/s (batch {bench.profile.batch})" if batch["available"] else batch["note"]
    log(f"  POST /psf/batch: {answer}")
    log(f"  server resident memory: {rss}")
    server = {"models_loaded": 1, "model": f"{m.name}@{m.version}", "onnxruntime_threads": bench.threads,
              "settings": "serving defaults (micro-batching and answer cache on), access log off", "memory": rss}
    return {"server": server, "get_psf": single, "post_psf_batch": batch}
