"""Accuracy of the image-geometry table (chief-ray position, relative illumination) per shipped lens.

    python -m benchmarks.geometry [--configs configs/*-quickstart.yml ...] [--points 48] [--out docs]

For each config: traces the table the fit would publish (training.geometry.trace_for_run, timed) and checks
it against fresh DeepLens traces at held-out conditions (training.geometry_check.check_for_run), errors
beside the references' own noise. Writes ``geometry.json`` and ``geometry.md`` to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime
from pathlib import Path

import torch

from training.config import load_config
from training.geometry import trace_for_run
from training.geometry_check import check_for_run
from training.raytrace import LensTracer

DEFAULT_CONFIGS = ["configs/quickstart.yml", "configs/phone-quickstart.yml", "configs/achromat-quickstart.yml",
                   "configs/doublet-wide-quickstart.yml"]


def measure(config: str, points: int) -> dict:
    cfg = load_config(config, [])
    tracer = LensTracer.for_run(cfg, seed=cfg.seed)
    started = time.perf_counter()
    table = trace_for_run(cfg, tracer)
    table_s = time.perf_counter() - started
    card = check_for_run(cfg, table, tracer.info(), tracer, points=points)
    info = tracer.info()
    return {"config": config, "lens": info.file, "pixel_pitch_um": info.pixel_pitch_um,
            "table_s": round(table_s, 1), "table_json_bytes": len(table.model_dump_json()), **card}


INTRO = ("`python -m benchmarks.geometry`: the table each quick-start fit publishes, against fresh DeepLens traces "
         "at held-out (field, azimuth, depth, wavelength). Distortion error: the table against the aimed chief "
         "ray traced afresh (no noise); beside it, the table against DeepLens's `calc_chief_ray` pick and that "
         "pick's own noise. Illumination: against render_raytracing's backward ray count (random rays), beside "
         "its Monte-Carlo noise. Targets: 0.05 px (p90), 0.5 %.")


def markdown(rows: list[dict], stamp: str) -> str:
    lines = [f"# Image-geometry table accuracy ({stamp})", "",
             INTRO, "",
             ("| lens (config) | pixel | table | distortion err p50 / p90 [px] | vs calc_chief_ray p50 / p90 | "
             "its noise p90 | illumination err p50 / p90 [%] | its noise p90 | largest distortion | "
             "least illumination | check |"),
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        d, c, n = r["distortion_error_px"], r["distortion_vs_calc_chief_ray_px"], r["distortion_reference_noise_px"]
        i, m = r["illumination_error_pct"], r["illumination_reference_noise_pct"]
        lines.append(
            f"| {r['lens']} (`{r['config']}`) | {r['pixel_pitch_um']:.2f} um | {r['table_s']} s, "
            f"{r['table_json_bytes'] // 1024} KiB | {d['p50']:.5f} / {d['p90']:.5f} | {c['p50']:.4f} / {c['p90']:.4f} "
            f"| {n['p90']:.4f} | {i['p50']:.3f} / {i['p90']:.3f} | {m['p90']:.3f} | "
            f"{r['distortion_px_largest_at_points']:.2f} px | {r['illumination_min']:.3f} | "
            f"{r['points']} points, {r['seconds']} s |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.geometry", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", nargs="+", default=DEFAULT_CONFIGS)
    parser.add_argument("--points", type=int, default=48, help="held-out conditions per lens")
    parser.add_argument("--out", default="docs")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    rows = []
    for config in args.configs:
        rows.append(measure(config, args.points))
        print(json.dumps(rows[-1]))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "geometry.json").write_text(json.dumps({"measured": stamp, "lenses": rows}, indent=2))
    (out / "geometry.md").write_text(markdown(rows, stamp))
    print(markdown(rows, stamp))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
