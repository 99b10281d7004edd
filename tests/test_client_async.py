"""AsyncPSFClient against the real server: many calls at once, same arrays, same errors."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import numpy as np
import pytest

from clients import AsyncPSFClient, InvalidRequestError, LocalPSFModel, NotFoundError, PSFClient


@pytest.fixture(scope="module")
def local(trained_store: Path) -> LocalPSFModel:
    return LocalPSFModel.from_store(trained_store, "ci")


def test_many_concurrent_calls_each_get_their_own_answer(server_url: str, local: LocalPSFModel) -> None:
    fields = np.linspace(0.0, 1.0, 40)
    depths = np.geomspace(2.0, 100.0, 40)

    async def main() -> list:
        async with AsyncPSFClient(server_url, timeout=60.0) as client:
            return await asyncio.gather(*(client.psf(field=f, depth=d, wavelength=550.0, azimuth=9.0 * i)
                                          for i, (f, d) in enumerate(zip(fields, depths))))

    answers = asyncio.run(main())
    expected = local.psf_batch(field=fields, depth=depths, wavelength=550.0, azimuth=9.0 * np.arange(40))
    assert len(answers) == 40
    for answer, row in zip(answers, expected):
        np.testing.assert_array_equal(answer, row)
        assert answer.meta == local.meta


def test_errors_come_back_to_the_call_that_caused_them(server_url: str) -> None:
    async def main() -> list:
        async with AsyncPSFClient(server_url, timeout=60.0) as client:
            calls = [client.psf(field=0.5, depth=10.0, wavelength=550.0),
                     client.psf(field=0.5, depth=1000.0, wavelength=550.0),
                     client.psf(field=0.5, depth=10.0, wavelength=550.0, model="nope"),
                     client.model("ci"),
                     client.models(),
                     client.health()]
            return await asyncio.gather(*calls, return_exceptions=True)

    ok, bad_depth, unknown, manifest, models, healthy = asyncio.run(main())
    assert ok.shape == (16, 16)
    assert isinstance(bad_depth, InvalidRequestError) and "depth=1000" in bad_depth.message
    assert isinstance(unknown, NotFoundError)
    assert manifest["name"] == "ci" and [m["name"] for m in models] == ["ci"] and healthy is True
    with PSFClient(server_url) as sync, pytest.raises(InvalidRequestError) as caught:
        sync.psf(field=0.5, depth=1000.0, wavelength=550.0)
    assert caught.value.message == bad_depth.message


def test_concurrent_psf_calls_go_out_as_one_batch(server_url: str, local: LocalPSFModel) -> None:
    from tests.conftest import metric

    def counts() -> tuple[float, float]:
        text = httpx.get(server_url + "/metrics").text
        return (metric(text, "psf_http_requests_total", route="/psf", status="200"),
                metric(text, "psf_http_requests_total", route="/psf/batch", status="200"))

    fields = np.linspace(0.05, 0.95, 100)

    async def main(coalesce: bool) -> list:
        async with AsyncPSFClient(server_url, timeout=60.0, coalesce=coalesce) as client:
            return await asyncio.gather(*(client.psf(field=f, depth=7.5, wavelength=600.0) for f in fields))

    before = counts()
    merged = asyncio.run(main(True))
    middle = counts()
    alone = asyncio.run(main(False))
    after = counts()
    assert (middle[0] - before[0], middle[1] - before[1]) == (0, 1)  # 100 calls, one POST /psf/batch
    assert (after[0] - middle[0], after[1] - middle[1]) == (100, 0)
    expected = local.psf_batch(field=fields, depth=7.5, wavelength=600.0)
    for a, b, row in zip(merged, alone, expected):
        np.testing.assert_array_equal(a, row)
        np.testing.assert_array_equal(b, row)
        assert a.meta == b.meta == local.meta
