"""How much each benchmark does: the full suite, ``--quick`` (a smoke check under 3 minutes) and
``--smoke`` (the test suite's tiny setting). Every figure in the output names the profile it came from.

The held-out points are those of training.evaluate (same seeds) at the profile's grid size."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Profile:
    name: str
    grid: tuple[int, int, int]  # held-out conditions: field x depth x wavelength
    reference_rays: int  # rays per reference PSF (converged_reference)
    reference_repeats: int  # independent traces averaged into each reference PSF
    spp: tuple[int, ...]  # ray-trace rows
    raytrace_ks: int  # kernel size of the ray-trace throughput rows (the ks 64)
    raytrace_batches: tuple[int, ...]  # batch sizes probed; the fastest is used
    raytrace_repeats: int
    repeats: int  # timed runs of every in-process figure (median reported)
    min_run_s: float  # each timed run of a fast call lasts at least this long
    http_requests: int  # sequential GET /psf requests for p50 / p99
    batch: int  # the "batched" figure's batch size (in-process and POST /psf/batch)
    psfnet_samples: int | None  # None = as many as our model was trained on
    psfnet_steps: int | None  # None = as many optimiser steps as our model took (--psfnet-steps overrides)
    psfnet_conv_batch: int  # batch of the (untrained) default PSFNet_MLPConv throughput row
    bandwidth_mib: int  # array copied to measure memory bandwidth
    matmul_n: int  # n x n float32 matmul to measure the compute rate
    label: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


FULL = Profile(
    name="full", grid=(4, 4, 3), reference_rays=2**21, reference_repeats=4, spp=(2048, 8192, 32768),
    raytrace_ks=64, raytrace_batches=(1, 4, 16, 64, 256), raytrace_repeats=5, repeats=7, min_run_s=0.2,
    http_requests=2000, batch=256, psfnet_samples=None, psfnet_steps=None, psfnet_conv_batch=64, bandwidth_mib=256,
    matmul_n=1024,
)

QUICK = Profile(
    name="quick", grid=(3, 3, 2), reference_rays=2**19, reference_repeats=2, spp=(2048, 8192, 32768),
    raytrace_ks=64, raytrace_batches=(8, 32), raytrace_repeats=3, repeats=5, min_run_s=0.1, http_requests=300,
    batch=256, psfnet_samples=512, psfnet_steps=300, psfnet_conv_batch=8, bandwidth_mib=64, matmul_n=512,
    label="QUICK smoke check: 18 held-out points, 2^19-ray reference, PSFNet on 512 samples / 300 steps; "
          "not the benchmark",
)

SMOKE = Profile(
    name="smoke", grid=(2, 2, 2), reference_rays=2**16, reference_repeats=2, spp=(256, 1024), raytrace_ks=16,
    raytrace_batches=(4,), raytrace_repeats=2, repeats=2, min_run_s=0.0, http_requests=30, batch=32,
    psfnet_samples=32, psfnet_steps=20, psfnet_conv_batch=1, bandwidth_mib=8, matmul_n=128,
    label="SMOKE test setting: tiny everything; the figures mean nothing",
)

PROFILES = {p.name: p for p in (FULL, QUICK, SMOKE)}
