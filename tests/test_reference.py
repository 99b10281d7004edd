"""The adaptive whole-PSF reference: every held-out point is traced until its own noise reaches the
target, so sharp PSFs take few rays and wide ones many (real DeepLens traces, small counts)."""

from __future__ import annotations

import numpy as np
import pytest

from training.raytrace import LensTracer
from training.reference import adaptive_reference

NOISE, CAP, PASS = 0.06, 2**17, 2**12


@pytest.fixture(scope="module")
def tracer() -> LensTracer:
    return LensTracer("lenses/cooke_triplet.json", focus_m=10.0)


def test_each_point_is_traced_until_its_own_noise_is_reached(tracer, tmp_path):
    # in focus on the axis (a few pixels) and defocused at 2 m in the corner (a wide blur)
    points = np.array([[0.0, 10.0, 550.0], [0.95, 2.0, 450.0]])
    psf, noise, rays = adaptive_reference(tracer, points, ks=40, noise=NOISE, max_rays=CAP, pass_rays=PASS,
                                          cache_dir=tmp_path, progress=False)
    assert psf.shape == (2, 40, 40) and np.allclose(psf.sum(axis=(1, 2)), 1.0, atol=1e-5)
    assert np.all((noise <= NOISE) | (rays >= CAP)), (noise, rays)
    assert rays[0] < rays[1], "the sharp PSF should need fewer rays than the wide one"
    assert rays[0] % PASS == 0 and rays[1] % PASS == 0
    # the estimate is honest: a fresh trace with as many rays differs from the reference by about
    # sqrt(2) x its noise (two independent estimates of one PSF)
    fresh = tracer.psf_conditions(points[1:], ks=40, spp=int(rays[1]))[0]
    assert np.abs(fresh - psf[1]).sum() < 3 * max(noise[1], NOISE)


def test_no_point_takes_more_rays_than_the_cap(tracer):
    points = np.array([[0.95, 2.0, 450.0]])
    _, _, rays = adaptive_reference(tracer, points, ks=40, noise=1e-4, max_rays=8192, pass_rays=65536,
                                    cache_dir=None, progress=False)
    assert 0 < rays[0] <= 8192


def test_a_reference_is_reused_from_its_cache(tracer, tmp_path):
    points = np.array([[0.5, 5.0, 600.0]])
    first = adaptive_reference(tracer, points, ks=32, noise=NOISE, max_rays=CAP, pass_rays=PASS, cache_dir=tmp_path,
                               progress=False)
    assert len(list(tmp_path.glob("ref-adaptive-*.npz"))) == 1
    again = adaptive_reference(tracer, points, ks=32, noise=NOISE, max_rays=CAP, pass_rays=PASS, cache_dir=tmp_path,
                               progress=False)
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)
