"""The geometry table against fresh DeepLens traces at held-out conditions: the card's ``geometry`` entry.

References are DeepLens's own estimators on the tracer's lens (the float32 lens whose PSFs the model
learnt), each traced twice with independent rays, so every error stands beside the reference's noise:

- position, interpolation error: the table's own estimator (the aimed chief ray, float64, no noise)
  traced afresh at the held-out (field, depth) and turned to the azimuth;
- position, against DeepLens's pick: ``GeoLens.calc_chief_ray`` (the sampled ray nearest the stop
  centre, as ``psf_center`` centres the PSFs), at the primary wavelength, at the held-out (field,
  azimuth, depth): its noise is the selection residual, measured as half the distance between the
  two traces (the served PSFs were centred the same way, at 8192 rays: this is their own centring noise);
- illumination: backward rays from that chief-ray point to the exit-pupil disk, drawn by DeepLens's
  ``sample_circle`` exactly as ``render_raytracing`` draws them, the valid fraction over the same on
  the axis at the reference wavelength; its noise is the Monte-Carlo noise from the two halves.
  Points that lose no ray in a first pass are certain to 1/rays and get no second pass.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch
from deeplens.light import Ray

from models_store import LensInfo
from models_store.geometry import GeometryTable, geometry_at
from models_store.sensor import SensorFrame

from .geometry import GeometryTracer
from .raytrace import LensTracer

CHIEF_RAYS = 16384          # per trace; DeepLens's residual ~1/sqrt(rays) stop radii
ILLUMINATION_RAYS = 65536   # per half, at points that lose rays
AXIS_RAYS = 262144          # per half, on the axis (the normalisation)
TARGETS = {"distortion_px_p90": 0.05, "illumination_pct_p90": 0.5}


def held_out(ranges: dict[str, tuple[float, float]], n: int, seed: int) -> dict[str, np.ndarray]:
    """``n`` random conditions: field and wavelength uniform, depth and focus uniform in 1/distance,
    azimuth uniform over the circle (the table is used at every azimuth)."""
    rng = np.random.default_rng(seed)

    def inverse(lo: float, hi: float) -> np.ndarray:
        return 1.0 / rng.uniform(1.0 / hi, 1.0 / lo, n)

    out = {"field": rng.uniform(*ranges["field"], n), "azimuth": rng.uniform(0.0, 360.0, n),
           "depth": inverse(*ranges["depth"]), "wavelength": rng.uniform(*ranges["wavelength"], n)}
    if "focus" in ranges:
        out["focus"] = inverse(*ranges["focus"])
    return out


@torch.no_grad()
def reference_positions(tracer: LensTracer, rows: dict[str, np.ndarray], *, rays: int = CHIEF_RAYS,
                        seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """DeepLens chief-ray image points (x_mm, y_mm) [N, 2] per row, the mean of two traces, and the
    noise of that mean [N] (half the distance between them) [mm]."""
    lens = tracer.lens
    out = np.empty((2, len(rows["field"]), 2))
    for idx in _by_focus(tracer, rows):
        pts = tracer.points(rows["field"][idx], rows["depth"][idx], rows["azimuth"][idx])
        scale = lens.calc_scale(pts[:, 2])
        obj = torch.stack([pts[:, 0] * scale * tracer.sensor_w / 2, pts[:, 1] * scale * tracer.sensor_h / 2,
                           pts[:, 2]], -1)
        for k in range(2):
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed + k)
                chief = lens.calc_chief_ray(obj, num_rays=rays, wvln=float(lens.primary_wvln))
            out[k, idx] = -chief.o[..., 0, :2].double().cpu().numpy()  # image frame = intercept negated
    return out.mean(axis=0), 0.5 * np.linalg.norm(out[0] - out[1], axis=-1)


@torch.no_grad()
def _valid_fraction(lens, points_mm: np.ndarray, wavelength_nm: float, rays: int) -> np.ndarray:
    """render_raytracing's count: backward rays from sensor points (image frame) over the exit-pupil disk."""
    pupil_z, pupil_r = lens.get_exit_pupil()
    n = len(points_mm)
    origin = torch.zeros(n, rays, 3, dtype=lens.dtype)
    origin[..., :2] = -torch.as_tensor(points_mm, dtype=lens.dtype)[:, None, :]
    origin[..., 2] = float(lens.d_sensor)
    target = lens.sample_circle(r=pupil_r, z=pupil_z, shape=(n, rays))
    ray = lens.trace2obj(Ray(origin, target - origin, wavelength_nm / 1000.0, device=lens.device))
    return ray.is_valid.double().mean(-1).cpu().numpy()


def reference_illumination(tracer: LensTracer, points_mm: np.ndarray, rows: dict[str, np.ndarray],
                           reference_nm: float, *, rays: int = ILLUMINATION_RAYS, axis_rays: int = AXIS_RAYS,
                           seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """DeepLens's relative illumination at chief-ray points [N] and its Monte-Carlo noise [N]."""
    value, noise = np.ones(len(points_mm)), np.zeros(len(points_mm))
    lens = tracer.lens
    for idx in _by_focus(tracer, rows):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            axis = [_valid_fraction(lens, np.zeros((1, 2)), reference_nm, axis_rays)[0] for _ in range(2)]
            for i in idx:
                w = float(rows["wavelength"][i])
                if _valid_fraction(lens, points_mm[i:i + 1], w, 1024)[0] == 1.0 and np.mean(axis) == 1.0:
                    continue  # no ray lost in 1024: 1 to within 1e-3, and both sides of the ratio agree
                halves = [_valid_fraction(lens, points_mm[i:i + 1], w, rays)[0] / a for a in axis]
                value[i], noise[i] = np.mean(halves), 0.5 * abs(halves[0] - halves[1])
    return value, noise


def aimed_heights(tracer: LensTracer, rows: dict[str, np.ndarray]) -> np.ndarray:
    """The table's own estimator, traced afresh at the rows: the aimed chief ray's height [mm] (no noise)."""
    geo = GeometryTracer(tracer)
    out = np.empty(len(rows["field"]))
    for f in (np.unique(rows["focus"]) if "focus" in rows else [None]):
        idx = np.arange(len(out)) if f is None else np.nonzero(rows["focus"] == f)[0]
        if f is not None:
            geo.refocus(float(f))
        out[idx] = geo.chief_height(rows["field"][idx], rows["depth"][idx])
    return out


def _by_focus(tracer: LensTracer, rows: dict[str, np.ndarray]):
    """Row indices per focus, with the tracer refocused for each (left at its fixed focus without a focus column)."""
    if "focus" not in rows:
        yield np.arange(len(rows["field"]))
        return
    for f in np.unique(rows["focus"]):
        tracer.refocus(float(f))
        yield np.nonzero(rows["focus"] == f)[0]


def check_geometry(table: GeometryTable, lens: LensInfo, tracer: LensTracer, ranges: dict[str, tuple[float, float]],
                   *, points: int = 32, seed: int = 0, chief_rays: int = CHIEF_RAYS,
                   illumination_rays: int = ILLUMINATION_RAYS) -> dict:
    """The card entry: table vs DeepLens at ``points`` held-out conditions, errors beside the references' noise."""
    started = time.perf_counter()
    rows = held_out(ranges, points, seed + 7919)
    got = geometry_at(table, lens, **rows)
    ref_mm, ref_noise_mm = reference_positions(tracer, rows, rays=chief_rays, seed=seed)
    frame = SensorFrame.of(lens)
    ref_px = np.stack(frame.mm_to_px(ref_mm[:, 0], ref_mm[:, 1]), -1)
    pitch = float(np.mean(frame.pitch_mm))
    position_err = np.hypot(got["x_px"] - ref_px[:, 0], got["y_px"] - ref_px[:, 1])
    interpolation_err = np.abs(got["height_mm"] - aimed_heights(tracer, rows)) / pitch
    ill_ref, ill_noise = reference_illumination(tracer, ref_mm, rows, table.reference_wavelength_nm,
                                                rays=illumination_rays, seed=seed)
    ill_err = 100.0 * np.abs(got["illumination"] / ill_ref - 1.0)
    ill_noise_pct = 100.0 * ill_noise / ill_ref

    def pct(values: np.ndarray) -> dict[str, float]:
        return {"p50": round(float(np.percentile(values, 50)), 5), "p90": round(float(np.percentile(values, 90)), 5),
                "max": round(float(values.max()), 5)}

    shift = np.abs(got["distortion_px"])
    return {
        "points": points, "targets": TARGETS,
        "distortion_error_px": pct(interpolation_err),
        "distortion_vs_calc_chief_ray_px": pct(position_err),
        "distortion_reference_noise_px": pct(ref_noise_mm / pitch),
        "illumination_error_pct": pct(ill_err), "illumination_reference_noise_pct": pct(ill_noise_pct),
        "distortion_px_largest_at_points": round(float(shift.max()), 3),
        "illumination_min": round(float(np.min(table.illumination)), 4),
        "reference": f"DeepLens calc_chief_ray ({chief_rays} rays, x2) and render_raytracing's backward count "
                     f"({illumination_rays} rays, x2) at {points} held-out (field, azimuth, depth, wavelength)",
        "meets_targets": bool(np.percentile(interpolation_err, 90) <= TARGETS["distortion_px_p90"]
                              and np.percentile(ill_err, 90) <= TARGETS["illumination_pct_p90"]),
        "seconds": round(time.perf_counter() - started, 1),
    }


def check_for_run(cfg, table: GeometryTable, lens: LensInfo, tracer: LensTracer, *, points: int | None = None) -> dict:
    """:func:`check_geometry` over a run config's trained ranges (as many points as the evaluation grid, >= 12;
    ``python -m benchmarks.geometry`` takes 48)."""
    r = cfg.conditions
    ranges = {"field": (r.field.min, r.field.max), "depth": (r.depth.min, r.depth.max),
              "wavelength": (r.wavelength.min, r.wavelength.max)}
    if r.focus is not None:
        ranges["focus"] = (r.focus.min, r.focus.max)
    n = points or max(12, math.prod(cfg.evaluation.grid))
    return check_geometry(table, lens, tracer, ranges, points=n, seed=cfg.seed)
