"""python -m training.fit CONFIG.yml [--store DIR] [key=value ...]

Ray-trace PSFs of the configured lens, fit the conditional VAE, measure it against fresh ray tracing,
export the ONNX graphs, check them against torch, and publish a new version to the model store.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from omegaconf import OmegaConf
from safetensors.torch import save_file

from models_store import Store, StoreError, TrainingSummary, default_store_root

from .config import ConfigError, RunConfig, load_config
from .data import RayTracedPSFs, sample_conditions
from .export import ExportError, check_parity, export_onnx
from .metrics import comparison_figure, held_out_metrics
from .model import CVAE, CVAEArgs
from .publish import publish_run
from .raytrace import LensTracer
from .loop import train

log = logging.getLogger("training.fit")


def build_model(cfg: RunConfig) -> CVAE:
    r = cfg.conditions
    args = CVAEArgs(
        kernel_size=cfg.data.kernel_size, latent_size=cfg.model.latent_size, hidden=cfg.model.hidden,
        depth=cfg.model.depth, field_range=(r.field.min, r.field.max), depth_range=(r.depth.min, r.depth.max),
        wavelength_range=(r.wavelength.min, r.wavelength.max),
    )
    return CVAE(args)


def make_run_dir(cfg: RunConfig) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    run_dir = cfg.run_dir / f"{cfg.name}-{stamp}"
    suffix = 1
    while run_dir.exists():
        suffix += 1
        run_dir = cfg.run_dir / f"{cfg.name}-{stamp}-{suffix}"
    (run_dir / "onnx").mkdir(parents=True)
    return run_dir


def run(cfg: RunConfig, store: Store) -> dict:
    started = time.perf_counter()
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    set_seed(cfg.seed)
    accelerator = Accelerator(mixed_precision=cfg.train.mixed_precision)
    run_dir = make_run_dir(cfg)
    OmegaConf.save(OmegaConf.create(cfg.model_dump(mode="json")), run_dir / "config.yaml")
    accelerator.print(f"run folder {run_dir}")

    tracer = LensTracer(cfg.lens.file, cfg.lens.focus_m)
    lens = tracer.info()
    accelerator.print(f"lens {lens.file}: f={lens.focal_length_mm:.2f} mm, f/{lens.f_number:.2f}, "
                      f"pixel {lens.pixel_pitch_um:.1f} um, focus {cfg.lens.focus_m or 'inf'} m")

    d = cfg.data
    conditions = sample_conditions(cfg.conditions, d.train_samples, np.random.default_rng(cfg.seed), d.block)
    dataset = RayTracedPSFs(tracer, conditions, ks=d.kernel_size, spp=d.spp, block=d.block,
                            progress=accelerator.is_main_process)
    model = build_model(cfg)
    summary = train(cfg, model, dataset, run_dir, accelerator)
    model = accelerator.unwrap_model(model).cpu().eval()
    save_file(model.state_dict(), run_dir / "model.safetensors")
    (run_dir / "model_args.json").write_text(json.dumps(model.args.to_dict(), indent=2))
    train_wall = time.perf_counter() - started

    metrics = held_out_metrics(cfg, model, tracer)
    comparison_figure(cfg, model, tracer, run_dir / "psf_comparison.png")
    specs = export_onnx(model, run_dir / "onnx", cfg.export.opset)
    metrics["onnx_parity_max_rel_diff"] = max(check_parity(model, run_dir / "onnx", specs, cfg).values())
    metrics.update({"train_wall_s": round(train_wall, 2), "steps": summary["steps"],
                    "ray_traced_samples": int(dataset.traced.sum())})
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    accelerator.print(
        f"held-out relative L1 {metrics['rel_l1_mean']:.4f} (p90 {metrics['rel_l1_p90']:.4f}) vs a "
        f"{d.val_spp}-ray reference; ray tracing at the training {d.spp} rays: "
        f"{metrics['raytrace_rel_l1_mean']:.4f}"
    )

    result = {"run_dir": str(run_dir), "metrics": metrics}
    if cfg.publish and accelerator.is_main_process:
        training = TrainingSummary(
            steps=summary["steps"], ray_traced_samples=metrics["ray_traced_samples"], spp=d.spp,
            wall_time_s=round(time.perf_counter() - started, 2), config=cfg.model_dump(mode="json"),
        )
        manifest = publish_run(cfg, store, run_dir, lens=lens, lens_path=cfg.lens.file, graphs=specs,
                               training=training, evaluation=metrics)
        result["published"] = f"{manifest.name}@{manifest.version}"
        accelerator.print(f"published {manifest.name}@{manifest.version} to {store.root} "
                          f"(total {training.wall_time_s:.0f} s)")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.fit", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", help="YAML config (see configs/)")
    parser.add_argument("overrides", nargs="*", help="key=value overrides, e.g. train.steps=500")
    parser.add_argument("--store", default=None, help=f"model store (default: $PSF_STORE or {default_store_root()})")
    args = parser.parse_intermixed_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("accelerate").setLevel(logging.WARNING)  # one line per saved file is noise
    try:
        cfg = load_config(args.config, args.overrides)
        result = run(cfg, Store(args.store))
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (ExportError, StoreError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
