"""Every error class from a real server's answer (401, 404, 422, 503) or the lack of one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from clients import (
    InvalidRequestError,
    NotFoundError,
    OverloadedError,
    PSFClient,
    TransportError,
    UnauthorizedError,
)

from .conftest import ServerProcess, ready_server

QUERY = {"field": 0.5, "depth": 10.0, "wavelength": 550.0}


@pytest.fixture(scope="module")
def keyed_server(trained_store: Path) -> Iterator[ServerProcess]:
    with ready_server(trained_store, env={"PSF_API_KEY": "sesame"}) as server:
        yield server


@pytest.fixture(scope="module")
def empty_server(tmp_path_factory) -> Iterator[ServerProcess]:
    store = tmp_path_factory.mktemp("empty") / "store"
    store.mkdir()
    server = ServerProcess(store)
    server.wait("/healthz")
    yield server
    server.stop()


def test_missing_or_wrong_api_key_is_unauthorized(keyed_server: ServerProcess) -> None:
    for key in (None, "wrong"):
        with PSFClient(keyed_server.url, api_key=key, timeout=30.0) as client:
            with pytest.raises(UnauthorizedError, match="X-API-Key") as caught:
                client.psf(**QUERY)
            assert caught.value.status_code == 401
    with PSFClient(keyed_server.url, api_key="sesame", timeout=30.0) as client:
        assert client.psf(**QUERY).shape == (16, 16)
        assert client.model("ci")["name"] == "ci"


def test_a_server_with_no_model_is_overloaded_with_its_retry_after(empty_server: ServerProcess) -> None:
    with PSFClient(empty_server.url, timeout=30.0, retries=0) as client:
        with pytest.raises(OverloadedError, match="no models") as caught:
            client.psf(**QUERY)
        assert client.health() is True and client.ready() is False
    assert caught.value.status_code == 503 and caught.value.retry_after == 30.0


def test_bad_values_and_unknown_names(server_url: str) -> None:
    with PSFClient(server_url, timeout=30.0) as client:
        with pytest.raises(InvalidRequestError, match=r"wavelength=700.*\[450, 650\]"):
            client.psf(field=0.5, depth=10.0, wavelength=700.0)
        with pytest.raises(InvalidRequestError, match="model"):
            client.psf(**QUERY, model="../etc")
        with pytest.raises(NotFoundError, match="no alias 'prod'"):
            client.psf(**QUERY, version="prod")


def test_nobody_listening(dead_url: str) -> None:
    with PSFClient(dead_url, retries=0) as client, pytest.raises(TransportError, match="cannot reach"):
        client.models()
