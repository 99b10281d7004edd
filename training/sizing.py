"""Kernel size and ray budgets of a run, read from its lens before any training sample is traced.

``data.kernel_size``, ``data.spp``, ``validation.spp``, ``evaluation.rays`` and ``evaluation.window``
may be ``auto``; :func:`resolve` replaces them with numbers from a probe of the lens over the run's
ranges, refuses an explicit kernel that clips a PSF (unless ``data.allow_clipping``), and says why it
chose what it chose. The probe is cached, so resuming a run resolves to the same numbers.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .config import AUTO_TRAINING_SPP, ConfigError, RunConfig
from .probe import (
    KERNEL_MARGIN,
    MIN_ENERGY_KEPT,
    SUPPORTED_KERNELS,
    WINDOW_KEEP,
    LensProbe,
    ProbePoint,
    probe_grid,
    probe_lens,
    ray_noise,
)
from .raytrace import LensTracer

PROBE_CACHE = Path(".cache") / "probes"
MAX_WINDOW = 512


def _round_rays(n: float, floor: int = 1024) -> int:
    return int(max(floor, math.ceil(n / 1024) * 1024))


@dataclass
class Sizing:
    """What was chosen, from what, and why (written to the run folder and summarised in the manifest)."""

    kernel_size: int
    kernel_source: str               # "auto" | "explicit"
    energy_kept_min: float           # worst probe point, at kernel_size
    energy_kept_mean: float
    worst_condition: str
    allow_clipping: bool
    spp: int
    validation_spp: int
    reference_rays: int
    reference_window: int
    spread_max: float                # S = sum sqrt(p) at the widest point (see training.probe)
    expected_noise: dict[str, float] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)
    probe: list[dict] = field(default_factory=list)

    def manifest_entry(self) -> dict:
        """The part the store keeps (GET /models/{name} shows it)."""
        keys = ("kernel_source", "energy_kept_min", "energy_kept_mean", "worst_condition",
                "allow_clipping", "spp", "reference_window", "expected_noise")
        data = asdict(self)
        return {k: data[k] for k in keys} | {"energy_dropped_max": round(1.0 - self.energy_kept_min, 6)}


def _probe_key(tracer: LensTracer, grid: np.ndarray, spp: int) -> str:
    digest = hashlib.sha256(tracer.cache_identity())
    digest.update(json.dumps([spp, 2]).encode())
    digest.update(np.ascontiguousarray(grid, dtype=np.float64).tobytes())
    return digest.hexdigest()[:20]


def probe_for(cfg: RunConfig, tracer: LensTracer, cache_dir: Path | None = PROBE_CACHE) -> LensProbe:
    """The lens probe over ``cfg``'s ranges (cached by lens bytes, focus, sensor grid and the grid)."""
    columns = ["field", "depth", "wavelength"] + (["focus"] if cfg.conditions.focus is not None else [])
    grid = probe_grid(cfg.conditions)
    spp = cfg.data.probe_spp
    path = None if cache_dir is None else Path(cache_dir) / f"probe-{_probe_key(tracer, grid, spp)}.npz"
    if path is not None and path.is_file():
        with np.load(path, allow_pickle=False) as data:
            points = json.loads(str(data["points"]))
            offsets = [(data[f"dx{i}"].astype(np.float64), data[f"dy{i}"].astype(np.float64))
                       for i in range(len(points))]
        return LensProbe([ProbePoint(**p) for p in points], offsets, spp)
    focus = tracer.focus_m
    try:
        probe = probe_lens(tracer, grid, columns, spp=spp, seed=cfg.seed + 77)
    finally:
        tracer.refocus(focus)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {f"d{axis}{i}": off[j].astype(np.float32)
                  for i, off in enumerate(probe.offsets) for j, axis in enumerate("xy")}
        tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")  # ranks of one run may probe at once
        np.savez_compressed(tmp, points=json.dumps(probe.to_json()), **arrays)
        tmp.replace(path)
    return probe


def resolve(cfg: RunConfig, probe: LensProbe) -> tuple[RunConfig, Sizing]:
    """``cfg`` with every ``auto`` replaced by a number, and the report of how. Raises ConfigError
    for an explicit kernel that drops more than 1 - MIN_ENERGY_KEPT somewhere without ``data.allow_clipping``."""
    d, v, e = cfg.data, cfg.validation, cfg.evaluation
    reasons: list[str] = []
    if d.kernel_size == "auto":
        ks = probe.auto_kernel()
        if ks is None:
            need = probe.size_needed()
            raise ConfigError(
                f"data.kernel_size: auto: this lens needs a {need} px kernel to keep {MIN_ENERGY_KEPT:.1%} of the "
                f"energy everywhere, above the largest supported size {SUPPORTED_KERNELS[-1]}; narrow the condition "
                "ranges (conditions.field / depth), or set data.kernel_size and data.allow_clipping: true")
        source = "auto"
        reasons.append(f"kernel {ks} px: the smallest of {list(SUPPORTED_KERNELS)} whose window holds "
                       f">= {MIN_ENERGY_KEPT:.1%} of every probed PSF with a "
                       f"{round((KERNEL_MARGIN - 1) * 100)} % margin on the half-width "
                       f"(plain need: {probe.size_needed()} px)")
    else:
        ks, source = int(d.kernel_size), "explicit"
    worst_i, worst_kept = probe.worst(ks)
    kept = probe.kept(ks)
    worst_label = probe.points[worst_i].label()
    if worst_kept < MIN_ENERGY_KEPT:
        message = (f"data.kernel_size = {ks} keeps only {worst_kept:.1%} of the PSF's energy at {worst_label} "
                   f"(at least {MIN_ENERGY_KEPT:.1%} is needed everywhere); "
                   f"a {probe.auto_kernel() or probe.size_needed()} px kernel is needed "
                   "(data.kernel_size: auto picks it)")
        if not d.allow_clipping:
            raise ConfigError(message + ", or set data.allow_clipping: true to accept the loss")
        reasons.append(f"clipping allowed: {message}")

    spread = max(p.spread for p in probe.points)

    def rays(value, noise: float | None, what: str, cap: int | None = None) -> int:
        if value != "auto":
            return int(value)
        assert noise is not None, f"{what}: auto needs a ray_noise"
        n = _round_rays(probe.rays_for_noise(noise))
        capped = cap is not None and n > cap
        n = min(n, cap) if cap is not None else n
        reasons.append(f"{what} {n} rays: expected ray noise {ray_noise(spread, n):.4f} relative L1 at the widest "
                       f"PSF (S = {spread:.1f})" + (f", capped from the {noise} target by evaluation.max_rays"
                                                   if capped else f" (target {noise})"))
        return n

    if d.spp == "auto" and d.ray_noise is None:
        spp = AUTO_TRAINING_SPP
        reasons.append(f"training spp {spp} rays (expected ray noise {ray_noise(spread, spp):.3f} relative L1 at the "
                       "widest PSF): the likelihood loss is unbiased at any ray count, so rays go to more conditions "
                       f"({d.train_samples} samples x {d.rounds} round(s)) rather than to smoother samples")
    else:
        spp = rays(d.spp, d.ray_noise, "training spp")
    validation_spp = rays(v.spp, v.ray_noise, "validation spp")
    reference_rays = rays(e.rays, e.ray_noise, "reference", cap=e.max_rays)
    if e.window == "auto":
        # at least an eighth of the kernel beyond it on each side, so a PSF wider than the probe saw shows
        window = max(ks + 2 * math.ceil(ks / 8), min(MAX_WINDOW, probe.window(WINDOW_KEEP)))
        window += (window - ks) % 2  # same parity as the kernel: the kernel is a centred crop of it
        reasons.append(f"reference window {window} px: holds {WINDOW_KEEP:.2%} of every probed PSF with the margin, "
                       "and reaches beyond the kernel by at least ks/8 a side")
    else:
        window = int(e.window)
        if window < ks or (window - ks) % 2:
            raise ConfigError(f"evaluation.window = {window}: must be >= data.kernel_size ({ks}) and differ from "
                              "it by an even number of pixels (the kernel is a centred crop of the window)")

    resolved = cfg.model_copy(update={
        "data": d.model_copy(update={"kernel_size": ks, "spp": spp}),
        "validation": v.model_copy(update={"spp": validation_spp}),
        "evaluation": e.model_copy(update={"rays": reference_rays, "window": window}),
    })
    sizing = Sizing(
        kernel_size=ks, kernel_source=source, energy_kept_min=round(worst_kept, 6),
        energy_kept_mean=round(float(kept.mean()), 6), worst_condition=worst_label, allow_clipping=d.allow_clipping,
        spp=spp, validation_spp=validation_spp, reference_rays=reference_rays, reference_window=window,
        spread_max=round(spread, 2),
        expected_noise={what: round(ray_noise(spread, n), 4) for what, n in
                        (("training", spp), ("validation", validation_spp), ("reference", reference_rays))},
        reasons=reasons, probe=probe.to_json())
    return resolved, sizing


def size_run(cfg: RunConfig, tracer: LensTracer) -> tuple[RunConfig, Sizing]:
    resolved, sizing = resolve(cfg, probe_for(cfg, tracer))
    if tracer.optics_decision is not None:  # the kernel includes the Airy pattern when diffraction is on
        sizing.reasons.insert(0, tracer.optics_decision.reason())
    return resolved, sizing
