"""The served PSF of a diffraction-trained model against DeepLens's wave optics, near the axis.

    python -m benchmarks.served_diffraction --store DIR --model NAME --config CONFIG [--out DIR]

For each near-axis point of ``benchmarks.diffraction`` (field <= 0.1): the model's served PSF
(``LocalPSFModel``, the same graphs the server runs), cropped to the comparison window and set to unit
sum there, against DeepLens's Huygens PSF in float64 integrated over each pixel (the reference of
``benchmarks.diffraction``), and beside it DeepLens's geometric PSF against the same reference. Prints a
table and writes ``served_diffraction.json`` to ``--out``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from clients import LocalPSFModel
from training.config import load_config
from training.raytrace import LensTracer

from .diffraction import NEAR_AXIS, POINTS, huygens, pool, rel_l1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.served_diffraction", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--config", required=True, help="the model's training config (its lens and focus)")
    parser.add_argument("--window", type=int, default=24)
    parser.add_argument("--pupil-grid", type=int, default=257)
    parser.add_argument("--geo-rays", type=int, default=2**16)
    parser.add_argument("--out", type=Path, default=Path("bench_out"))
    args = parser.parse_args(argv)
    model = LocalPSFModel.from_store(args.store, args.model)
    tracer = LensTracer.for_run(load_config(args.config, ["data.optics=geometric"]))
    lens = tracer.lens
    ks, win, sub = model.meta.kernel_size or 0, args.window, 3
    lo = (ks - win) // 2
    rows = []
    for field, depth, wavelength in (p for p in POINTS if p[0] <= NEAR_AXIS):
        point = tracer.points(np.array([field]), np.array([depth])).double()
        lens.astype(torch.float64)
        ref = pool(huygens(lens, point[0], wavelength, win, sub, args.pupil_grid), sub)
        lens.astype(torch.float32)
        served = np.asarray(model.psf(field=field, depth=depth, wavelength=wavelength), np.float64)[lo:lo + win,
                                                                                                  lo:lo + win]
        torch.manual_seed(7)
        geo = lens.psf(point.float(), wvln=wavelength / 1000.0, ks=win, spp=args.geo_rays, recenter=True)[0]
        rows.append({"field": field, "depth_m": depth, "wavelength_nm": wavelength,
                     "served": round(rel_l1(served, ref), 4), "geometric": round(rel_l1(geo.double().numpy(), ref), 4)})
        print(f"field {field} depth {depth} m {wavelength:.0f} nm: served {rows[-1]['served']}, "
              f"DeepLens geometric {rows[-1]['geometric']}", flush=True)
    summary = {k: round(float(np.mean([r[k] for r in rows])), 4) for k in ("served", "geometric")}
    print(f"near-axis mean whole-PSF relative L1 on a {win} px window: served {summary['served']}, "
          f"geometric {summary['geometric']} (target: served <= 0.1)")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "served_diffraction.json").write_text(json.dumps(
        {"model": f"{model.meta.model}@{model.meta.version}", "window_px": win, "points": rows, "summary": summary},
        indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
