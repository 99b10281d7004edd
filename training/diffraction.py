"""Diffraction where pixels are small: when it is on (``data.optics``), and the PSF the tracer then makes.

``data.optics`` is ``geometric`` (ray tracing alone), ``diffraction`` or ``auto``, which turns diffraction
on when the Airy radius 1.22 * lambda * N at the longest trained wavelength exceeds half a pixel (N: the
working f-number, from the exit pupil to the sensor as the lens is focused). :func:`decide` is that rule,
the only place it is written.

With diffraction on, the tracer's PSFs are wave-optics PSFs (training/wave.py: coherent rays on a pupil
lattice, the wavefront's Fourier transform, integrated over each pixel). benchmarks/diffraction.py chose it
by measuring candidates against DeepLens's Huygens-Fresnel PSF on the phone lens: it agrees within 0.02-0.03
relative L1, where the classic cheap candidate, the geometric PSF convolved with the Airy pattern of the
working f-number, is as far off as the geometric PSF alone (0.27-0.29 near the axis), because there the
lens is nearly diffraction-limited and the ray spot is not the shape of the blur.

Kernel sizing adds Airy-distributed offsets to the probe's rays (:func:`airy_offsets`): a sample of the
geometric PSF convolved with the Airy pattern, whose extent bounds the wave PSF's (the Airy pattern's
slow 1/r tail included).
"""

from __future__ import annotations

import copy
import math
import weakref
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
import torch

from .wave import N_PUPIL, wave_psf

OPTICS = ("geometric", "diffraction", "auto")
AUTO_AIRY_PIXELS = 0.5   # auto turns diffraction on above this Airy radius [px]
AIRY_ZERO = 1.2196698912665045  # first zero of the Airy pattern, in units of lambda * N
GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0


def airy_radius_um(wavelength_nm: float, f_number: float) -> float:
    """Radius of the Airy disc's first dark ring [um]: 1.22 lambda N."""
    return AIRY_ZERO * wavelength_nm / 1000.0 * f_number


def working_f_number(lens) -> float:
    """Image-side f-number of a focused GeoLens: exit pupil to sensor over the exit pupil's diameter."""
    pupil_z, pupil_r = lens.get_exit_pupil()
    return float((float(lens.d_sensor) - float(pupil_z)) / (2.0 * float(pupil_r)))


@dataclass(frozen=True)
class OpticsDecision:
    """What ``data.optics`` resolved to for one lens, and the figures it was decided from."""

    requested: str
    optics: Literal["geometric", "diffraction"]
    f_number: float          # working f-number
    wavelength_nm: float     # the longest trained wavelength
    pixel_um: float
    airy_radius_px: float    # 1.22 lambda N / pixel pitch at that wavelength

    def reason(self) -> str:
        rule = "above" if self.airy_radius_px > AUTO_AIRY_PIXELS else "not above"
        how = f"auto: {rule} {AUTO_AIRY_PIXELS} px" if self.requested == "auto" else f"data.optics: {self.requested}"
        return (f"optics {self.optics}: Airy radius 1.22 lambda N = {self.airy_radius_px:.2f} px at "
                f"{self.wavelength_nm:.0f} nm (working f/{self.f_number:.2f}, {self.pixel_um:.3g} um pixels; {how})")

    def to_json(self) -> dict:
        return asdict(self) | {"reason": self.reason()}


def decide(requested: str, f_number: float, wavelength_max_nm: float, pixel_um: float) -> OpticsDecision:
    """Resolve ``data.optics`` (``auto`` by the Airy radius at the longest wavelength) for one lens."""
    if requested not in OPTICS:
        raise ValueError(f"data.optics = {requested!r} is not one of {', '.join(OPTICS)}")
    radius_px = airy_radius_um(wavelength_max_nm, f_number) / pixel_um
    on = requested == "diffraction" or (requested == "auto" and radius_px > AUTO_AIRY_PIXELS)
    return OpticsDecision(requested=requested, optics="diffraction" if on else "geometric", f_number=f_number,
                          wavelength_nm=float(wavelength_max_nm), pixel_um=float(pixel_um),
                          airy_radius_px=round(radius_px, 4))


def decide_for_lens(requested: str, lens, wavelength_max_nm: float) -> OpticsDecision:
    return decide(requested, working_f_number(lens), wavelength_max_nm, float(lens.pixel_size) * 1000.0)


# ---- the diffracted PSF -------------------------------------------------------------------------------

_FLOAT64: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def float64_twin(lens):
    """A float64 copy of ``lens`` (optical path lengths need it), kept per lens and moved to its sensor
    position on every call: the tracer refocuses the float32 lens it traces geometric PSFs with."""
    if lens.dtype == torch.float64:
        return lens
    twin = _FLOAT64.get(lens)
    if twin is None:
        twin = copy.deepcopy(lens)
        twin.astype(torch.float64)
        _FLOAT64[lens] = twin
    twin.d_sensor = torch.as_tensor(lens.d_sensor, dtype=torch.float64, device=twin.device)
    return twin


def diffracted_psf(lens, points: torch.Tensor, wavelength_nm: float, *, ks: int, spp: int | None = None,
                   n_pupil: int = N_PUPIL) -> torch.Tensor:
    """Diffracted PSFs [N, ks, ks] (float32, unit sum, chief-ray centred) of normalised object points, in
    DeepLens's orientation: the wave-optics PSF of training/wave.py. Deterministic; ``spp`` (rays of a
    geometric trace) does not apply: the pupil lattice of ``n_pupil`` across is the quadrature."""
    twin = float64_twin(lens)
    psf = wave_psf(twin, points, float(wavelength_nm), ks=ks, f_number=working_f_number(twin), n_pupil=n_pupil)
    return torch.as_tensor(psf, dtype=torch.float32)


# ---- Airy-distributed offsets, for sizing -------------------------------------------------------------

def _airy_radius_table(v_max: float = 400.0, n: int = 40001) -> tuple[np.ndarray, np.ndarray]:
    from scipy.special import j0, j1

    v = np.linspace(0.0, v_max, n)
    ee = 1.0 - j0(v) ** 2 - j1(v) ** 2  # encircled energy of the Airy pattern at v = pi r / (lambda N)
    return np.maximum.accumulate(ee), v


_TABLE: tuple[np.ndarray, np.ndarray] | None = None


def airy_offsets(n: int, scale_px: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` offsets [px] from the Airy pattern whose length unit lambda * N is ``scale_px`` pixels, in a
    random order (deterministic in ``seed``). Adding them to ray hits samples the diffracted PSF, tails
    included. They are a low-discrepancy lattice, not random draws: the k-th radius is the Airy pattern's
    (k + 1/2) / n quantile, at a golden-ratio angle. The tail beyond 99.5 % is 1/r-slow, so random draws
    would make the kernel a 99.5 % quantile needs swing by tens of percent from probe to probe."""
    global _TABLE
    if _TABLE is None:
        _TABLE = _airy_radius_table()
    ee, v = _TABLE
    rng = np.random.default_rng(seed)
    k = np.arange(n)
    u = (k + 0.5) / n
    radius_v = np.interp(u, ee, v)
    tail = u > ee[-1]  # beyond the table: 1 - EE(v) ~ 2 / (pi v)
    radius_v[tail] = 2.0 / (math.pi * (1.0 - u[tail]))
    radius = radius_v * scale_px / math.pi
    angle = 2.0 * math.pi * ((k * GOLDEN + rng.uniform()) % 1.0)
    order = rng.permutation(n)  # which ray gets which offset
    return (radius * np.cos(angle))[order], (radius * np.sin(angle))[order]


def cache_tag(tracer) -> bytes:
    """What a cache key (probe, bank, reference) adds for diffracted PSFs; nothing for geometric ones, so
    caches written before ``data.optics`` keep their keys."""
    optics = getattr(tracer, "optics", "geometric")
    return b"" if optics == "geometric" else f"optics={optics}".encode()
