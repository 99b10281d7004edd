"""The last hardening gaps, on a real server: limits stated as OpenAPI maxima, request heads over the
limit refused with 431 (memory bounded), azimuth given with x / y refused naming both."""

from __future__ import annotations

import select
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from models_store import ConditionError
from models_store.engine import OnnxModel
from tests.conftest import ready_server

LIMITS = {"PSF_MAX_BATCH": "500", "PSF_MAX_GRID": "300", "PSF_MAX_STEPS": "100", "PSF_MAX_HEADER_KB": "2"}
AT = {"depth": 10.0, "wavelength": 550.0}


@pytest.fixture(scope="module")
def small_limits(trained_store: Path) -> Iterator[str]:
    with ready_server(trained_store, env={"PSF_ACCESS_LOG": "false", **LIMITS}) as server:
        yield server.url


def test_the_document_states_the_size_limits_as_maxima(small_limits: str) -> None:
    doc = httpx.get(small_limits + "/openapi.json").json()
    grid = {p["name"]: p["schema"] for p in doc["paths"]["/psf/grid"]["get"]["parameters"]}
    assert grid["nx"]["maximum"] == grid["ny"]["maximum"] == 300
    schemas = doc["components"]["schemas"]
    assert schemas["InterpolateRequest"]["properties"]["steps"]["maximum"] == 100
    field = schemas["Conditions"]["properties"]["field"]
    assert [option.get("maxItems") for option in field["anyOf"] if option.get("type") == "array"] == [500]
    z = schemas["DecodeRequest"]["properties"]["z"]
    assert z["maxItems"] == 500 and z["items"]["maxItems"] != 500  # rows limited; a row is one latent
    # what the maxima say is what the server does
    too_many = httpx.get(small_limits + "/psf/grid", params={"nx": 301, "ny": 1, **AT})
    assert too_many.status_code == 413 and "PSF_MAX_GRID" in too_many.json()["detail"]
    assert httpx.get(small_limits + "/psf/grid", params={"nx": 300, "ny": 1, **AT}).status_code == 200


def test_a_head_over_the_limit_is_431_and_one_within_it_is_answered(small_limits: str) -> None:
    ok = httpx.get(small_limits + "/psf", params={"field": 0.5, **AT}, headers={"X-Pad": "a" * 1500})
    assert ok.status_code == 200
    refused = httpx.get(small_limits + "/psf", params={"field": 0.5, **AT}, headers={"X-Pad": "a" * 2100})
    assert refused.status_code == 431 and "PSF_MAX_HEADER_KB" in refused.json()["detail"]
    long_target = httpx.get(small_limits + "/psf", params={"field": 0.5, **AT, "model": "m" * 2100})
    assert long_target.status_code == 431
    assert httpx.get(small_limits + "/healthz").status_code == 200  # the server goes on


def test_a_head_without_end_is_cut_off_early(small_limits: str) -> None:
    """A header sent without end: the server answers 431 and closes long before the sender stops."""
    host, port = small_limits.removeprefix("http://").split(":")
    sent, answer = 0, b""
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Endless: ")
        chunk = b"a" * 8192
        while sent < 8 << 20:
            if select.select([sock], [], [], 0)[0]:
                break  # the server has answered (and closed)
            try:
                sock.sendall(chunk)
            except OSError:  # reset: the server closed while we were sending
                break
            sent += len(chunk)
        try:
            while part := sock.recv(65536):
                answer += part
        except OSError:
            pass
    assert answer.startswith(b"HTTP/1.1 431"), answer[:200]
    assert sent < 4 << 20, sent  # cut off: the server did not take the 8 MiB


@pytest.mark.parametrize("position", [{"x": 0.3, "y": 0.2}, {"x": 0.3}, {"y": 0.2}])
def test_azimuth_with_x_or_y_is_refused_naming_both(small_limits: str, position: dict) -> None:
    for answer in (httpx.get(small_limits + "/psf", params={**position, "azimuth": 30, **AT}),
                   httpx.post(small_limits + "/psf/batch", json={**position, "azimuth": [30, 40], **AT})):
        assert answer.status_code == 422, answer.text
        detail = answer.json()["detail"]
        assert ("azimuth" in detail and "x" in detail) or "x and y must be given together" in detail, detail
    if len(position) == 2:
        assert "azimuth/x/y" in httpx.get(small_limits + "/psf", params={**position, "azimuth": 30, **AT}).text


def test_the_engine_refuses_azimuth_with_x_and_y(trained_store: Path) -> None:
    model = OnnxModel.from_store(trained_store, "ci")
    with pytest.raises(ConditionError, match=r"azimuth/x/y.*azimuth only with field"):
        model.psf(x=0.3, y=0.2, azimuth=30.0, **AT)
    model.psf(x=0.3, y=0.2, **AT)  # without it, answered
