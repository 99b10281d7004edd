"""python -m training.lens gallery CONFIG... [--out docs/lenses]: the README's lens gallery.

For each run config (the quick-starts name every shipped lens with its pixel grid and focus): DeepLens's
layout drawing of the lens (surfaces and traced rays, at the config's focus) written to OUT/LENS.png,
and a Markdown table of its facts: focal length, f-number, sensor, pixel pitch, the kernel that
``data.kernel_size: auto`` picks over the config's ranges, and the reader's notes.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

from .config import load_config
from .raytrace import LensTracer
from .sizing import probe_for, resolve


def draw(tracer: LensTracer, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    path.parent.mkdir(parents=True, exist_ok=True)
    depth = float("inf") if tracer.focus_m is None else -1000.0 * tracer.focus_m
    with contextlib.redirect_stdout(io.StringIO()):
        tracer.lens.draw_layout(str(path), depth=depth, lens_title=title)


def gallery(configs: list[str], out: Path) -> list[str]:
    """Markdown rows (header first) for the lenses of ``configs``; writes their drawings to ``out``."""
    rows = ["| lens | layout | focal length | f-number | sensor | pixel pitch | kernel (auto) | reader notes |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name in configs:
        cfg = load_config(name, [])
        tracer = LensTracer.for_run(cfg)
        info = tracer.info()
        _, sizing = resolve(cfg, probe_for(cfg, tracer))
        png = out / f"{Path(info.file).stem}.png"
        draw(tracer, png, f"{info.file}: f = {info.focal_length_mm:.2f} mm, f/{info.f_number:.2f}, "
                          f"focus {info.focus_m or 'inf'} m")
        w, h = info.sensor_size_mm
        res = info.sensor_resolution
        notes = "; ".join(info.notes) or "-"
        rows.append(f"| `lenses/{info.file}` (`{Path(name).name}`) | ![{info.file}]({png.as_posix()}) | "
                    f"{info.focal_length_mm:.2f} mm | f/{info.f_number:.2f} | {w:.3g} x {h:.3g} mm, "
                    f"{res[0]} x {res[1]} px | {info.pixel_pitch_um:.3g} um | {sizing.kernel_size} px | {notes} |")
    return rows
