"""Turn a finished run into a store version (the manifest is models_store's schema)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from models_store import ConditionSpec, GraphSpec, LensInfo, Manifest, Store, TrainingSummary

from .config import RunConfig


def condition_specs(cfg: RunConfig) -> list[ConditionSpec]:
    r = cfg.conditions
    return [
        ConditionSpec(name="field", unit="1", min=r.field.min, max=r.field.max,
                      description="image height as a fraction of the sensor half-diagonal"),
        ConditionSpec(name="depth", unit="m", min=r.depth.min, max=r.depth.max, description="object distance"),
        ConditionSpec(name="wavelength", unit="nm", min=r.wavelength.min, max=r.wavelength.max,
                      description="vacuum wavelength"),
    ]


def publish_run(cfg: RunConfig, store: Store, run_dir: Path, *, lens: LensInfo, lens_path: Path,
                graphs: dict[str, GraphSpec], training: TrainingSummary, evaluation: dict) -> Manifest:
    files = {spec.file: run_dir / "onnx" / spec.file for spec in graphs.values()}
    files[lens.file] = lens_path
    for extra in ("metrics.json", "psf_comparison.png", "config.yaml"):
        if (run_dir / extra).is_file():
            files[extra] = run_dir / extra
    fields = {
        "created": datetime.now(UTC),
        "lens": lens,
        "conditions": condition_specs(cfg),
        "kernel_size": cfg.data.kernel_size,
        "latent_size": cfg.model.latent_size,
        "symmetry": "rotational",
        "graphs": graphs,
        "training": training,
        "evaluation": evaluation,
    }
    return store.publish(cfg.name, files, fields)
