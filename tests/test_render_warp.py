"""Warping and shading an image by a coarse geometry grid: a point lands where the chief ray says."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from clients._render._warp import bilinear_grid, warp_and_shade


class Grid(NamedTuple):
    ideal_x_px: np.ndarray
    ideal_y_px: np.ndarray
    x_px: np.ndarray
    y_px: np.ndarray
    illumination: np.ndarray


def barrel(sensor: tuple[int, int], k: float, nx: int = 17, ny: int = 13) -> Grid:
    """A synthetic lens: chief rays pulled toward the centre by k * r^3 (r in half-diagonals), and
    illumination falling as 1 - 0.3 r^2."""
    w, h = sensor  # pixel centres 0 .. w - 1 (models_store.sensor); the grid stops short of the edges
    gx, gy = np.linspace(10, w - 11, nx), np.linspace(8, h - 9, ny)
    ix, iy = np.meshgrid(gx, gy)
    cx, cy, half = (w - 1) / 2, (h - 1) / 2, np.hypot(w, h) / 2
    ux, uy = (ix - cx) / half, (iy - cy) / half
    r2 = ux**2 + uy**2
    scale = 1 - k * r2
    return Grid(ix, iy, cx + ux * scale * half, cy + uy * scale * half, 1 - 0.3 * r2)


def test_bilinear_grid_is_exact_for_a_plane_inside_and_beyond_it() -> None:
    gx, gy = np.array([0.0, 2.0, 5.0]), np.array([0.0, 1.0, 3.0])
    values = 2 * gx[None, :] - 3 * gy[:, None] + 1
    x, y = np.array([0.5, 4.0, 3.3, -1.0, 6.5]), np.array([2.5, 0.2, 1.7, 4.0, -0.5])
    assert np.allclose(bilinear_grid(values, gx, gy, x, y), 2 * x - 3 * y + 1)


def test_a_point_lands_where_its_chief_ray_does_dimmed_by_the_illumination() -> None:
    sensor = (320, 240)
    geometry = barrel(sensor, k=0.05)
    image = np.zeros((240, 320))
    row, col = 30, 290  # near a corner, where barrel distortion moves it by several pixels
    image[row - 1:row + 2, col - 1:col + 2] = 1.0
    out = warp_and_shade(image, geometry, sensor)
    # where the grid says the ideal point (col, row) lands, and its illumination
    ideal_x, ideal_y = np.array([float(col)]), np.array([float(row)])
    gx, gy = geometry.ideal_x_px[0], geometry.ideal_y_px[:, 0]
    land_x = bilinear_grid(geometry.x_px, gx, gy, ideal_x, ideal_y)[0]
    land_y = bilinear_grid(geometry.y_px, gx, gy, ideal_x, ideal_y)[0]
    light = bilinear_grid(geometry.illumination, gx, gy, ideal_x, ideal_y)[0]
    rows, cols = np.indices(out.shape)
    total = out.sum()
    centroid = ((out * cols).sum() / total, (out * rows).sum() / total)
    assert np.hypot(land_x - col, land_y - row) > 3.0  # the test would see a missing warp
    assert np.hypot(centroid[0] - land_x, centroid[1] - land_y) < 0.1, (centroid, (land_x, land_y))
    # energy: 9 pixels' worth, times the illumination, times the local area change of the mapping
    assert 0.8 * 9 * light < total < 1.05 * 9 * light


def test_either_step_can_be_turned_off() -> None:
    sensor = (64, 48)
    geometry = barrel(sensor, k=0.1, nx=9, ny=7)
    image = np.random.default_rng(0).random((48, 64, 3))
    assert np.array_equal(warp_and_shade(image, geometry, sensor, warp=False, shade=False), image)
    shaded = warp_and_shade(image, geometry, sensor, warp=False)
    assert shaded[24, 32, 0] > 0.99 * image[24, 32, 0] and shaded[0, 0, 0] < 0.9 * image[0, 0, 0]
    warped = warp_and_shade(image, geometry, sensor, shade=False)
    assert np.allclose(warped[24, 32], image[24, 32], atol=0.05) and not np.allclose(warped, image, atol=0.05)
