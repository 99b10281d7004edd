"""The Python client: same arrays as the server, typed errors carrying the server's message."""

from __future__ import annotations

import inspect
import io
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

import clients
from clients import (
    InvalidRequestError,
    NotFoundError,
    OverloadedError,
    PSFClient,
    PSFError,
    ServerError,
    TransportError,
    UnauthorizedError,
    _arrays,
    _async_client,
    _client,
    _exceptions,
    _local,
    _render,
)
from models_store.engine import OnnxModel

from .conftest import imports_in_a_fresh_python

QUERY = {"field": 0.5, "depth": 10.0, "wavelength": 550.0, "azimuth": 30.0}


@pytest.fixture(scope="module")
def client(server_url: str) -> Iterator[PSFClient]:
    with PSFClient(server_url, timeout=30.0) as psf_client:
        yield psf_client


def mock_client(handler: Callable[[httpx.Request], httpx.Response], **kwargs: object) -> PSFClient:
    return PSFClient("http://psf.test", transport=httpx.MockTransport(handler), **kwargs)


# -- against the real server ----------------------------------------------------------------------
def test_psf_equals_the_servers_array(client: PSFClient, server_url: str, trained_store: Path) -> None:
    psf = client.psf(**QUERY)
    raw = httpx.get(f"{server_url}/psf", params={**QUERY, "format": "npy"}, timeout=30.0)
    served = np.load(io.BytesIO(raw.content), allow_pickle=False)
    assert psf.dtype == np.float32 and psf.ndim == 2
    np.testing.assert_array_equal(psf, served)
    np.testing.assert_array_equal(psf, OnnxModel.from_store(trained_store, "ci").psf(**QUERY)[0])


def test_psf_carries_the_servers_metadata(client: PSFClient, server_url: str) -> None:
    psf = client.psf(**QUERY)
    headers = httpx.get(f"{server_url}/psf", params={**QUERY, "format": "npy"}, timeout=30.0).headers
    assert psf.meta == clients.PSFMeta(model=headers["X-Model"], version=int(headers["X-Model-Version"]),
                                       kernel_size=int(headers["X-Kernel-Size"]),
                                       pixel_pitch_um=float(headers["X-Pixel-Pitch-Um"]))
    assert psf.meta.model == "ci" and psf.meta.kernel_size == psf.shape[0] == 16 and psf.meta.pixel_pitch_um == 12.0


def test_psf_accepts_numpy_scalars_and_explicit_model_version(client: PSFClient) -> None:
    expected = client.psf(**QUERY)
    got = client.psf(field=np.float32(0.5), depth=np.float64(10.0), wavelength=np.int64(550),
                     azimuth=30, model="ci", version="latest")
    np.testing.assert_array_equal(got, expected)


def test_models_model_health(client: PSFClient) -> None:
    assert client.health() and client.ready()
    assert "ci" in [m["name"] for m in client.models()]
    manifest = client.model("ci")
    assert manifest["name"] == "ci" and "evaluation" in manifest and manifest["conditions"]


def test_invalid_request_carries_the_servers_message(client: PSFClient, server_url: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        client.psf(field=1.5, depth=10.0, wavelength=550.0)
    detail = httpx.get(f"{server_url}/psf", params={"field": 1.5, "depth": 10.0, "wavelength": 550.0}).json()["detail"]
    assert caught.value.status_code == 422 and caught.value.message == detail
    assert "field=1.5" in str(caught.value) and "422" in str(caught.value)


def test_unknown_model_and_version_are_not_found(client: PSFClient) -> None:
    with pytest.raises(NotFoundError, match="ci") as caught:
        client.psf(field=0.5, depth=10.0, wavelength=550.0, model="nope")
    assert caught.value.status_code == 404
    with pytest.raises(NotFoundError):
        client.psf(field=0.5, depth=10.0, wavelength=550.0, version=99)
    with pytest.raises(NotFoundError):
        client.model("nope")


def test_nothing_listening_is_a_transport_error(dead_url: str) -> None:
    with PSFClient(dead_url, timeout=5.0) as dead:
        with pytest.raises(TransportError) as caught:
            dead.psf(field=0.5, depth=10.0, wavelength=550.0)
        assert caught.value.status_code is None
        assert isinstance(caught.value.__cause__, httpx.TransportError)
        assert dead_url in caught.value.message
        assert dead.health() is False


# -- error mapping, without a server ------------------------------------------------------------
@pytest.mark.parametrize("status, error", [
    (401, UnauthorizedError), (403, UnauthorizedError), (404, NotFoundError), (413, InvalidRequestError),
    (422, InvalidRequestError), (429, OverloadedError), (503, OverloadedError), (500, ServerError),
    (502, ServerError),
])
def test_status_codes_map_to_error_classes(status: int, error: type[PSFError]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json={"detail": f"said with {status}"}, headers={"Retry-After": "7"})

    with pytest.raises(error) as caught:
        mock_client(handler, retries=0).models()
    assert caught.value.status_code == status and caught.value.message == f"said with {status}"
    if error is OverloadedError:
        assert caught.value.retry_after == 7.0


def test_non_json_error_body_and_non_npy_answer() -> None:
    with pytest.raises(ServerError, match="Bad gateway"):
        mock_client(lambda r: httpx.Response(502, text="<html>Bad gateway</html>")).models()
    with pytest.raises(PSFError, match="not a .npy"):
        mock_client(lambda r: httpx.Response(200, text="<html>login</html>")).psf(field=0, depth=3, wavelength=500)


def test_timeout_is_a_transport_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    with pytest.raises(TransportError, match="timed out") as caught:
        mock_client(handler).psf(field=0.5, depth=10.0, wavelength=550.0)
    assert isinstance(caught.value.__cause__, httpx.ReadTimeout)


def test_api_key_and_query_go_out_as_sent() -> None:
    seen: list[httpx.Request] = []
    body = io.BytesIO()
    np.save(body, np.eye(3, dtype=np.float32) / 3)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=body.getvalue(), headers={"content-type": "application/x-npy"})

    psf = mock_client(handler, api_key="k").psf(x=0.1, y=np.float32(0.2), depth=3, wavelength=500)
    assert psf.shape == (3, 3)
    (request,) = seen
    assert request.headers["X-API-Key"] == "k"
    params = request.url.params
    assert params["format"] == "npy" and "field" not in params
    assert float(params["y"]) == float(np.float32(0.2))  # full precision, no rounding on the way


# -- the package surface -------------------------------------------------------------------------
def test_all_is_complete() -> None:
    # every class users meet (clients, the local model, errors, result arrays) and every render helper
    for module in (_client, _async_client, _exceptions, _local, _arrays):
        for name, obj in vars(module).items():
            if name.startswith("_") or not inspect.isclass(obj) or obj.__module__ != module.__name__:
                continue
            assert name in clients.__all__, f"{module.__name__}.{name} is public but not in clients.__all__"
    for name in _render.__all__:
        assert name in clients.__all__, f"clients._render.{name} is not in clients.__all__"
    assert "Latent" in clients.__all__  # what latent() returns
    for name in clients.__all__:
        assert getattr(clients, name) is not None


def test_clients_import_only_numpy_httpx_and_the_light_store_package() -> None:
    # the wire protocol comes from models_store (numpy + pydantic); its onnxruntime runner is not loaded
    imports_in_a_fresh_python(
        "import sys, clients\n"
        "bad = sorted({m.split('.')[0] for m in sys.modules} & "
        "{'torch', 'deeplens', 'training', 'serving', 'onnxruntime', 'fastapi'})\n"
        "assert not bad, bad\n"
        "assert 'models_store.engine' not in sys.modules\n"
    )
