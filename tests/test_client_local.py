"""LocalPSFModel answers like the server (same arrays, same errors) and its arrays behave like numpy's."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from clients import InvalidRequestError, LocalPSFModel, NotFoundError, PSFArray, PSFClient, PSFError, PSFMeta

QUERIES = [
    {"field": 0.0, "depth": 2.0, "wavelength": 450.0},
    {"field": 0.5, "depth": 10.0, "wavelength": 550.0, "azimuth": 30.0},
    {"field": 1.0, "depth": 100.0, "wavelength": 650.0, "azimuth": -120.0},
    {"x": 0.3, "y": -0.8, "depth": 4.0, "wavelength": 600.0},
]


@pytest.mark.parametrize("query", QUERIES)
def test_local_psf_equals_the_servers(local: LocalPSFModel, client: PSFClient, query: dict) -> None:
    served, here = client.psf(**query), local.psf(**query)
    np.testing.assert_array_equal(here, served)
    assert here.meta == served.meta and isinstance(here, PSFArray)


def test_local_batch_rows_equal_single_queries(local: LocalPSFModel, client: PSFClient) -> None:
    rows = local.psf_batch(field=[0.0, 0.5, 1.0], azimuth=[90.0, 30.0, -120.0], depth=[2.0, 10.0, 100.0],
                           wavelength=[450.0, 550.0, 650.0])
    assert rows.shape == (3, 16, 16) and rows.meta == local.meta
    for row, query in zip(rows, QUERIES[:3]):
        np.testing.assert_array_equal(row, client.psf(**query))


@pytest.mark.parametrize("query", [
    {"field": 1.5, "depth": 10.0, "wavelength": 550.0},
    {"field": 0.5, "depth": 10.0},
    {"field": 0.5, "depth": 10.0, "wavelength": 550.0, "x": 0.1, "y": 0.1},
    {"x": 0.1, "depth": 10.0, "wavelength": 550.0},
])
def test_local_refuses_what_the_server_refuses_with_the_same_words(local: LocalPSFModel, client: PSFClient,
                                                                   query: dict) -> None:
    with pytest.raises(InvalidRequestError) as served:
        client.psf(**query)
    with pytest.raises(InvalidRequestError) as here:
        local.psf(**query)
    assert here.value.message == served.value.message


def test_local_model_and_version_references(local: LocalPSFModel, client: PSFClient, trained_store: Path) -> None:
    query = QUERIES[1]
    np.testing.assert_array_equal(local.psf(**query, model="ci", version="latest"), local.psf(**query))
    np.testing.assert_array_equal(local.psf(**query, version=1), local.psf(**query))
    with pytest.raises(NotFoundError, match="ci@1"):
        local.psf(**query, model="other")
    with pytest.raises(NotFoundError):
        local.psf(**query, version=99)
    with pytest.raises(NotFoundError):
        LocalPSFModel.from_store(trained_store, "nope")
    assert local.model("ci") == client.model("ci")
    assert [m["name"] for m in local.models()] == ["ci"] and local.models()[0]["served_version"] == 1
    assert local.health() and local.ready()


def test_local_grid_tiles_are_psfs_at_tile_centres(local: LocalPSFModel) -> None:
    grid = local.psf_grid(4, 3, depth=5.0, wavelength=500.0)
    assert grid.shape == (3, 4, 16, 16) and grid.meta == local.meta
    # tile (row 2, column 1): x = -1 + 3/4, y = 1 - 5/3
    np.testing.assert_array_equal(grid[2, 1], local.psf(x=-0.25, y=1 - 5 / 3, depth=5.0, wavelength=500.0))
    # the top-right tile (+x, +y) flares up and to the right: its centroid lies in that quadrant
    rows, cols = np.indices((16, 16))
    kernel = grid[0, 3]
    assert (kernel * cols).sum() > 7.5 and (kernel * rows).sum() < 7.5


def test_psf_arrays_behave_like_numpy(local: LocalPSFModel) -> None:
    psfs = local.psf_batch(field=[0.1, 0.9], depth=10.0, wavelength=550.0)
    assert type(psfs.sum()) is np.float32 and abs(float(psfs[0].sum()) - 1.0) < 1e-5
    assert psfs[1].meta == local.meta and (psfs * 2).meta == local.meta
    assert type(np.asarray(psfs)) is np.ndarray
    again = pickle.loads(pickle.dumps(psfs))
    np.testing.assert_array_equal(again, psfs)
    assert again.meta == PSFMeta(model="ci", version=1, kernel_size=16, pixel_pitch_um=12.0)


def test_broken_store_is_a_psf_error(tmp_path: Path, trained_store: Path) -> None:
    import shutil

    copy = tmp_path / "store"
    shutil.copytree(trained_store, copy)
    onnx = next((copy / "ci" / "versions" / "1").glob("psf.onnx"))
    onnx.write_bytes(onnx.read_bytes()[:-10])
    with pytest.raises(PSFError, match="sha256"):
        LocalPSFModel.from_store(copy, "ci")


def test_a_misspelt_keyword_is_refused_by_name(local: LocalPSFModel, client: PSFClient) -> None:
    for source in (local, client):
        with pytest.raises(TypeError, match="psf\\(\\) got an unexpected keyword argument 'azimtuh'"):
            source.psf(field=0.5, azimtuh=30.0, depth=10.0, wavelength=550.0)  # type: ignore[call-arg]
        with pytest.raises(TypeError, match="psf_batch\\(\\) got an unexpected keyword argument 'fields'"):
            source.psf_batch(fields=[0.5], depth=10.0, wavelength=550.0)  # type: ignore[call-arg]
