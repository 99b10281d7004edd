"""The HTTP service: answers equal the in-process model, bad input is a 422 that says why."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from models_store import Manifest, Store
from models_store.engine import OnnxModel
from models_store.wire import Limits
from serving.app import create_app
from serving.settings import Settings
from tests.conftest import imports_in_a_fresh_python, load_npy, republish

QUERY = {"field": 0.5, "depth": 10.0, "wavelength": 550.0, "azimuth": 30.0}


def in_process(store: Path, **settings: object) -> TestClient:
    """The app in this process (lifespan included) for what the shared server cannot show."""
    return TestClient(create_app(Settings(store=store, **settings)))


# -- answers ---------------------------------------------------------------------------------------
def test_psf_json_equals_in_process_model(http: httpx.Client, local_model: OnnxModel) -> None:
    response = http.get("/psf", params=QUERY)
    assert response.status_code == 200, response.text
    body = response.json()
    k = local_model.manifest.kernel_size
    assert (body["model"], body["version"], body["kernel_size"]) == ("ci", local_model.version, k)
    assert body["pixel_pitch_um"] == local_model.manifest.lens.pixel_pitch_um
    psf = np.asarray(body["psf"], dtype=np.float32)
    assert psf.shape == (k, k)
    assert psf.min() >= 0 and psf.sum() == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_array_equal(psf, local_model.psf(**QUERY)[0])  # JSON floats round-trip exactly


def test_psf_npy_equals_in_process_model(http: httpx.Client, local_model: OnnxModel) -> None:
    response = http.get("/psf", params={**QUERY, "format": "npy"})
    psf = load_npy(response)
    k = local_model.manifest.kernel_size
    assert psf.dtype == np.float32 and psf.shape == (k, k)
    assert psf.min() >= 0 and psf.sum() == pytest.approx(1.0, abs=1e-5)
    assert response.headers["x-model"] == "ci"
    assert response.headers["x-model-version"] == str(local_model.version)
    assert response.headers["x-kernel-size"] == str(k)
    assert float(response.headers["x-pixel-pitch-um"]) == local_model.manifest.lens.pixel_pitch_um
    np.testing.assert_array_equal(psf, local_model.psf(**QUERY)[0])


@pytest.mark.parametrize("v", [0.3, 0.8])
def test_x_y_on_the_y_axis_equals_field_at_azimuth_90(http: httpx.Client, local_model: OnnxModel, v: float) -> None:
    lens = local_model.manifest.lens
    field = v * (lens.sensor_size_mm[1] / 2) / lens.half_diagonal_mm
    by_xy = load_npy(http.get("/psf", params={"x": 0.0, "y": v, "depth": 10.0, "wavelength": 550.0, "format": "npy"}))
    by_field = load_npy(http.get("/psf", params={"field": field, "azimuth": 90.0, "depth": 10.0, "wavelength": 550.0,
                                            "format": "npy"}))
    np.testing.assert_array_equal(by_xy, by_field)


# -- refusals --------------------------------------------------------------------------------------
GOOD = {"field": 0.5, "depth": 10.0, "wavelength": 550.0}
DROP = None
BAD = {  # id: (changes to GOOD, DROP removes a key; words the 422 message must contain, {name} = range)
    "field above range": ({"field": 1.5}, ["field=1.5", "{field}"]),
    "field below range": ({"field": -0.1}, ["field=-0.1", "{field}"]),
    "depth not a number": ({"depth": "abc"}, ["depth='abc'", "number"]),
    "depth nan": ({"depth": "nan"}, ["depth=nan", "{depth}"]),
    "depth inf": ({"depth": "inf"}, ["depth=inf", "{depth}"]),
    "depth missing": ({"depth": DROP}, ["depth", "missing", "{depth}"]),
    "wavelength above range": ({"wavelength": 700}, ["wavelength=700", "{wavelength}"]),
    "x without y": ({"field": DROP, "x": 0.5}, ["y", "missing", "x and y"]),
    "field with x and y": ({"x": 0.1, "y": 0.2}, ["x/y=(0.1, 0.2)", "field", "not both"]),
    "x outside the sensor": ({"field": DROP, "x": 2.0, "y": 0.0}, ["x=2.0", "[-1, 1]"]),
    "azimuth not a number": ({"azimuth": "north"}, ["azimuth='north'", "number"]),
    "unknown format": ({"format": "tiff"}, ["format='tiff'", "json", "npy", "png"]),
    "model name escaping the store": ({"model": "../etc"}, ["model", "../etc", "letters"]),
}


@pytest.mark.parametrize("changes, words", BAD.values(), ids=BAD.keys())
def test_bad_input_is_a_422_naming_parameter_value_and_range(
    http: httpx.Client, local_model: OnnxModel, changes: dict, words: list[str]
) -> None:
    params = {k: v for k, v in {**GOOD, **changes}.items() if v is not DROP}
    response = http.get("/psf", params=params)
    assert response.status_code == 422, response.text
    body = response.json()
    ranges = {c.name: f"[{c.min:g}, {c.max:g}]" for c in local_model.manifest.conditions}
    for word in words:
        assert word.format(**ranges) in body["detail"], body["detail"]
    assert body["errors"] and all("loc" in e for e in body["errors"])


@pytest.mark.parametrize("params, words", [
    ({"model": "nope"}, ["'nope'", "ci"]),
    ({"version": "99"}, ["99", "versions"]),
    ({"version": "prod"}, ["'prod'", "aliases", "latest"]),
], ids=["model", "version", "alias"])
def test_unknown_model_or_version_is_a_404_listing_what_exists(
    http: httpx.Client, params: dict, words: list[str]
) -> None:
    response = http.get("/psf", params={**GOOD, **params})
    assert response.status_code == 404, response.text
    for word in words:
        assert word in response.json()["detail"]


# -- models and health ---------------------------------------------------------------------------
def test_health_ready_and_models(http: httpx.Client, local_model: OnnxModel) -> None:
    assert http.get("/healthz").json() == {"status": "ok"}
    ready = http.get("/readyz")
    assert ready.status_code == 200 and ready.json()["models"]["ci"] == local_model.version

    (entry,) = [m for m in http.get("/models").json() if m["name"] == "ci"]
    assert local_model.version in entry["versions"] and entry["aliases"]["latest"] == local_model.version
    assert entry["served_version"] == local_model.version
    assert [c["name"] for c in entry["latest"]["conditions"]] == local_model.manifest.condition_names

    full = http.get("/models/ci")
    assert full.status_code == 200
    assert Manifest.model_validate_json(full.content) == local_model.manifest  # includes the evaluation card
    assert "evaluation" in full.json()
    assert http.get("/models/nope").status_code == 404
    assert http.get("/models/ci", params={"version": "99"}).status_code == 404


def test_openapi_documents_units(http: httpx.Client) -> None:
    params = {p["name"]: p for p in http.get("/openapi.json").json()["paths"]["/psf"]["get"]["parameters"]}
    assert "[m]" in params["depth"]["description"] and "[nm]" in params["wavelength"]["description"]
    assert "[deg]" in params["azimuth"]["description"]


# -- in-process: states the shared server is not in ----------------------------------------------
def test_empty_store_is_not_ready_and_psf_is_503(empty_store: Path, trained_store: Path) -> None:
    with in_process(empty_store) as client:
        assert client.get("/healthz").status_code == 200
        assert client.get("/readyz").status_code == 503
        assert client.get("/models").json() == []
        response = client.get("/psf", params=GOOD)
        assert response.status_code == 503 and "no models" in response.json()["detail"]
        # a model published after startup makes the server ready without a restart
        shutil.copytree(trained_store / "ci", empty_store / "ci")
        assert client.get("/readyz").status_code == 200
        assert client.get("/psf", params=GOOD).status_code == 200


def test_corrupt_latest_version_is_skipped_with_a_logged_reason(
    tmp_path: Path, trained_store: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "store"
    shutil.copytree(trained_store, root)
    good = Store(root).resolve("ci")
    bad = republish(root)
    with open(root / "ci" / "versions" / str(bad) / "psf.onnx", "ab") as fh:
        fh.write(b"tampered")
    with caplog.at_level(logging.WARNING, logger="serving.versions"), in_process(root) as client:
        assert f"refusing ci@{bad}" in caplog.text and "sha256" in caplog.text
        assert client.get("/readyz").json()["models"] == {"ci": good}
        assert client.get("/psf", params={**GOOD, "format": "npy"}).headers["x-model-version"] == str(good)
        response = client.get("/psf", params={**GOOD, "version": str(bad)})
        assert response.status_code == 503 and "sha256" in response.json()["detail"]


def test_api_key_guards_everything_but_health(trained_store: Path) -> None:
    with in_process(trained_store, api_key="s3cret") as client:
        assert client.get("/healthz").status_code == 200 and client.get("/readyz").status_code == 200
        assert client.get("/psf", params=GOOD).status_code == 401
        assert client.get("/models", headers={"X-API-Key": "wrong"}).status_code == 401
        assert client.get("/psf", params=GOOD, headers={"X-API-Key": "s3cret"}).status_code == 200


def test_serving_and_clients_do_not_import_torch_or_training() -> None:
    imports_in_a_fresh_python(
        "import sys, serving.app, serving.versions, clients\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in {'torch', 'deeplens', 'training'})\n"
        "assert not bad, bad\n"
    )


def test_limits_are_announced_on_answers_refusals_and_models(http: httpx.Client) -> None:
    listed = http.get("/models")
    limits = Limits.from_headers(listed.headers)
    assert limits is not None and limits.max_batch >= 1
    assert all(entry["limits"] == limits.as_dict() for entry in listed.json())
    for answer in (http.get("/psf", params={**QUERY, "format": "npy"}), http.get("/psf", params=QUERY),
                   http.post("/psf/batch", json={"field": [0.1, 0.2], "depth": 10.0, "wavelength": 550.0})):
        assert answer.status_code == 200 and Limits.from_headers(answer.headers) == limits
    side = limits.max_grid + 1  # one row more than the grid limit allows
    refused = http.get("/psf/grid", params={"nx": side, "ny": 1, "depth": 10.0, "wavelength": 550.0})
    assert refused.status_code == 413 and Limits.from_headers(refused.headers) == limits
    assert f"limit of {limits.max_grid}" in refused.json()["detail"]
