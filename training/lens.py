"""python -m training.lens inspect LENS [--focus M] [--sensor-res W H] [--sensor-diagonal MM] [--config CFG]
                                 [ranges] [--glass NAME=GLASS] [--allow-mismatch] [--json]

Look at a lens before training on it: focal length, f-number, sensor and pixel pitch, then a coarse
ray-traced probe over field x depth x wavelength (x focus). Per probe point: the radii holding 99 % and
99.9 % of the energy [px], the centroid offset from the chief ray [px] and the energy each kernel
size would drop. It recommends data.kernel_size and the ray counts that `auto` would pick, says why,
and writes a PNG of the PSF extent over field x depth.

Ranges come from --config (a run config) or the defaults, overridden by --field / --depth /
--wavelength / --focus-range MIN MAX. Without --config or --wavelength, a lens file designed for another
band (its own wavelengths outside 450-650 nm, e.g. a 920 nm design) is probed over its own band, and the
report says so. It always reports what it knows: when the lens or the ranges are refused it still prints
the focal length, f-number, sensor, wavelengths, the reader's notes, the worst probe point and the cause,
and exits with status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np

from .band import band_note, file_band
from .config import ConfigError, RunConfig, load_config
from .diffraction import OPTICS
from .lens_formats.build import load
from .prescription import LensFileError, read_lens
from .probe import LensProbe
from .raytrace import LensTracer
from .sizing import probe_for, resolve

DEFAULT_KERNELS = (32, 64, 128)
def inspect_config(args: argparse.Namespace, said: list[str]) -> RunConfig:
    overrides = [f"lens.file={args.lens}", "data.kernel_size=auto", "data.spp=auto", "validation.spp=auto",
                 "evaluation.rays=auto", "evaluation.window=auto"]
    if args.config is None:
        overrides.append("name=inspect")
    if args.probe_spp is not None:
        overrides.append(f"data.probe_spp={args.probe_spp}")
    if getattr(args, "optics", None) is not None:
        overrides.append(f"data.optics={args.optics}")
    if args.focus is not None:
        overrides.append(f"lens.focus_m={args.focus}")
    if args.sensor_res is not None:
        overrides.append(f"lens.sensor_res=[{args.sensor_res[0]},{args.sensor_res[1]}]")
    if args.sensor_diagonal is not None:
        overrides.append(f"lens.sensor_diagonal_mm={args.sensor_diagonal}")
    if args.allow_mismatch:
        overrides.append("lens.allow_mismatch=true")
    overrides += [f"lens.glasses.{name}={value}" for name, value in _glasses(args).items()]
    wavelength = args.wavelength
    band = file_band(args.lens) if wavelength is None and args.config is None else None
    if band is not None:
        wavelength = band
        said.append(band_note(band, "--wavelength MIN MAX"))
    for key, value in (("field", args.field), ("depth", args.depth), ("wavelength", wavelength),
                       ("focus", args.focus_range)):
        if value is not None:
            overrides += [f"conditions.{key}.min={value[0]}", f"conditions.{key}.max={value[1]}"]
    return load_config(args.config, overrides)


def _glasses(args: argparse.Namespace) -> dict[str, str]:
    pairs = [g.split("=", 1) for g in args.glass or []]
    bad = [g for g, p in zip(args.glass or [], pairs, strict=True) if len(p) != 2 or not all(p)]
    if bad:
        raise ConfigError(f"--glass {bad[0]!r}: expected NAME=GLASS (a DeepLens catalogue name or nd/vd)")
    return {name: value for name, value in pairs}


def lens_facts(args: argparse.Namespace) -> dict:
    """What can be learnt about the lens without a valid run config (for a refusal's report)."""
    try:
        desc = read_lens(args.lens)
    except LensFileError as exc:
        return exc.facts or {"file": Path(args.lens).name}
    try:
        built = load(desc, sensor_res=tuple(args.sensor_res) if args.sensor_res else None,
                     sensor_diagonal_mm=args.sensor_diagonal, glasses=_glasses(args),
                     allow_mismatch=args.allow_mismatch, device="cpu")
    except (LensFileError, ConfigError) as exc:
        return getattr(exc, "facts", None) or desc.facts()
    return built.facts


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


def _worst(probe: LensProbe) -> dict:
    p = max(probe.points, key=lambda q: q.half_width_needed)
    return {"condition": p.label(), "r999_px": round(p.r999, 1), "half_width_needed_px": round(p.half_width_needed, 1),
            "rays_on_sensor": round(p.rays_on_sensor, 4)}


def inspect(args: argparse.Namespace) -> dict:
    """The report; ``report["refused"]`` holds the cause (and what was known) when the lens or its ranges
    cannot be used."""
    said: list[str] = []
    report: dict = {"lens": None, "refused": None, "said": said}
    try:
        cfg = inspect_config(args, said)
    except ConfigError as exc:
        report.update(lens=lens_facts(args), refused={"cause": str(exc)})
        return report
    try:
        tracer = LensTracer.for_run(cfg)
    except LensFileError as exc:
        report.update(lens=exc.facts or lens_facts(args), refused={"cause": str(exc)})
        return report
    info = tracer.info()
    report["lens"] = info.model_dump(mode="json") | {
        k: tracer.facts.get(k) for k in ("f_number_in_file", "focal_length_in_file_mm", "wavelengths_nm",
                                         "primary_wavelength_nm")}
    report["ranges"] = cfg.conditions.model_dump(mode="json")
    try:
        probe = probe_for(cfg, tracer)
    except (ValueError, LensFileError) as exc:
        report["refused"] = {"cause": str(exc)}
        return report
    report["probe_rays_per_point"] = probe.spp
    report["optics"] = optics_report(tracer, probe)
    try:
        _, sizing = resolve(cfg, probe)
    except ConfigError as exc:
        report["refused"] = {"cause": str(exc), "worst_point": _worst(probe)}
        return report
    kernels = sorted(set(args.kernel or DEFAULT_KERNELS) | {sizing.kernel_size})
    dropped = {k: 1.0 - probe.kept(k) for k in kernels}
    points = [{**asdict(p), "energy_dropped": {str(k): round(float(dropped[k][i]), 5) for k in kernels}}
              for i, p in enumerate(probe.points)]
    report.update({
        "recommendation": {
            "kernel_size": sizing.kernel_size, "spp": sizing.spp, "validation_spp": sizing.validation_spp,
            "evaluation_rays": sizing.reference_rays, "evaluation_window": sizing.reference_window,
            "expected_noise": sizing.expected_noise, "why": sizing.reasons,
        },
        "worst_point": _worst(probe),
        "worst_energy_dropped": {str(k): round(float(dropped[k].max()), 5) for k in kernels},
        "points": points,
    })
    png = Path(args.png) if args.png else Path(f"{Path(args.lens).stem}-extent.png")
    extent_figure(probe, kernels, sizing.kernel_size, f"{info.file}: PSF extent (focus {info.focus_m or 'inf'} m)", png)
    report["figure"] = str(png)
    return report


def optics_report(tracer: LensTracer, probe: LensProbe) -> dict:
    """data.optics as resolved for this lens (Airy radius at the longest wavelength, auto's verdict) beside
    the geometric extent of the probed PSFs."""
    r99 = [float(np.quantile(np.hypot(dx, dy), 0.99)) for dx, dy in probe.offsets]
    decision = tracer.optics_decision
    assert decision is not None, "LensTracer.for_run resolves data.optics"
    spread = {"min": round(min(r99), 2), "median": round(float(np.median(r99)), 2), "max": round(max(r99), 2)}
    return decision.to_json() | {"geometric_r99_px": spread}


def print_facts(lens: dict | None, said: list[str]) -> None:
    """Focal length, f-number, sensor, wavelengths and the reader's notes: whatever is known."""
    lens = lens or {}
    def num(key: str, fmt: str) -> str:
        return "?" if lens.get(key) is None else format(lens[key], fmt)
    if lens.get("focal_length_mm") is None and lens.get("focal_length_in_file_mm") is not None:
        lens = lens | {"focal_length_mm": lens["focal_length_in_file_mm"]}  # paraxial, from the file
    own = f" (the file's own f/{lens['f_number_in_file']:.2f})" if lens.get("f_number_in_file") else ""
    size = lens.get("sensor_size_mm")
    if size:
        res = lens["sensor_resolution"]
        pitch = lens["pixel_pitch_um"]
        sensor = f"sensor {size[0]:.3g} x {size[1]:.3g} mm ({res[0]} x {res[1]} px, pitch {pitch:.3g} um)"
    else:
        sensor = f"sensor semi-diagonal {num('sensor_semi_diagonal_mm', '.3g')} mm"
    print(f"{lens.get('file', '?')}: f = {num('focal_length_mm', '.2f')} mm, f/{num('f_number', '.2f')}{own}, {sensor}"
          + (f", focus {lens.get('focus_m') or 'inf'} m" if "focus_m" in lens else ""))
    if lens.get("wavelengths_nm"):
        print("wavelengths in the file: " + ", ".join(f"{w:.1f}" for w in lens["wavelengths_nm"]) + " nm")
    for note in list(lens.get("notes") or []) + said:
        print(f"  note: {note}")


def print_report(report: dict) -> None:
    print_facts(report["lens"], report["said"])
    refused = report["refused"]
    if refused is not None:
        if refused.get("worst_point"):
            w = refused["worst_point"]
            print(f"worst point: {w['condition']}: 99.9 % radius {w['r999_px']} px, {w['rays_on_sensor']:.1%} of rays "
                  "on the sensor")
        print(f"refused: {refused['cause']}")
        return
    rec = report["recommendation"]
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
    w = report["worst_point"]
    print(f"worst point: {w['condition']} (99.9 % radius {w['r999_px']} px)")
    optics = report["optics"]
    r99 = optics["geometric_r99_px"]
    print(f"{optics['reason']}; geometric 99 % radius {r99['min']:.1f} .. {r99['max']:.1f} px "
          f"(median {r99['median']:.1f})" + ("; the radii above include the Airy pattern"
                                             if optics["optics"] == "diffraction" else ""))
    print(f"wrote {report['figure']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.lens", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("inspect", help="probe a lens's PSF extent and recommend kernel size and ray counts")
    p.add_argument("lens", help="DeepLens JSON or Zemax .zmx file")
    p.add_argument("--focus", type=float, default=None, help="focus distance [m] (default: the config's, else inf)")
    p.add_argument("--sensor-res", type=int, nargs=2, metavar=("W", "H"), help="sensor pixels (required for .zmx)")
    p.add_argument("--sensor-diagonal", type=float, default=None, metavar="MM",
                   help="sensor diagonal [mm], replacing the file's (a .zmx with only an on-axis field has none)")
    p.add_argument("--glass", action="append", metavar="NAME=GLASS",
                   help="use a DeepLens catalogue glass or nd/vd for a glass the file names (repeat)")
    p.add_argument("--allow-mismatch", action="store_true",
                   help="expert: use a lens whose traced focal length or f-number contradicts the file's")
    p.add_argument("--config", default=None, help="take ranges and probe settings from this run config")
    for name in ("field", "depth", "wavelength"):
        p.add_argument(f"--{name}", type=float, nargs=2, metavar=("MIN", "MAX"))
    p.add_argument("--focus-range", type=float, nargs=2, metavar=("MIN", "MAX"), help="focus as a condition [m]")
    p.add_argument("--probe-spp", type=int, default=None, help="rays per probe point (default: the config's, 16384)")
    p.add_argument("--optics", choices=OPTICS, default=None,
                   help="geometric | diffraction | auto (default: the config's data.optics, auto)")
    p.add_argument("--kernel", type=int, action="append", help="kernel size to report dropped energy for (repeat)")
    p.add_argument("--png", default=None, help="extent figure (default: LENS-extent.png)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    g = sub.add_parser("gallery", help="layout drawings and facts of the lenses of run configs (README's gallery)")
    g.add_argument("configs", nargs="+", help="run configs naming the lenses (e.g. configs/*quickstart.yml)")
    g.add_argument("--out", default="docs/lenses", help="folder for the drawings (default: docs/lenses)")
    args = parser.parse_args(argv)
    if args.command == "gallery":
        from .lens_gallery import gallery

        print("\n".join(gallery(args.configs, Path(args.out))))
        return 0
    report = inspect(args)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_report(report)
    if report["refused"] is not None:
        print(f"error: {report['refused']['cause']}", file=sys.stderr)
        return 2
    return 0

if __name__ == "__main__":
    sys.exit(main())
