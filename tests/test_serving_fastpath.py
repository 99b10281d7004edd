"""The GET /psf fast path: same answers as the FastAPI route, and it hands everything unusual over."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from models_store.wire import QUERY_COLUMNS, npy_bytes
from serving.routes.psf import PSFRequest, plain_psf_request
from tests.conftest import ServerProcess, metric, ready_server

QUERIES = [
    {"field": 0.3, "azimuth": 200.0, "depth": 4.0, "wavelength": 520.0},
    {"x": -0.5, "y": 0.25, "depth": 20.0, "wavelength": 610.0, "model": "ci", "version": "latest"},
    {"field": 0.8, "depth": 3.0, "wavelength": 480.0, "dtype": "float16"},
]


@pytest.fixture(scope="module")
def route_only_server(trained_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    log = tmp_path_factory.mktemp("route-only") / "server.log"
    with ready_server(trained_store, env={"PSF_FAST_PATH": "false", "PSF_CACHE_MB": "0"}, log_path=log) as server:
        yield server


def _conditions(**given: float) -> dict[str, float | None]:
    return {**dict.fromkeys(QUERY_COLUMNS), **given}


def test_plain_queries_parse_and_unusual_ones_are_handed_over() -> None:
    assert plain_psf_request(b"field=0.5&depth=3&wavelength=550&format=npy") == PSFRequest(
        _conditions(field=0.5, depth=3.0, wavelength=550.0), fmt="npy")
    assert plain_psf_request(b"model=my%2Dlens&depth=1e1&dtype=float16") == PSFRequest(
        _conditions(depth=10.0), model="my-lens", dtype="float16")
    assert plain_psf_request(b"") == PSFRequest(_conditions())
    assert plain_psf_request(b"field=0.1&field=0.2") is None  # repeated
    assert plain_psf_request(b"feild=0.1") is None  # unknown: the route names it
    assert plain_psf_request(b"field") is None  # no value
    assert plain_psf_request(b"depth=far") is None  # not a number
    assert plain_psf_request(b"depth=1&dtype=float64") is None  # not an offered dtype
    assert plain_psf_request(b"px=3&py=4&geometry=true") == PSFRequest(_conditions(px=3.0, py=4.0), geometry=True)


@pytest.mark.parametrize("fmt", ["npy", "json"])
@pytest.mark.parametrize("params", QUERIES)
def test_fast_path_answers_byte_for_byte_like_the_route(
        server_url: str, route_only_server: ServerProcess, params: dict, fmt: str) -> None:
    fast = httpx.get(server_url + "/psf", params={**params, "format": fmt})
    route = httpx.get(route_only_server.url + "/psf", params={**params, "format": fmt})
    assert fast.status_code == route.status_code == 200, (fast.text, route.text)
    assert fast.content == route.content
    for header in ("content-type", "x-model", "x-model-version", "x-kernel-size", "x-pixel-pitch-um"):
        assert fast.headers.get(header) == route.headers.get(header), header


def test_the_default_format_is_json_on_both_paths(server_url: str, route_only_server: ServerProcess) -> None:
    fast = httpx.get(server_url + "/psf", params=QUERIES[0])
    route = httpx.get(route_only_server.url + "/psf", params=QUERIES[0])
    assert fast.headers["content-type"] == route.headers["content-type"] == "application/json"
    assert fast.json() == route.json()


@pytest.mark.parametrize("params", [
    {"field": 0.3, "depth": 4.0, "wavelength": 9000.0},  # out of range
    {"field": 0.3, "depth": "far", "wavelength": 550.0},  # not a number
    {"field": 0.3, "depth": 4.0},  # wavelength missing
    {"field": 0.3, "depth": 4.0, "wavelength": 550.0, "colour": "red"},  # unknown parameter
    {"field": 0.3, "depth": 4.0, "wavelength": 550.0, "model": "nope"},  # unknown model
    {"field": 0.3, "depth": 4.0, "wavelength": 550.0, "format": "tiff"},  # unknown format
])
def test_errors_are_the_routes_own(server_url: str, route_only_server: ServerProcess, params: dict) -> None:
    fast = httpx.get(server_url + "/psf", params=params)
    route = httpx.get(route_only_server.url + "/psf", params=params)
    assert fast.status_code == route.status_code and fast.status_code in (404, 422)
    assert fast.json() == route.json()


def test_fast_answers_are_counted_under_the_route(server_url: str) -> None:
    before = metric(httpx.get(server_url + "/metrics").text, "psf_http_requests_total",
                    route="/psf", method="GET", status="200")
    for _ in range(3):
        assert httpx.get(server_url + "/psf", params={**QUERIES[0], "format": "npy"}).status_code == 200
    after = metric(httpx.get(server_url + "/metrics").text, "psf_http_requests_total",
                   route="/psf", method="GET", status="200")
    assert after - before == 3


@pytest.mark.parametrize("shape", [(16, 16), (3, 16, 16), (2, 3, 5, 5), (1,), (0, 4)])
def test_npy_bytes_are_np_save_bytes(shape: tuple[int, ...]) -> None:
    arr = np.random.default_rng(0).random(shape)  # float64 in: float32 out, as np.save of the cast
    buffer = io.BytesIO()
    np.save(buffer, arr.astype(np.float32), allow_pickle=False)
    assert npy_bytes(arr) == buffer.getvalue()
    buffer = io.BytesIO()
    np.save(buffer, arr.astype(np.float16), allow_pickle=False)
    assert npy_bytes(arr, "float16") == buffer.getvalue()
    if arr.ndim > 1 and len(arr) > 1:  # a strided view
        buffer = io.BytesIO()
        np.save(buffer, np.ascontiguousarray(arr[::2], dtype=np.float32), allow_pickle=False)
        assert npy_bytes(arr[::2]) == buffer.getvalue()
