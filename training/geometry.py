"""Trace the image geometry of a lens into the manifest's table (:class:`models_store.geometry.GeometryTable`):
the chief ray's image height and the relative illumination on a grid of conditions.

Both are smooth in the condition, so a table interpolated by :mod:`models_store.geometry` answers them
to far below the targets (0.05 px, 0.5 %; ``python -m benchmarks.geometry`` measures it per lens) at no
cost beside the PSF graph. What the values mean is said once, in :mod:`models_store.geometry`.

- **Chief ray**: for each (field, depth[, focus]) the real ray from the object point through the centre
  of the aperture stop, found by Newton iteration on its aim at the entrance pupil (float64, converged
  to 1e-10 mm at the stop), traced to the sensor at the lens's primary wavelength. DeepLens's own
  ``calc_chief_ray`` picks the sampled ray nearest the stop centre instead, which leaves a residual of
  ~1/sqrt(rays) stop radii; the aimed ray is what it converges to.
- **Illumination**: for each (image height, wavelength[, focus]) the fraction of backward rays from that
  sensor point to DeepLens's exit-pupil disk that reach object space, as ``render_raytracing(...,
  vignetting=True)`` counts them, but over a Fibonacci spiral of the disk instead of random points, so
  the table carries no Monte-Carlo noise (its quadrature error is well under 0.1 %).

Rotational symmetry (every surface the lens readers accept) lets both run on the +y meridian.
"""

from __future__ import annotations

import contextlib
import copy
import io
import math

import numpy as np
import torch
from deeplens.light import Ray

from models_store.geometry import GeometryTable

from .raytrace import LensTracer

FIELD_POINTS = 33       # ideal image height 0..field max; PCHIP along it (< 1e-3 px on the shipped lenses)
DEPTH_POINTS = 5        # evenly spaced in 1/depth
FOCUS_POINTS = 5        # evenly spaced in 1/focus, when focus is a condition
HEIGHT_POINTS = 33      # image heights of the illumination samples
WAVELENGTH_POINTS = 5   # evenly spaced over the trained band (the middle one is the reference)
ILLUMINATION_RAYS = 4096  # spiral quadrature: < 0.1 % off 65536 rays on the Cooke triplet's vignetted corner
REFOCUS_SEED = 20       # DeepLens refocuses with random rays; the table's own refocus is repeatable
GOLDEN_ANGLE = math.pi * (3.0 - math.sqrt(5.0))

PHYSICS = ("chief ray: real ray through the aperture-stop centre (aimed, float64) at the primary wavelength, where "
           "the served kernel is centred; illumination: fraction of rays from the chief ray's sensor point, uniform "
           "over DeepLens's exit-pupil disk, that pass every aperture (render_raytracing(vignetting=True)); no cos^4 "
           "or pupil-projection factor; relative to the axis at the reference wavelength")


class GeometryTracer:
    """A float64 copy of a :class:`LensTracer`'s lens, at the same sensor position, for the table."""

    def __init__(self, tracer: LensTracer) -> None:
        self.lens = copy.deepcopy(tracer.lens).astype(torch.float64)
        self.device = tracer.device
        self.focus_m = tracer.focus_m
        self.half_diagonal = tracer.half_diagonal
        self.primary_nm = float(self.lens.primary_wvln) * 1000.0
        if self.lens.aper_idx is None:
            raise ValueError(f"{tracer.lens_file}: the lens has no aperture stop, so it has no chief ray")

    def refocus(self, focus_m: float | None) -> None:
        """Move the sensor to focus at ``focus_m`` (None = infinity), with a fixed seed."""
        if focus_m == self.focus_m:
            return
        with torch.random.fork_rng(devices=[] if self.device == "cpu" else None), \
                contextlib.redirect_stdout(io.StringIO()):
            torch.manual_seed(REFOCUS_SEED)
            self.lens.refocus(math.inf if focus_m is None else -1000.0 * float(focus_m))
        self.focus_m = focus_m

    def _tensor(self, values) -> torch.Tensor:
        return torch.as_tensor(np.asarray(values, dtype=np.float64), dtype=torch.float64, device=self.device)

    def _aimed(self, y_obj: torch.Tensor, z_obj: torch.Tensor, v: torch.Tensor, wvln_um: float, *,
               to_stop: bool) -> Ray:
        """Rays from meridional object points (0, y, z) toward (0, v) on the entrance-pupil plane."""
        pupil_z, _ = self.lens.get_entrance_pupil()
        zero = torch.zeros_like(y_obj)
        origin = torch.stack([zero, y_obj, z_obj], -1)
        target = torch.stack([zero, v, torch.full_like(v, float(pupil_z))], -1)
        ray = Ray(origin, target - origin, wvln_um, device=self.device)
        if to_stop:
            return self.lens.trace(ray, surf_range=range(self.lens.aper_idx + 1))[0]
        return self.lens.trace2sensor(ray)

    @torch.no_grad()
    def chief_height(self, field, depth_m) -> np.ndarray:
        """Chief-ray radial image height [mm] (image frame: the sensor intercept negated) per row."""
        field, depth = np.broadcast_arrays(np.atleast_1d(np.asarray(field, dtype=np.float64)),
                                           np.atleast_1d(np.asarray(depth_m, dtype=np.float64)))
        z_obj = self._tensor(-1000.0 * depth)
        # DeepLens's object point for normalised coordinates (GeoLens.psf): ideal image height * depth / foclen
        y_obj = self._tensor(field * self.half_diagonal) * self.lens.calc_scale(z_obj)
        wvln = self.primary_nm / 1000.0
        _, pupil_r = self.lens.get_entrance_pupil()
        step = 1e-4 * float(pupil_r)
        v = torch.zeros_like(y_obj)
        for _ in range(8):
            at_stop = self._aimed(y_obj, z_obj, v, wvln, to_stop=True)
            miss = at_stop.o[..., 1] - float(self.lens.surfaces[self.lens.aper_idx].pos_y)
            if float(miss.abs().max()) < 1e-10:
                break
            slope = (self._aimed(y_obj, z_obj, v + step, wvln, to_stop=True).o[..., 1] - at_stop.o[..., 1]) / step
            v = v - miss / slope
        else:
            raise ValueError(f"chief-ray aiming did not converge (stop miss {float(miss.abs().max()):.3g} mm)")
        ray = self._aimed(y_obj, z_obj, v, wvln, to_stop=False)
        bad = (ray.is_valid <= 0).cpu().numpy()
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(f"the chief ray of field {field[i]:g} at {depth[i]:g} m is blocked by the lens "
                             "(vignetted to the stop centre); the trained field range is too wide for this lens")
        return -ray.o[..., 1].cpu().numpy()

    @torch.no_grad()
    def illumination_fraction(self, height_mm, wavelength_nm: float, rays: int = ILLUMINATION_RAYS) -> np.ndarray:
        """Fraction of backward rays from sensor points at ``height_mm`` (image frame) to the exit-pupil
        disk that reach object space, per point, over a Fibonacci spiral of ``rays`` points."""
        height = np.atleast_1d(np.asarray(height_mm, dtype=np.float64))
        pupil_z, pupil_r = self.lens.get_exit_pupil()
        i = np.arange(rays) + 0.5
        r, theta = float(pupil_r) * np.sqrt(i / rays), i * GOLDEN_ANGLE
        pupil = self._tensor(np.stack([r * np.cos(theta), r * np.sin(theta), np.full(rays, float(pupil_z))], -1))
        origin = torch.zeros(len(height), rays, 3, dtype=torch.float64, device=self.device)
        origin[..., 1] = -self._tensor(height)[:, None]  # the sensor intercept of image height h is -h
        origin[..., 2] = float(self.lens.d_sensor)
        ray = self.lens.trace2obj(Ray(origin, pupil[None] - origin, wavelength_nm / 1000.0, device=self.device))
        return ray.is_valid.mean(-1).cpu().numpy()


def inverse_axis(lo: float, hi: float, n: int) -> list[float]:
    """``n`` distances from ``lo`` to ``hi``, evenly spaced in 1/distance, ascending."""
    return sorted(float(1.0 / v) for v in np.linspace(1.0 / hi, 1.0 / lo, n))


def trace_geometry(tracer: LensTracer, *, field_max: float, depth: tuple[float, float],
                   wavelength: tuple[float, float], focus: tuple[float, float] | None = None,
                   field_points: int = FIELD_POINTS, depth_points: int = DEPTH_POINTS,
                   focus_points: int = FOCUS_POINTS, height_points: int = HEIGHT_POINTS,
                   wavelength_points: int = WAVELENGTH_POINTS, rays: int = ILLUMINATION_RAYS) -> GeometryTable:
    """The geometry table of ``tracer``'s lens over the trained ranges (depth, wavelength, focus as (min, max)
    in m, nm, m; ``focus`` None: the tracer's fixed focus)."""
    geo = GeometryTracer(tracer)
    fields = np.linspace(0.0, field_max, field_points)
    depths = inverse_axis(*depth, depth_points)
    foci = None if focus is None else inverse_axis(*focus, focus_points)
    waves = np.linspace(wavelength[0], wavelength[1], wavelength_points)
    reference = 0.5 * (wavelength[0] + wavelength[1])
    heights_per_focus = []
    for f in foci or [geo.focus_m]:
        geo.refocus(f)
        ff, dd = np.meshgrid(fields, depths)
        heights_per_focus.append(geo.chief_height(ff.ravel(), dd.ravel()).reshape(len(depths), len(fields)))
    heights = np.stack(heights_per_focus)
    # one height axis for every focus and depth: 0 .. the largest chief-ray height (PCHIP keeps within it)
    sample_heights = np.linspace(0.0, float(heights.max()) * (1 + 1e-9), height_points)
    illumination, axis = [], []
    for f in foci or [geo.focus_m]:
        geo.refocus(f)
        on_axis = float(geo.illumination_fraction([0.0], reference, rays)[0])
        if on_axis <= 0:
            raise ValueError(f"no ray from the sensor centre reaches object space at {reference:g} nm")
        axis.append(on_axis)
        illumination.append([geo.illumination_fraction(sample_heights, float(w), rays) / on_axis for w in waves])
    return GeometryTable(
        chief_ray_wavelength_nm=geo.primary_nm, reference_wavelength_nm=reference,
        field=fields.tolist(), depth_m=depths, focus_m=foci, height_mm=heights.tolist(),
        illumination_height_mm=sample_heights.tolist(), wavelength_nm=waves.tolist(),
        illumination=np.asarray(illumination).tolist(), illumination_axis=axis, illumination_rays=rays,
        physics=PHYSICS)


def trace_for_run(cfg, tracer: LensTracer) -> GeometryTable:
    """The table over a run config's trained ranges."""
    r = cfg.conditions
    return trace_geometry(tracer, field_max=r.field.max, depth=(r.depth.min, r.depth.max),
                          wavelength=(r.wavelength.min, r.wavelength.max),
                          focus=None if r.focus is None else (r.focus.min, r.focus.max))
