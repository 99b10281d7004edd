"""PSFClient(protocol="v2"): the same answers over the Open Inference Protocol as over the PSF API."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from clients import AsyncPSFClient, InvalidRequestError, PSFClient, PSFError, render


@pytest.fixture(scope="module")
def both(server_url):
    with PSFClient(server_url) as psf_api, PSFClient(server_url, protocol="v2", model="ci") as v2:
        yield psf_api, v2


def test_psf_batch_and_grid_are_the_same_kernels_as_over_the_psf_api(both):
    psf_api, v2 = both
    for azimuth in (30.0, 135.0, 200.0, 300.0):  # every quadrant: the client orients the graph's kernels
        a = psf_api.psf(field=0.7, azimuth=azimuth, depth=5.0, wavelength=550.0)
        b = v2.psf(field=0.7, azimuth=azimuth, depth=5.0, wavelength=550.0)
        assert np.array_equal(a, b) and b.meta == a.meta
    columns = {"x": [0.5, -0.3, 0.0], "y": [-0.2, 0.9, 0.0], "depth": [3.0, 40.0, 10.0], "wavelength": 600.0}
    assert np.array_equal(psf_api.psf_batch(**columns), v2.psf_batch(**columns))
    grid = {"depth": 8.0, "wavelength": 500.0}
    assert np.array_equal(psf_api.psf_grid(5, 3, **grid), v2.psf_grid(5, 3, **grid))


def test_latents_decode_and_the_manifest_match(both):
    psf_api, v2 = both
    a, b = psf_api.latent(field=[0.1, 0.8], depth=5.0, wavelength=550.0), v2.latent(field=[0.1, 0.8], depth=5.0,
                                                                                   wavelength=550.0)
    assert np.array_equal(a.mu, b.mu) and np.array_equal(a.logvar, b.logvar)
    z = np.asarray(a.mu)
    assert np.array_equal(psf_api.decode(z, field=[0.1, 0.8], azimuth=250.0, depth=5.0, wavelength=550.0),
                          v2.decode(z, field=[0.1, 0.8], azimuth=250.0, depth=5.0, wavelength=550.0))
    assert v2.model("ci")["kernel_size"] == psf_api.model("ci")["kernel_size"] == 16
    assert v2.health() and v2.ready()


def test_the_async_client_speaks_v2_too(both, server_url):
    psf_api, _ = both
    columns = {"field": [0.2, 0.9], "azimuth": [40.0, 220.0], "depth": 6.0, "wavelength": 520.0}

    async def main():
        async with AsyncPSFClient(server_url, protocol="v2", model="ci") as v2:
            single = await asyncio.gather(*(v2.psf(field=f, azimuth=a, depth=6.0, wavelength=520.0)
                                            for f, a in zip(columns["field"], columns["azimuth"])))
            return single, await v2.psf_batch(**columns), await v2.health()

    single, batch, healthy = asyncio.run(main())
    expected = psf_api.psf_batch(**columns)
    assert np.array_equal(np.stack(single), expected) and np.array_equal(batch, expected) and healthy


def test_rendering_code_runs_unchanged_on_either_protocol(both):
    psf_api, v2 = both
    image = np.random.default_rng(0).uniform(0, 1, (48, 64, 3))
    assert np.array_equal(render(image, psf_api, depth=5.0, grid=(3, 2)), render(image, v2, depth=5.0, grid=(3, 2)))


def test_refusals_name_the_parameter(both, server_url):
    _, v2 = both
    out_of_range = r"depth=500.0 is not allowed: must be a finite number in \[2, 100\] m"
    with pytest.raises(InvalidRequestError, match=out_of_range):
        v2.psf(field=0.5, depth=500.0, wavelength=550.0)
    with pytest.raises(InvalidRequestError, match="version='prod' is not allowed with protocol='v2'"):
        v2.psf(field=0.5, depth=5.0, wavelength=550.0, version="prod")
    with pytest.raises(PSFError, match="interpolate is not offered over protocol='v2'"):
        v2.interpolate({"field": 0, "depth": 5, "wavelength": 550}, {"field": 1, "depth": 5, "wavelength": 550},
                       steps=3)
    with pytest.raises(ValueError, match="protocol='grpc' is not allowed"):
        PSFClient(server_url, protocol="grpc")
    with PSFClient(server_url, protocol="v2") as nameless, \
            pytest.raises(InvalidRequestError, match="model is required"):
        nameless.psf(field=0.5, depth=5.0, wavelength=550.0)
