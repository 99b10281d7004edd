"""Stateless replicas: two server processes on one store serve the same bytes and both pick up a publish."""

from __future__ import annotations

import shutil
import time

import httpx

from .conftest import ready_server, republish

QUERY = {"field": 0.6, "azimuth": 210.0, "depth": 7.0, "wavelength": 520.0, "format": "npy"}
BATCH = {"field": [0.0, 0.4, 0.9], "azimuth": [90, 30, 300], "depth": 5.0, "wavelength": 550.0}


def answers(url: str) -> tuple[str, bytes, bytes]:
    single = httpx.get(url + "/psf", params=QUERY, timeout=30)
    batch = httpx.post(url + "/psf/batch", json=BATCH, timeout=30)
    assert single.status_code == batch.status_code == 200, (single.text, batch.text)
    return single.headers["X-Model-Version"], single.content, batch.content


def test_two_replicas_on_one_store_serve_the_same_bytes_and_reload_together(trained_store, tmp_path):
    store = tmp_path / "store"
    shutil.copytree(trained_store, store)
    env = {"PSF_RELOAD_INTERVAL_S": "0.5"}
    with ready_server(store, env=env) as a, ready_server(store, env=env) as b:
        first = answers(a.url)
        assert first == answers(b.url) and first[0] == "1"
        version = republish(store)
        deadline = time.monotonic() + 30
        seen = {}
        while time.monotonic() < deadline and set(seen.values()) != {str(version)}:
            seen = {s.url: answers(s.url)[0] for s in (a, b)}
            time.sleep(0.2)
        assert set(seen.values()) == {str(version)}, f"not both on version {version} after 30 s: {seen}"
        after = answers(a.url)
        assert after == answers(b.url)
        # the republished version holds the same graphs: the same kernels, now labelled version 2
        assert after[1:] == first[1:]
