"""python -m benchmarks.gpu_check --store DIR [--model NAME] [--out FILE] [--dry-run]

The GPU path, measured on a GPU machine: PSFs/s of the PSF graph at batch 1 / 256 / 4096 through
the CUDA execution provider (and TensorRT when onnxruntime has it), with ``session.run`` (answers
copied to the host) and with IOBinding (answers left on the device); ``GET /psf`` p50 from the real
server on the GPU; and the largest absolute difference of the GPU answers from the CPU provider's.
``--dry-run`` runs every step with the CPU provider in place of the GPU ones (to check the script on
a machine without a GPU); its figures are labelled so. benchmarks/gpu_check.sh wraps it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from models_store import Store
from models_store.engine import OnnxModel, choose_providers

from .serving_bench import random_conditions, single_latency, start_server, stop_server
from .timing import throughput

BATCHES = (1, 256, 4096)
TARGET_PSFS_PER_S, TARGET_KERNEL = 1e6, 64


def gpu_name() -> str | None:
    if shutil.which("nvidia-smi") is None:
        return None
    out = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"],
                         capture_output=True, text=True, timeout=30)
    return out.stdout.strip() or None


def provider_sets(dry_run: bool) -> dict[str, list[Any]]:
    """Label -> the provider list of one measured configuration."""
    if dry_run:
        return {"cpu (dry run, in place of cuda)": ["CPUExecutionProvider"]}
    available = ort.get_available_providers()
    if "CUDAExecutionProvider" not in available:
        raise SystemExit(f"error: onnxruntime offers {available}, no CUDAExecutionProvider: install '.[gpu]' "
                         "(onnxruntime-gpu) on a machine with an NVIDIA GPU, or pass --dry-run")
    sets = {"cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"]}
    trt = [p for p in choose_providers(True, tensorrt=True) if not isinstance(p, str)]
    if trt:
        sets["tensorrt"] = [trt[0], "CUDAExecutionProvider", "CPUExecutionProvider"]
    return sets


def bound_runner(model: OnnxModel, condition: np.ndarray, device: str):
    """One IOBinding call of the PSF graph: the conditions on the device, the answer left there."""
    session, graph = model.sessions["psf"], model.manifest.graphs["psf"]
    value = ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(condition, dtype=np.float32), device, 0)

    def call() -> None:
        binding = session.io_binding()
        binding.bind_ortvalue_input(graph.inputs[0], value)
        binding.bind_output(graph.outputs[0], device, 0)
        session.run_with_iobinding(binding)
    return call


def measure_provider(store: Store, name: str, providers: list[Any], conditions: np.ndarray, reference: np.ndarray,
                     device: str, min_time_s: float) -> dict[str, Any]:
    model = OnnxModel.from_store(store, name, providers=providers)
    active = model.sessions["psf"].get_providers()
    out: dict[str, Any] = {"providers": active, "batches": {}}
    for batch in BATCHES:
        cond = conditions[:batch]
        run = throughput(lambda c=cond: model.psf_from_condition(c), batch, repeats=5, min_time_s=min_time_s, warmup=3)
        bound = throughput(bound_runner(model, cond, device), batch, repeats=5, min_time_s=min_time_s, warmup=3)
        out["batches"][str(batch)] = {"session_run_psfs_per_s": run["psfs_per_s"],
                                      "iobinding_psfs_per_s": bound["psfs_per_s"]}
    got = model.psf_from_condition(conditions)
    out["max_abs_diff_vs_cpu"] = float(np.abs(got - reference).max())
    out["max_rel_diff_vs_cpu"] = float(np.abs(got - reference).max() / reference.max())
    return out


def http_p50(store: Store, dry_run: bool, name: str, requests: int) -> dict[str, Any]:
    env = {"PSF_PREFER_GPU": "false" if dry_run else "true", "PSF_CACHE_MB": "0", "PSF_DEFAULT_MODEL": name}
    log = Path(tempfile.mkdtemp(prefix="gpu-check-")) / "server.log"
    proc, port = start_server(store.root, env, log)
    try:
        columns = random_conditions(store.manifest(name), requests, np.random.default_rng(1))
        result = asyncio.run(single_latency(port, columns, requests, repeat=False))
        import httpx

        result["server_providers"] = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=10).json()["providers"]
    finally:
        stop_server(proc)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu_check", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", required=True)
    parser.add_argument("--model", default=None, help="model name (default: the store's first)")
    parser.add_argument("--out", default="bench_out/gpu_check.json")
    parser.add_argument("--dry-run", action="store_true", help="the CPU provider in place of CUDA / TensorRT")
    parser.add_argument("--min-time", type=float, default=0.5, help="shortest timed run [s]")
    parser.add_argument("--requests", type=int, default=500, help="GET /psf requests for the p50")
    args = parser.parse_args(argv)
    store = Store(args.store)
    models = store.models()
    if not models:
        parser.error(f"--store={args.store!r} holds no models: fit one or give the store shipped with the check")
    name = args.model or models[0]
    manifest = store.manifest(name)
    rng = np.random.default_rng(0)
    spec = {c.name: c for c in manifest.conditions}
    conditions = np.stack([rng.uniform(spec[n].min, spec[n].max, max(BATCHES)) for n in manifest.condition_names],
                          axis=1).astype(np.float32)
    reference = OnnxModel.from_store(store, name, providers=["CPUExecutionProvider"]).psf_from_condition(conditions)
    device = "cpu" if args.dry_run else "cuda"
    report: dict[str, Any] = {
        "dry_run": args.dry_run, "model": f"{name}@{manifest.version}", "kernel_size": manifest.kernel_size,
        "onnxruntime": ort.__version__, "available_providers": ort.get_available_providers(),
        "gpu": gpu_name(), "python": sys.version.split()[0], "machine": platform.node(),
        "providers": {label: measure_provider(store, name, providers, conditions, reference, device, args.min_time)
                      for label, providers in provider_sets(args.dry_run).items()},
        "http_get_psf": http_p50(store, args.dry_run, name, args.requests),
    }
    best = max(p["batches"][str(max(BATCHES))]["iobinding_psfs_per_s"] for p in report["providers"].values())
    report["target"] = {"psfs_per_s": TARGET_PSFS_PER_S, "kernel_size": TARGET_KERNEL, "best_psfs_per_s": best,
                        "met": (None if args.dry_run or manifest.kernel_size != TARGET_KERNEL
                                else bool(best >= TARGET_PSFS_PER_S))}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    label = "DRY RUN (CPU provider in place of the GPU): " if args.dry_run else ""
    for provider, figures in report["providers"].items():
        rates = ", ".join(f"batch {b}: {v['session_run_psfs_per_s']:,.0f} / {v['iobinding_psfs_per_s']:,.0f}"
                          for b, v in figures["batches"].items())
        print(f"{label}{provider} {figures['providers'][0]}: PSFs/s (run / IOBinding) {rates}; "
              f"max |diff| vs CPU {figures['max_abs_diff_vs_cpu']:.2e}")
    http_get = report["http_get_psf"]
    print(f"{label}GET /psf p50 {http_get['p50_ms']:.2f} ms on {http_get['server_providers']}; "
          f"ks {manifest.kernel_size}; target >= {TARGET_PSFS_PER_S:.0e} PSFs/s at ks {TARGET_KERNEL}: "
          f"{report['target']['met']} -> {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
