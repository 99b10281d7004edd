"""Our model over HTTP: the real server (``python -m serving``) on a loopback port, serving a store
that holds only the model under test; single ``GET /psf`` latency, ``POST /psf/batch`` throughput (both
npy), the answers' accuracy, and the server's resident memory."""

from __future__ import annotations

import io
import json
import shutil
import tempfile
from pathlib import Path

import httpx
import numpy as np
import psutil

from models_store import Store
from serving.process import ServerProcess

from .setup import Bench
from .timing import latency, throughput

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


def _npy(response: httpx.Response) -> np.ndarray:
    response.raise_for_status()
    return np.load(io.BytesIO(response.content), allow_pickle=False)


def _batch_body(bench: Bench, cond: np.ndarray) -> bytes:
    m = bench.manifest
    return json.dumps({"field": cond[:, 0].tolist(), "depth": cond[:, 1].tolist(),
                       "wavelength": cond[:, 2].tolist(), "model": m.name, "version": str(m.version)}).encode()


def run(bench: Bench, log=print) -> dict:
    p, m = bench.profile, bench.manifest
    with tempfile.TemporaryDirectory(prefix="psf-bench-") as tmp:
        store = single_model_store(bench, Path(tmp) / "store")
        threads = {"PSF_THREADS": str(bench.threads), "OMP_NUM_THREADS": str(bench.threads)}
        server = ServerProcess(store, "--log-level", "warning", env=threads, log_path=Path(tmp) / "server.log")
        try:
            startup_s = server.wait("/readyz")
            rss = {"after_load": memory(server.proc.pid)}
            with httpx.Client(base_url=server.url, timeout=60.0) as client:
                single = _single(bench, client)
                batch = _batch(bench, client)
            rss["after_benchmark"] = memory(server.proc.pid)
        finally:
            server.stop()
    log(f"  GET /psf: p50 {single['p50_ms']:.3f} ms, p99 {single['p99_ms']:.3f} ms over {p.http_requests} requests")
    answer = f"{batch['psfs_per_s']:.1f} PSFs/s (batch {p.batch})" if batch["available"] else batch["note"]
    log(f"  POST /psf/batch: {answer}")
    log(f"  server resident memory: {rss}")
    server_info = {"startup_to_ready_s": round(startup_s, 2), "models_loaded": 1, "model": f"{m.name}@{m.version}",
                   "threads": bench.threads, "log_level": "warning (no access log)", "memory": rss}
    return {"server": server_info, "get_psf": single, "post_psf_batch": batch}


def _single(bench: Bench, client: httpx.Client) -> dict:
    m, cond = bench.manifest, bench.conditions
    queries = [{"field": repr(float(f)), "depth": repr(float(d)), "wavelength": repr(float(w)), "model": m.name,
                "version": str(m.version), "format": "npy"} for f, d, w in cond]
    answers = np.stack([_npy(client.get("/psf", params=q)) for q in queries])

    def get(i: int) -> None:
        client.get("/psf", params=queries[i % len(queries)]).raise_for_status()

    timing = latency(get, bench.profile.http_requests)
    return {"method": "ours over HTTP, GET /psf (npy)", "kind": "ours_http", "ks": bench.kernel_size,
            "accuracy_ks": bench.kernel_size, "batch": 1, **timing, "accuracy": bench.score(answers),
            "client": "httpx.Client, keep-alive, sequential; client-side wall time per request"}


def _batch(bench: Bench, client: httpx.Client) -> dict:
    p = bench.profile
    headers = {"content-type": "application/json"}
    post = lambda body: client.post("/psf/batch", params={"format": "npy"}, content=body, headers=headers)  # noqa: E731
    probe = post(_batch_body(bench, bench.conditions))
    if probe.status_code in (404, 405):
        return {"method": "ours over HTTP, POST /psf/batch (npy)", "available": False, "note": NOT_AVAILABLE,
                "status_code": probe.status_code}
    answers = _npy(probe)
    assert answers.shape == bench.reference.shape, f"POST /psf/batch answered {answers.shape}"
    body = _batch_body(bench, np.resize(bench.conditions, (p.batch, 3)))
    assert _npy(post(body)).shape[0] == p.batch, "POST /psf/batch answered the wrong number of PSFs"
    timing = throughput(lambda: post(body).raise_for_status(), p.batch, repeats=p.repeats, min_time_s=p.min_run_s)
    return {"method": f"ours over HTTP, POST /psf/batch {p.batch} (npy)", "kind": "ours_http", "available": True,
            "ks": bench.kernel_size, "accuracy_ks": bench.kernel_size, **timing, "accuracy": bench.score(answers),
            "client": "httpx.Client, keep-alive, sequential; JSON body encoded once"}
