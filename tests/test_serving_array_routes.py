"""The array routes over real HTTP: each answer equals the in-process OnnxModel bit for bit."""

from __future__ import annotations

import io

import httpx
import numpy as np
import pytest
from PIL import Image

from models_store.conditions import to_meridian
from models_store.engine import OnnxModel
from tests.conftest import load_npy

COLUMNS = {  # mixed positions; wavelength is one number shared by every row
    "field": [0.0, 0.3, 0.9, 0.5, 0.7],
    "azimuth": [90.0, 30.0, -120.0, 200.0, 0.0],
    "depth": [2.0, 5.0, 10.0, 50.0, 100.0],
    "wavelength": 520.0,
}
START = {"field": 0.2, "azimuth": 30.0, "depth": 3.0, "wavelength": 480.0}
END = {"x": 0.6, "y": -0.4, "depth": 60.0, "wavelength": 620.0}


def rows(columns: dict) -> list[dict]:
    n = max(len(v) for v in columns.values() if isinstance(v, list))
    return [{k: (v[i] if isinstance(v, list) else v) for k, v in columns.items()} for i in range(n)]


# -- batch ----------------------------------------------------------------------------------------
def test_batch_equals_per_item_get_and_the_in_process_model(http: httpx.Client, local_model: OnnxModel) -> None:
    batch = load_npy(http.post("/psf/batch", json=COLUMNS))
    k = local_model.kernel_size
    assert batch.shape == (5, k, k) and batch.dtype == np.float32
    for i, row in enumerate(rows(COLUMNS)):
        np.testing.assert_array_equal(batch[i], load_npy(http.get("/psf", params={**row, "format": "npy"})))
    np.testing.assert_array_equal(batch, local_model.psf(**COLUMNS))
    as_json = http.post("/psf/batch", params={"format": "json"}, json={**COLUMNS, "model": "ci", "version": "latest"})
    assert as_json.status_code == 200 and as_json.json()["model"] == "ci"
    np.testing.assert_array_equal(np.asarray(as_json.json()["psf"], dtype=np.float32), batch)


def test_batch_refusals_name_what_is_wrong(http: httpx.Client) -> None:
    over = http.post("/psf/batch", json={"field": [0.1] * 4097, "depth": 10.0, "wavelength": 550.0})
    assert over.status_code == 413 and "4096" in over.json()["detail"] and "PSF_MAX_BATCH" in over.json()["detail"]
    bad = http.post("/psf/batch", json={**COLUMNS, "depth": [2.0, 5.0, 500.0, 50.0, 100.0]})
    assert bad.status_code == 422
    assert "depth (item 2)=500.0" in bad.json()["detail"] and "[2, 100]" in bad.json()["detail"]
    ragged = http.post("/psf/batch", json={**COLUMNS, "depth": [2.0, 5.0]})
    assert ragged.status_code == 422 and "depth" in ragged.json()["detail"]
    typo = http.post("/psf/batch", json={**COLUMNS, "wavelenght": 500.0})
    assert typo.status_code == 422 and "wavelenght" in typo.json()["detail"]
    assert http.post("/psf/batch", json={**COLUMNS, "model": "nope"}).status_code == 404
    assert http.post("/psf/batch", json={**COLUMNS, "version": 99}).status_code == 404


# -- grid -----------------------------------------------------------------------------------------
def test_grid_tiles_are_the_explicit_x_y_queries(http: httpx.Client, local_model: OnnxModel) -> None:
    nx, ny = 3, 2
    grid = load_npy(http.get("/psf/grid", params={"nx": nx, "ny": ny, "depth": 10.0, "wavelength": 550.0}))
    k = local_model.kernel_size
    assert grid.shape == (ny, nx, k, k)
    for j, y in enumerate([0.5, -0.5]):  # top row (+y) first
        for i, x in enumerate([-2 / 3, 0.0, 2 / 3]):  # left to right
            single = load_npy(http.get("/psf", params={"x": x, "y": y, "depth": 10.0, "wavelength": 550.0,
                                                       "format": "npy"}))
            np.testing.assert_allclose(grid[j, i], single, atol=1e-7, err_msg=f"tile row {j} column {i}")
    np.testing.assert_array_equal(grid, local_model.psf_grid(nx, ny, depth=10.0, wavelength=550.0))
    # top-left and bottom-right tiles are the same kernel turned by 180 degrees (rotational symmetry)
    np.testing.assert_allclose(grid[0, 0], grid[1, 2][::-1, ::-1], atol=2e-3 * grid.max())


def test_grid_limits(http: httpx.Client) -> None:
    over = http.get("/psf/grid", params={"nx": 65, "ny": 64, "depth": 10.0, "wavelength": 550.0})
    assert over.status_code == 413 and "4096" in over.json()["detail"] and "PSF_MAX_GRID" in over.json()["detail"]
    zero = http.get("/psf/grid", params={"nx": 0, "ny": 4, "depth": 10.0, "wavelength": 550.0})
    assert zero.status_code == 422 and "nx=0" in zero.json()["detail"]
    far = http.get("/psf/grid", params={"nx": 2, "ny": 2, "depth": 1.0, "wavelength": 550.0})
    assert far.status_code == 422 and "depth" in far.json()["detail"]


@pytest.mark.parametrize("path, params, tiles", [
    ("/psf", {"field": 0.5, "depth": 10.0, "wavelength": 550.0}, (1, 1)),
    ("/psf/grid", {"nx": 4, "ny": 3, "depth": 10.0, "wavelength": 550.0}, (3, 4)),
], ids=["psf", "grid"])
def test_png_preview(http: httpx.Client, local_model: OnnxModel, path: str, params: dict, tiles: tuple) -> None:
    response = http.get(path, params={**params, "format": "png"})
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    assert response.headers["x-model"] == "ci"
    image = Image.open(io.BytesIO(response.content))
    cell = local_model.kernel_size + 1
    width, height = tiles[1] * cell + 1, tiles[0] * cell + 1
    assert image.width % width == 0 and image.height % height == 0
    assert image.width // width == image.height // height  # square pixels, same scale both ways
    assert np.asarray(image).max() == 255  # each kernel's peak is white


# -- latent space ---------------------------------------------------------------------------------
def test_latent_then_decode_gives_the_psf(http: httpx.Client, local_model: OnnxModel) -> None:
    latent = http.post("/latent", json=COLUMNS)
    assert latent.status_code == 200, latent.text
    mu, logvar = local_model.latent(**COLUMNS)
    np.testing.assert_array_equal(np.asarray(latent.json()["mu"], dtype=np.float32), mu)
    np.testing.assert_array_equal(np.asarray(latent.json()["logvar"], dtype=np.float32), logvar)
    decoded = load_npy(http.post("/decode", json={"z": latent.json()["mu"], **COLUMNS}))
    np.testing.assert_allclose(decoded, local_model.psf(**COLUMNS), atol=1e-7)
    np.testing.assert_array_equal(decoded, local_model.decode(mu, **COLUMNS))
    # one latent for many conditions
    one = load_npy(http.post("/decode", json={"z": [latent.json()["mu"][0]], **COLUMNS}))
    np.testing.assert_array_equal(one, local_model.decode(mu[:1], **COLUMNS))


def test_decode_refuses_a_latent_of_the_wrong_size(http: httpx.Client, local_model: OnnxModel) -> None:
    size = local_model.manifest.latent_size
    response = http.post("/decode", json={"z": [[0.0] * (size + 1)], "field": 0.5, "depth": 10.0, "wavelength": 550.0})
    assert response.status_code == 422
    assert f"z shape=(1, {size + 1})" in response.json()["detail"] and f"[N, {size}]" in response.json()["detail"]


@pytest.mark.parametrize("method", ["linear", "slerp"])
def test_interpolation_ends_are_the_direct_queries(http: httpx.Client, local_model: OnnxModel, method: str) -> None:
    body = {"start": START, "end": END, "steps": 6, "method": method}
    path = load_npy(http.post("/interpolate", json=body))
    assert path.shape == (6, local_model.kernel_size, local_model.kernel_size)
    np.testing.assert_allclose(path[0], load_npy(http.get("/psf", params={**START, "format": "npy"})), atol=1e-7)
    np.testing.assert_allclose(path[-1], load_npy(http.get("/psf", params={**END, "format": "npy"})), atol=1e-7)
    expected, conditions = local_model.interpolate(START, END, 6, method)
    np.testing.assert_array_equal(path, expected)
    as_json = http.post("/interpolate", params={"format": "json"}, json=body).json()
    assert as_json["method"] == method and as_json["steps"] == 6
    np.testing.assert_array_equal(np.asarray(as_json["psf"], dtype=np.float32), path)
    assert as_json["conditions"]["t"] == pytest.approx(np.linspace(0, 1, 6).tolist())
    assert as_json["conditions"]["depth"] == pytest.approx(np.linspace(3.0, 60.0, 6).tolist(), rel=1e-6)
    assert as_json["conditions"]["azimuth"][0] == 30.0
    assert as_json["conditions"]["azimuth"] == pytest.approx(conditions["azimuth"].tolist())


def test_slerp_and_linear_differ_between_the_ends(http: httpx.Client) -> None:
    linear, slerp = (load_npy(http.post("/interpolate", json={"start": START, "end": END, "steps": 5, "method": m}))
                     for m in ("linear", "slerp"))
    np.testing.assert_array_equal(linear[[0, -1]], slerp[[0, -1]])
    assert np.abs(linear[2] - slerp[2]).max() > 0


def test_a_measured_psf_end_goes_through_the_encoder(http: httpx.Client, local_model: OnnxModel) -> None:
    # "measured": the kernel of another condition, claimed at START (azimuth 30: turned back first)
    measured = local_model.psf(field=0.8, azimuth=30.0, depth=80.0, wavelength=620.0)[0]
    body = {"start": {**START, "psf": measured.tolist()}, "end": END, "steps": 3}
    path = load_npy(http.post("/interpolate", json=body))
    condition, azimuth = local_model.conditions(**START)
    mu, _ = local_model.encode(to_meridian(measured[None] / measured.sum(), azimuth), condition)
    expected_start = local_model.orient(local_model.decode_condition(mu, condition), azimuth)[0]
    np.testing.assert_allclose(path[0], expected_start, atol=1e-7)
    prior_start = local_model.psf(**START)[0]
    assert np.abs(path[0] - prior_start).max() > 1e-3 * prior_start.max()  # not the prior mean
    np.testing.assert_allclose(path[-1], local_model.psf(**END)[0], atol=1e-7)


@pytest.mark.parametrize("change, status, words", [
    ({"steps": 1}, 422, ["steps=1", ">= 2"]),
    ({"steps": 257}, 413, ["steps=257", "256", "PSF_MAX_STEPS"]),
    ({"method": "cubic"}, 422, ["method='cubic'", "linear", "slerp"]),
    ({"start": {**START, "depth": 0.5}}, 422, ["start.depth=0.5", "[2, 100]"]),
    ({"end": {**END, "psf": [[1.0, 0.0], [0.0, 1.0]]}}, 422, ["end.psf shape=(2, 2)"]),
    ({"version": "prod"}, 404, ["'prod'", "aliases"]),
], ids=["one step", "too many steps", "method", "start depth", "psf shape", "unknown alias"])
def test_interpolate_refusals(http: httpx.Client, change: dict, status: int, words: list[str]) -> None:
    response = http.post("/interpolate", json={"start": START, "end": END, "steps": 4, **change})
    assert response.status_code == status, response.text
    for word in words:
        assert word in response.json()["detail"], response.json()["detail"]


def test_openapi_documents_every_route_with_units(http: httpx.Client) -> None:
    spec = http.get("/openapi.json").json()
    for path in ("/psf", "/psf/batch", "/psf/grid", "/interpolate", "/latent", "/decode", "/metrics"):
        assert path in spec["paths"], path
    grid = {p["name"]: p for p in spec["paths"]["/psf/grid"]["get"]["parameters"]}
    assert "[m]" in grid["depth"]["description"] and "top" in grid["ny"]["description"]
    columns = spec["components"]["schemas"]["Conditions"]["properties"]
    assert "[nm]" in columns["wavelength"]["description"] and "[deg]" in columns["azimuth"]["description"]
