"""python -m training.evaluate MODEL_OR_RUN [CONFIG.yml] [--store DIR] [--out DIR] [key=value ...]

Accuracy against a converged ray-traced reference at held-out conditions spread over
field x depth x wavelength, beside DeepLens ray tracing at several ray counts at the same points (the
noise floor a user would otherwise live with), plus the latent-interpolation check. Writes
evaluation.json and error-map PNGs; fit stores the summary in the manifest as the model's card.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from models_store import Store, StoreError, default_store_root, rotate_psfs

from .config import ConfigError, RunConfig, load_config
from .figures import error_maps
from .predictors import Predictor, evaluation_columns, load_predictor, predict_oriented
from .psf_metrics import all_errors, embed, energy_outside, rel_l1, summarize
from .raytrace import LensTracer
from .reference import adaptive_reference, converged_reference, held_out_grid
from .sizing import size_run


def evaluation_conditions(cfg: RunConfig) -> tuple[np.ndarray, int, int, int]:
    """Held-out rows in evaluation columns: the model's, plus azimuth last for a meridional model.
    Each (wavelength, field) row of depths gets one azimuth drawn over [0, 90] deg (the other
    quadrants are mirror images), so off-meridian quality is measured whatever the model type."""
    nf, nd, nw = cfg.evaluation.grid
    r = cfg.conditions
    grid = held_out_grid(r, nf, nd, nw, seed=cfg.seed + 2024)
    if r.focus is not None:  # evaluate at the middle of the focus range
        grid = np.concatenate([grid, np.full((len(grid), 1), 0.5 * (r.focus.min + r.focus.max))], 1)
    lo, hi = (r.azimuth.min, r.azimuth.max) if r.azimuth is not None else (0.0, 90.0)
    azimuth = np.repeat(np.random.default_rng(cfg.seed + 4242).uniform(lo, hi, nw * nf), nd)
    return np.concatenate([grid, azimuth[:, None]], 1), nf, nd, nw


def interp_pairs(cfg: RunConfig, grid: np.ndarray, nd: int) -> tuple[np.ndarray, np.ndarray]:
    """Pairs of neighbouring held-out points (same field and wavelength, adjacent depths)."""
    rng = np.random.default_rng(cfg.seed + 99)
    starts = np.array([i for i in range(len(grid)) if (i % nd) < nd - 1], dtype=np.int64)
    chosen = rng.choice(starts, size=min(cfg.evaluation.interp_pairs, len(starts)), replace=False).astype(np.int64)
    a, b = grid[chosen], grid[chosen + 1]
    return np.stack([a, b], axis=1), 0.5 * (a + b)


def evaluate(cfg: RunConfig, predictor: Predictor, tracer: LensTracer, out_dir: Path, *,
             progress: bool = True) -> dict:
    """Errors against a reference traced on a window that holds the whole PSF (``evaluation.window``,
    resolved by training.sizing), so energy a kernel leaves out counts as error."""
    if "auto" in (cfg.evaluation.window, cfg.evaluation.rays, cfg.data.kernel_size):
        # measuring a model is never refused: a kernel that clips is what the error should show
        cfg, _ = size_run(cfg.model_copy(update={"data": cfg.data.model_copy(update={"allow_clipping": True})}),
                          tracer)
    e, ks = cfg.evaluation, int(cfg.data.kernel_size)
    window = int(e.window)
    grid, pairs, mids, points, (nf, nd, nw) = held_out_points(cfg)
    columns = evaluation_columns(cfg.conditions.names())
    t0 = time.perf_counter()
    ref_all, ref_noise, ref_rays = held_out_reference(cfg, tracer, points, progress=progress)
    ref, ref_mid = ref_all[: len(grid)], ref_all[len(grid):]
    reference_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    pred = predict_oriented(predictor, grid)
    predict_s = time.perf_counter() - t0
    errors = {"surrogate": all_errors(embed(pred, window), ref)}
    outside = energy_outside(ref, ks)
    trace_s = {}
    for spp in e.spp_levels:
        t0 = time.perf_counter()
        traced = tracer.psf_conditions(grid, ks=window, spp=spp, columns=columns)
        trace_s[spp] = time.perf_counter() - t0
        errors[f"raytrace_spp{spp}"] = all_errors(traced, ref)

    card: dict = {
        "reference": {"points": len(grid), "grid_field_depth_wavelength": list(e.grid),
                      "rays_per_point": int(ref_rays[: len(grid)].mean()),
                      "rays_per_point_max": int(ref_rays[: len(grid)].max()),
                      "rays_rule": (f"adaptive: traced until its own noise is {e.ray_noise} at every point, at most "
                                    f"{int(e.rays)}" if e.adaptive else f"{int(e.rays)} at every point"),
                      "azimuth_deg": "one per (field, wavelength), uniform over [0, 90]",
                      "independent_traces": 2 if e.adaptive else e.repeats, "kernel_size": ks, "window": window,
                      "whole_psf": "errors are measured on the window; energy outside the served kernel counts",
                      "noise_rel_l1_mean": _finite_mean(ref_noise[: len(grid)]),
                      "trace_s": round(reference_s, 1)},
        "energy_outside_kernel": {"max": round(float(outside.max()), 6), "mean": round(float(outside.mean()), 6)},
        "methods": {name: summarize(errs) for name, errs in errors.items()},
        "seconds_for_all_points": {"surrogate": round(predict_s, 4),
                                   **{f"raytrace_spp{s}": round(v, 3) for s, v in trace_s.items()}},
    }
    card["rel_l1_mean"] = card["methods"]["surrogate"]["rel_l1_mean"]
    card["rel_l1_p90"] = card["methods"]["surrogate"]["rel_l1_p90"]
    # a reference certifies an error only when its own noise is well below it (<= 1/3)
    noise_mean = card["reference"]["noise_rel_l1_mean"]
    card["reference"]["certifies"] = bool(noise_mean is not None and noise_mean <= card["rel_l1_mean"] / 3)

    if len(mids):
        # both ends share field, wavelength and azimuth; the path runs over depth
        n_model = len(predictor.condition_names)
        ends = pairs.reshape(-1, grid.shape[1])[:, :n_model].astype(np.float32)
        z = predictor.latent(ends).reshape(len(pairs), 2, -1)
        via_latent = predictor.decode(z.mean(axis=1), mids[:, :n_model].astype(np.float32))
        if "azimuth" not in predictor.condition_names:
            via_latent = rotate_psfs(via_latent, mids[:, -1])
        via_latent, direct = embed(via_latent, window), embed(predict_oriented(predictor, mids), window)
        err_latent, err_direct = rel_l1(via_latent, ref_mid), rel_l1(direct, ref_mid)
        card["interpolation"] = {"pairs": len(pairs), "midpoint_rel_l1_mean": float(err_latent.mean()),
                                 "direct_rel_l1_mean": float(err_direct.mean()),
                                 "ratio": float(err_latent.mean() / max(err_direct.mean(), 1e-12))}

    out_dir.mkdir(parents=True, exist_ok=True)
    shape = (nw, nf, nd)
    fields = grid[: nf * nd : nd, 0]
    depths = grid[:nd, 1]
    maps = {name: errs["rel_l1"].reshape(shape).mean(axis=0) for name, errs in errors.items()}
    maps["energy outside kernel (max over wavelengths)"] = outside.reshape(shape).max(axis=0)
    error_maps(maps, fields, depths, f"{predictor.name}: whole-PSF relative L1 vs a {e.rays}-ray reference on a "
               f"{window} px window (kernel {ks} px; mean over {nw} wavelengths)", out_dir / "error_maps.png")
    (out_dir / "evaluation.json").write_text(json.dumps(
        {**card, "conditions": grid.tolist(), "per_point_energy_outside_kernel": outside.tolist(),
         "per_point_rel_l1": {k: v["rel_l1"].tolist() for k, v in errors.items()}}, indent=2))
    return card


def held_out_points(cfg: RunConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, tuple[int, int, int]]:
    """(grid, midpoint pairs, midpoints, every point the reference traces, (nf, nd, nw)): the held-out
    grid followed by the latent-midpoint conditions, in the order the cached reference holds them."""
    grid, nf, nd, nw = evaluation_conditions(cfg)
    pairs, mids = interp_pairs(cfg, grid, nd)
    points = np.concatenate([grid, mids]) if len(mids) else grid
    return grid, pairs, mids, points, (nf, nd, nw)


def held_out_reference(cfg: RunConfig, tracer: LensTracer, points: np.ndarray, *,
                       progress: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(psf, own noise, rays) per held-out point on the evaluation window, from the cache when it was
    traced before. ``evaluation.adaptive``: each point is traced until its own noise reaches
    ``evaluation.ray_noise`` (at most ``evaluation.rays``), else ``evaluation.rays`` everywhere."""
    e = cfg.evaluation
    columns = evaluation_columns(cfg.conditions.names())
    if e.adaptive:
        return adaptive_reference(tracer, points, ks=int(e.window), noise=e.ray_noise, max_rays=int(e.rays),
                                  pass_rays=max(ADAPTIVE_MIN_PASS, int(e.rays) // ADAPTIVE_PASSES),
                                  cache_dir=e.cache_dir, progress=progress, columns=columns)
    ref, noise = converged_reference(tracer, points, ks=int(e.window), rays=int(e.rays), repeats=e.repeats,
                                     cache_dir=e.cache_dir, progress=progress, columns=columns, with_noise=True)
    return ref, noise, np.full(len(points), int(e.rays))


ADAPTIVE_PASSES = 16        # the widest point takes about this many passes to reach the noise target
ADAPTIVE_MIN_PASS = 2**16   # rays of one pass, at least


def _finite_mean(values: np.ndarray) -> float | None:
    values = values[np.isfinite(values)]
    return round(float(values.mean()), 5) if len(values) else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.evaluate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("target", help="run folder, checkpoint folder, or store model NAME[@VERSION]")
    parser.add_argument("config", nargs="?", help="config (default: the run's config.yaml or the manifest's)")
    parser.add_argument("overrides", nargs="*", help="key=value overrides, e.g. evaluation.rays=524288")
    parser.add_argument("--store", default=None, help=f"model store (default: $PSF_STORE or {default_store_root()})")
    parser.add_argument("--out", default=None, help="output folder (default: <run>/evaluation or ./evaluation-NAME)")
    args = parser.parse_intermixed_args(argv)
    store = Store(args.store)
    try:
        cfg = _config_for(args.target, args.config, args.overrides, store)
        predictor = load_predictor(args.target, store)
        out = Path(args.out) if args.out else _default_out(args.target)
        card = evaluate(cfg, predictor, LensTracer.for_run(cfg), out)
    except (ConfigError, StoreError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(card, indent=2))
    print(f"wrote {out / 'evaluation.json'} and {out / 'error_maps.png'}")
    return 0


def _config_for(target: str, config: str | None, overrides: list[str], store: Store) -> RunConfig:
    if config:
        return load_config(config, overrides)
    path = Path(target)
    run = path if (path / "config.yaml").is_file() else path.parent.parent
    if (run / "config.yaml").is_file():
        return load_config(run / "config.yaml", overrides)
    name, _, version = target.partition("@")
    manifest = store.manifest(name, version or None, verify=False)
    import tempfile

    from omegaconf import OmegaConf

    with tempfile.TemporaryDirectory() as tmp:  # the manifest's config, through the same checks as a file
        path = Path(tmp) / "config.yaml"
        OmegaConf.save(OmegaConf.create(manifest.training.config), path)
        return load_config(path, overrides)


def _default_out(target: str) -> Path:
    path = Path(target)
    if path.exists():
        run = path if (path / "config.yaml").is_file() else path.parent.parent
        return run / "evaluation"
    return Path(f"evaluation-{target.replace('@', '-')}")


if __name__ == "__main__":
    sys.exit(main())
