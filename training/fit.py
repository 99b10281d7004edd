"""python -m training.fit CONFIG.yml [--store DIR] [--validate-only TARGET] [key=value ...]

Ray-trace PSFs of the configured lens, fit the conditional VAE, evaluate it against a converged ray
trace, export the ONNX graphs, check them against torch, and publish a new version to the store.
With --validate-only, run the validation of CONFIG on a checkpoint, a run folder or a published
model (NAME[@VERSION]) and stop.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from dataclasses import asdict
from datetime import datetime
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import ProjectConfiguration, set_seed
from omegaconf import OmegaConf
from safetensors.torch import save_file

from models_store import KernelSizing, Store, StoreError, TrainingSummary, default_store_root

from .band import with_file_band
from .config import ConfigError, RunConfig, load_config
from .distributed import decided_by_main, init_processes, per_rank, use_cpu, weights_digest
from .evaluate import evaluate
from .export import ExportError, check_parity, export_onnx, psf_tolerance
from .geometry import trace_for_run
from .geometry_check import check_for_run
from .loop import train
from .predictors import TorchPredictor, load_predictor
from .prescription import LensFileError
from .publish import publish_run
from .raytrace import LensTracer
from .registry import DATASETS, MODELS
from .sizing import size_run
from .validation import Validator

log = logging.getLogger("training.fit")


def build_model(cfg: RunConfig):
    """The registered ``model.type`` builds itself from the (sized) config."""
    return MODELS.get(cfg.model.type).from_config(cfg)


def make_dataset(cfg: RunConfig, tracer: LensTracer, accelerator: Accelerator):
    """The registered ``data.type`` builds itself from the (sized) config."""
    return DATASETS.get(cfg.data.type).from_config(cfg, tracer, accelerator)


def resolve_run_dir(cfg: RunConfig) -> tuple[Path, Path | None]:
    """(run folder, checkpoint to resume from or None). ``resume: latest`` continues the newest run
    of this name that has a checkpoint; a path may name a run folder or one checkpoint in it."""
    if cfg.resume is None:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        run_dir, n = cfg.run_dir / f"{cfg.name}-{stamp}", 1
        while run_dir.exists():
            n += 1
            run_dir = cfg.run_dir / f"{cfg.name}-{stamp}-{n}"
        return run_dir, None
    if cfg.resume == "latest":
        runs = sorted((p for p in cfg.run_dir.glob(f"{cfg.name}-*") if _checkpoints(p)),
                      key=lambda p: p.stat().st_mtime)
        if not runs:
            raise ConfigError(f"resume: latest found no run of {cfg.name!r} with checkpoints in {cfg.run_dir}")
        return runs[-1], _checkpoints(runs[-1])[-1]
    path = Path(cfg.resume)
    if _checkpoints(path):
        return path, _checkpoints(path)[-1]
    if path.is_dir() and path.parent.name == "checkpoints":
        return path.parent.parent, path
    raise ConfigError(f"resume: {cfg.resume!r} is neither 'latest', a run folder with checkpoints, nor a checkpoint")


def _checkpoints(run_dir: Path) -> list[Path]:
    folder = run_dir / "checkpoints"
    if not folder.is_dir():
        return []
    return sorted(folder.glob("checkpoint_*"), key=lambda p: int(p.name.split("_")[-1]))


def run(cfg: RunConfig, store: Store) -> dict:
    started = time.perf_counter()
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    # The lens decides the kernel and ray budgets, before any folder is made or sample traced: a kernel
    # that would clip a PSF stops the run here.
    tracer = LensTracer.for_run(cfg, seed=cfg.seed)
    cfg, sizing = size_run(cfg, tracer)
    processes = init_processes()  # every rank must agree on the run folder before using it
    run_dir, resume_from = decided_by_main(processes, lambda: resolve_run_dir(cfg))
    if processes.is_main_process:
        (run_dir / "onnx").mkdir(parents=True, exist_ok=True)
        (run_dir / "sizing.json").write_text(json.dumps(asdict(sizing), indent=2))
    set_seed(cfg.seed)
    project = ProjectConfiguration(project_dir=str(run_dir), logging_dir=str(run_dir / "logs"),
                                   automatic_checkpoint_naming=True, total_limit=cfg.checkpoint.total_limit)
    accelerator = Accelerator(cpu=use_cpu(), mixed_precision=cfg.train.mixed_precision,
                              gradient_accumulation_steps=cfg.train.grad_accum,
                              log_with=cfg.tracking.report_to or None, project_config=project)
    if resume_from is not None:  # keep numbering after the checkpoints already there
        project.iteration = int(resume_from.name.split("_")[-1]) + 1
    accelerator.init_trackers(cfg.name, config=_flat_scalars(cfg.model_dump(mode="json")))
    if accelerator.is_main_process:
        OmegaConf.save(OmegaConf.create(cfg.model_dump(mode="json")), run_dir / "config.yaml")
    accelerator.print(f"run folder {run_dir}" + (f" (resuming {resume_from.name})" if resume_from else "")
                      + f", {accelerator.num_processes} process(es)")

    lens = tracer.info()
    accelerator.print(f"lens {lens.file}: f={lens.focal_length_mm:.2f} mm, f/{lens.f_number:.2f}, "
                      f"pixel {lens.pixel_pitch_um:.2f} um, focus {cfg.lens.focus_m or 'inf'} m")
    accelerator.print(f"kernel {sizing.kernel_size} px ({sizing.kernel_source}) keeps >= {sizing.energy_kept_min:.2%} "
                      f"of every probed PSF; {sizing.spp} rays per training PSF")
    for reason in sizing.reasons:
        accelerator.print(f"  {reason}")
    dataset = make_dataset(cfg, tracer, accelerator)
    set_seed(cfg.seed)  # the same initial weights whether the data was traced or read from a bank
    model = build_model(cfg)
    if accelerator.is_main_process:
        (run_dir / "model_args.json").write_text(json.dumps(model.record(), indent=2))
    validator = Validator(cfg, tracer) if accelerator.is_main_process else None  # only main validates

    def validate(m, step: int) -> dict:
        metrics = validator.run(TorchPredictor(m, name=cfg.name), run_dir / "validation", f"step_{step:06d}")
        accelerator.print(f"  validation @ {step}: relL1 {metrics['rel_l1_mean']:.4f} "
                          f"(p90 {metrics['rel_l1_p90']:.4f})")
        return metrics

    summary = train(cfg, model, dataset, run_dir, accelerator, resume_from=resume_from, validate=validate,
                    fit_started=started)
    model = accelerator.unwrap_model(model).cpu().eval()
    ranks = per_rank(processes, {"rank": accelerator.process_index, "traced": summary["traced"],
                                 "steps": summary["steps"], "weights_sha256": weights_digest(model)})
    train_wall = time.perf_counter() - started
    accelerator.end_training()
    if not accelerator.is_main_process:
        return {"run_dir": str(run_dir), "rank": accelerator.process_index}
    save_file(model.state_dict(), run_dir / "model.safetensors")

    card = evaluate(cfg, TorchPredictor(model, name=cfg.name), tracer, run_dir / "evaluation",
                    progress=accelerator.is_main_process)
    geometry = trace_for_run(cfg, tracer)  # chief-ray position and illumination: a table in the manifest
    card["geometry"] = check_for_run(cfg, geometry, lens, tracer)
    specs = export_onnx(model, run_dir / "onnx", cfg.export.opset)
    parity = check_parity(model, run_dir / "onnx", specs, cfg, model_error=card["rel_l1_mean"])
    card["onnx_parity"] = {"psf_rel_l1_max": max(v for k, v in parity.items() if k.endswith(".psf")),
                           "latent_max_rel_diff": max(v for k, v in parity.items() if not k.endswith(".psf")),
                           "psf_tolerance": psf_tolerance(cfg, card["rel_l1_mean"])}
    card.update({"train_wall_s": round(train_wall, 2), "steps": summary["steps"],
                 "ray_traced_samples": sum(r["traced"] for r in ranks), "data": cfg.data.type,
                 "processes": accelerator.num_processes, "ranks": ranks})
    (run_dir / "metrics.json").write_text(json.dumps(card, indent=2))
    floor = card["methods"].get(f"raytrace_spp{cfg.data.spp}", {}).get("rel_l1_mean")
    accelerator.print(
        f"held-out relative L1 {card['rel_l1_mean']:.4f} (p90 {card['rel_l1_p90']:.4f}) vs a "
        f"{cfg.evaluation.rays}-ray reference"
        + (f"; ray tracing at {cfg.data.spp} rays: {floor:.4f}" if floor else ""))

    result = {"run_dir": str(run_dir), "metrics": card}
    if cfg.publish:
        training = TrainingSummary(steps=summary["steps"], ray_traced_samples=card["ray_traced_samples"],
                                   spp=cfg.data.spp, wall_time_s=round(time.perf_counter() - started, 2),
                                   config=cfg.model_dump(mode="json"), processes=accelerator.num_processes)
        manifest = publish_run(cfg, store, run_dir, lens=lens, lens_path=cfg.lens.file, graphs=specs,
                               latent_size=model.args.latent_size, training=training, evaluation=card,
                               sizing=KernelSizing(**sizing.manifest_entry()), geometry=geometry)
        result["published"] = f"{manifest.name}@{manifest.version}"
        accelerator.print(f"published {manifest.name}@{manifest.version} to {store.root} "
                          f"(total {training.wall_time_s:.0f} s)")
    return result


def validate_only(cfg: RunConfig, target: str, store: Store, out: Path | None) -> dict:
    predictor = load_predictor(target, store)
    tracer = LensTracer.for_run(cfg)
    cfg, _ = size_run(cfg, tracer)
    validator = Validator(cfg, tracer)
    out = out or Path(f"validation-{cfg.name}")
    return validator.run(predictor, out, "validate_only")


def _flat_scalars(data: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(_flat_scalars(value, f"{prefix}{key}."))
        elif isinstance(value, (int, float, str, bool)):
            out[f"{prefix}{key}"] = value
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.fit", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", help="YAML config (see configs/)")
    parser.add_argument("overrides", nargs="*", help="key=value overrides, e.g. train.steps=500")
    parser.add_argument("--store", default=None, help=f"model store (default: $PSF_STORE or {default_store_root()})")
    parser.add_argument("--validate-only", metavar="TARGET", default=None,
                        help="checkpoint folder, run folder, or store model NAME[@VERSION]")
    parser.add_argument("--out", default=None, help="output folder for --validate-only")
    args = parser.parse_intermixed_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("accelerate").setLevel(logging.WARNING)  # one line per saved file is noise
    try:
        cfg, band = with_file_band(load_config(args.config, args.overrides))
        if band:
            log.info(band)
        store = Store(args.store)
        if args.validate_only:
            result = validate_only(cfg, args.validate_only, store, Path(args.out) if args.out else None)
        else:
            result = run(cfg, store)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (ExportError, StoreError, FileNotFoundError, LensFileError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
