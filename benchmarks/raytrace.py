"""DeepLens ray tracing (mono, geometric PSF) at several ray counts: throughput and accuracy.

Throughput is measured at the profile's kernel size (ks 64 in the full suite, as the issue asks) on
batches of held-out points at one wavelength (DeepLens traces many points per call at one wavelength),
with the batch size probed for the fastest. Accuracy is measured at the model's kernel size, against
the same converged reference as every other method. Points are traced at their azimuth: ray tracing
pays nothing extra for it.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from .fixtures import Bench
from .timing import throughput

# N points x spp rays are traced in one call; past this many rays the intermediate tensors take GBs
MAX_RAYS_PER_CALL = 2**22


def batch_rows(bench: Bench, batch: int) -> np.ndarray:
    """``batch`` held-out rows (repeated when there are fewer) moved to the middle wavelength (and focus,
    when it is a condition): one DeepLens call."""
    rows = np.resize(bench.conditions, (batch, bench.conditions.shape[1])).copy()
    for name in ("wavelength", "focus"):
        r = getattr(bench.cfg.conditions, name)
        if r is not None:
            rows[:, bench.columns.index(name)] = 0.5 * (r.min + r.max)
    return rows


def _trace(bench: Bench, rows: np.ndarray, ks: int, spp: int) -> np.ndarray:
    return bench.tracer.psf_conditions(rows, ks=ks, spp=spp, columns=bench.columns)


def fastest_batch(bench: Bench, spp: int, ks: int) -> tuple[int, dict[int, float]]:
    """Time one call per candidate batch size (after one warm-up call); return the fastest and the probe."""
    candidates = [b for b in bench.profile.raytrace_batches if b * spp <= MAX_RAYS_PER_CALL] or [1]
    probe: dict[int, float] = {}
    _trace(bench, batch_rows(bench, candidates[0]), ks, spp)  # warm-up: first-call allocations
    for batch in candidates:
        rows = batch_rows(bench, batch)
        start = time.perf_counter()
        _trace(bench, rows, ks, spp)
        probe[batch] = round(batch / (time.perf_counter() - start), 3)
    return max(probe, key=probe.get), probe


def run(bench: Bench, log=print) -> list[dict]:
    p, k = bench.profile, bench.kernel_size
    torch.set_num_threads(bench.threads)
    rows = []
    for spp in p.spp:
        batch, probe = fastest_batch(bench, spp, p.raytrace_ks)
        points = batch_rows(bench, batch)
        timing = throughput(lambda points=points, spp=spp: _trace(bench, points, p.raytrace_ks, spp), batch,
                            repeats=p.raytrace_repeats, warmup=0)
        start = time.perf_counter()
        pred = _trace(bench, bench.conditions, bench.window, spp)  # on the reference's whole-PSF window
        accuracy_s = time.perf_counter() - start
        row = {
            "method": f"DeepLens ray trace, spp {spp}", "kind": "raytrace", "spp": spp,
            "ks": p.raytrace_ks, **timing, "batch_probe_psfs_per_s": probe,
            "accuracy_ks": k, "accuracy": bench.score(pred),
            # the accuracy pass at the model's kernel size, timed once (all held-out points, per wavelength)
            "psfs_per_s_at_accuracy_ks": len(pred) / accuracy_s,
        }
        rows.append(row)
        log(f"  ray trace spp {spp:6d}: {row['psfs_per_s']:9.1f} PSFs/s (ks {p.raytrace_ks}, batch {batch}), "
            f"rel L1 {row['accuracy']['rel_l1_mean']:.4f} (ks {k})")
    return rows
