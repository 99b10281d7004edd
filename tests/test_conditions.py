import numpy as np
import pytest

from models_store import ConditionError, Manifest, resolve_conditions, rotate_psfs
from models_store.conditions import fold_azimuth, mirror_psfs
from tests.manifests import manifest_fields


@pytest.fixture
def manifest():
    fields = manifest_fields()
    fields.update(name="m", version=1, files={f"{r}.onnx": "0" * 64 for r in ("psf", "prior", "decoder", "encoder")})
    return Manifest.model_validate(fields)


def test_field_and_xy_spellings_agree(manifest):
    a, az_a = resolve_conditions(manifest, field=0.6, depth=10, wavelength=550)
    # x=0, y=v lies on the +y meridian at v * half-height / half-diagonal
    b, az_b = resolve_conditions(manifest, x=0.0, y=0.6 * 18.0 / 10.8, depth=10, wavelength=550)
    np.testing.assert_allclose(a, b, rtol=1e-6)
    assert az_a[0] == 90.0 and az_b[0] == pytest.approx(90.0)
    c, az_c = resolve_conditions(manifest, x=-0.5, y=0.0, depth=10, wavelength=550)
    assert c[0, 0] == pytest.approx(0.5 * 14.4 / 18.0) and az_c[0] == pytest.approx(180.0)


@pytest.mark.parametrize("query, parameter, shown", [
    ({"field": 1.5, "depth": 10, "wavelength": 550}, "field", "1.5"),
    ({"field": 0.5, "depth": float("nan"), "wavelength": 550}, "depth", "nan"),
    ({"field": 0.5, "depth": 10, "wavelength": 700}, "wavelength", "700"),
    ({"field": 0.5, "wavelength": 550}, "depth", "is missing"),
    ({"x": 0.5, "depth": 10, "wavelength": 550}, "y", "is missing"),
    ({"field": 0.5, "x": 0.1, "y": 0.1, "depth": 10, "wavelength": 550}, "x/y", ""),
    ({"field": 0.5, "depth": 10, "wavelength": 550, "focus": 3}, "focus", "3"),
])
def test_errors_name_parameter_value_and_range(manifest, query, parameter, shown):
    with pytest.raises(ConditionError) as err:
        resolve_conditions(manifest, **query)
    assert err.value.parameter == parameter
    assert str(err.value).startswith(f"{parameter}=" if shown != "is missing" else f"{parameter} is missing")
    assert shown in str(err.value)


def test_range_message_lists_the_allowed_range(manifest):
    message = r"wavelength=700.0 is not allowed: must be a finite number in \[450, 650\] nm"
    with pytest.raises(ConditionError, match=message):
        resolve_conditions(manifest, field=0.5, depth=10, wavelength=700)


def test_columns_broadcast(manifest):
    cond, az = resolve_conditions(manifest, field=[0, 0.5, 1], depth=10, wavelength=[450, 550, 650])
    assert cond.shape == (3, 3) and az.shape == (3,)
    with pytest.raises(ConditionError, match="item 1"):
        resolve_conditions(manifest, field=[0, 2, 1], depth=10, wavelength=550)


def test_rotation_by_quarter_turns_is_exact_and_direction_is_counter_clockwise():
    psf = np.zeros((1, 5, 5), np.float32)
    psf[0, 0, 2] = 1.0  # top centre = +y
    out = rotate_psfs(psf, np.array([180.0]))  # +y meridian turned by +90 deg -> -x (left)
    assert out[0, 2, 0] == pytest.approx(1.0)
    out = rotate_psfs(psf, np.array([0.0]))  # turned by -90 deg -> +x (right)
    assert out[0, 2, 4] == pytest.approx(1.0)
    np.testing.assert_array_equal(rotate_psfs(psf, np.array([90.0])), psf)


def test_rotation_keeps_unit_sum_and_non_negativity():
    rng = np.random.default_rng(0)
    psf = rng.random((3, 9, 9)).astype(np.float32)
    psf[:, :2, :] = psf[:, -2:, :] = psf[:, :, :2] = psf[:, :, -2:] = 0  # energy away from the border
    psf /= psf.sum(axis=(1, 2), keepdims=True)
    out = rotate_psfs(psf, np.array([10.0, 45.0, 222.0]))
    np.testing.assert_allclose(out.sum(axis=(1, 2)), 1.0, rtol=1e-5)
    assert (out >= 0).all()


def test_fold_azimuth_quadrants():
    folded, rows, cols = fold_azimuth(np.array([30.0, 90.0, 150.0, 180.0, 210.0, 270.0, 330.0, -30.0, 390.0]))
    np.testing.assert_allclose(folded, [30, 90, 30, 0, 30, 90, 30, 30, 30])
    assert rows.tolist() == [False, False, False, False, True, True, True, True, False]
    assert cols.tolist() == [False, False, True, True, True, False, False, False, False]


def test_mirror_flips_are_exact_and_self_inverse():
    psf = np.arange(16, dtype=np.float32).reshape(1, 4, 4)
    np.testing.assert_array_equal(mirror_psfs(psf, np.array([150.0]))[0], psf[0, :, ::-1])
    np.testing.assert_array_equal(mirror_psfs(psf, np.array([-30.0]))[0], psf[0, ::-1, :])
    np.testing.assert_array_equal(mirror_psfs(psf, np.array([200.0]))[0], psf[0, ::-1, ::-1])
    np.testing.assert_array_equal(mirror_psfs(mirror_psfs(psf, np.array([200.0])), np.array([200.0])), psf)


def test_azimuth_condition_is_folded_into_the_first_quadrant(manifest):
    fields = manifest.model_dump()
    fields["conditions"].append({"name": "azimuth", "unit": "deg", "min": 0, "max": 90})
    fields["symmetry"] = "mirror"
    mirrored = Manifest.model_validate(fields)
    cond, az = resolve_conditions(mirrored, field=0.5, azimuth=[150.0, -30.0], depth=10, wavelength=550)
    np.testing.assert_allclose(cond[:, 3], [30.0, 30.0])
    np.testing.assert_allclose(az, [150.0, -30.0])
    cond, az = resolve_conditions(mirrored, x=-0.5, y=-0.5, depth=10, wavelength=550)  # third quadrant
    assert 0 <= cond[0, 3] <= 90 and az[0] == pytest.approx(-180 + np.degrees(np.arctan2(10.8, 14.4)))


def test_fold_azimuth_equals_the_quadrant_formulas_bit_for_bit():
    """The folded azimuth is a condition the model sees: any change of its bits changes answers."""
    rng = np.random.default_rng(5)
    edges = np.array([0, 90, 180, 270, 360, -90, -180, -270, -360])
    a = np.concatenate([rng.uniform(-720, 720, 100_000), edges, np.nextafter(edges, 1e9), np.nextafter(edges, -1e9)])
    folded, rows, cols = fold_azimuth(a)
    r = np.remainder(a, 360.0)
    q2, q3, q4 = (r > 90) & (r <= 180), (r > 180) & (r < 270), r >= 270
    want = np.where(q2, 180.0 - r, np.where(q3, r - 180.0, np.where(q4, 360.0 - r, r)))
    assert np.array_equal(folded, want) and np.array_equal(rows, q3 | q4) and np.array_equal(cols, q2 | q3)
    assert folded.min() >= 0 and folded.max() <= 90
