"""A server started on a store it cannot serve from: it says why, /readyz is 503, nothing crashes, and
it serves as soon as a model is published there."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.conftest import ready_server, republish

QUERY = {"field": 0.5, "depth": 10.0, "wavelength": 550.0, "format": "npy"}


def _missing(root: Path) -> None:
    pass


def _empty(root: Path) -> None:
    root.mkdir()


def _a_file(root: Path) -> None:
    root.write_text("not a store")


def _unreadable_manifest(root: Path) -> None:
    version = root / "ci" / "versions" / "1"
    version.mkdir(parents=True)
    (version / "manifest.json").write_text("{not json")


CASES: dict[str, tuple[Callable[[Path], None], str]] = {
    "missing": (_missing, "does not exist"),
    "empty": (_empty, "holds no models yet"),
    "a file": (_a_file, "is not a folder"),
    "unreadable manifest": (_unreadable_manifest, "unreadable manifest"),
}


@pytest.mark.parametrize("make, words", CASES.values(), ids=CASES.keys())
def test_a_server_on_a_store_it_cannot_serve_says_why_and_serves_once_published(
        tmp_path: Path, trained_store: Path, make: Callable[[Path], None], words: str) -> None:
    root = tmp_path / "store"
    make(root)
    env = {"PSF_RELOAD_INTERVAL_S": "0.2", "PSF_ACCESS_LOG": "false"}
    with ready_server(root, env=env, wait_path="/healthz") as server:
        ready = httpx.get(server.url + "/readyz")
        assert ready.status_code == 503 and words in ready.json()["detail"], ready.text
        assert "Retry-After" in ready.headers
        psf = httpx.get(server.url + "/psf", params=QUERY)
        assert psf.status_code in (404, 503) and psf.json()["detail"], psf.text
        assert words in server.output(), server.output()[-2000:]
        # publish a good version (a file where the store should be is moved aside first)
        if root.is_file():
            root.unlink()
        republish(root, source=trained_store)
        deadline = time.monotonic() + 15
        while httpx.get(server.url + "/readyz").status_code != 200:
            assert time.monotonic() < deadline, server.output()[-2000:]
            time.sleep(0.1)
        assert httpx.get(server.url + "/psf", params=QUERY).status_code == 200
        assert server.proc.poll() is None
