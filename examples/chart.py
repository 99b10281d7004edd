"""A synthetic test chart in linear light: Siemens stars, slanted edges, fine bars, colour patches.

Features sit all over the frame (centre, edges, corners) so a spatially varying blur shows everywhere.
"""

from __future__ import annotations

import numpy as np


def _window(image: np.ndarray, cx: float, cy: float, half: float) -> tuple[slice, slice, np.ndarray, np.ndarray]:
    """A box around (cx, cy) and the pixel coordinates in it, relative to the centre."""
    rows = slice(max(0, int(cy - half)), min(image.shape[0], int(cy + half) + 1))
    cols = slice(max(0, int(cx - half)), min(image.shape[1], int(cx + half) + 1))
    yy, xx = np.mgrid[rows, cols].astype(np.float32)
    return rows, cols, xx - cx, yy - cy


def test_chart(width: int = 2400, height: int = 1800) -> np.ndarray:
    """[height, width, 3] float32 in linear light, values in [0.02, 0.9]."""
    unit = min(width, height) / 18.0
    gray = np.full((height, width), 0.18, dtype=np.float32)
    # Siemens stars (24 spokes) on a 5 x 3 layout reaching into the corners
    radius = 1.6 * unit
    for cx in np.linspace(0.14, 0.86, 5) * width:
        for cy in np.linspace(0.15, 0.85, 3) * height:
            rows, cols, x, y = _window(gray, cx, cy, radius)
            star = 0.03 + 0.85 * (np.sin(24 * np.arctan2(y, x)) > 0)
            gray[rows, cols] = np.where(np.hypot(x, y) < radius, star, gray[rows, cols])
    # slanted-edge squares between the stars (5 degrees off the pixel grid)
    t = np.radians(5.0)
    for cx in np.linspace(0.3, 0.7, 2) * width:
        for cy in np.linspace(0.3, 0.7, 2) * height:
            rows, cols, x, y = _window(gray, cx, cy, 1.5 * unit)
            u, v = x * np.cos(t) + y * np.sin(t), -x * np.sin(t) + y * np.cos(t)
            gray[rows, cols] = np.where((np.abs(u) < unit) & (np.abs(v) < unit), 0.85, gray[rows, cols])
    # bars of 2..8 pixel period along the top and bottom
    for row, vertical in ((0.01, True), (0.955, False)):
        y0 = int(row * height)
        for i, period in enumerate((2, 3, 4, 6, 8)):
            x0 = int((0.25 + 0.1 * i) * width)
            yy, xx = np.mgrid[y0:y0 + int(0.6 * unit), x0:x0 + int(1.5 * unit)]
            coord = xx if vertical else yy
            gray[yy, xx] = np.where((coord // (period / 2)) % 2 == 0, 0.85, 0.03)
    chart = np.repeat(gray[:, :, None], 3, axis=2)
    # colour patches down the left and right edges
    colours = np.array([[0.7, 0.1, 0.1], [0.1, 0.6, 0.1], [0.1, 0.1, 0.7], [0.7, 0.7, 0.1], [0.1, 0.6, 0.7]])
    for i, colour in enumerate(colours):
        y0 = int((0.3 + 0.08 * i) * height)
        for x0 in (int(0.015 * width), int(0.955 * width)):
            chart[y0:y0 + int(0.9 * unit), x0:x0 + int(0.9 * unit)] = colour
    return np.clip(chart, 0.02, 0.9).astype(np.float32)
