"""Distortion and relative illumination applied to an image, from a coarse grid of the lens's geometry.

The grid (a source's ``distortion(nx, ny, ...)``) gives, at ideal (distortion-free) image positions
spanning the sensor, where the chief ray lands and the light that arrives there. Rendering needs the
inverse: for each output pixel, the ideal position whose chief ray lands on it. The displacement
``d(q) = chief(q) - q`` is smooth and small against the pixel grid, so ``q = p - d(q)`` is solved by a
few fixed-point steps (each bilinear in the grid), then the image is sampled at ``q`` (bilinear; light
from outside the frame is black, as in a ray-traced render) and multiplied by the illumination at ``q``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

FIXED_POINT_STEPS = 4  # |d'| << 1 for real lenses: each step cuts the error by |d'|


def _cell(axis: np.ndarray, at: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cell index and fraction of ``at`` on an increasing ``axis`` (clamped to its ends)."""
    i = np.clip(np.searchsorted(axis, at, side="right") - 1, 0, len(axis) - 2)
    t = np.clip((at - axis[i]) / (axis[i + 1] - axis[i]), 0.0, 1.0)
    return i, t


def bilinear_grid(values: np.ndarray, gx: np.ndarray, gy: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``values`` [ny, nx] on the grid axes ``gx`` [nx], ``gy`` [ny] (increasing), at points ``x``, ``y``."""
    i, tx = _cell(gx, x)
    j, ty = _cell(gy, y)
    top = values[j, i] * (1 - tx) + values[j, i + 1] * tx
    bottom = values[j + 1, i] * (1 - tx) + values[j + 1, i + 1] * tx
    return top * (1 - ty) + bottom * ty


def sample_image(image: np.ndarray, col: np.ndarray, row: np.ndarray) -> np.ndarray:
    """``image`` [H, W] or [H, W, C] at fractional pixel centres (``col``, ``row`` [h, w]); zero outside."""
    h, w = image.shape[:2]
    c0, r0 = np.floor(col).astype(np.int64), np.floor(row).astype(np.int64)
    fc, fr = col - c0, row - r0
    out = np.zeros(col.shape + image.shape[2:], dtype=np.float64)
    for dr, wr in ((0, 1 - fr), (1, fr)):
        for dc, wc in ((0, 1 - fc), (1, fc)):
            r, c = r0 + dr, c0 + dc
            inside = (r >= 0) & (r < h) & (c >= 0) & (c < w)
            weight = np.where(inside, wr * wc, 0.0)
            taken = image[np.clip(r, 0, h - 1), np.clip(c, 0, w - 1)]
            out += taken * (weight if image.ndim == 2 else weight[..., None])
    return out


def warp_and_shade(image: np.ndarray, geometry: Any, sensor_px: tuple[int, int], *, warp: bool = True,
                   shade: bool = True) -> np.ndarray:
    """``image`` [H, W(, C)] spanning the sensor (``sensor_px`` = (width, height) of the sensor's pixel grid),
    warped by the distortion and shaded by the relative illumination of ``geometry`` (a Distortion grid)."""
    h, w = image.shape[:2]
    sw, sh = sensor_px
    gx, gy = np.asarray(geometry.ideal_x_px)[0], np.asarray(geometry.ideal_y_px)[:, 0]
    dx = np.asarray(geometry.x_px, np.float64) - np.asarray(geometry.ideal_x_px)
    dy = np.asarray(geometry.y_px, np.float64) - np.asarray(geometry.ideal_y_px)
    # output pixel centres in sensor pixels (the image spans the sensor)
    py, px = np.meshgrid((np.arange(h) + 0.5) * sh / h, (np.arange(w) + 0.5) * sw / w, indexing="ij")
    qx, qy = px, py
    if warp:
        for _ in range(FIXED_POINT_STEPS):
            qx, qy = px - bilinear_grid(dx, gx, gy, qx, qy), py - bilinear_grid(dy, gx, gy, qx, qy)
        out = sample_image(np.asarray(image, np.float64), qx * w / sw - 0.5, qy * h / sh - 0.5)
    else:
        out = np.asarray(image, np.float64)
    if shade:
        light = bilinear_grid(np.asarray(geometry.illumination, np.float64), gx, gy, qx, qy)
        out = out * (light if out.ndim == 2 else light[..., None])
    return out
