"""python -m benchmarks.gpu_fit_speed [--out FILE] [--dry-run] [--no-fit] [--steps N] [--trace-block N]

The fit-speed section of the GPU check (benchmarks/gpu_check.sh runs it after benchmarks.gpu_check and
adds its figures to the same JSON, under ``fit_speed``):

1. DeepLens PSFs traced per second on the Cooke quick-start's lens (configs/quickstart.yml) at kernel
   32, at 2048 and 8192 rays per PSF, in blocks of 64 conditions that share one wavelength (as the
   datasets trace them), by ``training.raytrace.LensTracer.for_run``: on the device the tracer picks
   (reported when the tracer says which).
2. Training steps per second of the quick-start model (``training.fit.build_model`` on
   configs/quickstart.yml with the kernel and ray counts given, so no lens probe runs): forward,
   backward and AdamW on random unit-sum PSFs, batch ``train.batch_size``, on CUDA when torch sees a
   GPU, else the CPU.
3. One quick-start fit end to end (``python -m training.fit configs/quickstart.yml``), timed, into a
   temporary store. ``--no-fit`` skips it.

``--dry-run`` (a machine without a GPU; the test suite) measures on the CPU with fewer steps, smaller
trace blocks, and the fit step on ``configs/ci.yml train.steps=20`` with fewer samples: every code path
runs, the figures say nothing about a GPU. Needs '.[train]' (torch, deeplens).
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from training.config import DataConfig, RunConfig, load_config
from training.fit import build_model
from training.loop import partner_conditions, total_loss
from training.raytrace import LensTracer

from .timing import throughput

QUICKSTART = "configs/quickstart.yml"
# The Cooke quick-start's sizes, given so that no probe runs (its auto values: 32 px, README "Your own lens").
SIZED = ("data.kernel_size=32", "data.spp=2048", "validation.spp=8192", "evaluation.rays=65536",
         "evaluation.window=40")
TRACE_SPP = (2048, 8192)
FIT_GPU = [QUICKSTART]
# Dry run: the same code path on the tiny CI config (about 10 s on 2 CPU cores).
FIT_DRY = ["configs/ci.yml", "train.steps=20", "data.train_samples=64", "validation.samples=4",
           "evaluation.grid=[2,1,1]", "evaluation.repeats=1", "evaluation.interp_pairs=1"]


def cpu_only() -> list[str]:
    """The override that keeps DeepLens on the CPU, where this version of the config has the setting."""
    return ["data.trace_device=cpu"] if "trace_device" in DataConfig.model_fields else []


def sized_config(path: str = QUICKSTART, *, on_cpu: bool = False) -> RunConfig:
    """configs/quickstart.yml with its kernel and ray counts fixed (no probe); traced on the CPU if asked."""
    return load_config(path, [*SIZED, *(cpu_only() if on_cpu else [])])


def random_conditions(cfg: RunConfig, n: int, rng: np.random.Generator) -> np.ndarray:
    """[n, C] uniform over the config's ranges, columns in condition-vector order."""
    return np.stack([rng.uniform(lo, hi, n) for _, lo, hi in cfg.conditions.columns()], axis=1)


def trace_speed(cfg: RunConfig, *, block: int, repeats: int, spp_levels=TRACE_SPP, seed: int = 0) -> dict[str, Any]:
    """PSFs/s of LensTracer.psf_conditions at the config's kernel, one block (one wavelength) per call."""
    started = time.perf_counter()
    tracer = LensTracer.for_run(cfg, seed=seed)
    load_s = time.perf_counter() - started
    ks = cfg.data.kernel_size
    rng = np.random.default_rng(seed)
    names = cfg.conditions.names()
    wave = names.index("wavelength")
    out: dict[str, Any] = {"lens": Path(cfg.lens.file).name, "kernel_size": ks, "block": block,
                           "device": None if getattr(tracer, "device", None) is None else str(tracer.device),
                           "torch_threads": torch.get_num_threads(), "tracer_load_s": round(load_s, 3), "spp": {}}

    def one_block(spp: int):
        def call() -> None:
            cond = random_conditions(cfg, block, rng)
            cond[:, wave] = cond[0, wave]  # a block shares one wavelength, as the datasets trace it
            psf = tracer.psf_conditions(cond, ks=ks, spp=spp, columns=names)
            assert psf.shape == (block, ks, ks) and np.isfinite(psf).all(), "DeepLens returned a bad block"
        return call

    for spp in spp_levels:
        rate = throughput(one_block(spp), block, repeats=repeats, min_time_s=0.0, warmup=1)
        out["spp"][str(spp)] = {"psfs_per_s": rate["psfs_per_s"], "s_per_block": rate["s_per_call"],
                                "runs_psfs_per_s": rate["runs_psfs_per_s"]}
    return out


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def train_speed(cfg: RunConfig, *, steps: int, device: str, warmup: int = 2, seed: int = 0) -> dict[str, Any]:
    """Steps/s of forward + backward + AdamW of the config's model on random unit-sum PSFs."""
    torch.manual_seed(seed)
    dev = torch.device(device)
    model = build_model(cfg).to(dev)
    model.train()
    o, batch, ks = cfg.optim, cfg.train.batch_size, cfg.data.kernel_size
    optimizer = torch.optim.AdamW(model.parameters(), lr=o.lr, betas=o.betas, eps=o.eps, weight_decay=o.weight_decay)
    pool = 4  # a few distinct batches, made on the device: the figure is the model's, not the loader's
    psfs = torch.rand(pool, batch, ks, ks, device=dev)
    psfs = psfs / psfs.sum(dim=(-2, -1), keepdim=True)
    conds = torch.as_tensor(random_conditions(cfg, pool * batch, np.random.default_rng(seed)),
                            dtype=torch.float32).reshape(pool, batch, -1).to(dev)
    generator = torch.Generator().manual_seed(seed)
    losses: list[float] = []

    def step(i: int) -> None:
        psf, cond = psfs[i % pool], conds[i % pool]
        terms = model(psf, cond, partner_conditions(cond, cfg, generator))
        loss = total_loss(terms, cfg.loss)
        loss.backward()
        if o.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), o.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())  # one host sync a step, as the training loop's logging makes

    for i in range(warmup):
        step(i)
    _sync(dev)
    started = time.perf_counter()
    for i in range(steps):
        step(i)
    _sync(dev)
    elapsed = time.perf_counter() - started
    assert all(np.isfinite(losses)), f"non-finite training loss: {losses[-5:]}"
    return {"device": str(dev), "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else None,
            "model": cfg.model.type, "network": cfg.network.type, "kernel_size": ks, "batch_size": batch,
            "parameters": sum(p.numel() for p in model.parameters()), "steps": steps, "warmup_steps": warmup,
            "seconds": round(elapsed, 4), "steps_per_s": steps / elapsed, "psfs_per_s": steps * batch / elapsed,
            "torch_threads": torch.get_num_threads(), "loss_first": losses[0], "loss_last": losses[-1]}


def fit_end_to_end(fit_args: list[str], *, timeout_s: float) -> dict[str, Any]:
    """``python -m training.fit FIT_ARGS`` into a temporary store and run folder, timed from outside."""
    base = Path(tempfile.mkdtemp(prefix="gpu-fit-speed-"))
    cmd = [sys.executable, "-m", "training.fit", *fit_args, "--store", str(base / "store"), f"run_dir={base / 'runs'}"]
    started = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        return {"ok": False, "command": cmd[1:], "error": f"timed out after {timeout_s:.0f} s"}
    finally:
        shutil.rmtree(base, ignore_errors=True)
    wall = time.perf_counter() - started
    out: dict[str, Any] = {"ok": proc.returncode == 0, "command": cmd[1:], "returncode": proc.returncode,
                           "wall_s": round(wall, 2)}
    try:
        result = json.loads(proc.stdout[proc.stdout.rindex("\n{") + 1:] if "\n{" in proc.stdout else proc.stdout)
        card = result["metrics"]
        out.update({"published": result.get("published"), "train_wall_s": card.get("train_wall_s"),
                    "steps": card.get("steps"), "ray_traced_samples": card.get("ray_traced_samples"),
                    "kernel_size": card.get("reference", {}).get("kernel_size"),
                    "rel_l1_mean": card.get("rel_l1_mean")})
    except (ValueError, KeyError, TypeError):
        out["ok"] = False
        out["error"] = "no fit summary on stdout"
    if proc.returncode != 0:
        out["error"] = f"training.fit exited with status {proc.returncode}"
    if not out["ok"]:
        out["output_tail"] = (proc.stdout + proc.stderr)[-3000:]
    return out


def measure(*, dry_run: bool, steps: int, trace_block: int, trace_repeats: int, fit: bool,
            fit_timeout_s: float) -> dict[str, Any]:
    cfg = sized_config(on_cpu=dry_run)
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)  # as training.fit does
    device = "cuda" if torch.cuda.is_available() and not dry_run else "cpu"
    report: dict[str, Any] = {
        "dry_run": dry_run, "config": QUICKSTART, "overrides": list(SIZED), "torch": torch.__version__,
        "cuda_available": torch.cuda.is_available(), "python": sys.version.split()[0], "machine": platform.node(),
        "raytrace": trace_speed(cfg, block=trace_block, repeats=trace_repeats),
        "train": train_speed(cfg, steps=steps, device=device, warmup=2 if dry_run else 10),
    }
    if fit:
        fit_args = FIT_DRY + cpu_only() if dry_run else FIT_GPU
        report["fit_end_to_end"] = fit_end_to_end(fit_args, timeout_s=fit_timeout_s)
    return report


def print_report(report: dict[str, Any]) -> None:
    label = "DRY RUN (CPU in place of the GPU): " if report["dry_run"] else ""
    trace = report["raytrace"]
    rates = ", ".join(f"spp {spp}: {v['psfs_per_s']:,.1f}" for spp, v in trace["spp"].items())
    where = trace["device"] or "the device LensTracer picked"
    print(f"{label}DeepLens ray tracing on {where}: PSFs/s at ks {trace['kernel_size']}, "
          f"block {trace['block']}: {rates}")
    train = report["train"]
    print(f"{label}training on {train['device_name'] or train['device']}: {train['steps_per_s']:,.2f} steps/s "
          f"({train['psfs_per_s']:,.0f} PSFs/s) at batch {train['batch_size']}, ks {train['kernel_size']}, "
          f"{train['parameters']:,} parameters")
    fit = report.get("fit_end_to_end")
    if fit is not None:
        what = " ".join(fit["command"][2:fit["command"].index("--store")])
        status = (f"{fit['wall_s']:.1f} s wall ({fit['train_wall_s']} s to the end of training), "
                  f"rel. L1 {fit['rel_l1_mean']}" if fit["ok"] else f"FAILED: {fit.get('error', '')}")
        print(f"{label}fit end to end ({what}): {status}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu_fit_speed", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="bench_out/gpu_check.json",
                        help="JSON to add the fit_speed key to (made when missing)")
    parser.add_argument("--dry-run", action="store_true", help="the CPU in place of the GPU, smaller counts")
    parser.add_argument("--no-fit", action="store_true", help="skip the end-to-end fit")
    parser.add_argument("--steps", type=int, default=None, help="timed training steps (default 300; dry run 5)")
    parser.add_argument("--trace-block", type=int, default=None, help="PSFs per trace call (default 64; dry run 2)")
    parser.add_argument("--trace-repeats", type=int, default=None, help="timed blocks per ray count (default 3; "
                        "dry run 1)")
    parser.add_argument("--fit-timeout", type=float, default=1800.0, help="seconds before the fit is stopped")
    args = parser.parse_args(argv)
    dry = args.dry_run
    report = measure(dry_run=dry, steps=args.steps or (5 if dry else 300),
                     trace_block=args.trace_block or (2 if dry else 64),
                     trace_repeats=args.trace_repeats or (1 if dry else 3), fit=not args.no_fit,
                     fit_timeout_s=args.fit_timeout)
    out = Path(args.out)
    whole = json.loads(out.read_text()) if out.exists() else {}
    whole["fit_speed"] = report
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(whole, indent=2))
    print_report(report)
    print(f"fit_speed -> {out}")
    fit = report.get("fit_end_to_end")
    return 0 if fit is None or fit["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
