"""Distortion, relative illumination and sensor units through every path: the server's routes and
headers, the three client backends, and rendering (a point lands where its chief ray does, dimmed by the
served illumination). The geometry table itself is checked against DeepLens in test_geometry.py."""

from __future__ import annotations

import numpy as np
import pytest

from clients import ImageGeometry, InvalidRequestError, LocalPSFModel, PSFClient, render
from models_store import SensorFrame
from models_store.wire import read_geometry

QUERY = {"depth": 5.0, "wavelength": 550.0}


@pytest.fixture(scope="module")
def frame(local: LocalPSFModel) -> SensorFrame:
    return SensorFrame.of(local.onnx.manifest.lens)


def test_sensor_units_name_the_same_psf_as_fractions(server_url: str, local: LocalPSFModel, frame: SensorFrame):
    x, y = 0.55, -0.35
    x_mm, y_mm = frame.fraction_to_mm(x, y)
    px, py = frame.mm_to_px(x_mm, y_mm)
    with PSFClient(server_url) as client:
        for source in (client, local):
            by_fraction = source.psf(x=x, y=y, **QUERY)
            assert np.array_equal(source.psf(x_mm=float(x_mm), y_mm=float(y_mm), **QUERY), by_fraction)
            assert np.array_equal(source.psf(px=float(px), py=float(py), **QUERY), by_fraction)
            batch = source.psf_batch(px=[float(px), 0.0], py=[float(py), 0.0], **QUERY)
            assert np.array_equal(batch[0], by_fraction)
        with pytest.raises(InvalidRequestError, match=r"px.*-0.5, 2399.5\] px"):
            client.psf(px=-40.0, py=10.0, **QUERY)
        with pytest.raises(InvalidRequestError, match="one way"):
            client.psf(px=40.0, py=10.0, x=0.1, y=0.2, **QUERY)
    # the pixel frame: the axis sits between the two middle pixels of an even grid
    cols, rows = frame.cols, frame.rows
    assert np.allclose(frame.px_to_mm((cols - 1) / 2, (rows - 1) / 2), 0.0)


def test_every_backend_serves_the_same_geometry(server_url: str, local: LocalPSFModel):
    columns = {"field": [0.0, 0.5, 1.0], "azimuth": [90.0, 30.0, 225.0], **QUERY}
    with PSFClient(server_url) as api, PSFClient(server_url, protocol="v2", model="ci") as v2:
        answers = [source.geometry(**columns) for source in (api, v2, local)]
        grids = [source.distortion(5, 3, **QUERY) for source in (api, v2, local)]
    for other in answers[1:]:
        for name in ImageGeometry._fields:
            assert np.array_equal(getattr(answers[0], name), getattr(other, name)), name
    for other in grids[1:]:
        assert all(np.array_equal(a, b) for a, b in zip(grids[0], other, strict=True))
    g = answers[0]
    assert g.illumination[0] == pytest.approx(1.0, abs=1e-6) and 0.3 < g.illumination[2] < 1.0  # vignetted corner
    assert g.x_mm.shape == (3,) and grids[0].x_px.shape == (3, 5)
    assert np.allclose(np.hypot(g.x_px - g.ideal_x_px, g.y_px - g.ideal_y_px), np.abs(g.distortion_px), atol=0.05)


def test_get_psf_carries_the_geometry_when_asked(server_url: str, local: LocalPSFModel):
    import httpx

    query = {"field": 0.8, "azimuth": 200.0, **QUERY}
    expected = local.geometry(**query)
    with httpx.Client(base_url=server_url) as http:
        plain = http.get("/psf", params={**query, "format": "npy"})
        asked = http.get("/psf", params={**query, "format": "npy", "geometry": "true"})
        as_json = http.get("/psf", params={**query, "geometry": "true"}).json()
    assert read_geometry(plain.headers) is None and plain.content == asked.content  # the kernel is unchanged
    headers = read_geometry(asked.headers)
    assert headers == {name: as_json[name] for name in headers}
    assert headers["chief_ray_px"] == [float(expected.x_px[0]), float(expected.y_px[0])]
    assert headers["illumination"] == float(expected.illumination[0])


def test_a_rendered_point_lands_where_its_chief_ray_does_dimmed_by_the_illumination(local: LocalPSFModel,
                                                                                    frame: SensorFrame):
    # a 10x coarser image than the sensor, one bright pixel near a corner (where the Cooke triplet vignettes)
    h, w = frame.rows // 10, frame.cols // 10
    row, col = 4, 234
    image = np.zeros((h, w), dtype=np.float32)
    image[row, col] = 1.0
    ideal_px, ideal_py = (col + 0.5) * 10 - 0.5, (row + 0.5) * 10 - 0.5  # the pixel's centre, sensor pixels
    g = local.geometry(px=ideal_px, py=ideal_py, **QUERY)
    kw = {"depth": QUERY["depth"], "wavelengths": [QUERY["wavelength"]], "srgb": False, "grid": (16, 12)}
    with_geometry = render(image, local, **kw)
    without = render(image, local, distortion=False, illumination=False, **kw)

    def centroid(img: np.ndarray) -> tuple[float, float]:
        rows, cols = np.indices(img.shape)
        total = img.sum()
        return float((img * cols).sum() / total), float((img * rows).sum() / total)

    shift = np.subtract(centroid(with_geometry), centroid(without)) * 10  # image pixels -> sensor pixels
    expected = (g.x_px[0] - g.ideal_x_px[0], g.y_px[0] - g.ideal_y_px[0])
    assert np.allclose(shift, expected, atol=0.15), (shift, expected)
    assert with_geometry.sum() / without.sum() == pytest.approx(g.illumination[0], rel=0.01)
    assert g.illumination[0] < 0.9  # the test would see a missing shade
