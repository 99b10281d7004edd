"""The surrogate's speed against ray tracing at the lens's own kernel, side by side in one process.

onnxruntime runs the published ``psf.onnx`` at batch 256 (in-range random conditions, ``threads``
intra-op threads); DeepLens traces the same kernel at 8192 rays per PSF, 64 PSFs per call sharing one
wavelength (its fastest layout), with torch on the same threads. Both are medians of repeated timed
runs after a warm-up. The issue's target: onnxruntime >= 1000x ray tracing.
"""

from __future__ import annotations

from pathlib import Path

BATCH, TRACE_BLOCK, TRACE_SPP = 256, 64, 8192


def measure(store: Path, name: str, cfg, *, threads: int = 2, repeats: int = 5) -> dict:
    """PSFs/s of the store's latest ``name`` (onnxruntime) and of DeepLens at its kernel, and their ratio."""
    import numpy as np
    import onnxruntime as ort
    import torch

    from models_store import Store
    from training.datasets import sample_conditions
    from training.export import random_conditions
    from training.raytrace import LensTracer

    from .timing import throughput

    version = Store(store).version_dir(name, None)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(str(version / "psf.onnx"), options, providers=["CPUExecutionProvider"])
    cond = random_conditions(cfg, BATCH, np.random.default_rng(0))
    onnx = throughput(lambda: session.run(["psf"], {"condition": cond}), BATCH, repeats=repeats, min_time_s=0.5)

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        tracer = LensTracer.for_run(cfg, seed=11)
        ks = int(cfg.data.kernel_size)
        rows = sample_conditions(cfg, TRACE_BLOCK, np.random.default_rng(3), block=TRACE_BLOCK)
        trace = throughput(lambda: tracer.psf_conditions(rows, ks=ks, spp=TRACE_SPP), TRACE_BLOCK,
                           repeats=max(2, repeats // 2))
    finally:
        torch.set_num_threads(before)
    return {"kernel_size": ks, "threads": threads, "onnx_batch": BATCH,
            "onnx_psfs_per_s": round(onnx["psfs_per_s"], 1), "raytrace_spp": TRACE_SPP,
            "raytrace_psfs_per_s": round(trace["psfs_per_s"], 2),
            "speedup": round(onnx["psfs_per_s"] / trace["psfs_per_s"], 1)}
