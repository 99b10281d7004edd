"""Turn a finished run into a store version (the manifest is models_store's schema)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from models_store import ConditionSpec, GraphSpec, KernelSizing, LensInfo, Manifest, Store, TrainingSummary
from models_store.geometry import GeometryTable

from .config import RunConfig

UNITS = {
    "field": ("1", "image height as a fraction of the sensor half-diagonal"),
    "depth": ("m", "object distance"),
    "wavelength": ("nm", "vacuum wavelength"),
    "focus": ("m", "focus distance"),
    "azimuth": ("deg", "direction of the field point, 0 = +x, counter-clockwise; other quadrants are mirrored"),
}


def condition_specs(cfg: RunConfig) -> list[ConditionSpec]:
    return [ConditionSpec(name=name, unit=UNITS[name][0], min=lo, max=hi, description=UNITS[name][1])
            for name, lo, hi in cfg.conditions.columns()]


def publish_run(cfg: RunConfig, store: Store, run_dir: Path, *, lens: LensInfo, lens_path: Path,
                graphs: dict[str, GraphSpec], latent_size: int, training: TrainingSummary, evaluation: dict,
                sizing: KernelSizing | None = None, geometry: GeometryTable | None = None) -> Manifest:
    files = {spec.file: run_dir / "onnx" / spec.file for spec in graphs.values()}
    files[lens.file] = lens_path
    for extra in ("evaluation.json", "error_maps.png"):
        if (run_dir / "evaluation" / extra).is_file():
            files[extra] = run_dir / "evaluation" / extra
    for extra in ("metrics.json", "config.yaml", "model_args.json", "sizing.json"):
        if (run_dir / extra).is_file():
            files[extra] = run_dir / extra
    fields = {
        "created": datetime.now(UTC),
        "lens": lens,
        "conditions": condition_specs(cfg),
        "kernel_size": cfg.data.kernel_size,
        "sizing": sizing,
        "latent_size": latent_size,
        "symmetry": "mirror" if "azimuth" in cfg.conditions.names() else "rotational",
        "graphs": graphs,
        "training": training,
        "evaluation": evaluation,
        "geometry": geometry,
    }
    return store.publish(cfg.name, files, fields)
