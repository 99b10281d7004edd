"""python -m training.lens inspect LENS [--focus M] [--sensor-res W H] [--config CFG] [ranges] [--json]

Look at a lens before training on it: focal length, f-number, sensor and pixel pitch, then a coarse
ray-traced probe over field x depth x wavelength (x focus). Per probe point: the radii holding 99 % and
99.9 % of the energy [px], the centroid offset from the chief ray [px] and the energy each kernel
size would drop. It recommends data.kernel_size and the ray counts that `auto` would pick, says why,
and writes a PNG of the PSF extent over field x depth.

Ranges come from --config (a run config) or the defaults, overridden by --field / --depth /
--wavelength / --focus-range MIN MAX.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np

from .config import ConfigError, RunConfig, load_config
from .prescription import LensFileError
from .probe import LensProbe
from .raytrace import LensTracer
from .sizing import probe_for, resolve

DEFAULT_KERNELS = (32, 64, 128)


def inspect_config(args: argparse.Namespace) -> RunConfig:
    overrides = [f"lens.file={args.lens}", "data.kernel_size=auto", "data.spp=auto", "validation.spp=auto",
                 "evaluation.rays=auto", "evaluation.window=auto"]
    if args.config is None:
        overrides.append("name=inspect")
    if args.probe_spp is not None:
        overrides.append(f"data.probe_spp={args.probe_spp}")
    if args.focus is not None:
        overrides.append(f"lens.focus_m={args.focus}")
    if args.sensor_res is not None:
        overrides.append(f"lens.sensor_res=[{args.sensor_res[0]},{args.sensor_res[1]}]")
    for key, value in (("field", args.field), ("depth", args.depth), ("wavelength", args.wavelength),
                       ("focus", args.focus_range)):
        if value is not None:
            overrides += [f"conditions.{key}.min={value[0]}", f"conditions.{key}.max={value[1]}"]
    return load_config(args.config, overrides)


def extent_figure(probe: LensProbe, kernels: list[int], recommended: int, title: str, path: Path) -> None:
    """r99.9 [px] over field (rows) x depth (columns), worst over wavelength and focus."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fields = sorted({p.field for p in probe.points})
    depths = sorted({p.depth for p in probe.points})
    grid = np.zeros((len(fields), len(depths)))
    for p in probe.points:
        i, j = fields.index(p.field), depths.index(p.depth)
        grid[i, j] = max(grid[i, j], p.r999)
    fig, ax = plt.subplots(figsize=(1.1 * len(depths) + 2.5, 0.55 * len(fields) + 1.8), layout="constrained")
    im = ax.imshow(grid, cmap="magma", aspect="auto", origin="lower")
    for (r, c), v in np.ndenumerate(grid):
        ax.text(c, r, f"{v:.0f}", ha="center", va="center", fontsize=7, color="w" if v < grid.max() * 0.6 else "k")
    ax.set_xticks(range(len(depths)), [f"{d:.3g}" for d in depths], fontsize=7)
    ax.set_yticks(range(len(fields)), [f"{f:.2f}" for f in fields], fontsize=7)
    ax.set_xlabel("depth [m]")
    ax.set_ylabel("field (fraction of the half-diagonal)")
    fig.colorbar(im, ax=ax, label="radius holding 99.9 % of the energy [px]")
    limits = ", ".join(f"{k} px: half-width {k / 2 - 0.5:.0f}" for k in kernels)
    ax.set_title(f"{title}\nrecommended kernel {recommended} px ({limits})", fontsize=8)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def inspect(args: argparse.Namespace) -> dict:
    cfg = inspect_config(args)
    tracer = LensTracer.for_run(cfg)
    info = tracer.info()
    probe = probe_for(cfg, tracer)
    _, sizing = resolve(cfg, probe)
    kernels = sorted(set(args.kernel or DEFAULT_KERNELS) | {sizing.kernel_size})
    dropped = {k: 1.0 - probe.kept(k) for k in kernels}
    points = [{**asdict(p), "energy_dropped": {str(k): round(float(dropped[k][i]), 5) for k in kernels}}
              for i, p in enumerate(probe.points)]
    report = {
        "lens": info.model_dump(mode="json"),
        "ranges": cfg.conditions.model_dump(mode="json"),
        "probe_rays_per_point": probe.spp,
        "recommendation": {
            "kernel_size": sizing.kernel_size, "spp": sizing.spp, "validation_spp": sizing.validation_spp,
            "evaluation_rays": sizing.reference_rays, "evaluation_window": sizing.reference_window,
            "expected_noise": sizing.expected_noise, "why": sizing.reasons,
        },
        "worst_energy_dropped": {str(k): round(float(dropped[k].max()), 5) for k in kernels},
        "points": points,
    }
    png = Path(args.png) if args.png else Path(f"{Path(args.lens).stem}-extent.png")
    extent_figure(probe, kernels, sizing.kernel_size, f"{info.file}: PSF extent (focus {info.focus_m or 'inf'} m)", png)
    report["figure"] = str(png)
    return report


def print_report(report: dict) -> None:
    lens, rec = report["lens"], report["recommendation"]
    w, h = lens["sensor_size_mm"]
    res_x, res_y = lens["sensor_resolution"]
    print(f"{lens['file']}: f = {lens['focal_length_mm']:.2f} mm, f/{lens['f_number']:.2f}, "
          f"sensor {w:.3g} x {h:.3g} mm ({res_x} x {res_y} px, pitch {lens['pixel_pitch_um']:.3g} um), "
          f"focus {lens['focus_m'] or 'inf'} m")
    kernels = list(report["worst_energy_dropped"])
    print(f"probe: {len(report['points'])} points, {report['probe_rays_per_point']} rays each; radii and offsets in px")
    header = f"{'field':>6} {'depth m':>8} {'nm':>5} {'focus':>6} {'r99':>6} {'r99.9':>6} {'centroid':>8}  " + \
        "  ".join(f"drop@{k:<4}" for k in kernels)
    print(header)
    for p in report["points"]:
        focus = "-" if p["focus"] is None else f"{p['focus']:.3g}"
        drops = "  ".join(f"{100 * p['energy_dropped'][k]:8.2f}%" for k in kernels)
        print(f"{p['field']:6.2f} {p['depth']:8.3g} {p['wavelength']:5.0f} {focus:>6} {p['r99']:6.1f} {p['r999']:6.1f} "
              f"{p['centroid_px']:8.2f}  {drops}")
    worst = report["worst_energy_dropped"]
    print("worst energy dropped: " + ", ".join(f"{k} px {100 * v:.2f} %" for k, v in worst.items()))
    print(f"recommended: data.kernel_size {rec['kernel_size']}, data.spp {rec['spp']}, validation.spp "
          f"{rec['validation_spp']}, evaluation.rays {rec['evaluation_rays']} "
          f"on a {rec['evaluation_window']} px window")
    for reason in rec["why"]:
        print(f"  {reason}")
    print(f"wrote {report['figure']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.lens", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("inspect", help="probe a lens's PSF extent and recommend kernel size and ray counts")
    p.add_argument("lens", help="DeepLens JSON or Zemax .zmx file")
    p.add_argument("--focus", type=float, default=None, help="focus distance [m] (default: the config's, else inf)")
    p.add_argument("--sensor-res", type=int, nargs=2, metavar=("W", "H"), help="sensor pixels (required for .zmx)")
    p.add_argument("--config", default=None, help="take ranges and probe settings from this run config")
    for name in ("field", "depth", "wavelength"):
        p.add_argument(f"--{name}", type=float, nargs=2, metavar=("MIN", "MAX"))
    p.add_argument("--focus-range", type=float, nargs=2, metavar=("MIN", "MAX"), help="focus as a condition [m]")
    p.add_argument("--probe-spp", type=int, default=None, help="rays per probe point (default: the config's, 16384)")
    p.add_argument("--kernel", type=int, action="append", help="kernel size to report dropped energy for (repeat)")
    p.add_argument("--png", default=None, help="extent figure (default: LENS-extent.png)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    try:
        report = inspect(args)
    except (ConfigError, LensFileError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_report(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
