"""Kernel geometry: the centre convention, and resampling PSFs to the image's pixel pitch."""

from __future__ import annotations

import math

import numpy as np


def kernel_pads(k: int) -> tuple[int, int]:
    """Padding (before, after) for a k x k kernel; kernel index k // 2 is the zero offset.

    That centre is DeepLens's (``conv_psf``): for odd k the middle pixel, for even k the pixel just past
    the half-pixel chief-ray position, so an even kernel shifts the image by half a pixel as in DeepLens.
    """
    return (k - 1) // 2, k // 2


def _overlap(k_in: int, k_out: int, factor: float) -> np.ndarray:
    """[k_out, k_in] overlap lengths of output pixels (``factor`` input pixels wide) with input pixels."""
    lo_in = np.arange(k_in) - k_in // 2 - 0.5
    lo_out = (np.arange(k_out) - k_out // 2 - 0.5) * factor
    hi_in, hi_out = lo_in + 1.0, lo_out + factor
    return np.clip(np.minimum(hi_out[:, None], hi_in[None, :]) - np.maximum(lo_out[:, None], lo_in[None, :]), 0, None)


# kernels resampled per matmul pair: bounds the float64 temporaries (at 256 px, 64 of them are ~34 MiB)
RESAMPLE_CHUNK = 64


def resampled_size(k: int, factor: float) -> int:
    """Odd side of a k px kernel resampled onto pixels ``factor`` times as large, wide enough to hold it whole."""
    return 2 * math.ceil((k / 2 + 1) / factor) + 1


def resample_kernels(psfs: np.ndarray, factor_x: float, factor_y: float | None = None) -> np.ndarray:
    """Re-sample ``[..., k, k]`` kernels onto pixels ``factor`` times as large (area-weighted, unit sum kept).

    ``factor`` = image pixel pitch / PSF pixel pitch: 4 when an image of a quarter of the sensor's
    resolution is rendered with PSFs sampled at the sensor pitch. The zero offset stays at index n // 2
    of the ``[..., n, n]`` result; n is odd and holds the whole kernel along both axes (so the result is
    square, as ``blur`` needs, when the two factors differ). The area weights are separable, so each
    kernel is two matrix products, done a chunk of kernels at a time in float64.
    """
    factor_y = factor_x if factor_y is None else factor_y
    psfs = np.asarray(psfs)
    k = psfs.shape[-1]
    n = max(resampled_size(k, factor_x), resampled_size(k, factor_y))
    ay, ax_t = _overlap(k, n, factor_y), _overlap(k, n, factor_x).T
    flat = psfs.reshape(-1, *psfs.shape[-2:])
    out = np.empty((len(flat), n, n), dtype=np.float32)
    for start in range(0, len(flat), RESAMPLE_CHUNK):
        chunk = flat[start:start + RESAMPLE_CHUNK].astype(np.float64)
        columns = (chunk.reshape(-1, k) @ ax_t).reshape(len(chunk), k, n)  # one gemm each way, not one per kernel
        block = np.tensordot(ay, columns, axes=([1], [1])).transpose(1, 0, 2)
        total = block.sum(axis=(-2, -1), keepdims=True)
        out[start:start + RESAMPLE_CHUNK] = block / np.where(total > 0, total, 1.0)
    return out.reshape(*psfs.shape[:-2], n, n)


def fast_length(n: int) -> int:
    """The smallest 2-3-5-smooth integer >= n (FFT sizes that pocketfft and cuFFT handle fastest)."""
    best = 1 << max(0, (n - 1).bit_length())
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            m = p35
            while m < n:
                m *= 2
            best = min(best, m)
            p35 *= 3
        p5 *= 5
    return best
