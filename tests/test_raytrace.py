"""Real DeepLens ray tracing: units, normalisation, and the PSF orientation convention."""

import numpy as np
import pytest

from models_store import rotate_psfs
from training.config import load_config
from training.datasets import sample_conditions
from training.datasets.online import RayTracedPSFs
from training.raytrace import LensTracer

KS, SPP = 16, 20000


@pytest.fixture(scope="module")
def tracer():
    return LensTracer("lenses/cooke_triplet.json", focus_m=10.0)


def centroid(psf):
    rows, cols = np.indices(psf.shape)
    c = (psf.shape[0] - 1) / 2
    return (psf * cols).sum() - c, c - (psf * rows).sum()  # (image x, image y)


def test_lens_info_is_the_published_triplet(tracer):
    info = tracer.info()
    assert info.focal_length_mm == pytest.approx(50.0, abs=0.2)
    assert info.f_number == pytest.approx(5.0, abs=0.05)
    assert info.pixel_pitch_um == pytest.approx(12.0)
    assert info.half_diagonal_mm == pytest.approx(18.0)


def test_psfs_are_normalised_and_defocus_grows_away_from_focus(tracer):
    psf = tracer.psf([0.0, 0.0, 0.0], [10.0, 4.0, 2.0], 550.0, ks=KS, spp=SPP)
    assert psf.shape == (3, KS, KS) and psf.dtype == np.float32
    np.testing.assert_allclose(psf.sum(axis=(1, 2)), 1.0, rtol=1e-5)
    peaks = psf.max(axis=(1, 2))
    assert peaks[0] > peaks[1] > peaks[2], "an object at the focus distance must give the sharpest PSF"


def test_orientation_row0_is_plus_y_and_rotation_matches_deeplens(tracer):
    """Off-axis PSFs traced by DeepLens at four azimuths agree with the meridian PSF rotated by
    rotate_psfs, and the aberration flare points along the image direction of the point."""
    field, depth = 0.8, 3.0
    az = np.array([90.0, 0.0, 180.0, 30.0])
    traced = tracer.psf(np.full(4, field), np.full(4, depth), 550.0, ks=KS, spp=SPP, azimuth_deg=az)
    rotated = rotate_psfs(np.repeat(traced[:1], 4, axis=0), az)
    for i, a in enumerate(az):
        err_rot = np.abs(rotated[i] - traced[i]).sum()
        err_none = np.abs(traced[0] - traced[i]).sum()
        assert err_rot < 0.15, f"azimuth {a}: rotated meridian PSF differs from DeepLens by {err_rot:.3f}"
        if a != 90.0:
            assert err_rot < 0.5 * err_none, f"azimuth {a}: rotation did not explain the change"
    # The flare (centroid offset) lies along the radial direction of each point.
    for i, a in enumerate(az):
        x, y = centroid(traced[i])
        angle = np.degrees(np.arctan2(y, x))
        assert abs((angle - a + 180) % 360 - 180) < 20, f"azimuth {a}: flare points at {angle:.0f} deg"


def test_index_only_dataset_traces_on_demand_and_caches(tracer):
    cfg = load_config("configs/ci.yml")
    cond = sample_conditions(cfg, 12, np.random.default_rng(0), block=4)
    assert len(np.unique(cond[:4, 2])) == 1 and len(np.unique(cond[:, 2])) == 3
    ds = RayTracedPSFs(tracer, cond, ks=KS, spp=512, block=4, progress=False)
    assert not ds.traced.any()
    batch = ds.__getitems__([0, 5])
    assert ds.traced.sum() == 8  # the two blocks holding items 0 and 5
    first = ds.psfs[0].copy()
    ds.__getitems__([0])
    np.testing.assert_array_equal(ds.psfs[0], first)  # cached, not re-traced with new noise
    psf, c = batch[1]
    assert psf.shape == (KS, KS) and c.shape == (3,)


def test_mirror_symmetry_on_the_pixel_grid_matches_deeplens(tracer):
    """A first-quadrant PSF mirrored into the other quadrants equals DeepLens's own trace there,
    to within ray noise: the basis of the azimuth-conditioned ('mirror') models."""
    from models_store.conditions import mirror_psfs

    az = np.array([30.0, 150.0, 210.0, 330.0])
    traced = tracer.psf(np.full(4, 0.8), np.full(4, 4.0), 550.0, ks=KS, spp=SPP, azimuth_deg=az)
    again = tracer.psf(np.full(1, 0.8), np.full(1, 4.0), 550.0, ks=KS, spp=SPP, azimuth_deg=az[:1])
    noise = np.abs(again[0] - traced[0]).sum()
    mirrored = mirror_psfs(np.repeat(traced[:1], 4, axis=0), az)
    for i in range(1, 4):
        err = np.abs(mirrored[i] - traced[i]).sum()
        assert err < 3 * noise + 0.02, f"azimuth {az[i]}: mirror differs by {err:.3f} (noise {noise:.3f})"
        assert err < np.abs(traced[0] - traced[i]).sum() / 3
