"""python -m benchmarks.time_to_accuracy (--runs RUN_DIR ... | --fit CONFIG.yml ...) [--out DIR] [--spp 1024,2048]

Time to accuracy, per lens: the surrogate's whole-PSF error against the wall time of its fit, beside
DeepLens ray tracing's error against the seconds it takes per PSF, on one log time axis.

- Surrogate: every surviving checkpoint of each run (``--runs``: finished ``python -m training.fit`` run
  folders; ``--fit``: configs fitted here first, with ``checkpoint.total_limit=null`` so every checkpoint
  is kept) is scored by ``training.evaluate.evaluate`` against the run's cached converged reference.
  Its x value is the fit's wall time at the checkpoint's step, from ``train_log.jsonl``
  (``fit_elapsed_s``, seconds since the fit command started, when logged; else ``elapsed_s``, seconds
  since the training loop started), interpolated between log lines. The final model's figures come
  from ``metrics.json`` and its end-to-end wall time from the store's manifest when ``--store`` holds it.
- Ray tracing: the same held-out points traced at each ``--spp`` level (``--max-spp`` adds 65536) on
  the same window, timed (seconds per PSF) and scored against the same cached reference.

Writes DIR/time_to_accuracy.json (every figure and its conditions), DIR/time_to_accuracy.png (one panel
per lens), DIR/time_to_accuracy.md (the tables, also printed) and each checkpoint's evaluation under
DIR/checkpoints/. The former lever measurements (trace chunk / threads / rays, train steps/s,
samples vs rays, run breakdown) are ``python -m benchmarks.fit_levers``; ``--levers``, or any of their
flags (--lenses, --skip, ...), still runs them from here and writes DIR/time_to_accuracy.json as before.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import pickle
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from training.config import RunConfig

Log = Callable[[str], None]

SPP_LEVELS = [1024, 2048, 4096, 8192, 16384, 32768]
MAX_SPP = 65536
LEVER_FLAGS = {"--levers", "--lenses", "--blocks", "--threads", "--train-seconds", "--seconds", "--skip", "--cache"}
RAYS_PER_CALL = 2**22  # bounds DeepLens's memory, as training.reference does


# ---------------------------------------------------------------- runs and checkpoints


def fit(config: Path, work: Path, every: int | None, overrides: list[str], log: Log = print) -> dict:
    """``python -m training.fit CONFIG`` into work/, keeping every checkpoint; logs a line at each."""
    from training.config import load_config

    steps = load_config(config, overrides).train.steps
    keep = [f"checkpoint.every={every or max(1, steps // 8)}", "checkpoint.total_limit=null"]
    cfg = load_config(config, keep + overrides)  # the caller's overrides win
    extra = [] if any(o.startswith("train.log_every=") for o in overrides) else \
        [f"train.log_every={math.gcd(cfg.train.log_every, cfg.checkpoint.every)}"]
    store, runs = work / "store", work / "runs"
    command = [sys.executable, "-m", "training.fit", str(config), "--store", str(store), f"run_dir={runs}",
               *keep, *extra, *overrides]
    log(f"fitting: {' '.join(command[1:])}")
    work.mkdir(parents=True, exist_ok=True)
    before = set(runs.iterdir()) if runs.is_dir() else set()
    started = time.perf_counter()
    with open(work / "fit.log", "w") as out:
        proc = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, check=False)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        tail = (work / "fit.log").read_text()[-3000:]
        raise SystemExit(f"fit of {config} failed ({proc.returncode}):\n{tail}")
    (run_dir,) = [p for p in set(runs.iterdir()) - before if p.is_dir()]
    log(f"  fitted {run_dir} in {wall:.0f} s")
    return {"run_dir": run_dir, "store": store, "fit_command_wall_s": round(wall, 1), "command": command[1:]}


def checkpoints(run_dir: Path) -> list[Path]:
    folder = run_dir / "checkpoints"
    found = folder.glob("checkpoint_*") if folder.is_dir() else []
    return sorted(found, key=lambda p: int(p.name.split("_")[-1]))


def checkpoint_step(ckpt: Path, index: int, every: int, steps: int) -> tuple[int, str]:
    """The optimiser step a checkpoint holds: training.loop's TrainState ({"step": N}, saved by accelerate
    as a custom_checkpoint_*.pkl), else the LR scheduler's last_epoch, else its place in the sequence."""
    import torch

    def read(pkl: Path) -> object:
        try:
            return torch.load(pkl, map_location="cpu", weights_only=True)
        except (OSError, RuntimeError, EOFError, pickle.UnpicklingError):  # falls through to the next source
            return None

    states = [read(pkl) for pkl in sorted(ckpt.glob("custom_checkpoint_*.pkl"))]
    for state in states:
        if isinstance(state, dict) and set(state) == {"step"}:
            return int(state["step"]), "TrainState"
    for state in states:
        if isinstance(state, dict) and "last_epoch" in state:
            return int(state["last_epoch"]), "scheduler"
    return min((index + 1) * every, steps), "checkpoint order"


def fit_seconds(lines: list[dict], step: int) -> tuple[float, str]:
    """Wall seconds of the fit when ``step`` was done: the log line at that step, else interpolated
    between lines (step 0 at the loop's start). With fit_elapsed_s, the loop's start is the first
    line's fit_elapsed_s - elapsed_s, so the time before the loop (probe, setup) counts."""
    import numpy as np

    rows = sorted(lines, key=lambda r: r["step"])
    offset = next((r["fit_elapsed_s"] - r["elapsed_s"] for r in rows if "fit_elapsed_s" in r), 0.0)
    exact = [r for r in rows if r["step"] == step]
    if exact:
        r = exact[0]
        return float(r.get("fit_elapsed_s", r["elapsed_s"] + offset)), "logged"
    xs = [0] + [r["step"] for r in rows]
    ys = [0.0] + [r["elapsed_s"] for r in rows]
    how = "interpolated" if step <= xs[-1] else "after the last log line (its time)"
    return float(np.interp(step, xs, ys)) + offset, how


def manifest_wall(store: Path | None, name: str, metrics: dict) -> float | None:
    """The published version's end-to-end wall time: the store version whose card is this run's."""
    if store is None or not Path(store).is_dir():
        return None
    from models_store import Store, StoreError

    try:
        s = Store(store)
        for version in sorted(s.versions(name), reverse=True):
            manifest = s.manifest(name, version, verify=False)
            if manifest.evaluation.get("train_wall_s") == metrics.get("train_wall_s"):
                return float(manifest.training.wall_time_s)
    except StoreError:
        return None
    return None


def _errors(summary: dict) -> dict:
    return {k: round(summary[k], 5) for k in ("rel_l1_mean", "rel_l1_p90", "centroid_px_mean", "ee80_pct_mean")
            if k in summary}


def surrogate_curve(run_dir: Path, out: Path, store: Path | None, log: Log = print) -> dict:
    """Every checkpoint of a run scored against the run's converged reference, at its fit time."""
    from training.config import load_config
    from training.evaluate import evaluate
    from training.predictors import TorchPredictor, load_torch
    from training.raytrace import LensTracer

    cfg = load_config(run_dir / "config.yaml")
    # the ray-tracing levels are measured once per lens below, not at every checkpoint
    scoring = cfg.model_copy(update={"evaluation": cfg.evaluation.model_copy(update={"spp_levels": []})})
    tracer = LensTracer.for_run(cfg)
    lines = [json.loads(line) for line in (run_dir / "train_log.jsonl").read_text().splitlines() if line.strip()]
    basis = "fit_elapsed_s" if any("fit_elapsed_s" in r for r in lines) else "elapsed_s"
    points = []
    found = checkpoints(run_dir)
    if not found:
        log(f"  {run_dir}: no checkpoints; only the final model is shown")
    for index, ckpt in enumerate(found):
        step, step_from = checkpoint_step(ckpt, index, cfg.checkpoint.every, cfg.train.steps)
        seconds, how = fit_seconds(lines, step)
        started = time.perf_counter()
        card = evaluate(scoring, TorchPredictor(load_torch(ckpt), name=f"{run_dir.name}/{ckpt.name}"), tracer,
                        out / "checkpoints" / run_dir.name / ckpt.name, progress=False)
        points.append({"checkpoint": ckpt.name, "step": step, "step_from": step_from, "fit_s": round(seconds, 2),
                       "fit_min": round(seconds / 60, 4), "time_from": how,
                       **_errors(card["methods"]["surrogate"]),
                       "evaluate_s": round(time.perf_counter() - started, 2)})
        log(f"  {run_dir.name} {ckpt.name} (step {step}): {seconds / 60:.2f} fit min, "
            f"relL1 {card['rel_l1_mean']:.4f} / p90 {card['rel_l1_p90']:.4f}")
    points.sort(key=lambda p: p["step"])
    metrics = json.loads((run_dir / "metrics.json").read_text()) if (run_dir / "metrics.json").is_file() else {}
    ref = metrics.get("reference", {})
    final = {"rel_l1_mean": metrics.get("rel_l1_mean"), "rel_l1_p90": metrics.get("rel_l1_p90"),
             "steps": metrics.get("steps"), "train_wall_s": metrics.get("train_wall_s"),
             "published_wall_s": manifest_wall(store, cfg.name, metrics),
             "surrogate_s_per_psf": (metrics.get("seconds_for_all_points", {}).get("surrogate", 0) /
                                     ref["points"]) if ref.get("points") else None,
             "card_raytrace": {k: _errors(v) for k, v in metrics.get("methods", {}).items() if k != "surrogate"},
             "card_raytrace_seconds_for_all_points": {k: v for k, v in metrics.get("seconds_for_all_points", {}).items()
                                                      if k != "surrogate"}}
    return {"run": run_dir.name, "run_dir": str(run_dir), "name": cfg.name, "lens": cfg.lens.file.name,
            "config": cfg, "time_basis": basis, "kernel_size": int(cfg.data.kernel_size), "spp": cfg.data.spp,
            "steps": cfg.train.steps, "checkpoint_every": cfg.checkpoint.every, "threads": cfg.train.threads,
            "points": points, "final": final}


# ---------------------------------------------------------------- ray tracing


def raytrace_curve(cfg: RunConfig, spp_levels: list[int], threads: int | None, repeats: int, log: Log = print) -> dict:
    """DeepLens at each ray count on the evaluation's held-out points and window, timed (median of
    ``repeats`` traces, torch on ``threads`` threads: default the fit's) and scored against the same
    converged reference evaluate() uses (same points, rays, repeats, columns: the cache hits)."""
    import numpy as np
    import torch

    from training.evaluate import held_out_points, held_out_reference
    from training.predictors import evaluation_columns
    from training.psf_metrics import all_errors, summarize
    from training.raytrace import LensTracer

    e, tracer = cfg.evaluation, LensTracer.for_run(cfg)
    window = int(e.window)
    grid, _, _, points, _ = held_out_points(cfg)
    columns = evaluation_columns(cfg.conditions.names())
    started = time.perf_counter()
    ref, noise, ref_rays = held_out_reference(cfg, tracer, points, progress=False)
    reference_s = time.perf_counter() - started
    ref, noise = ref[: len(grid)], noise[: len(grid)]
    before = torch.get_num_threads()
    threads = threads or cfg.train.threads or before
    torch.set_num_threads(threads)
    groups = np.unique(grid[:, [columns.index(c) for c in ("wavelength", "focus") if c in columns]], axis=0)
    rows = []
    try:
        tracer.psf_conditions(grid[:1], ks=window, spp=min(spp_levels), columns=columns)  # warm-up
        for spp in spp_levels:
            chunk = max(1, RAYS_PER_CALL // spp)
            times, errors = [], []
            for _ in range(repeats):
                started = time.perf_counter()
                traced = np.concatenate([tracer.psf_conditions(grid[i: i + chunk], ks=window, spp=spp, columns=columns)
                                         for i in range(0, len(grid), chunk)])
                times.append(time.perf_counter() - started)
                errors.append(all_errors(traced, ref))
            seconds = float(np.median(times))
            pooled = {k: np.concatenate([err[k] for err in errors]) for k in errors[0]}
            rows.append({"spp": spp, "s_per_psf": round(seconds / len(grid), 5),
                         "s_per_psf_min_max": [round(min(times) / len(grid), 5), round(max(times) / len(grid), 5)],
                         "seconds_all_points": round(seconds, 3), "psfs_per_call": min(chunk, len(grid) // len(groups)),
                         **_errors(summarize(pooled)), "at_or_above_reference_rays": spp >= int(ref_rays.mean())})
            log(f"  ray tracing {spp} rays: {seconds / len(grid) * 1e3:.1f} ms/PSF, "
                f"relL1 {rows[-1]['rel_l1_mean']:.4f}")
    finally:
        torch.set_num_threads(before)
    finite = noise[np.isfinite(noise)]
    return {"points": len(grid), "window": window, "kernel_size": int(cfg.data.kernel_size),
            "torch_threads": threads, "timing_repeats": repeats,
            "reference": {"rays_per_point": int(ref_rays[: len(grid)].mean()), "adaptive": e.adaptive,
                          "repeats": e.repeats, "window": window,
                          "noise_rel_l1_mean": round(float(finite.mean()), 5) if len(finite) else None,
                          "load_s": round(reference_s, 2)},
            "levels": rows}


def _reference_key(cfg: RunConfig) -> str:
    """Runs whose held-out points, window and reference agree share one ray-tracing curve."""
    e = cfg.evaluation
    return json.dumps([str(cfg.lens.file), cfg.lens.focus_m, cfg.lens.sensor_res, cfg.seed, e.window, e.rays,
                       e.repeats, e.adaptive, e.ray_noise, list(e.grid), e.interp_pairs, str(e.cache_dir),
                       cfg.conditions.model_dump(mode="json"), cfg.data.kernel_size])


# ---------------------------------------------------------------- report


def markdown(report: dict) -> str:
    out = []
    for lens, entry in report["lenses"].items():
        for curve in entry["raytrace"]:
            r = curve["reference"]
            out.append(f"### {lens} (kernel {curve['kernel_size']} px, window {curve['window']} px, "
                       f"reference {r['rays_per_point']:,} rays/point, own noise {r['noise_rel_l1_mean']})\n")
        for run in entry["runs"]:
            unit = "fit minutes" if run["time_basis"] == "fit_elapsed_s" else "loop minutes (no fit_elapsed_s)"
            out += [f"Surrogate `{run['run']}` ({run['steps']} steps, checkpoint every {run['checkpoint_every']}):\n",
                    f"| checkpoint step | {unit} | rel L1 mean | rel L1 p90 |", "| --- | --- | --- | --- |"]
            out += [f"| {p['step']} | {p['fit_min']:.2f} | {p['rel_l1_mean']:.4f} | {p['rel_l1_p90']:.4f} |"
                    for p in run["points"]]
            f = run["final"]
            wall = f["published_wall_s"] or f["train_wall_s"]
            if f["rel_l1_mean"] is not None:
                label = "end to end" if f["published_wall_s"] else "train_wall_s"
                out.append(f"| final (metrics.json) | {wall / 60:.2f} ({label}) | {f['rel_l1_mean']:.4f} | "
                           f"{f['rel_l1_p90']:.4f} |")
            if run.get("speedup"):
                sp = run["speedup"]
                out.append(f"Speed at {sp['kernel_size']} px, {sp['threads']} threads: onnxruntime batch "
                           f"{sp['onnx_batch']} {sp['onnx_psfs_per_s']:,.0f} PSFs/s, "
                           f"DeepLens {sp['raytrace_spp']} rays "
                           f"{sp['raytrace_psfs_per_s']:,.1f} PSFs/s: **{sp['speedup']:,.0f}x**\n")
            out.append("")
        for curve in entry["raytrace"]:
            out += ["DeepLens ray tracing, same points and window:\n",
                    "| rays / PSF | s / PSF | rel L1 mean | rel L1 p90 |", "| --- | --- | --- | --- |"]
            out += [f"| {r['spp']:,}{' (>= reference rays)' if r['at_or_above_reference_rays'] else ''} | "
                    f"{r['s_per_psf']:.4f} | {r['rel_l1_mean']:.4f} | {r['rel_l1_p90']:.4f} |" for r in curve["levels"]]
            out.append("")
    return "\n".join(out)


def plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lenses = list(report["lenses"].items())
    fig, axes = plt.subplots(1, len(lenses), figsize=(6.5 * len(lenses), 4.8), squeeze=False)
    for ax, (lens, entry) in zip(axes[0], lenses, strict=True):
        for run in entry["runs"]:
            pts = run["points"]
            line = ax.plot([p["fit_s"] for p in pts], [p["rel_l1_mean"] for p in pts], "o-",
                           label=f"surrogate {run['run']}: mean (x = wall s of fitting so far)")[0]
            ax.plot([p["fit_s"] for p in pts], [p["rel_l1_p90"] for p in pts], ":", color=line.get_color(),
                    label="  p90")
            f = run["final"]
            wall = f["published_wall_s"] or f["train_wall_s"]
            if wall and f["rel_l1_mean"] is not None:
                ax.plot([wall], [f["rel_l1_mean"]], "*", ms=12, color=line.get_color(),
                        label="  final model at its " + ("end-to-end wall" if f["published_wall_s"] else "train wall"))
        for curve in entry["raytrace"]:
            xs, ys = [r["s_per_psf"] for r in curve["levels"]], [r["rel_l1_mean"] for r in curve["levels"]]
            ax.plot(xs, ys, "s-", color="black", label="DeepLens ray tracing: mean (x = s per PSF)")
            for r in curve["levels"]:
                label = f"{r['spp'] // 1024}k" if r["spp"] >= 1024 else str(r["spp"])
                ax.annotate(label, (r["s_per_psf"], r["rel_l1_mean"]), fontsize=7, textcoords="offset points",
                            xytext=(3, 3))
            noise = curve["reference"]["noise_rel_l1_mean"]
            if noise:
                ax.axhline(noise, ls="--", color="gray", label=f"reference's own noise ({noise:.3g})")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("seconds: surrogate = wall time of its fit (one-off); ray tracing = per PSF")
        ax.set_ylabel("whole-PSF relative L1 vs converged reference")
        ax.set_title(lens)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(f"time to accuracy ({report['date']}, load {report['loadavg_start'][0]:.1f})", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if LEVER_FLAGS & {a.split("=")[0] for a in argv}:
        from .fit_levers import main as levers

        return levers([a for a in argv if a != "--levers"], prog="python -m benchmarks.time_to_accuracy --levers",
                      filename="time_to_accuracy.json")
    parser = argparse.ArgumentParser(prog="python -m benchmarks.time_to_accuracy", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=Path, nargs="*", default=[], help="finished training.fit run folders")
    parser.add_argument("--fit", type=Path, action="append", default=[], help="config to fit here first (repeatable)")
    parser.add_argument("--fit-override", action="append", default=[], metavar="KEY=VALUE",
                        help="override for every --fit (repeatable), e.g. train.steps=500")
    parser.add_argument("--every", type=int, default=None, help="--fit: steps between checkpoints (default steps/8)")
    parser.add_argument("--store", type=Path, default=None, help="--runs: store to find the published wall time in")
    parser.add_argument("--spp", default=",".join(map(str, SPP_LEVELS)), help="ray counts of the ray-tracing curve")
    parser.add_argument("--max-spp", action="store_true", help=f"add {MAX_SPP} rays")
    parser.add_argument("--torch-threads", type=int, default=None,
                        help="threads of the ray-tracing timings (default: the run's train.threads, else torch's)")
    parser.add_argument("--repeats", type=int, default=3, help="timed traces per ray count (the median is kept)")
    parser.add_argument("--levers", action="store_true", help="the former lever measurements (benchmarks.fit_levers)")
    parser.add_argument("--out", type=Path, default=Path("bench_out"))
    args = parser.parse_args(argv)
    if not args.runs and not args.fit:
        parser.error("give --runs RUN_DIR ... and/or --fit CONFIG.yml")
    spp_levels = sorted({int(s) for s in args.spp.split(",") if s} | ({MAX_SPP} if args.max_spp else set()))
    import torch

    started = time.perf_counter()
    report: dict = {"command": "python -m benchmarks.time_to_accuracy " + " ".join(argv),
                    "date": datetime.now(UTC).isoformat(timespec="seconds"), "cpu_count": os.cpu_count(),
                    "torch_threads": torch.get_num_threads(), "loadavg_start": os.getloadavg(),
                    "spp_levels": spp_levels, "fits": [], "lenses": {}}
    # a run fitted by --fit sits in FIT/runs/RUN beside its store FIT/store
    runs = [(run, args.store or (run.parent.parent / "store" if (run.parent.parent / "store").is_dir() else None))
            for run in args.runs]
    for i, config in enumerate(args.fit):
        done = fit(config, args.out / "fits" / f"{i}-{config.stem}", args.every, args.fit_override)
        report["fits"].append({k: str(v) if isinstance(v, Path) else v for k, v in done.items()})
        runs.append((done["run_dir"], done["store"]))
    curves: dict[str, dict] = {}
    for run_dir, store in runs:
        run = surrogate_curve(Path(run_dir), args.out, store)
        cfg = run.pop("config")
        if store is not None and Path(store).is_dir() and cfg.publish:
            from .speedup import measure

            run["speedup"] = measure(Path(store), cfg.name, cfg)
        entry = report["lenses"].setdefault(run["lens"], {"runs": [], "raytrace": []})
        entry["runs"].append(run)
        key = _reference_key(cfg)
        if key not in curves:
            curves[key] = raytrace_curve(cfg, spp_levels, args.torch_threads, args.repeats)
            entry["raytrace"].append(curves[key])
        run["raytrace_curve"] = list(curves).index(key)
    report["loadavg_end"] = os.getloadavg()
    report["duration_s"] = round(time.perf_counter() - started, 1)
    args.out.mkdir(parents=True, exist_ok=True)
    table = markdown(report)
    print(table)
    (args.out / "time_to_accuracy.md").write_text(table + "\n")
    (args.out / "time_to_accuracy.json").write_text(json.dumps(report, indent=2))
    plot(report, args.out / "time_to_accuracy.png")
    print(f"wrote {args.out / 'time_to_accuracy.json'}, .png and .md in {report['duration_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
