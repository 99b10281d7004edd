"""What every benchmark shares: the model under test and its training config, the held-out conditions
of its lens (the evaluation card's grid, azimuth included), the converged ray-traced reference at the
model's kernel size, and the error measures against it."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import ValidationError

from models_store import Manifest, Store, sha256_file
from training.config import RunConfig
from training.evaluate import evaluation_conditions
from training.predictors import evaluation_columns
from training.psf_metrics import all_errors, embed, summarize
from training.raytrace import LensTracer
from training.reference import converged_reference

from .profiles import Profile

ROOT = Path(__file__).resolve().parents[1]


class BenchError(RuntimeError):
    """The benchmark cannot run as asked (no such model, lens file changed, ...); the message says why."""


@dataclass
class Bench:
    profile: Profile
    threads: int
    cache: Path
    store: Store
    manifest: Manifest
    cfg: RunConfig  # the model's training config, from its manifest
    folder: Path  # the model version's folder in the store
    tracer: LensTracer
    columns: list[str]  # of ``conditions``: the model's, plus azimuth last for a meridional model
    conditions: np.ndarray  # [N, len(columns)] held-out conditions
    reference: np.ndarray  # [N, w, w] converged ray trace on the whole-PSF window (w = window >= k)
    reference_info: dict

    @property
    def kernel_size(self) -> int:
        return self.manifest.kernel_size

    @property
    def window(self) -> int:
        return self.reference.shape[-1]

    def model_input(self, conditions: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Held-out rows (or ``conditions`` in the same columns) -> (model conditions [N, C] float32,
        azimuth [N] deg): what OnnxModel.psf_at takes, and what the server computes per query."""
        rows = self.conditions if conditions is None else np.asarray(conditions)
        n = len(self.manifest.condition_names)
        return rows[:, :n].astype(np.float32), rows[:, self.columns.index("azimuth")].astype(np.float64)

    def column(self, name: str, conditions: np.ndarray | None = None) -> np.ndarray:
        rows = self.conditions if conditions is None else conditions
        return rows[:, self.columns.index(name)]

    def score(self, pred: np.ndarray) -> dict:
        """Errors of PSFs predicted at ``self.conditions`` against the reference (mean and p90)."""
        pred = np.asarray(pred, dtype=np.float32)
        if pred.shape[-1] < self.window:  # a kernel is scored whole: what it leaves out counts as error
            pred = embed(pred, self.window)
        assert pred.shape == self.reference.shape, f"predicted {pred.shape}, reference {self.reference.shape}"
        return {"points": len(pred), **summarize(all_errors(pred, self.reference))}

    def model_summary(self) -> dict:
        m, t = self.manifest, self.manifest.training
        return {"name": m.name, "version": m.version, "kernel_size": m.kernel_size, "latent_size": m.latent_size,
                "symmetry": m.symmetry, "lens": m.lens.model_dump(),
                "conditions": [c.model_dump() for c in m.conditions],
                "time_to_train_s": t.wall_time_s,
                "training": {"steps": t.steps, "ray_traced_samples": t.ray_traced_samples, "spp": t.spp},
                "evaluation_card": m.evaluation}


def lens_file_of(manifest: Manifest) -> Path:
    path = ROOT / "lenses" / manifest.lens.file
    if not path.is_file():
        raise BenchError(f"the model was trained on lens {manifest.lens.file}, which is not in {path.parent}")
    if sha256_file(path) != manifest.lens.sha256:
        raise BenchError(f"{path} has changed since {manifest.name}@{manifest.version} was trained on it "
                         f"(sha256 differs from the manifest); ray tracing it would not be a fair reference")
    return path


def run_config(manifest: Manifest, lens_file: Path) -> RunConfig:
    """The config the model was trained with, its lens path made absolute (runs from any folder)."""
    data = {**manifest.training.config, "lens": {**manifest.training.config["lens"], "file": str(lens_file)}}
    try:
        return RunConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise BenchError(f"{manifest.name}@{manifest.version}: its training config does not validate against "
                         f"training.config ({'.'.join(map(str, first['loc']))}: {first['msg']})") from None


def load(store_root: Path | None, name: str | None, version: str | None, profile: Profile, *, threads: int,
         cache: Path, progress: bool = True) -> Bench:
    store = Store(store_root)
    models = store.models()
    if not models:
        raise BenchError(f"the store {store.root} holds no models; train one with "
                         f"`python -m training.fit configs/quickstart.yml --store {store.root}`")
    name = name or models[0]
    if name not in models:
        raise BenchError(f"model {name!r} is not in the store {store.root} (models: {', '.join(models)})")
    manifest = store.manifest(name, version, verify=True)
    lens_file = lens_file_of(manifest)
    cfg = run_config(manifest, lens_file)
    tracer = LensTracer.for_run(cfg, seed=cfg.seed)
    # the evaluation card's held-out points (same seeds), at the profile's grid size and ray count
    evaluation = cfg.evaluation.model_copy(update={"grid": profile.grid, "rays": profile.reference_rays,
                                                   "repeats": profile.reference_repeats})
    conditions = evaluation_conditions(cfg.model_copy(update={"evaluation": evaluation}))[0]
    columns = evaluation_columns(cfg.conditions.names())
    started = time.perf_counter()
    # the window the model's own evaluation used (older manifests without sizing: the kernel itself)
    window = manifest.sizing.reference_window if manifest.sizing is not None else manifest.kernel_size
    reference = converged_reference(tracer, conditions, ks=window, rays=profile.reference_rays,
                                    repeats=profile.reference_repeats, cache_dir=cache / "references",
                                    progress=progress, columns=columns)
    info = {
        "rays_per_point": profile.reference_rays, "independent_traces": profile.reference_repeats,
        "kernel_size": manifest.kernel_size, "window": window, "points": len(conditions),
        "grid_field_depth_wavelength": list(profile.grid), "columns": columns,
        "azimuth": "one per (field, wavelength) row of depths, as in training.evaluate",
        "seconds_incl_cache": round(time.perf_counter() - started, 2),
        "conditions": np.round(conditions, 5).tolist(),
    }
    return Bench(profile=profile, threads=threads, cache=cache, store=store, manifest=manifest, cfg=cfg,
                 folder=store.version_dir(name, manifest.version), tracer=tracer, columns=columns,
                 conditions=conditions, reference=reference, reference_info=info)
