"""Training and held-out PSFs for the decoder comparison (benchmarks/decoders.py), per lens case.

A shipped lens's case takes its quick-start config (ranges, focus, sensor grid) at a fixed kernel size
(the lens's auto size), traces its training samples into a PSF bank and its held-out references on a
window ks/8 wider on each side (both cached as banks, so a rerun only trains). The synthetic case has
no lens: analytic PSFs (a defocus disk that grows and moves with field and depth, with a comatic tail)
at a size no shipped lens needs yet, to see how each decoder's cost grows with the kernel.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from training.config import load_config
from training.datasets import sample_conditions, training_conditions
from training.datasets.bank import PSFBank
from training.raytrace import LensTracer

HELD_OUT_SEED = 1000  # held-out conditions: same sampler as training, another seed


@dataclass(frozen=True)
class Case:
    name: str
    config: str | None  # a quick-start config, or None for the synthetic case
    kernel_size: int  # the lens's auto kernel (training.sizing; the quick-start runs' sizing.json)
    auto_spp: int | None = None  # the rays per training PSF that data.spp: auto gives this lens


CASES = {
    "cooke": Case("cooke", "configs/quickstart.yml", 32, 8192),
    "phone": Case("phone", "configs/phone-quickstart.yml", 64, 27648),
    "doublet": Case("doublet", "configs/achromat-quickstart.yml", 80, 83968),
    "synthetic128": Case("synthetic128", None, 128),
}
SYNTHETIC_CONFIG = "configs/quickstart.yml"  # its condition ranges; the PSFs are analytic


@dataclass
class CaseData:
    case: Case
    cfg: object  # RunConfig at this case's kernel size
    train_conditions: np.ndarray
    train_psfs: np.ndarray  # [N, k, k]
    test_conditions: np.ndarray
    test_reference: np.ndarray  # [M, w, w], w = k + 2 * (k // 8): whole-PSF window
    info: dict


def window_for(ks: int) -> int:
    return ks + 2 * max(2, ks // 8)


def load(case: Case, *, samples: int, spp: int, held_out: int, reference_spp: int, cache: Path,
         log=print) -> CaseData:
    overrides = [f"data.kernel_size={case.kernel_size}", f"data.train_samples={samples}", "data.block=32",
                 f"data.spp={spp}"]
    cfg = load_config(case.config or SYNTHETIC_CONFIG, overrides)
    train = training_conditions(cfg)
    test = sample_conditions(cfg, held_out, np.random.default_rng(HELD_OUT_SEED), block=held_out // 4)
    w = window_for(case.kernel_size)
    started = time.perf_counter()
    if case.config is None:
        train_psfs, reference = synthetic_psfs(train, case.kernel_size), synthetic_psfs(test, w)
        info = {"source": "analytic (defocus disk + comatic tail)", "trace_s": 0.0}
    else:
        tracer = LensTracer.for_run(cfg, seed=cfg.seed)
        log(f"  {case.name}: {samples} training PSFs at ks {case.kernel_size}, spp {spp}; {held_out} references "
            f"on {w} px at spp {reference_spp} (cached banks under {cache})")
        bank = PSFBank.load_or_build(tracer, train, ks=case.kernel_size, spp=spp, block=32, cache_dir=cache,
                                     progress=False)
        ref = PSFBank.load_or_build(tracer, test, ks=w, spp=reference_spp, block=held_out // 4, cache_dir=cache,
                                    progress=False)
        train_psfs, reference = bank.psfs, ref.psfs
        info = {"source": f"DeepLens, {cfg.lens.file}", "trace_s": round(time.perf_counter() - started, 1),
                "reused_banks": bank.reused and ref.reused}
    info.update({"samples": samples, "spp": spp, "held_out": held_out, "reference_spp": reference_spp,
                 "window": w, "kernel_size": case.kernel_size})
    return CaseData(case, cfg, train, train_psfs, test, reference, info)


def synthetic_psfs(conditions: np.ndarray, size: int) -> np.ndarray:
    """[N, size, size] unit-sum PSFs: a soft disk (radius from defocus in 1/depth and from field),
    shifted off the chief ray and stretched along +y with field (a comatic tail), turned by azimuth.
    Sized so the largest stays inside a kernel of ``size * 0.8``."""
    c = np.asarray(conditions, dtype=np.float64)
    field, inv_depth, wl = c[:, 0], 1.0 / c[:, 1], c[:, 2]
    azimuth = np.radians(c[:, 3]) if c.shape[1] > 3 else np.full(len(c), np.pi / 2)
    scale = 0.8 * size / 128.0
    radius = scale * (3.0 + 30.0 * np.abs(inv_depth - 0.1) / 0.4 + 12.0 * field**2) * (wl / 550.0)
    shift = scale * 10.0 * field**3
    axis = np.arange(size) - (size - 1) / 2.0
    yy, xx = np.meshgrid(axis, axis, indexing="ij")
    # coordinates in the frame of the field direction: u along it, v across
    cos, sin = np.cos(azimuth)[:, None, None], np.sin(azimuth)[:, None, None]
    u = xx[None] * cos - yy[None] * sin - shift[:, None, None]
    v = xx[None] * sin + yy[None] * cos
    stretch = 1.0 + 0.8 * field[:, None, None]
    r = np.sqrt((u / stretch) ** 2 + v**2)
    disk = 1.0 / (1.0 + np.exp((r - radius[:, None, None]) / 0.7))
    core = np.exp(-0.5 * (u**2 + v**2) / (0.35 * radius[:, None, None] + 0.5) ** 2)
    psf = disk + 2.0 * core * (1.0 - field[:, None, None])
    return (psf / psf.sum(axis=(1, 2), keepdims=True)).astype(np.float32)
