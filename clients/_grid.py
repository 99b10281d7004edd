"""Where the PSFs of an ``ny x nx`` grid sit on the sensor (the layout GET /psf/grid uses)."""

from __future__ import annotations

import numpy as np

from models_store.conditions import check_grid
from models_store.wire import tile_centres


def grid_positions(nx: int, ny: int) -> tuple[np.ndarray, np.ndarray]:
    """Tile centres as (x [nx], y [ny]) in sensor fractions: x_i = -1 + (2i+1)/nx, y_j = 1 - (2j+1)/ny.

    Tile (row j, column i) of an image split into ``ny x nx`` equal tiles has its centre at (x_i, y_j):
    columns run left to right (+x), rows top to bottom (from +y), as image arrays do. The server's
    grids use the same formula (``models_store.wire.tile_centres``); a bad size is a ValueError.
    """
    check_grid(nx, ny)
    return tile_centres(nx, ny)
