"""Client methods on the array routes (/psf/batch, /psf/grid, /interpolate, /latent, /decode) against
the real server and LocalPSFModel: the same arrays both ways, batches split over the server's limit
(MAX_BATCH_ENV names the setting), the API key on every route."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from clients import (
    AsyncPSFClient,
    LocalPSFModel,
    PayloadTooLargeError,
    PSFClient,
    UnauthorizedError,
    grid_positions,
    render,
)
from clients._exceptions import error_from_response

from .conftest import ServerProcess, metric, ready_server

MAX_BATCH_ENV = "PSF_MAX_BATCH"  # the server's setting for the most conditions one request may hold
LIMIT = 7
COLUMNS = {"field": np.linspace(0.0, 1.0, 20), "azimuth": np.linspace(-170.0, 170.0, 20),
           "depth": np.geomspace(2.0, 100.0, 20), "wavelength": np.linspace(450.0, 650.0, 20)}
START = {"field": 0.1, "depth": 3.0, "wavelength": 500.0}
END = {"field": 0.9, "depth": 50.0, "wavelength": 620.0}


@pytest.fixture(scope="module")
def small_batch_server(trained_store: Path) -> Iterator[ServerProcess]:
    with ready_server(trained_store, env={MAX_BATCH_ENV: str(LIMIT)}) as server:
        yield server


def test_batch_equals_local_and_single_queries(client: PSFClient, local: LocalPSFModel) -> None:
    served = client.psf_batch(**COLUMNS)
    assert served.shape == (20, 16, 16) and served.meta == local.meta
    np.testing.assert_array_equal(served, local.psf_batch(**COLUMNS))
    for i in (0, 7, 19):
        row = {name: float(values[i]) for name, values in COLUMNS.items()}
        np.testing.assert_array_equal(served[i], client.psf(**row))


def test_batch_over_the_limit_is_chunked_in_order(small_batch_server: ServerProcess, local: LocalPSFModel) -> None:
    with PSFClient(small_batch_server.url, timeout=60.0) as client:
        out = client.psf_batch(**COLUMNS)
        assert client.max_batch == LIMIT, "the limit was not learned from the 413"
    np.testing.assert_array_equal(out, local.psf_batch(**COLUMNS))
    raw = httpx.post(f"{small_batch_server.url}/psf/batch", params={"format": "npy"}, timeout=60.0,
                     json={"field": [0.5] * (LIMIT + 1), "depth": 10.0, "wavelength": 550.0})
    error = error_from_response(raw)
    assert isinstance(error, PayloadTooLargeError) and error.limit == LIMIT, error

    async def gathered() -> np.ndarray:
        async with AsyncPSFClient(small_batch_server.url, timeout=60.0, max_batch=LIMIT) as async_client:
            return await async_client.psf_batch(**COLUMNS)

    np.testing.assert_array_equal(asyncio.run(gathered()), out)


def test_the_limit_is_read_from_the_first_answer(small_batch_server: ServerProcess, local: LocalPSFModel) -> None:
    def refused() -> float:
        return metric(httpx.get(small_batch_server.url + "/metrics").text, "psf_http_requests_total",
                      route="/psf/batch", status="413")

    with PSFClient(small_batch_server.url, timeout=60.0) as client:
        client.psf(**START)  # any answer announces the limits
        assert client.max_batch == LIMIT and client.server_limits is not None
        assert client.server_limits.max_batch == LIMIT
        before = refused()
        out = client.psf_batch(**COLUMNS)
    assert refused() == before, "an oversized batch went out although the limit was known"
    np.testing.assert_array_equal(out, local.psf_batch(**COLUMNS))


def test_grid_equals_local_and_sits_on_tile_centres(client: PSFClient, local: LocalPSFModel) -> None:
    grid = client.psf_grid(5, 3, depth=4.0, wavelength=520.0)
    assert grid.shape == (3, 5, 16, 16) and grid.meta == local.meta
    np.testing.assert_array_equal(grid, local.psf_grid(5, 3, depth=4.0, wavelength=520.0))
    x, y = grid_positions(5, 3)
    np.testing.assert_allclose(grid[2, 4], client.psf(x=x[4], y=y[2], depth=4.0, wavelength=520.0), atol=1e-7)
    # the grid is the batch of its tile centres, row by row from the top
    gx, gy = np.meshgrid(x, y)
    np.testing.assert_array_equal(local.psf_batch(x=gx.ravel(), y=gy.ravel(), depth=4.0, wavelength=520.0),
                                  grid.reshape(15, 16, 16))


@pytest.mark.parametrize("method", ["linear", "slerp"])
def test_interpolate_equals_local(client: PSFClient, local: LocalPSFModel, method: str) -> None:
    served = client.interpolate(START, END, steps=6, method=method)
    assert served.shape == (6, 16, 16) and served.meta == local.meta
    np.testing.assert_array_equal(served, local.interpolate(START, END, steps=6, method=method))
    # the ends of a path between two conditions are those conditions' PSFs (prior mean, decoded)
    np.testing.assert_allclose(served[0], client.psf(**START), atol=1e-5)
    np.testing.assert_allclose(served[-1], client.psf(**END), atol=1e-5)


def test_interpolate_from_a_measured_psf(client: PSFClient, local: LocalPSFModel) -> None:
    measured = np.asarray(local.psf(**START))
    start = {**START, "psf": measured}
    served = client.interpolate(start, END, steps=4)
    assert served.shape == (4, 16, 16)
    np.testing.assert_allclose(served.sum(axis=(1, 2)), 1.0, atol=1e-4)
    np.testing.assert_array_equal(served, local.interpolate(start, END, steps=4))


def test_latent_and_decode_round_trip(client: PSFClient, local: LocalPSFModel) -> None:
    query = {"field": [0.2, 0.7], "depth": [5.0, 20.0], "wavelength": 550.0}
    mu, logvar = client.latent(**query)
    latent_size = client.model("ci")["latent_size"]
    assert mu.shape == logvar.shape == (2, latent_size) and mu.meta.model == "ci"
    local_mu, local_logvar = local.latent(**query)
    np.testing.assert_array_equal(mu, local_mu)
    np.testing.assert_array_equal(logvar, local_logvar)
    decoded = client.decode(mu, **query)
    assert decoded.shape == (2, 16, 16)
    np.testing.assert_array_equal(decoded, local.decode(local_mu, **query))
    # decoding the prior mean is exactly what the psf graph does
    np.testing.assert_allclose(decoded, client.psf_batch(**query), atol=1e-5)


def test_render_through_the_server_equals_render_in_process(client: PSFClient, local: LocalPSFModel) -> None:
    image = np.random.default_rng(3).random((60, 80, 3)).astype(np.float32)
    options = {"depth": 6.0, "grid": (4, 3)}
    np.testing.assert_array_equal(render(image, client, **options), render(image, local, **options))


def test_new_routes_want_the_api_key(trained_store: Path) -> None:
    with ready_server(trained_store, env={"PSF_API_KEY": "sesame"}) as server, \
            PSFClient(server.url, timeout=60.0) as client:
        calls = (lambda: client.psf_batch(**COLUMNS), lambda: client.psf_grid(2, 2, depth=5.0, wavelength=550.0),
                 lambda: client.latent(**START), lambda: client.interpolate(START, END, steps=2))
        for call in calls:
            with pytest.raises(UnauthorizedError):
                call()
