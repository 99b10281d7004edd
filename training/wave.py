"""The wave-optics PSF of a GeoLens, cheaply: coherent rays on a pupil lattice, then one FFT.

What a pixel records from a point source, with diffraction and aberrations together (benchmarks/diffraction.py
measured it against DeepLens's Huygens-Fresnel PSF: within 0.02 relative L1 on the phone lens, where the
geometric PSF convolved with an Airy pattern is 0.27 off):

1. Rays from the object point through a square lattice on the entrance pupil (``n_pupil`` across the
   diameter) are traced coherently, in float64, to the exit pupil: positions and optical path lengths.
2. The wavefront W on the reference sphere centred on the chief ray's sensor hit (the primary-wavelength
   ray through the entrance pupil's centre, as DeepLens centres its PSFs): W = OPL + distance to that point.
3. The pupil function exp(2 pi i W / lambda) is resampled (Clough-Tocher, W is smooth) onto a regular grid
   of direction cosines toward the reference point; its aperture is the region the traced rays cover, so
   vignetting is kept. Fraunhofer: the field on the sensor is that grid's Fourier transform (the Fresnel
   term across a kernel is common to every ray to within 0.01 wave), on a grid ``sub`` times finer than
   the pixels.
4. The intensity is integrated over each pixel in the Fourier domain (its box's sinc) and read at the pixel
   centres (row 0 = image +y, column 0 = image -x, like DeepLens's PSFs), unit sum.

The result is deterministic (no ray noise): the lattice is the quadrature. The field's grid spans 1.5
kernels, so energy farther out than 0.75 kernel from the chief ray (beyond what the kernel holds) may wrap.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.interpolate import CloughTocher2DInterpolator

N_PUPIL = 65          # lattice points across the entrance pupil (odd: one is the centre); 129 agrees to 0.02
FIELD_SPAN = 1.5      # the field's FFT grid spans at least this many kernels
MAX_FIELD = 4096      # at most this many field samples a side (a very defocused PSF in a small kernel)
REACH_QUANTILE = 0.999  # the field grid holds the rays out to this quantile of their distance from the chief ray


def _lattice(n: int) -> np.ndarray:
    u = np.linspace(-1.0, 1.0, n)
    x, y = np.meshgrid(u, u)
    inside = x * x + y * y <= 1.0
    return np.stack([x[inside], y[inside]], axis=1)


def subsampling(wavelength_nm: float, f_number: float, pixel_um: float) -> int:
    """Even number of field samples per pixel that resolves the intensity's band limit 1 / (lambda N)."""
    sub = math.floor(2.0 * pixel_um / (wavelength_nm / 1000.0 * f_number)) + 1
    return sub + sub % 2


def _ray(lens, origin: torch.Tensor, target: torch.Tensor, wvln_um: float):
    from deeplens.light import Ray  # deeplens prints on first import; the tracer has imported it by now

    return Ray(origin.expand_as(target).clone(), target - origin, wvln_um, device=lens.device)


@torch.no_grad()
def pupil_wavefronts(lens, obj: torch.Tensor, wavelength_nm: float, n_pupil: int):
    """Per object point [N, 3] (mm): direction cosines (a, b) toward the chief ray's sensor hit, the
    wavefront W [mm] of every valid lattice ray (numpy arrays) and the farthest ray hit from the chief ray
    on the sensor [mm] (the geometric footprint, which the field grid must hold)."""
    pupil_z, pupil_r = lens.get_entrance_pupil()
    uv = torch.as_tensor(_lattice(n_pupil), dtype=lens.dtype, device=lens.device)
    target = torch.cat([uv * float(pupil_r), torch.full_like(uv[:, :1], float(pupil_z))], dim=1)
    centre = torch.zeros_like(target[:1])
    centre[:, 2] = float(pupil_z)
    chief = lens.trace2sensor(_ray(lens, obj[:, None, :], centre[None].expand(obj.shape[0], 1, 3),
                                   float(lens.primary_wvln)))
    ref = torch.cat([chief.o[:, 0, :2], torch.full_like(chief.o[:, 0, :1], float(lens.d_sensor))], dim=1)
    ray = _ray(lens, obj[:, None, :], target.expand(obj.shape[0], -1, -1), wavelength_nm / 1000.0)
    ray.is_coherent = True
    ray = lens.trace2sensor(ray)  # as GeoLens.trace2exit_pupil does, keeping the sensor hits on the way
    hits = ray.o[..., :2] - ref[:, None, :2]
    ray = ray.prop_to(lens.get_exit_pupil()[0])
    out = []
    for i in range(obj.shape[0]):
        ok = ray.is_valid[i].bool()
        vec = ref[i][None] - ray.o[i][ok]
        dist = vec.norm(dim=1)
        wave = ray.opl[i][ok].reshape(-1) + dist
        # 99.9 % of the rays: a stray ray far out carries no energy worth a bigger grid
        reach = float(torch.quantile(hits[i][ok].norm(dim=1), REACH_QUANTILE)) if bool(ok.any()) else 0.0
        out.append(((vec[:, 0] / dist).cpu().numpy(), (vec[:, 1] / dist).cpu().numpy(),
                    (wave - wave.mean()).cpu().numpy(), reach))
    return out


def fraunhofer_psf(a: np.ndarray, b: np.ndarray, wave: np.ndarray, *, ks: int, wavelength_nm: float,
                   pixel_mm: float, sub: int, reach_mm: float = 0.0) -> np.ndarray:
    """Pixel-integrated intensity [ks, ks] from one point's lattice wavefront (see the module's steps 3-4).
    The field grid spans FIELD_SPAN kernels, or more when the rays reach farther (``reach_mm`` from the
    chief ray, plus a margin for the Airy tail), so a PSF wider than its kernel does not wrap back in."""
    assert sub % 2 == 0, "an even sub-sampling puts pixel centres on the field grid"
    lam = wavelength_nm * 1e-6
    step = pixel_mm / sub
    span_px = max(FIELD_SPAN * ks, 2.0 * (reach_mm / pixel_mm + max(4.0, ks / 4)))
    m = int(min(MAX_FIELD, math.ceil(span_px * sub / 16) * 16))
    da = lam / (m * step)  # direction-cosine spacing dual to the field grid
    grid = (np.arange(m) - m // 2) * da
    cols = np.nonzero((grid >= a.min() - da) & (grid <= a.max() + da))[0]
    rows = np.nonzero((grid >= b.min() - da) & (grid <= b.max() + da))[0]
    inside = CloughTocher2DInterpolator(np.stack([a, b], axis=1), wave)(*np.meshgrid(grid[cols], grid[rows]))
    pupil = np.zeros((m, m), dtype=np.complex128)
    block = np.zeros(inside.shape, dtype=np.complex128)
    ok = ~np.isnan(inside)
    block[ok] = np.exp(2j * np.pi * inside[ok] / lam)
    pupil[np.ix_(rows, cols)] = block
    # field at x_n = n * step about the reference point: sum over the pupil of exp(+2 pi i (a x + b y) / lambda)
    field = np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(pupil)))
    intensity = np.abs(field) ** 2
    freq = np.fft.fftfreq(m, d=step)
    box = np.sinc(freq * pixel_mm)
    spectrum = np.fft.fft2(np.fft.ifftshift(intensity)) * box[:, None] * box[None, :]
    pixels = np.fft.fftshift(np.real(np.fft.ifft2(spectrum)))
    # pixel (i, j) centre in the flipped (image) frame is ((j - (ks-1)/2) p, ((ks-1)/2 - i) p); the sensor is
    # not flipped, so it sits at minus that from the reference point
    offsets = ((np.arange(ks) - (ks - 1) / 2) * sub).round().astype(int)
    psf = pixels[np.ix_(m // 2 + offsets, m // 2 - offsets)].clip(min=0.0)
    return psf / max(psf.sum(), 1e-300)


def wave_psf(lens64, points: torch.Tensor, wavelength_nm: float, *, ks: int, f_number: float,
             n_pupil: int = N_PUPIL) -> np.ndarray:
    """Wave-optics PSFs [N, ks, ks] (float64, unit sum) of normalised object points [N, 3], float64 lens."""
    sw, sh = lens64.sensor_size
    pts = points.to(device=lens64.device, dtype=torch.float64)
    scale = lens64.calc_scale(pts[:, 2])
    obj = torch.stack([pts[:, 0] * scale * sw / 2, pts[:, 1] * scale * sh / 2, pts[:, 2]], dim=-1)
    pixel_mm = float(lens64.pixel_size)
    sub = subsampling(wavelength_nm, f_number, pixel_mm * 1000.0)
    fronts = pupil_wavefronts(lens64, obj, wavelength_nm, n_pupil)
    out = np.zeros((len(fronts), ks, ks))
    for i, (a, b, wave, reach) in enumerate(fronts):
        if len(a) >= 3:  # else no ray reaches the sensor: a zero PSF, as DeepLens gives
            out[i] = fraunhofer_psf(a, b, wave, ks=ks, wavelength_nm=wavelength_nm, pixel_mm=pixel_mm, sub=sub,
                                    reach_mm=reach)
    return out
