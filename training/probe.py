"""How big a lens's PSFs are: a coarse ray-traced probe over the trained ranges, and what it implies.

A PSF is served whole, so the kernel must hold (nearly) all of its energy at every condition, and a
bigger PSF spreads the same rays over more pixels, so it needs more rays for the same noise. Both are
read off the sensor hits of the rays themselves, not off a kernel-sized histogram (which would hide
the energy that falls outside it):

- ``kept(ks)``: the fraction of the rays that reach the sensor and land inside a ``ks x ks`` kernel
  centred on the chief ray (DeepLens's own window rule), at the worst in-plane rotation, because a
  rotationally symmetric lens serves the same PSF rotated to any azimuth;
- ``r99``, ``r999``: radii around the chief ray [px] holding 99 % / 99.9 % of the energy;
- ``centroid_px``: how far the energy centroid sits from the chief ray;
- ``spread``: S = sum_i sqrt(p_i) over the kernel's pixels. A trace of n rays has an expected relative
  L1 noise of about sqrt(2 / (pi n)) * S (Poisson noise per pixel), so a ray budget that keeps the noise
  at a level e is n = 2 S^2 / (pi e^2).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from dataclasses import field as dataclass_field

import numpy as np
import torch

from models_store.manifest import KERNEL_SIZE_MAX, MIN_ENERGY_KEPT

from .config import ConditionsConfig
from .diffraction import airy_offsets, working_f_number
from .raytrace import LensTracer

# Kernel sizes `data.kernel_size: auto` chooses from (even, so a centred crop of a bigger even window
# lands on the same pixel grid).
SUPPORTED_KERNELS = (16, 24, 32, 40, 48, 64, 80, 96, 128, 160, 192, KERNEL_SIZE_MAX)
WINDOW_KEEP = 0.9999     # a whole-PSF reference window holds this much of every probed PSF
KERNEL_MARGIN = 1.15     # the probe is coarse: auto sizing asks this much more half-width than it saw
ROTATIONS_DEG = (0.0, 15.0, 30.0, 45.0, 60.0, 75.0)


@dataclass(frozen=True)
class ProbePoint:
    """Footprint of the PSF at one condition (pixel units of the sensor)."""

    field: float
    depth: float
    wavelength: float
    focus: float | None
    rays_on_sensor: float   # fraction of the traced rays that reach the sensor
    r99: float
    r999: float
    half_width_needed: float  # half-width of the smallest centred square holding MIN_ENERGY_KEPT (worst rotation)
    centroid_px: float
    spread: float
    airy_px: float = 0.0      # lambda * N [px] of the Airy pattern the served PSF is convolved with; 0: geometric

    def label(self) -> str:
        focus = "" if self.focus is None else f", focus {self.focus:.3g} m"
        return f"field {self.field:.3g}, depth {self.depth:.3g} m, wavelength {self.wavelength:.0f} nm{focus}"


def probe_grid(ranges: ConditionsConfig, n_field: int = 6, n_depth: int = 4, n_wavelength: int = 3,
               n_focus: int = 2) -> np.ndarray:
    """Rows (field, depth, wavelength[, focus]) that include every range's ends, where PSFs are
    largest, with depths spread evenly in 1/depth."""
    f, d, w = ranges.field, ranges.depth, ranges.wavelength
    fields = np.unique(np.concatenate([np.linspace(f.min, f.max, n_field), [0.9 * f.max + 0.1 * f.min]]))
    depths = 1.0 / np.linspace(1.0 / d.max, 1.0 / d.min, n_depth)
    waves = np.linspace(w.min, w.max, n_wavelength)
    axes = [fields, depths, waves]
    if ranges.focus is not None:
        axes.append(1.0 / np.linspace(1.0 / ranges.focus.max, 1.0 / ranges.focus.min, n_focus))
    mesh = np.meshgrid(*axes, indexing="ij")
    return np.stack([m.ravel() for m in mesh], axis=1)


@torch.no_grad()
def sensor_offsets(tracer: LensTracer, field: np.ndarray, depth: np.ndarray, wavelength_nm: float,
                   spp: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Ray hits relative to the chief ray, in pixels, as DeepLens bins them for a PSF:
    (offsets [N, spp, 2] as (+x, +y), valid [N, spp])."""
    lens = tracer.lens
    pts = tracer.points(np.atleast_1d(field), np.atleast_1d(depth))
    sw, sh = lens.sensor_size
    scale = lens.calc_scale(pts[:, 2])
    obj = torch.stack([pts[:, 0] * scale * sw / 2, pts[:, 1] * scale * sh / 2, pts[:, 2]], dim=-1)
    wvln = float(wavelength_nm) / 1000.0
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        ray = lens.sample_from_points(points=obj, num_rays=spp, wvln=wvln)
        ray.is_coherent = False
        ray = lens.trace2sensor(ray)
        centre = lens.psf_center(obj, method="chief_ray")
    hits = ray.flip_xy().o[..., :2] - centre.unsqueeze(-2)
    offsets = (hits / float(lens.pixel_size)).double().cpu().numpy()
    return offsets, ray.is_valid.bool().cpu().numpy()


def _kernel_half_width(dx: np.ndarray, dy: np.ndarray, keep: float) -> float:
    """Half-width h [px] so that the squares |x|, |y| < h hold ``keep`` of the rays, at the worst rotation."""
    worst = 0.0
    for deg in ROTATIONS_DEG:
        a = math.radians(deg)
        cheb = np.maximum(np.abs(dx * math.cos(a) - dy * math.sin(a)), np.abs(dx * math.sin(a) + dy * math.cos(a)))
        worst = max(worst, float(np.quantile(cheb, keep)))
    return worst


def kernel_for_half_width(h: float) -> int:
    """Smallest even kernel whose window (DeepLens keeps rays with |offset| < ks/2 - 0.5) spans h."""
    return int(2 * math.ceil(h + 0.5))


def kept_fraction(dx: np.ndarray, dy: np.ndarray, ks: int) -> float:
    """Worst-rotation fraction of rays inside a ks x ks kernel."""
    lim = ks / 2 - 0.5
    worst = 1.0
    for deg in ROTATIONS_DEG:
        a = math.radians(deg)
        x, y = dx * math.cos(a) - dy * math.sin(a), dx * math.sin(a) + dy * math.cos(a)
        worst = min(worst, float(((np.abs(x) < lim) & (np.abs(y) < lim)).mean()))
    return worst


def ray_noise(spread: float, rays: int) -> float:
    """Expected relative-L1 noise of one trace of ``rays`` rays of a PSF with spread S."""
    return math.sqrt(2.0 / (math.pi * rays)) * spread


def _spread(dx: np.ndarray, dy: np.ndarray) -> float:
    """S = sum sqrt(p) of the PSF binned on the pixel grid (nearest pixel)."""
    cells = np.stack([np.rint(dx), np.rint(dy)], axis=1).astype(np.int64)
    _, counts = np.unique(cells, axis=0, return_counts=True)
    p = counts / counts.sum()
    return float(np.sqrt(p).sum())


@dataclass
class LensProbe:
    """The probe's points plus the raw offsets it measured them from (kept to answer ``kept(ks)``)."""

    points: list[ProbePoint]
    offsets: list[tuple[np.ndarray, np.ndarray]]
    spp: int
    _footprints: dict[int, tuple[np.ndarray, np.ndarray]] = dataclass_field(default_factory=dict, repr=False,
                                                                           compare=False)

    def footprint(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Point ``i``'s ray offsets as the served PSF spreads them: with diffraction, each ray moved by an
        Airy-distributed offset (a sample of the geometric PSF convolved with the Airy pattern)."""
        dx, dy = self.offsets[i]
        airy = self.points[i].airy_px
        if not airy:
            return dx, dy
        if i not in self._footprints:
            jx, jy = airy_offsets(len(dx), airy, seed=i)
            self._footprints[i] = (dx + jx, dy + jy)
        return self._footprints[i]

    def kept(self, ks: int) -> np.ndarray:
        return np.array([kept_fraction(*self.footprint(i), ks) for i in range(len(self.offsets))])

    def worst(self, ks: int) -> tuple[int, float]:
        kept = self.kept(ks)
        # ties (a kernel that keeps everything) go to the widest PSF
        i = int(np.lexsort((-np.array([p.half_width_needed for p in self.points]), kept))[0])
        return i, float(kept[i])

    def auto_kernel(self) -> int | None:
        """Smallest supported size with MIN_ENERGY_KEPT at every point, with KERNEL_MARGIN on the
        half-width; None when even the largest does not suffice."""
        need = max(p.half_width_needed for p in self.points) * KERNEL_MARGIN
        for ks in SUPPORTED_KERNELS:
            if ks / 2 - 0.5 >= need and self.worst(ks)[1] >= MIN_ENERGY_KEPT:
                return ks
        return None

    def size_needed(self, keep: float = MIN_ENERGY_KEPT) -> int:
        """The plain (no margin) even kernel that keeps ``keep`` everywhere."""
        return kernel_for_half_width(max(_kernel_half_width(*self.footprint(i), keep)
                                         for i in range(len(self.offsets))))

    def window(self, keep: float = WINDOW_KEEP) -> int:
        """Even window [px] that holds ``keep`` of the energy at every point (with the margin):
        what a whole-PSF reference is traced on. Geometric offsets: the Airy pattern's 1/r tail holds 0.01 %
        only thousands of pixels out, so with diffraction the window holds the geometric spot (and the
        kernel, which holds 99.5 % of the diffracted PSF, plus the ks/8 margin of sizing.resolve)."""
        h = max(_kernel_half_width(dx, dy, keep) for dx, dy in self.offsets) * KERNEL_MARGIN
        return kernel_for_half_width(h)

    def rays_for_noise(self, noise: float) -> int:
        """Rays per PSF for an expected relative-L1 ray noise of ``noise`` at the worst point."""
        s = max(p.spread for p in self.points)
        return math.ceil(2.0 * s * s / (math.pi * noise * noise))  # ray_noise solved for rays

    def to_json(self) -> list[dict]:
        return [asdict(p) for p in self.points]


def probe_lens(tracer: LensTracer, grid: np.ndarray, columns: list[str], *, spp: int = 16384,
               seed: int = 0) -> LensProbe:
    """Trace every probe row (columns among field, depth, wavelength, focus) and measure it."""
    col = {name: grid[:, i] for i, name in enumerate(columns)}
    focus = col.get("focus", np.full(len(grid), np.nan))
    points, offsets = [], []
    for i in range(len(grid)):
        if not np.isnan(focus[i]):
            tracer.refocus(float(focus[i]))
        off, valid = sensor_offsets(tracer, col["field"][i], col["depth"][i], col["wavelength"][i], spp, seed + i)
        dx, dy = off[0, valid[0], 0], off[0, valid[0], 1]
        geometric = (dx, dy)
        airy = 0.0
        if getattr(tracer, "optics", "geometric") == "diffraction":  # lambda N in px, at this focus
            pitch_um = float(tracer.lens.pixel_size) * 1000.0
            airy = float(col["wavelength"][i]) / 1000.0 * working_f_number(tracer.lens) / pitch_um
            jx, jy = airy_offsets(len(dx), airy, seed=len(points))
            dx, dy = dx + jx, dy + jy
        if len(dx) == 0:
            raise ValueError(f"no ray reaches the sensor at field {col['field'][i]:.3g}, depth "
                             f"{col['depth'][i]:.3g} m: is the condition range inside the lens's field of view?")
        r = np.hypot(dx, dy)
        points.append(ProbePoint(
            field=float(col["field"][i]), depth=float(col["depth"][i]), wavelength=float(col["wavelength"][i]),
            focus=None if np.isnan(focus[i]) else float(focus[i]), rays_on_sensor=float(valid[0].mean()),
            r99=float(np.quantile(r, 0.99)), r999=float(np.quantile(r, 0.999)),
            half_width_needed=_kernel_half_width(dx, dy, MIN_ENERGY_KEPT),
            centroid_px=float(np.hypot(*(g.mean() for g in geometric))), spread=_spread(*geometric), airy_px=airy))
        offsets.append(geometric)  # LensProbe.footprint adds the same Airy offsets back
    return LensProbe(points, offsets, spp)
