"""Latent paths and sensor grids: the pure math under /interpolate and /psf/grid."""

from __future__ import annotations

import numpy as np
import pytest

from models_store import ConditionError
from models_store.conditions import rotate_psfs, sensor_grid, to_meridian
from models_store.interpolation import latent_path, path_weights, slerp


@pytest.mark.parametrize("method", ["linear", "slerp"])
def test_paths_start_and_end_exactly_on_the_ends(method: str) -> None:
    rng = np.random.default_rng(0)
    z0, z1 = rng.normal(size=8).astype(np.float32), rng.normal(size=8).astype(np.float32)
    path = latent_path(z0, z1, path_weights(7), method)
    assert path.shape == (7, 8) and path.dtype == np.float32
    np.testing.assert_array_equal(path[0], z0)
    np.testing.assert_array_equal(path[-1], z1)


def test_slerp_keeps_the_norm_of_unit_vectors_and_linear_does_not() -> None:
    a, b = np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0])
    t = path_weights(9)
    np.testing.assert_allclose(np.linalg.norm(slerp(a, b, t), axis=1), 1.0, atol=1e-12)
    assert np.linalg.norm(latent_path(a, b, t, "linear")[4]) == pytest.approx(np.sqrt(0.5), rel=1e-6)
    # (nearly) parallel vectors: slerp falls back to linear instead of dividing by sin(0)
    np.testing.assert_allclose(slerp(a, 2 * a, t)[:, 0], 1 + t)


@pytest.mark.parametrize("call, words", [
    (lambda: path_weights(1), "steps=1"),
    (lambda: latent_path(np.ones(2), np.ones(2), path_weights(3), "cubic"), "method='cubic'"),
    (lambda: sensor_grid(0, 3), "nx=0"),
    (lambda: sensor_grid(2, 2.5), "ny=2.5"),
])
def test_bad_path_or_grid_arguments_are_condition_errors(call, words: str) -> None:
    with pytest.raises(ConditionError, match=words.replace("(", r"\(")):
        call()


def test_sensor_grid_is_tile_centres_top_row_first() -> None:
    x, y = sensor_grid(4, 2)
    np.testing.assert_allclose(x.reshape(2, 4), [[-0.75, -0.25, 0.25, 0.75]] * 2)
    np.testing.assert_allclose(y.reshape(2, 4), [[0.5] * 4, [-0.5] * 4])


def test_to_meridian_undoes_rotate_psfs_for_right_angles() -> None:
    rng = np.random.default_rng(1)
    psfs = rng.random((4, 9, 9)).astype(np.float32)
    psfs /= psfs.sum(axis=(1, 2), keepdims=True)
    azimuth = np.array([0.0, 180.0, 270.0, 90.0])  # quarter turns move whole pixels: exact both ways
    np.testing.assert_allclose(to_meridian(rotate_psfs(psfs, azimuth), azimuth), psfs, atol=1e-7)
