"""Diffraction: candidate PSF models against DeepLens's wave-optics PSF, accuracy and cost.

python -m benchmarks.diffraction [--out DIR] [--window 24] [--pupil-grid 257] [--coherent]

Reference: DeepLens's Huygens-Fresnel PSF (``GeoLens.psf_huygens``: coherent float64 tracing to the exit
pupil, then a sum of spherical waves over the sensor), with the pupil sampled on a square lattice
(``--pupil-grid`` points across, so the sum is a quadrature without Monte-Carlo speckle) and evaluated on
a grid ``--huygens-sub`` times finer than the pixels, summed over each pixel: what a pixel records. Its
convergence (against a lattice half as fine) is printed at the first point. ``psf_huygens`` as it returns
(the intensity at pixel centres only) is the bracketed second reference: at 1.75 um pixels the Airy core
is about one pixel wide, so point samples miss most of it. DeepLens's other wave model, ``psf_coherent``
(``psf_pupil_prop``), samples the exit pupil at the sensor's pixel pitch on a grid as wide as the sensor's
height (0.84 mm here, against a 4.2 mm exit pupil); ``--coherent`` measures it at the first point.

Candidates (geometric ones traced with ``--geo-rays`` rays, ray noise far below the differences):
- ``geometric``: DeepLens's ray-traced PSF (``GeoLens.psf``): what is served without diffraction;
- ``tent*airy``: that PSF convolved on the pixel grid with the pixel-integrated Airy pattern of the working
  f-number at the traced wavelength (the classic cheap form);
- ``airy exact``: the same model without the binning error: ray hits binned finely, times the Airy OTF and
  the pixel box in the Fourier domain (benchmarks/airy_models.py);
- ``wave (chosen)``: training.diffraction.diffracted_psf, the lattice-pupil Fraunhofer PSF of training/wave.py.
Cost: ms per PSF at training settings (``--cost-ks`` px, ``--cost-rays`` rays for the ray-traced ones,
``--cost-batch`` points per call at one wavelength, the tracer's float32 lens), tracing included.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from training.diffraction import airy_radius_um, diffracted_psf, working_f_number
from training.raytrace import LensTracer

from .airy_models import airy_kernel, bin_and_diffract, ray_hits, subsampling, tent_airy

# (field, depth m, wavelength nm): near the axis at, before and beyond focus (1.5 m), then mid-field
POINTS = ((0.0, 1.5, 550.0), (0.0, 0.5, 550.0), (0.05, 0.5, 450.0), (0.1, 20.0, 650.0), (0.5, 1.5, 550.0),
          (0.5, 5.0, 650.0))
NEAR_AXIS = 0.1


def rel_l1(p: np.ndarray, r: np.ndarray) -> float:
    return float(np.abs(p / p.sum() - r / r.sum()).sum())


def _disc_grid(across: int) -> np.ndarray:
    """Square-lattice points inside the unit disc, ``across`` of them on a diameter (odd: one on the centre)."""
    u = np.linspace(-1.0, 1.0, across)
    x, y = np.meshgrid(u, u)
    inside = x * x + y * y <= 1.0
    return np.stack([x[inside], y[inside]], axis=1)


class _GridPupil:
    """Within the block, the lens samples its pupil on a square lattice instead of at random: the Huygens
    sum becomes a quadrature (no Monte-Carlo speckle), and the chief ray is the lattice's centre point."""

    def __init__(self, lens, across: int) -> None:
        self.lens, self.across = lens, across | 1  # odd: the centre point is the chief ray

    def rays(self) -> int:
        return len(_disc_grid(self.across))

    def _sample_circle(self, r, z, shape):
        *lead, n = shape
        across = self.across
        while len(_disc_grid(across)) < n:
            across += 2
        pts = _disc_grid(across)
        pts = pts[np.argsort(np.hypot(pts[:, 0], pts[:, 1]), kind="stable")[:n]]  # exact n, centre first
        xy = torch.as_tensor(pts, dtype=self.lens.dtype, device=self.lens.device) * float(r)
        xyz = torch.cat([xy, torch.full_like(xy[:, :1], float(z))], dim=1)
        return xyz.expand(*lead, n, 3).clone()

    def __enter__(self):
        self.lens.sample_circle = self._sample_circle
        return self

    def __exit__(self, *exc):
        del self.lens.sample_circle


def huygens(lens, point: torch.Tensor, wavelength_nm: float, ks: int, sub: int, across: int) -> np.ndarray:
    """DeepLens's Huygens PSF on a sub x finer grid (same extent), [ks * sub, ks * sub], from a lattice of
    pupil samples ``across`` wide."""
    pitch = lens.pixel_size
    try:
        lens.pixel_size = pitch / sub
        with _GridPupil(lens, across) as grid:
            fine = lens.psf_huygens(point, ks=ks * sub, wvln=wavelength_nm / 1000.0, spp=grid.rays())
    finally:
        lens.pixel_size = pitch
    return fine.double().numpy()


def pool(fine: np.ndarray, sub: int) -> np.ndarray:
    k = fine.shape[0] // sub
    return fine.reshape(k, sub, k, sub).sum(axis=(1, 3))


def accuracy(args, tracer: LensTracer) -> list[dict]:
    lens = tracer.lens
    lens.astype(torch.float64)
    f_number = working_f_number(lens)
    ks, sub = args.window, args.huygens_sub
    rows = []
    for i, (field, depth, wavelength) in enumerate(POINTS):
        point = tracer.points(np.array([field]), np.array([depth])).double()
        start = time.perf_counter()
        fine = huygens(lens, point[0], wavelength, ks, sub, args.pupil_grid)
        huygens_s = time.perf_counter() - start
        ref = pool(fine, sub)
        ref_noise = float("nan")
        if i == 0:  # convergence: the same sum on a lattice half as fine
            ref_noise = rel_l1(pool(huygens(lens, point[0], wavelength, ks, sub, args.pupil_grid // 2), sub), ref)
        centre = (sub - 1) // 2  # the sub-sample at each pixel's centre: psf_huygens as it returns
        point_ref = fine[centre::sub, centre::sub]
        torch.manual_seed(7 + i)
        geo = lens.psf(point, wvln=wavelength / 1000.0, ks=ks, spp=args.geo_rays, recenter=True).double()
        torch.manual_seed(7 + i)
        hits, valid = ray_hits(lens, point, wavelength, args.geo_rays)
        pitch_um = float(lens.pixel_size) * 1000.0
        candidates = {
            "geometric": geo[0],
            "tent*airy": tent_airy(geo, airy_kernel(wavelength, f_number, pitch_um, ks))[0],
            "airy exact": bin_and_diffract(hits, valid, ks, wavelength, f_number, pitch_um)[0],
            "wave (chosen)": diffracted_psf(lens, point, wavelength, ks=ks)[0].double(),
        }
        row = {"field": field, "depth_m": depth, "wavelength_nm": wavelength, "window_px": ks,
               "airy_radius_px": round(airy_radius_um(wavelength, f_number) / pitch_um, 3),
               "reference_convergence": round(ref_noise, 4), "huygens_s": round(huygens_s, 1),
               "airy_sub": max(3, subsampling(wavelength, f_number, pitch_um)),
               "rel_l1": {name: round(rel_l1(c.numpy(), ref), 4) for name, c in candidates.items()},
               "rel_l1_vs_point_samples": {name: round(rel_l1(c.numpy(), point_ref), 4)
                                           for name, c in candidates.items()}}
        if args.coherent and i == 0:
            row["psf_coherent_rel_l1"] = coherent(lens, point, wavelength, ks, ref)
        rows.append(row)
        print(f"  field {field} depth {depth} m {wavelength:.0f} nm: " + ", ".join(
            f"{k} {v}" for k, v in row["rel_l1"].items()), flush=True)
    return rows


def coherent(lens, point: torch.Tensor, wavelength_nm: float, ks: int, ref: np.ndarray) -> dict:
    """DeepLens's ASM pupil-propagation PSF at one point: relative L1 against the Huygens reference."""
    torch.manual_seed(1)
    start = time.perf_counter()
    psf = lens.psf_coherent(point[0], ks=ks, wvln=wavelength_nm / 1000.0, spp=2**20).double().numpy()
    _, pupil_r = lens.get_exit_pupil()
    grid_mm = float(lens.sensor_res[1]) * float(lens.pixel_size)
    return {"rel_l1": round(rel_l1(psf, ref), 4), "seconds": round(time.perf_counter() - start, 1),
            "pupil_grid_mm": round(grid_mm, 3), "exit_pupil_diameter_mm": round(2 * float(pupil_r), 3)}


def cost(args, tracer: LensTracer) -> dict[str, float]:
    """ms per PSF of each candidate at training settings (float32 lens, as training traces)."""
    lens = tracer.lens
    f_number = working_f_number(lens)
    ks, n, spp, wavelength = args.cost_ks, args.cost_batch, args.cost_rays, 550.0
    field = np.linspace(0.0, 1.0, n)
    points = tracer.points(field, np.full(n, 5.0))
    pitch_um = float(lens.pixel_size) * 1000.0
    kernel = airy_kernel(wavelength, f_number, pitch_um, ks // 2)

    def exact():
        hits, valid = ray_hits(lens, points, wavelength, spp)
        return bin_and_diffract(hits, valid, ks, wavelength, f_number, pitch_um)

    jobs = {
        "geometric": lambda: lens.psf(points, wvln=wavelength / 1000.0, ks=ks, spp=spp, recenter=True),
        "tent*airy": lambda: tent_airy(lens.psf(points, wvln=wavelength / 1000.0, ks=ks, spp=spp, recenter=True),
                                       kernel),
        "airy exact": exact,
        "wave (chosen)": lambda: diffracted_psf(lens, points, wavelength, ks=ks),
    }
    for job in jobs.values():
        job()  # warm-up (the wave model's float64 lens copy is made here)
    best = dict.fromkeys(jobs, float("inf"))
    for _ in range(args.cost_repeats):  # interleaved, the fastest of each: a shared machine's load moves
        for name, job in jobs.items():
            start = time.perf_counter()
            job()
            best[name] = min(best[name], time.perf_counter() - start)
    return {name: round(1000.0 * t / n, 2) for name, t in best.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.diffraction", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lens", default="lenses/phone_asphere.zmx")
    parser.add_argument("--sensor-res", type=int, nargs=2, default=(640, 480))
    parser.add_argument("--focus", type=float, default=1.5)
    parser.add_argument("--window", type=int, default=24, help="PSF window [px] of the accuracy comparison")
    parser.add_argument("--huygens-sub", type=int, default=3, help="Huygens samples per pixel side (odd)")
    parser.add_argument("--pupil-grid", type=int, default=257, help="Huygens pupil lattice: points on a diameter")
    parser.add_argument("--geo-rays", type=int, default=2**20)
    parser.add_argument("--coherent", action="store_true", help="also measure psf_coherent at the first point")
    parser.add_argument("--cost-ks", type=int, default=64)
    parser.add_argument("--cost-rays", type=int, default=2048)
    parser.add_argument("--cost-batch", type=int, default=32)
    parser.add_argument("--cost-repeats", type=int, default=5, help="interleaved rounds; the fastest counts")
    parser.add_argument("--cost-only", action="store_true", help="measure the cost alone")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=None, help="folder for diffraction.json")
    args = parser.parse_args(argv)
    assert args.huygens_sub % 2 == 1, "--huygens-sub must be odd (its centre sample is the pixel centre)"
    torch.set_num_threads(args.threads)
    tracer = LensTracer(args.lens, args.focus, sensor_res=tuple(args.sensor_res), device="cpu")
    f_number = working_f_number(tracer.lens)
    print(f"{args.lens}: working f/{f_number:.3f}, {float(tracer.lens.pixel_size) * 1000:.3g} um pixels", flush=True)
    ms = cost(args, tracer)
    print("ms per PSF (" + f"{args.cost_ks} px, {args.cost_rays} rays, {args.cost_batch} points per call, fastest of "
          f"{args.cost_repeats}): " + ", ".join(f"{k} {v}" for k, v in ms.items()), flush=True)
    if args.cost_only:
        return 0
    rows = accuracy(args, tracer)
    names = list(rows[0]["rel_l1"])
    print(f"\nwhole-PSF relative L1 on a {args.window} px window against DeepLens psf_huygens integrated over "
          "each pixel [against psf_huygens at pixel centres]")
    print(f"{'field':>5} {'depth m':>7} {'nm':>4} {'Airy px':>7} {'ref conv.':>9}  "
          + "  ".join(f"{n:>20}" for n in names))
    for r in rows:
        cells = "  ".join(f"{r['rel_l1'][n]:>7.4f} [{r['rel_l1_vs_point_samples'][n]:.3f}]".rjust(20) for n in names)
        print(f"{r['field']:5.2f} {r['depth_m']:7.3g} {r['wavelength_nm']:4.0f} {r['airy_radius_px']:7.2f} "
              f"{r['reference_convergence']:9.4f}  {cells}")
    near = [r for r in rows if r["field"] <= NEAR_AXIS]
    summary = {n: {"near_axis_mean": round(float(np.mean([r["rel_l1"][n] for r in near])), 4),
                   "all_mean": round(float(np.mean([r["rel_l1"][n] for r in rows])), 4)} for n in names}
    for n in names:
        print(f"{n:>28}: near-axis mean {summary[n]['near_axis_mean']:.4f}, all {summary[n]['all_mean']:.4f}")
    if rows[0].get("psf_coherent_rel_l1"):
        print(f"psf_coherent at the first point: {rows[0]['psf_coherent_rel_l1']}")
    report = {"lens": args.lens, "sensor_res": list(args.sensor_res), "focus_m": args.focus,
              "working_f_number": round(f_number, 4), "window_px": args.window, "huygens_sub": args.huygens_sub,
              "pupil_grid": args.pupil_grid, "geo_rays": args.geo_rays, "points": rows, "summary": summary,
              "ms_per_psf": ms, "cost_settings": {"ks": args.cost_ks, "rays": args.cost_rays,
                                                   "batch": args.cost_batch, "threads": args.threads}}
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "diffraction.json").write_text(json.dumps(report, indent=2))
        print(f"wrote {out / 'diffraction.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
