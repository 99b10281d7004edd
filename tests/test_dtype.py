"""float16 answers: asked with dtype=float16 on the npy routes and in every client, float32 by default,
within the documented bound of the float32 answer, and a clear 422 for a dtype that is not offered."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import numpy as np
import pytest

from clients import AsyncPSFClient, InvalidRequestError, LocalPSFModel, PSFClient
from models_store.wire import read_npy

from .conftest import ready_server

QUERY = {"field": 0.6, "azimuth": 40.0, "depth": 6.0, "wavelength": 560.0}
COLUMNS = {"field": [0.0, 0.3, 0.9], "azimuth": [10.0, 100.0, 250.0], "depth": [2.0, 8.0, 60.0],
           "wavelength": 520.0}
# float16 keeps 11 significant bits: per value within 2^-12 of a unit-sum kernel's float32 value, and
# within 2^-11 in relative L1 (README.md, "float16 answers")
MAX_ABS, MAX_REL_L1 = 2.0 ** -12, 2.0 ** -11


def requests(dtype: str | None) -> list[tuple[str, str, dict]]:
    extra = {} if dtype is None else {"dtype": dtype}
    return [("GET", "/psf", {"params": {**QUERY, "format": "npy", **extra}}),
            ("POST", "/psf/batch", {"params": {"format": "npy", **extra}, "json": COLUMNS}),
            ("GET", "/psf/grid", {"params": {"nx": 3, "ny": 2, "depth": 6.0, "wavelength": 560.0, **extra}})]


def within_bound(half: np.ndarray, full: np.ndarray) -> None:
    assert half.dtype == np.float16 and full.dtype == np.float32
    a, b = full.astype(np.float64), half.astype(np.float64)
    assert np.abs(b - a).max() <= MAX_ABS
    rel_l1 = np.abs(b - a).sum(axis=(-2, -1)) / a.sum(axis=(-2, -1))
    assert rel_l1.max() <= MAX_REL_L1
    np.testing.assert_array_equal(half, full.astype(np.float16))  # numpy's rounding, nothing else


@pytest.fixture(scope="module")
def route_only_url(trained_store: Path, tmp_path_factory: pytest.TempPathFactory):
    log = tmp_path_factory.mktemp("dtype-route-only") / "server.log"
    with ready_server(trained_store, env={"PSF_FAST_PATH": "false"}, log_path=log) as server:
        yield server.url


def test_float16_on_every_npy_route_is_float32_rounded(server_url: str, route_only_url: str) -> None:
    for url in (server_url, route_only_url):
        with httpx.Client(base_url=url, timeout=30.0) as http:
            # float32 first: the answer cache then holds this query, and must not answer float16 with it
            for (method, path, kw), (_, _, kw16) in zip(requests(None), requests("float16"), strict=True):
                full = http.request(method, path, **kw)
                half = http.request(method, path, **kw16)
                again = http.request(method, path, **kw)
                assert full.status_code == half.status_code == 200, (path, half.text)
                assert half.headers["content-type"] == "application/x-npy" and half.headers["x-model"] == "ci"
                within_bound(read_npy(half.content), read_npy(full.content))
                assert again.content == full.content, f"{path}: the cached float32 answer changed"
                assert len(half.content) < len(full.content)


def test_float16_json_values_are_rounded_likewise(http: httpx.Client) -> None:
    full = np.asarray(http.get("/psf", params=QUERY).json()["psf"], dtype=np.float32)
    half = http.get("/psf", params={**QUERY, "dtype": "float16"}).json()["psf"]
    np.testing.assert_array_equal(np.asarray(half), full.astype(np.float16).astype(np.float64))


@pytest.mark.parametrize("bad", ["float64", "half", "int8", ""])
def test_a_dtype_not_offered_is_a_422_naming_it(server_url: str, route_only_url: str, bad: str) -> None:
    for url in (server_url, route_only_url):
        for method, path, kw in requests(bad):
            answer = httpx.request(method, url + path, timeout=30.0, **kw)
            assert answer.status_code == 422, (path, answer.text)
            detail = answer.json()["detail"]
            assert f"dtype={bad!r}" in detail and "'float32' or 'float16'" in detail, detail


def test_the_openapi_document_states_the_dtypes_and_the_bound(http: httpx.Client) -> None:
    spec = http.get("/openapi.json").json()
    for path in ("/psf", "/psf/grid", "/psf/batch"):
        operation = next(iter(spec["paths"][path].values()))
        (dtype,) = [p for p in operation["parameters"] if p["name"] == "dtype"]
        assert "2.4e-4" in dtype["description"] and "float16" in dtype["description"], path


def test_clients_return_the_dtype_asked_for(client: PSFClient, local: LocalPSFModel, server_url: str) -> None:
    assert client.psf(**QUERY).dtype == np.float32  # the default is unchanged
    half = client.psf(dtype="float16", **QUERY)
    assert half.dtype == np.float16 and half.meta == local.meta
    np.testing.assert_array_equal(half, local.psf(dtype=np.float16, **QUERY))
    within_bound(half, local.psf(**QUERY))
    batch = client.psf_batch(dtype="float16", **COLUMNS)
    np.testing.assert_array_equal(batch, local.psf_batch(dtype="float16", **COLUMNS))
    grid = client.psf_grid(3, 2, depth=6.0, wavelength=560.0, dtype="float16")
    assert grid.shape == (2, 3, 16, 16)
    within_bound(grid, local.psf_grid(3, 2, depth=6.0, wavelength=560.0))

    async def gathered() -> list[np.ndarray]:
        async with AsyncPSFClient(server_url, timeout=60.0) as async_client:
            # coalesced into one batch, and kept apart from float32 calls made in the same turn
            return await asyncio.gather(async_client.psf(dtype="float16", **QUERY), async_client.psf(**QUERY),
                                        async_client.psf(dtype="float16", **{**QUERY, "field": 0.1}))

    first, plain, third = asyncio.run(gathered())
    assert (first.dtype, plain.dtype, third.dtype) == (np.float16, np.float32, np.float16)
    np.testing.assert_array_equal(first, half)
    np.testing.assert_array_equal(third, local.psf(dtype="float16", **{**QUERY, "field": 0.1}))

    with PSFClient(server_url, protocol="v2", model="ci") as v2:
        np.testing.assert_array_equal(v2.psf_batch(dtype="float16", **COLUMNS), batch)


@pytest.mark.parametrize("bad", ["float64", np.int32, "f2x"])
def test_clients_refuse_a_dtype_not_offered_before_sending(local: LocalPSFModel, bad: object) -> None:
    def unreachable(request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"{request.url} was sent")

    with PSFClient("http://psf.invalid", transport=httpx.MockTransport(unreachable)) as client:
        for call in (lambda: client.psf(dtype=bad, **QUERY), lambda: client.psf_batch(dtype=bad, **COLUMNS),
                     lambda: client.psf_grid(2, 2, depth=6.0, wavelength=560.0, dtype=bad),
                     lambda: local.psf(dtype=bad, **QUERY)):
            with pytest.raises(InvalidRequestError, match=r"dtype=.* is not allowed: must be 'float32' or 'float16'"):
                call()
