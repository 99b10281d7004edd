"""What every benchmark shares: the model under test, the held-out conditions of its lens, the
converged ray-traced reference at the model's kernel size, and the error measures against it."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models_store import Manifest, Store, sha256_file
from training.config import ConditionsConfig, Range
from training.psf_metrics import all_errors, summarize
from training.raytrace import LensTracer
from training.reference import converged_reference, held_out_grid

from .profiles import Profile

ROOT = Path(__file__).resolve().parents[1]
CONDITIONS = ["field", "depth", "wavelength"]


class BenchError(RuntimeError):
    """The benchmark cannot run as asked (no such model, lens file changed, ...); the message says why."""


@dataclass
class Bench:
    profile: Profile
    threads: int
    cache: Path
    store: Store
    manifest: Manifest
    folder: Path  # the model version's folder in the store
    tracer: LensTracer
    ranges: ConditionsConfig
    conditions: np.ndarray  # [N, 3] held-out (field, depth m, wavelength nm)
    reference: np.ndarray  # [N, k, k] converged ray trace at the model's kernel size
    reference_info: dict

    @property
    def kernel_size(self) -> int:
        return self.manifest.kernel_size

    def model_summary(self) -> dict:
        m, t = self.manifest, self.manifest.training
        return {"name": m.name, "version": m.version, "kernel_size": m.kernel_size, "latent_size": m.latent_size,
                "lens": m.lens.model_dump(), "conditions": [c.model_dump() for c in m.conditions],
                "time_to_train_s": t.wall_time_s,
                "training": {"steps": t.steps, "ray_traced_samples": t.ray_traced_samples, "spp": t.spp},
                "evaluation_card": m.evaluation}

    def score(self, pred: np.ndarray) -> dict:
        """Errors of PSFs predicted at ``self.conditions`` against the reference (mean and p90)."""
        pred = np.asarray(pred, dtype=np.float32)
        assert pred.shape == self.reference.shape, f"predicted {pred.shape}, reference {self.reference.shape}"
        return {"points": len(pred), **summarize(all_errors(pred, self.reference))}


def ranges_of(manifest: Manifest) -> ConditionsConfig:
    if manifest.condition_names != CONDITIONS:
        raise BenchError(f"{manifest.name}@{manifest.version} takes {manifest.condition_names}; the benchmark "
                         f"knows models over {CONDITIONS} at a fixed focus")
    return ConditionsConfig(**{c.name: Range(min=c.min, max=c.max) for c in manifest.conditions})


def lens_file_of(manifest: Manifest) -> Path:
    path = ROOT / "lenses" / manifest.lens.file
    if not path.is_file():
        raise BenchError(f"the model was trained on lens {manifest.lens.file}, which is not in {path.parent}")
    if sha256_file(path) != manifest.lens.sha256:
        raise BenchError(f"{path} has changed since {manifest.name}@{manifest.version} was trained on it "
                         f"(sha256 differs from the manifest); ray tracing it would not be a fair reference")
    return path


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
    ranges = ranges_of(manifest)
    tracer = LensTracer(lens_file_of(manifest), manifest.lens.focus_m)
    conditions = held_out_grid(ranges, *profile.grid)
    started = time.perf_counter()
    reference = converged_reference(tracer, conditions, ks=manifest.kernel_size, rays=profile.reference_rays,
                                    cache_dir=cache / "references", progress=progress)
    info = {
        "rays_per_point": profile.reference_rays, "repeats_averaged": 4, "kernel_size": manifest.kernel_size,
        "points": len(conditions), "grid_field_depth_wavelength": list(profile.grid),
        "seconds_incl_cache": round(time.perf_counter() - started, 2),
        "conditions": np.round(conditions, 5).tolist(),
    }
    return Bench(profile=profile, threads=threads, cache=cache, store=store, manifest=manifest,
                 folder=store.version_dir(name, manifest.version), tracer=tracer, ranges=ranges,
                 conditions=conditions, reference=reference, reference_info=info)
