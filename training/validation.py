"""Validation during training (and --validate-only): a fixed held-out set, metrics and figures."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .config import RunConfig
from .datasets import sample_conditions
from .figures import comparison_figure
from .predictors import Predictor, evaluation_columns, predict_oriented
from .psf_metrics import all_errors, embed, summarize
from .raytrace import LensTracer
from .reference import adaptive_reference

FIGURE_AZIMUTH = 30.0  # off the meridian and off the axes, where orientation mistakes show


class Validator:
    """Held-out conditions drawn with their own seed, traced once (cached on disk) on the whole-PSF window
    (evaluation.window), so what the kernel leaves out counts as error. Each is traced until its own noise
    is validation.ray_noise, at most validation.spp rays (training.reference.adaptive_reference)."""

    def __init__(self, cfg: RunConfig, tracer: LensTracer, *, progress: bool = True) -> None:
        self.cfg, v = cfg, cfg.validation
        self.window = int(cfg.evaluation.window)
        rng = np.random.default_rng(cfg.seed + 1_000_003)
        names = cfg.conditions.names()
        self.columns = evaluation_columns(names)
        self.conditions = sample_conditions(cfg, v.samples, rng, block=max(1, v.samples // 8))
        if "azimuth" not in names:  # a meridional model is validated off the meridian too, as served
            self.conditions = np.concatenate([self.conditions, rng.uniform(0, 90, (v.samples, 1))], 1)
        self.reference = self._reference(tracer, self.conditions, progress)
        r = cfg.conditions
        self.fields = [r.field.min, r.field.min + 0.5 * (r.field.max - r.field.min), r.field.max]
        self.depths = list(1.0 / np.linspace(1.0 / r.depth.max, 1.0 / r.depth.min, 3))
        extra = [] if r.focus is None else [0.5 * (r.focus.min + r.focus.max)]
        wl = 0.5 * (r.wavelength.min + r.wavelength.max)
        az = FIGURE_AZIMUTH if r.azimuth is None else min(max(FIGURE_AZIMUTH, r.azimuth.min), r.azimuth.max)
        self.figure_conditions = np.array([[f, z, wl, *extra, az] for f in self.fields for z in self.depths])
        self.figure_reference = self._reference(tracer, self.figure_conditions, progress)

    def _reference(self, tracer: LensTracer, conditions: np.ndarray, progress: bool) -> np.ndarray:
        v = self.cfg.validation
        return adaptive_reference(tracer, conditions, ks=self.window, noise=v.ray_noise, max_rays=int(v.spp),
                                  pass_rays=max(2**14, int(v.spp) // 16), cache_dir=self.cfg.evaluation.cache_dir,
                                  progress=progress, columns=self.columns)[0]

    def run(self, predictor: Predictor, out_dir: Path, tag: str) -> dict:
        pred = embed(predict_oriented(predictor, self.conditions), self.window)
        metrics = summarize(all_errors(pred, self.reference))
        metrics["reference_spp"] = self.cfg.validation.spp
        out_dir.mkdir(parents=True, exist_ok=True)
        figure = out_dir / f"{tag}.png"
        predicted = embed(predict_oriented(predictor, self.figure_conditions), self.window)
        azimuth = self.figure_conditions[0, -1]
        comparison_figure(predicted, self.figure_reference, self.fields, self.depths,
                          f"{predictor.name} {tag}: predicted vs ray-traced at azimuth {azimuth:.0f} deg", figure)
        with open(out_dir / "metrics.jsonl", "a") as fh:
            fh.write(json.dumps({"tag": tag, **metrics}) + "\n")
        metrics["figure"] = str(figure)
        return metrics
