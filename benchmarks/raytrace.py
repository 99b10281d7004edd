"""DeepLens ray tracing (mono, geometric PSF) at several ray counts: throughput and accuracy.

Throughput is measured at the profile's kernel size (ks 64 in the full suite, as the issue asks) on
batches of held-out points at one wavelength (DeepLens traces many points per call at one wavelength),
with the batch size probed for the fastest. Accuracy is measured at the model's kernel size, against
the same converged reference as every other method.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from .setup import Bench
from .timing import throughput

# N points x spp rays are traced in one call; past this many rays the intermediate tensors take GBs
MAX_RAYS_PER_CALL = 2**22


def _batch_points(bench: Bench, batch: int) -> tuple[np.ndarray, np.ndarray, float]:
    """``batch`` held-out (field, depth) pairs (repeated when there are fewer) at the middle wavelength."""
    rows = np.resize(np.arange(len(bench.conditions)), batch)
    wl = 0.5 * (bench.ranges.wavelength.min + bench.ranges.wavelength.max)
    return bench.conditions[rows, 0], bench.conditions[rows, 1], wl


def fastest_batch(bench: Bench, spp: int, ks: int) -> tuple[int, dict[int, float]]:
    """Time one call per candidate batch size (after one warm-up call); return the fastest and the probe."""
    candidates = [b for b in bench.profile.raytrace_batches if b * spp <= MAX_RAYS_PER_CALL] or [1]
    probe: dict[int, float] = {}
    field, depth, wl = _batch_points(bench, candidates[0])
    bench.tracer.psf(field, depth, wl, ks=ks, spp=spp)  # warm-up: first-call allocations
    for batch in candidates:
        field, depth, wl = _batch_points(bench, batch)
        start = time.perf_counter()
        bench.tracer.psf(field, depth, wl, ks=ks, spp=spp)
        probe[batch] = round(batch / (time.perf_counter() - start), 3)
    return max(probe, key=probe.get), probe


def run(bench: Bench, log=print) -> list[dict]:
    p, k = bench.profile, bench.kernel_size
    torch.set_num_threads(bench.threads)
    rows = []
    for spp in p.spp:
        batch, probe = fastest_batch(bench, spp, p.raytrace_ks)
        field, depth, wl = _batch_points(bench, batch)
        timing = throughput(lambda: bench.tracer.psf(field, depth, wl, ks=p.raytrace_ks, spp=spp), batch,
                            repeats=p.raytrace_repeats, warmup=0)
        start = time.perf_counter()
        pred = bench.tracer.psf_conditions(bench.conditions, ks=k, spp=spp)
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
