"""Blend weights that make a PSF grid a smoothly varying PSF: bilinear between tile centres.

Along one image axis of ``n_pixels`` split into ``n_grid`` equal tiles, the PSF of tile i is centred
at pixel coordinate ``(i + 0.5) * n_pixels / n_grid - 0.5``. A pixel between two centres takes the
two PSFs with linear weights (a tent per centre); beyond the outermost centres it takes the edge PSF
alone. The weights are continuous and sum to 1 at every pixel, so the blur has no seams and a
uniform kernel grid reduces to a plain convolution. The 2-D weight of grid cell (j, i) is
``wy[j, row] * wx[i, col]``.
"""

from __future__ import annotations

import numpy as np


def tent_weights(n_pixels: int, n_grid: int, before: int = 0, after: int = 0) -> np.ndarray:
    """[n_grid, before + n_pixels + after] float32 weights for pixels -before .. n_pixels + after - 1."""
    if n_grid < 1 or n_pixels < 1:
        raise ValueError(f"need n_grid >= 1 and n_pixels >= 1, got {n_grid}, {n_pixels}")
    p = np.arange(-before, n_pixels + after, dtype=np.float64)
    weights = np.zeros((n_grid, p.size), dtype=np.float64)
    if n_grid == 1:
        weights[0] = 1.0
        return weights.astype(np.float32)
    step = n_pixels / n_grid
    t = np.clip((p + 0.5) / step - 0.5, 0.0, n_grid - 1.0)  # continuous grid index of each pixel
    i0 = np.minimum(np.floor(t).astype(np.int64), n_grid - 2)
    frac = t - i0
    columns = np.arange(p.size)
    weights[i0, columns] = 1.0 - frac
    weights[i0 + 1, columns] += frac
    return weights.astype(np.float32)


def support(weights: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) of the non-zero weights of each grid index (where its PSF contributes)."""
    spans = []
    for row in weights:
        nonzero = np.flatnonzero(row > 0)
        spans.append((int(nonzero[0]), int(nonzero[-1]) + 1) if nonzero.size else (0, 0))
    return spans
