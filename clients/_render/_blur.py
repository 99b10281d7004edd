"""Spatially varying blur of an image by a PSF grid: bilinear blend of the grid, FFT overlap-add.

The PSF at every pixel is the bilinear blend of the four nearest grid PSFs (see _weights.py), applied
as a scatter: each source pixel spreads its light with its own kernel. Because the blend is linear,
that equals the sum over grid cells g of ``conv(image * w_g, K_g)``; each ``w_g`` is non-zero on about
two tiles, so each term is one small FFT convolution added into place. Kernel orientation: row 0 is
image +y (up), columns grow toward +x, as in image arrays, so the kernel is convolved (not
correlated): a PSF with its energy right of and above centre moves light right and up.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._backend import ops_for
from ._color import is_torch
from ._kernels import fast_length, kernel_pads
from ._weights import support, tent_weights

PADDINGS = ("reflect", "zero")


def _grid_5d(psf_grid: Any, channels: int) -> np.ndarray:
    grid = np.asarray(psf_grid, dtype=np.float32)
    if grid.ndim == 4:  # one grid for every channel
        grid = np.broadcast_to(grid[:, :, None], (*grid.shape[:2], channels, *grid.shape[2:]))
    if grid.ndim != 5 or grid.shape[2] != channels or grid.shape[3] != grid.shape[4]:
        raise ValueError(f"psf_grid must be [ny, nx, k, k] or [ny, nx, C={channels}, k, k], got "
                         f"{list(np.shape(psf_grid))}")
    return grid


def blur(image: Any, psf_grid: Any, *, padding: str = "reflect", backend: str | None = None) -> Any:
    """Blur a linear-light image [H, W] or [H, W, C] with a PSF grid [ny, nx, (C,) k, k].

    ``psf_grid[j, i]`` belongs to tile (row j, column i) of the image split into ny x nx equal tiles
    (the layout of ``psf_grid()``), sampled at the image's pixel pitch. ``padding``: "reflect" (edges
    mirrored, as DeepLens renders) or "zero" (light from outside the frame is dark). Returns the same
    type and layout as ``image`` (numpy float32, or a torch tensor on the image's device).
    """
    if padding not in PADDINGS:
        raise ValueError(f"padding={padding!r} is not allowed: use one of {PADDINGS}")
    ops = ops_for(image, backend)
    x: Any = ops.array(image)  # a numpy array or a torch tensor, as the backend is
    if x.ndim not in (2, 3):
        raise ValueError(f"image must be [H, W] or [H, W, C], got shape {list(x.shape)}")
    chw = x[None] if x.ndim == 2 else x.permute(2, 0, 1) if ops.name == "torch" else x.transpose(2, 0, 1)
    channels, height, width = chw.shape
    grid = _grid_5d(psf_grid, channels)
    ny, nx, _, k, _ = grid.shape
    before, after = kernel_pads(k)

    padded = ops.pad(chw, before, after, padding)
    weights_y, weights_x = tent_weights(height, ny, before, after), tent_weights(width, nx, before, after)
    wy, wx = ops.array(weights_y), ops.array(weights_x)
    kernels = ops.array(np.ascontiguousarray(grid))
    acc = ops.zeros((channels, padded.shape[1] + k - 1, padded.shape[2] + k - 1))
    for j, (r0, r1) in enumerate(support(weights_y)):
        for i, (c0, c1) in enumerate(support(weights_x)):
            region = padded[:, r0:r1, c0:c1] * wy[j, r0:r1][:, None] * wx[i, c0:c1][None, :]
            h, w = r1 - r0 + k - 1, c1 - c0 + k - 1
            s = (fast_length(h), fast_length(w))
            full = ops.irfft2(ops.rfft2(region, s) * ops.rfft2(kernels[j, i], s), s)
            acc[:, r0:r0 + h, c0:c0 + w] += full[:, :h, :w]
    out: Any = acc[:, k - 1:k - 1 + height, k - 1:k - 1 + width]
    out = out[0] if x.ndim == 2 else out.permute(1, 2, 0) if ops.name == "torch" else out.transpose(1, 2, 0)
    if ops.name == "torch" and not is_torch(image):
        return np.ascontiguousarray(ops.to_numpy(out))  # numpy in, numpy out, whichever backend ran
    return out if ops.name == "torch" else np.ascontiguousarray(out)
