"""The image-geometry table (chief-ray position, relative illumination) against real DeepLens, and the one
sensor-unit conversion against DeepLens's own normalised coordinates."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch

from models_store import GeometryUnavailable, Manifest, SensorFrame, image_geometry, resolve_conditions
from models_store.geometry import GeometryTable, geometry_at, pchip, relative_illumination
from tests.manifests import manifest_fields
from training.geometry import trace_geometry
from training.geometry_check import held_out, reference_positions
from training.raytrace import LensTracer

DEPTH, WAVELENGTH = (2.0, 100.0), (450.0, 650.0)  # configs/ci.yml's ranges


@pytest.fixture(scope="module")
def tracer():
    return LensTracer("lenses/cooke_triplet.json", focus_m=10.0)


@pytest.fixture(scope="module")
def table(tracer) -> GeometryTable:
    # smaller than the fit's table (fields 33, depths 5, wavelengths 5, heights 33, 4096 rays): seconds
    return trace_geometry(tracer, field_max=1.0, depth=DEPTH, wavelength=WAVELENGTH, field_points=17,
                          depth_points=4, wavelength_points=3, height_points=25, rays=2048)


def test_chief_ray_positions_match_deeplens_at_held_out_points(tracer, table):
    """Tolerance: 0.05 px (the target) plus 3x DeepLens's own selection noise at each point."""
    rows = held_out({"field": (0.0, 1.0), "depth": DEPTH, "wavelength": WAVELENGTH}, 6, seed=3)
    lens = tracer.info()
    got = geometry_at(table, lens, **rows)
    ref_mm, noise_mm = reference_positions(tracer, rows, rays=8192, seed=1)
    frame = SensorFrame.of(lens)
    ref_x, ref_y = frame.mm_to_px(ref_mm[:, 0], ref_mm[:, 1])
    err = np.hypot(got["x_px"] - ref_x, got["y_px"] - ref_y)
    noise = noise_mm / frame.pitch_mm[0]
    assert np.all(err <= 0.05 + 3 * noise), f"error {err.round(4)} px, DeepLens's noise {noise.round(4)} px"
    # the distortion is real on this lens (pixels, not rounding), so the comparison means something
    assert np.abs(got["distortion_px"]).max() > 0.5
    np.testing.assert_allclose(got["shift_x_px"] + got["ideal_x_px"], got["x_px"])


def test_illumination_matches_deeplens_render_raytracing(tracer, table):
    """DeepLens's ray-traced render of a white scene (vignetting=True) on a 12 x 9 pixel copy of the sensor:
    each pixel's value is the table's illumination at that pixel's point, to 3.5 sigma of the render's own
    ray noise. The Cooke triplet loses ~24 % in the corners, so another definition (e.g. the forward ray
    fraction over the entrance pupil, 0.85 there) fails."""
    lens = copy.deepcopy(tracer.lens)
    lens.set_sensor_res((12, 9))
    spp, wvln = 4096, 0.55
    torch.manual_seed(0)
    with torch.no_grad():
        white = torch.ones(1, 1, 9, 12, dtype=lens.dtype)
        render = lens.render_raytracing_mono(white, wvln, depth=-10000.0, spp=spp, vignetting=True)
    # DeepLens divides by every ray of the image (torch.numel(ray.is_valid) in backward_integral), not by
    # the rays of the pixel: its vignetting render is dimmed by 1 / (H * W) as a whole (deeplens-core 2.5)
    render = render.reshape(9, 12).double().numpy() * (9 * 12)
    frame = SensorFrame(*lens.sensor_size, 12, 9, tracer.half_diagonal)
    rows, cols = np.indices((9, 12))
    x_mm, y_mm = frame.px_to_mm(cols + 0.5, rows + 0.5)  # render_raytracing samples pixel corners
    want = relative_illumination(table, np.hypot(x_mm, y_mm).ravel(), 550.0) * table.illumination_axis[0]
    sigma = np.sqrt(np.clip(want * (1 - want), 1e-4, None) / spp)
    err = np.abs(render.ravel() - want)
    assert np.all(err <= 3.5 * sigma + 1e-3), f"worst {err.max():.4f} at value {want[np.argmax(err)]:.3f}"
    assert want.min() < 0.8  # the corners are vignetted


def test_pchip_is_scipys():
    scipy_interpolate = pytest.importorskip("scipy.interpolate")
    x = np.array([0.0, 0.5, 1.2, 2.0, 3.0])
    y = np.array([[1.0, 1.0, 0.9, 0.4, 0.35], [0.0, 1.0, 3.0, 2.0, 5.0]])
    xq = np.linspace(0, 3, 41)
    want = scipy_interpolate.PchipInterpolator(x, y, axis=-1)(xq).T
    np.testing.assert_allclose(pchip(x, y[None], xq), want, atol=1e-12)


def test_sensor_frame_is_deeplens_normalised_coordinates(tracer):
    """Fractions -> mm is DeepLens's pinhole image of its own normalised object point; pixel (i, j) of
    render_raytracing lies at (j + 0.5, i + 0.5) of this frame; x, y -> field as resolve_conditions."""
    lens, info = tracer.lens, tracer.info()
    frame = SensorFrame.of(info)
    norm = torch.tensor([[0.3, -0.7, -5000.0], [-1.0, 1.0, -2000.0], [0.9, 0.2, -80000.0]], dtype=lens.dtype)
    scale = lens.calc_scale(norm[:, 2])
    obj = torch.stack([norm[:, 0] * scale * lens.sensor_size[0] / 2, norm[:, 1] * scale * lens.sensor_size[1] / 2,
                       norm[:, 2]], -1)
    pinhole = lens.psf_center(obj, method="pinhole").double().numpy()
    x_mm, y_mm = frame.fraction_to_mm(norm[:, 0].numpy(), norm[:, 1].numpy())
    np.testing.assert_allclose(np.stack([x_mm, y_mm], -1), pinhole, rtol=1e-5, atol=1e-6)
    # the tracer's own points (field, azimuth -> DeepLens normalised) agree with field_to_mm
    field, az = np.array([0.0, 0.5, 1.0]), np.array([90.0, 30.0, 215.0])
    pts = tracer.points(field, np.full(3, 5.0), az).double().numpy()
    np.testing.assert_allclose(np.stack(frame.mm_to_fraction(*frame.field_to_mm(field, az)), -1), pts[:, :2],
                               atol=1e-6)
    # pixels: DeepLens's sample_sensor origin for output pixel (i, j)
    with torch.no_grad():
        origins = lens.sample_sensor(spp=1).o[:, :, 0, :2].double().numpy()  # [H, W, 2]
    for i, j in [(0, 0), (17, 2300), (1799, 2399), (900, 1200)]:
        np.testing.assert_allclose(frame.px_to_mm(j + 0.5, i + 0.5), origins[i, j], atol=1e-6)
    # round trips, and the x, y spelling of resolve_conditions
    px, py = frame.mm_to_px(*frame.px_to_mm([0.0, 1199.5, 2399.0], [0.0, 899.5, 1799.0]))
    np.testing.assert_allclose([px, py], [[0.0, 1199.5, 2399.0], [0.0, 899.5, 1799.0]], atol=1e-9)
    assert frame.px_to_mm(1199.5, 899.5) == (0.0, 0.0)  # the optical axis
    manifest = Manifest.model_validate({**manifest_fields(), "name": "m", "version": 1, "files": {
        f"{r}.onnx": "0" * 64 for r in ("psf", "prior", "decoder", "encoder")}})
    xs, ys = np.array([0.5, -0.25, 1.0]), np.array([0.1, -1.0, 1.0])
    cond, azimuth = resolve_conditions(manifest, x=xs, y=ys, depth=5.0, wavelength=500.0)
    f, a = frame.mm_to_field(*frame.fraction_to_mm(xs, ys))
    np.testing.assert_allclose(cond[:, 0], f, rtol=1e-6)
    np.testing.assert_allclose(azimuth, a)


def _manifest(geometry: GeometryTable | None) -> Manifest:
    fields = {**manifest_fields(), "name": "m", "version": 1,
              "files": {f"{r}.onnx": "0" * 64 for r in ("psf", "prior", "decoder", "encoder")}}
    if geometry is not None:
        fields["geometry"] = geometry
    return Manifest.model_validate(fields)


def test_old_manifests_load_and_say_they_have_no_geometry():
    old = json.loads(_manifest(None).model_dump_json(exclude={"geometry"}))
    assert "geometry" not in old
    manifest = Manifest.model_validate(old)
    assert manifest.geometry is None
    with pytest.raises(GeometryUnavailable, match="no geometry table"):
        image_geometry(manifest, field=0.5, depth=5.0, wavelength=550.0)


def test_image_geometry_through_the_manifest(table):
    manifest = Manifest.model_validate_json(_manifest(table).model_dump_json())
    assert manifest.geometry == table
    by_field = image_geometry(manifest, field=[0.0, 0.6], azimuth=[90.0, 0.0], depth=5.0, wavelength=550.0)
    frame = SensorFrame.of(manifest.lens)
    x, y = frame.mm_to_fraction(*frame.field_to_mm(0.6, 0.0))
    by_xy = image_geometry(manifest, x=[x], y=[y], depth=5.0, wavelength=550.0)
    np.testing.assert_allclose(by_xy["x_mm"], by_field["x_mm"][1:], rtol=1e-6)
    assert by_field["x_mm"][0] == 0 and by_field["illumination"][0] == pytest.approx(1.0, abs=1e-3)
    np.testing.assert_allclose(by_field["y_px"][0], (manifest.lens.sensor_resolution[1] - 1) / 2)
    from models_store import ConditionError, distortion_grid
    with pytest.raises(ConditionError, match="depth"):
        image_geometry(manifest, field=0.5, depth=500.0, wavelength=550.0)
    grid = distortion_grid(manifest, 4, 3, depth=5.0, wavelength=550.0)
    assert grid["x_px"].shape == (3, 4) and grid["y_px"][0, 0] < grid["y_px"][2, 0]  # row 0 is the top
    assert grid["illumination"][0, 0] < grid["illumination"][1, 1]  # corners darker


def test_a_fit_publishes_its_geometry_and_card(fit_result):
    """The session's configs/ci.yml fit: the manifest carries the table, and the card measures it."""
    from models_store import Store

    manifest = Store(fit_result["store"]).manifest("ci")
    assert manifest.geometry is not None and manifest.geometry.focus_m is None
    card = manifest.evaluation["geometry"]
    assert card["distortion_error_px"]["p90"] <= 0.05 and card["illumination_error_pct"]["p90"] <= 0.5
    out = image_geometry(manifest, field=1.0, azimuth=45.0, depth=2.0, wavelength=450.0)
    assert 0.5 < out["illumination"][0] < 1.0 and abs(out["distortion_px"][0]) > 0.5
