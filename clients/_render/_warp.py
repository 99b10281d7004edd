"""Distortion and relative illumination applied to an image, from a coarse grid of the lens's geometry.

The grid (a source's ``distortion(nx, ny, ...)``, an :class:`clients.ImageGeometry` of [ny, nx] arrays)
gives, at ideal (distortion-free) image points, where the chief ray lands and the light that arrives
there, in pixels of the sensor grid (``models_store.sensor``: (0, 0) = centre of the top-left pixel).
Rendering needs the inverse: for each output pixel ``p``, the ideal point ``q`` whose chief ray lands on
it. The displacement ``d(q) = chief(q) - q`` is smooth and small, so ``q = p - d(q)`` is solved by a few
fixed-point steps (bilinear in the grid, extrapolated linearly beyond its outer points); then the image
is sampled at ``q`` (bilinear; light from outside the frame is black, as in a ray-traced render) and
multiplied by the illumination at ``q``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

FIXED_POINT_STEPS = 4  # |d'| << 1 for real lenses: each step cuts the error by |d'|


def _cell(axis: np.ndarray, at: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cell index and fraction of ``at`` on an increasing ``axis`` (outer cells extend beyond its ends)."""
    i = np.clip(np.searchsorted(axis, at, side="right") - 1, 0, len(axis) - 2)
    return i, (at - axis[i]) / (axis[i + 1] - axis[i])


def bilinear_grid(values: np.ndarray, gx: np.ndarray, gy: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``values`` [ny, nx] on the grid axes ``gx`` [nx], ``gy`` [ny] (increasing), at points ``x``, ``y``;
    linear beyond the outer grid points."""
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


class Warp:
    """Where each pixel of an ``shape`` = (H, W) image spanning a ``sensor`` = (cols, rows) grid comes from."""

    def __init__(self, geometry: Any, shape: tuple[int, int], sensor: tuple[int, int], *, warp: bool = True) -> None:
        h, w = shape
        cols, rows = sensor
        self.shape, self.sensor = (h, w), (cols, rows)
        self.gx = np.asarray(geometry.ideal_x_px, np.float64)[0]
        self.gy = np.asarray(geometry.ideal_y_px, np.float64)[:, 0]
        # the image's pixel centres in sensor pixels
        py, px = np.meshgrid((np.arange(h) + 0.5) * rows / h - 0.5, (np.arange(w) + 0.5) * cols / w - 0.5,
                             indexing="ij")
        qx, qy = px, py
        if warp:
            dx = np.asarray(geometry.x_px, np.float64) - np.asarray(geometry.ideal_x_px, np.float64)
            dy = np.asarray(geometry.y_px, np.float64) - np.asarray(geometry.ideal_y_px, np.float64)
            gx, gy = self.gx, self.gy
            for _ in range(FIXED_POINT_STEPS):
                qx, qy = px - bilinear_grid(dx, gx, gy, qx, qy), py - bilinear_grid(dy, gx, gy, qx, qy)
        self.warped, self.qx, self.qy = warp, qx, qy

    def apply(self, image: np.ndarray) -> np.ndarray:
        """The image as the distortion moves it (float64)."""
        if not self.warped:
            return np.asarray(image, np.float64)
        (h, w), (cols, rows) = self.shape, self.sensor
        return sample_image(np.asarray(image, np.float64), (self.qx + 0.5) * w / cols - 0.5,
                            (self.qy + 0.5) * h / rows - 0.5)

    def light(self, illumination: np.ndarray) -> np.ndarray:
        """A grid of ``illumination`` [ny, nx] at every pixel's source point, [H, W]."""
        return bilinear_grid(np.asarray(illumination, np.float64), self.gx, self.gy, self.qx, self.qy)


def warp_and_shade(image: np.ndarray, geometry: Any, sensor: tuple[int, int], *, warp: bool = True,
                   shade: bool = True) -> np.ndarray:
    """``image`` [H, W(, C)] spanning the sensor's ``(cols, rows)`` pixel grid, warped by ``geometry``'s
    distortion and shaded by its illumination (each step can be turned off)."""
    mapping = Warp(geometry, image.shape[:2], sensor, warp=warp)
    out = mapping.apply(image)
    if shade:
        light = mapping.light(geometry.illumination)
        out = out * (light if out.ndim == 2 else light[..., None])
    return out
