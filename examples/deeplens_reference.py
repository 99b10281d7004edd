"""DeepLens's own renderings of a flat chart, for ``examples.render_chart`` to compare against.

- :func:`raytraced`: ``GeoLens.render_raytracing(..., vignetting=True)``, DeepLens's ground truth (rays
  from each sensor pixel, uniform over its exit-pupil disk, traced back to the object plane; rays that
  an aperture stops count as black). Run in passes of a few rays per pixel (each pass an independent
  Monte-Carlo estimate, so memory stays small); the passes fall into two halves whose difference gives
  the reference's own noise.
- :func:`psf_map`: ``GeoLens.render(method="psf_map")``: its distortion warp, then block convolution
  with its own ray-traced PSF grid (no vignetting).

Two corrections make the ray-traced image comparable, both measured on DeepLens 0.x as installed:
``vignetting=True`` divides the ray sum by the ray count of the *whole image* (``numel(is_valid)``),
so each pixel is dimmed by 1 / (H * W): multiplied back here; and the image is divided by DeepLens's
absolute ray fraction on the axis at the reference wavelength (1.0 where the whole exit-pupil disk gets
through, as on the Cooke triplet), so that it is relative illumination, 1 on the axis, as the service's.
"""

from __future__ import annotations

import contextlib
import io
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

PASS_SPP = 32  # rays per pixel per pass: 32 x 120k pixels ~ 4M rays, a few hundred MB in flight


@dataclass
class Reference:
    """The ray-traced image [H, W, 3] (linear, relative illumination) and what it cost."""

    image: np.ndarray
    noise_mse: float        # mean squared Monte-Carlo error of ``image`` (from its two halves)
    halves_psnr: float      # PSNR of one half against the other
    axis_fraction: float    # DeepLens's absolute on-axis ray fraction that ``image`` was divided by
    spp: int
    seconds: float


def reduced_lens(lens_file: Path, focus_m: float | None, sensor_res: tuple[int, int], factor: int):
    """The lens as the model was traced (full sensor grid, same focus), then its sensor grid divided by
    ``factor`` on both axes: the same sensor (size, half-diagonal), ``factor`` times the pixel pitch."""
    from training.raytrace import LensTracer

    cols, rows = sensor_res
    if cols % factor or rows % factor:
        raise ValueError(f"factor {factor} does not divide the sensor grid {cols} x {rows}")
    with contextlib.redirect_stdout(io.StringIO()):
        tracer = LensTracer(lens_file, focus_m=focus_m, sensor_res=(cols, rows))  # a .zmx carries no pixel grid
    lens = tracer.lens
    size = tuple(float(v) for v in lens.sensor_size)
    lens.set_sensor_res((cols // factor, rows // factor))  # keeps the sensor radius, so the size too
    assert np.allclose(size, [float(v) for v in lens.sensor_size], rtol=1e-6), (
        f"sensor size changed from {size} to {lens.sensor_size} with the grid")
    return lens


def reduction_factor(sensor_res: tuple[int, int], max_width: int) -> int:
    """The smallest integer factor dividing both axes of the sensor grid that brings it to ``max_width``
    columns or fewer."""
    cols, rows = sensor_res
    factor = max(1, math.ceil(cols / max_width))
    while cols % factor or rows % factor:
        factor += 1
    return factor


def _nchw(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)).permute(2, 0, 1)[None]


@torch.no_grad()
def axis_fraction(lens, wavelength_nm: float, rays: int = 1 << 20, seed: int = 0) -> float:
    """Fraction of rays from the sensor centre, sampled as ``render_raytracing`` samples them (uniform over
    the exit-pupil disk), that reach object space: what its vignetting gives the axis."""
    from deeplens.light import Ray

    torch.manual_seed(seed)
    pupil_z, pupil_r = lens.get_exit_pupil()
    target = lens.sample_circle(r=pupil_r, z=pupil_z, shape=(rays,))
    origin = torch.zeros_like(target)
    origin[..., 2] = float(lens.d_sensor)
    ray = lens.trace2obj(Ray(origin, target - origin, wavelength_nm / 1000.0, device=lens.device))
    return float(ray.is_valid.float().mean())


@torch.no_grad()
def raytraced(lens, chart: np.ndarray, depth_m: float, wavelengths_nm, *, spp: int, reference_nm: float,
              seed: int = 0, pass_spp: int = PASS_SPP) -> Reference:
    """``render_raytracing(vignetting=True)`` of ``chart`` [H, W, 3] (spanning the sensor) at ``depth_m``,
    ``spp`` rays per pixel in all, one wavelength per channel; see the module notes for the corrections."""
    import time

    start = time.perf_counter()
    h, w = chart.shape[:2]
    assert (w, h) == tuple(lens.sensor_res), f"chart {w}x{h} must match the sensor grid {lens.sensor_res}"
    lens.wvln_rgb = [float(v) / 1000.0 for v in wavelengths_nm]
    passes = max(2, 2 * math.ceil(spp / (2 * pass_spp)))  # an even number: two equal halves
    per_pass = max(1, spp // passes)
    halves = [np.zeros((h, w, 3)), np.zeros((h, w, 3))]
    image = _nchw(chart)
    for index in range(passes):
        torch.manual_seed(seed * 100_003 + index)
        out = lens.render_raytracing(image, depth=-1000.0 * depth_m, spp=per_pass, vignetting=True)
        halves[index % 2] += out[0].permute(1, 2, 0).double().numpy()
    fraction = axis_fraction(lens, reference_nm, seed=seed)
    # undo the 1 / (H * W) of the whole-image ray count; each half averages passes / 2 passes
    halves = [half * (h * w) / (passes / 2) / fraction for half in halves]
    difference = np.mean((halves[0] - halves[1]) ** 2)
    return Reference(image=((halves[0] + halves[1]) / 2).astype(np.float32), noise_mse=float(difference / 4),
                     halves_psnr=float(10 * np.log10(1.0 / max(difference, 1e-30))), axis_fraction=fraction,
                     spp=per_pass * passes, seconds=time.perf_counter() - start)


def psf_map_kernel(ks: int, factor: int) -> int:
    """Odd kernel side at ``factor`` times the pitch holding a ``ks`` px kernel (as clients resample it)."""
    return 2 * math.ceil((ks / 2 + 1) / factor) + 1


@torch.no_grad()
def psf_map(lens, chart: np.ndarray, depth_m: float, wavelengths_nm, *, grid: tuple[int, int], ks: int,
            spp: int, seed: int = 0) -> np.ndarray:
    """``GeoLens.render(method="psf_map")`` as shipped: its distortion warp, then its ray-traced PSF grid."""
    torch.manual_seed(seed)
    lens.wvln_rgb = [float(v) / 1000.0 for v in wavelengths_nm]
    out = lens.render(_nchw(chart), depth=-1000.0 * depth_m, method="psf_map", psf_grid=grid, psf_ks=ks,
                      psf_spp=spp)
    return out[0].permute(1, 2, 0).numpy().astype(np.float32)


class TracedGrid:
    """A PSF source for ``clients.render`` whose kernels are DeepLens's ray-traced PSFs on ``lens``'s pixel
    grid (``ks`` px, odd, so centred) and whose geometry is ``source``'s (the served one): the surrogate's
    share of the error is what changes when it stands in for the model."""

    def __init__(self, lens, source, *, ks: int, spp: int, seed: int = 0) -> None:
        self.lens, self.source, self.ks, self.spp, self.seed = lens, source, ks, spp, seed

    @torch.no_grad()
    def psf_grid(self, nx: int, ny: int, *, depth: float, wavelength: float, **_: object) -> np.ndarray:
        from clients import grid_positions

        torch.manual_seed(self.seed)
        x, y = grid_positions(nx, ny)
        gx, gy = np.meshgrid(x, y)  # row 0 = image +y, as the served grid
        points = torch.tensor(np.stack([gx.ravel(), gy.ravel(), np.full(gx.size, -1000.0 * depth)], -1),
                              dtype=torch.float32)
        psfs = [self.lens.psf(points=chunk, wvln=wavelength / 1000.0, ks=self.ks, spp=self.spp, recenter=True)
                for chunk in torch.split(points, 32)]
        return torch.cat(psfs).reshape(ny, nx, self.ks, self.ks).numpy()  # no meta: kernels used as they are

    def distortion(self, *args, **kwargs):
        return self.source.distortion(*args, **kwargs)

    def model(self, *args, **kwargs):
        return self.source.model(*args, **kwargs)
