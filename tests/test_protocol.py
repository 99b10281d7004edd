"""The wire protocol (models_store.wire): what the server writes is what the client reads."""

from __future__ import annotations

import numpy as np
import pytest

from models_store.conditions import sensor_grid
from models_store.wire import LIMIT_HEADERS, Limits, check_dtype, npy_bytes, read_npy, tile_centres
from tests.conftest import imports_in_a_fresh_python


def test_the_store_package_needs_only_numpy_and_pydantic() -> None:
    imports_in_a_fresh_python(
        "import sys, models_store, models_store.wire, models_store.conditions\n"
        "light = {'numpy', 'pydantic', 'pydantic_core', 'typing_extensions', 'annotated_types',\n"
        "         'typing_inspection'}\n"
        "third = {m.split('.')[0] for m in sys.modules} - set(sys.stdlib_module_names) - light\n"
        "third = {m for m in third if not m.startswith('_') and m != 'models_store'}\n"
        "assert not third, sorted(third)\n"
    )


def test_limits_go_out_as_headers_and_come_back() -> None:
    limits = Limits(max_batch=7, max_grid=100, max_steps=16, max_body_bytes=1 << 20)
    headers = limits.headers()
    assert headers["X-Max-Batch-Size"] == "7" and set(headers) == set(LIMIT_HEADERS.values())
    assert Limits.from_headers(headers) == limits
    assert limits.as_dict() == {"max_batch": 7, "max_grid": 100, "max_steps": 16, "max_body_bytes": 1 << 20}
    assert Limits.from_headers({}) is None
    assert Limits.from_headers({**headers, "X-Max-Steps": "many"}) is None


def test_tile_centres_are_the_grid_the_server_computes() -> None:
    x, y = tile_centres(4, 3)
    np.testing.assert_allclose(x, [-0.75, -0.25, 0.25, 0.75])
    np.testing.assert_allclose(y, [2 / 3, 0.0, -2 / 3])
    gx, gy = sensor_grid(4, 3)  # row-major, top row first
    np.testing.assert_array_equal(gx.reshape(3, 4), np.broadcast_to(x, (3, 4)))
    np.testing.assert_array_equal(gy.reshape(3, 4), np.broadcast_to(y[:, None], (3, 4)))


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_npy_round_trip(dtype: str) -> None:
    arr = np.random.default_rng(1).random((2, 5, 5))
    back = read_npy(npy_bytes(arr, dtype))  # type: ignore[arg-type]
    assert back.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(back, arr.astype(dtype))


def test_read_npy_refuses_what_is_not_npy() -> None:
    with pytest.raises(ValueError, match="not a .npy array"):
        read_npy(b"<html>Bad gateway</html>")


def test_dtypes_by_name_or_numpy_type_and_a_clear_refusal() -> None:
    assert check_dtype("float16") == check_dtype(np.float16) == check_dtype(np.dtype("float16")) == "float16"
    assert check_dtype(np.float32) == "float32"
    for bad in ("float64", np.int8, "half", None):
        with pytest.raises(ValueError, match=r"dtype=.* is not allowed: must be 'float32' or 'float16'"):
            check_dtype(bad)
