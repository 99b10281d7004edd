"""The cheap diffraction candidates benchmarks/diffraction.py measured and training did not adopt: the
geometric PSF convolved with the Airy pattern of the working f-number at the traced wavelength.

- :func:`tent_airy`: DeepLens's ray-traced PSF (bilinear binning) convolved on the pixel grid with the
  pixel-integrated Airy pattern (the classic form);
- :func:`bin_and_diffract`: exact for the model: the ray hits binned on a grid ``sub`` times finer than the
  pixels, multiplied in the Fourier domain by the Airy pattern's transfer function (the incoherent OTF of a
  circular pupil, zero beyond 1 / (lambda N)) and by the pixel's box, read back at the pixel centres.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

MIN_SUB = 3               # at least this many sub-bins per pixel (a hit moves at most 1/(2 MIN_SUB) px)
MAX_GRID_CELLS = 2**24    # sub-grid cells convolved at once (float64 + its spectrum: ~0.5 GB)


def subsampling(wavelength_nm: float, f_number: float, pixel_um: float) -> int:
    """Sub-bins per pixel so the Airy OTF's cut-off 1 / (lambda N) lies below the sub-grid's Nyquist."""
    return math.floor(2.0 * pixel_um / (wavelength_nm / 1000.0 * f_number)) + 1


def _transfer(n: int, step_um: float, pixel_um: float, wavelength_nm: float, f_number: float,
              device) -> torch.Tensor:
    """OTF of the Airy pattern x the pixel's box, on an n x n rfft2 grid of spacing ``step_um``."""
    fy = torch.fft.fftfreq(n, d=step_um, dtype=torch.float64, device=device)
    fx = torch.fft.rfftfreq(n, d=step_um, dtype=torch.float64, device=device)
    rho = torch.sqrt(fy[:, None] ** 2 + fx[None, :] ** 2) * (wavelength_nm / 1000.0 * f_number)
    rho = rho.clamp(max=1.0)
    otf = (2.0 / math.pi) * (torch.arccos(rho) - rho * torch.sqrt(1.0 - rho * rho))
    box = torch.sinc(fy * pixel_um)[:, None] * torch.sinc(fx * pixel_um)[None, :]
    return otf * box


def bin_and_diffract(offsets_px: torch.Tensor, valid: torch.Tensor, ks: int, wavelength_nm: float,
                     f_number: float, pixel_um: float, min_sub: int = MIN_SUB) -> torch.Tensor:
    """Ray hits relative to the chief ray [N, n, 2] in px (+x, +y, DeepLens's flipped frame) -> diffracted,
    pixel-integrated PSFs [N, ks, ks] (float64, unit sum), row 0 = +y, column 0 = -x as DeepLens bins them.

    Hits outside the ks x ks window are dropped (as DeepLens drops them) and their Airy tails with them.
    Each hit moves to its sub-bin's centre, at most half a sub-bin: ``min_sub`` keeps that small."""
    sub = max(min_sub, subsampling(wavelength_nm, f_number, pixel_um))
    half = (ks - 1) / 2.0
    # sub-grid coordinates: pixel centre j sits at j * sub, the window spans about [-sub/2, (ks - 1) sub + sub/2]
    lo, edge = -(sub // 2), (ks - 1) * sub + sub // 2
    span = edge - lo + 1
    n = 2 * span  # linear (not circular) convolution across the whole window
    transfer = _transfer(n, pixel_um / sub, pixel_um, wavelength_nm, f_number, offsets_px.device)
    chunk = max(1, MAX_GRID_CELLS // (n * n))  # bounds memory: a reference window at many points at once
    out = []
    for start in range(0, offsets_px.shape[0], chunk):
        off, ok = offsets_px[start:start + chunk].double(), valid[start:start + chunk].bool()
        col = torch.round((off[..., 0] + half) * sub)
        row = torch.round((half - off[..., 1]) * sub)
        keep = ok & (col >= lo) & (col <= edge) & (row >= lo) & (row <= edge)
        flat = ((row - lo).clamp(0, span - 1) * n + (col - lo).clamp(0, span - 1)).long()
        flat = flat + torch.arange(off.shape[0], device=flat.device)[:, None] * (n * n)
        counts = torch.bincount(flat[keep], minlength=off.shape[0] * n * n).reshape(-1, n, n).double()
        image = torch.fft.irfft2(torch.fft.rfft2(counts) * transfer, s=(n, n))
        at = -lo  # sub index of pixel centre 0
        out.append(image[:, at:at + ks * sub:sub, at:at + ks * sub:sub].clamp(min=0.0))
    psf = torch.cat(out)
    assert psf.shape == (offsets_px.shape[0], ks, ks), f"diffracted PSF {tuple(psf.shape)} vs ks {ks}"
    return psf / psf.sum(dim=(-2, -1), keepdim=True).clamp(min=1e-300)


@torch.no_grad()
def ray_hits(lens, points: torch.Tensor, wavelength_nm: float, spp: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Sensor hits relative to the chief ray [N, spp, 2] in px, as DeepLens's geometric PSF bins them
    (sampled, traced incoherently, centred on the primary-wavelength chief ray), and their validity."""
    sw, sh = lens.sensor_size
    pts = points.to(device=lens.device, dtype=lens.dtype)
    scale = lens.calc_scale(pts[:, 2])
    obj = torch.stack([pts[:, 0] * scale * sw / 2, pts[:, 1] * scale * sh / 2, pts[:, 2]], dim=-1)
    ray = lens.sample_from_points(points=obj, num_rays=spp, wvln=float(wavelength_nm) / 1000.0)
    ray.is_coherent = False
    ray = lens.trace2sensor(ray)
    centre = lens.psf_center(obj, method="chief_ray")
    hits = (ray.flip_xy().o[..., :2] - centre.unsqueeze(-2)) / float(lens.pixel_size)
    return hits, ray.is_valid.bool()


def airy_kernel(wavelength_nm: float, f_number: float, pixel_um: float, half: int) -> torch.Tensor:
    """Pixel-integrated Airy pattern centred on a pixel centre, (2 half + 1)^2 px."""
    one = torch.zeros(1, 1, 2, dtype=torch.float64)
    return bin_and_diffract(one, torch.ones(1, 1, dtype=torch.bool), 2 * half + 1, wavelength_nm, f_number, pixel_um)[0]


def tent_airy(geo: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """[N, ks, ks] geometric PSFs convolved on the pixel grid with ``kernel``, unit sum."""
    half = kernel.shape[-1] // 2
    out = F.conv2d(geo.double()[:, None], kernel.double().flip(-2, -1)[None, None], padding=half)[:, 0]
    return out / out.sum(dim=(-2, -1), keepdim=True)
