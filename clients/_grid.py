"""Where the PSFs of an ``ny x nx`` grid sit on the sensor (the layout GET /psf/grid uses)."""

from __future__ import annotations

import numpy as np


def grid_positions(nx: int, ny: int) -> tuple[np.ndarray, np.ndarray]:
    """Tile centres as (x [nx], y [ny]) in sensor fractions: x_i = -1 + (2i+1)/nx, y_j = 1 - (2j+1)/ny.

    Tile (row j, column i) of an image split into ``ny x nx`` equal tiles has its centre at (x_i, y_j):
    columns run left to right (+x), rows top to bottom (from +y), as image arrays do.
    """
    if nx < 1 or ny < 1:
        raise ValueError(f"a PSF grid needs nx, ny >= 1, got nx={nx}, ny={ny}")
    x = -1.0 + (2.0 * np.arange(nx) + 1.0) / nx
    y = 1.0 - (2.0 * np.arange(ny) + 1.0) / ny
    return x, y
