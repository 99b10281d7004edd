"""Hot reload: new versions and moved aliases are served without a restart or a failed request;
a tampered version is refused while the one before keeps serving."""

from __future__ import annotations

import asyncio
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from models_store import Store
from tests.conftest import ServerProcess, ready_server, republish

QUERY = {"field": 0.5, "depth": 10.0, "wavelength": 550.0, "format": "npy"}


@pytest.fixture(scope="module")
def store_root(trained_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("reload") / "store"
    shutil.copytree(trained_store, root)
    return root


@pytest.fixture(scope="module")
def reloading_server(store_root: Path) -> Iterator[ServerProcess]:
    with ready_server(store_root, env={"PSF_RELOAD_INTERVAL_S": "0.2"}) as server:
        yield server


def served_version(url: str, **params: str) -> str:
    response = httpx.get(url + "/psf", params={**QUERY, **params})
    assert response.status_code == 200, response.text
    return response.headers["x-model-version"]


def wait_for(condition: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_a_new_version_is_served_without_failing_a_request(reloading_server: ServerProcess, store_root: Path) -> None:
    old = served_version(reloading_server.url)
    statuses: list[int] = []
    versions: list[str] = []
    stop = threading.Event()

    def keep_asking() -> None:
        with httpx.Client(base_url=reloading_server.url, timeout=30.0) as client:
            while not stop.is_set():
                response = client.get("/psf", params=QUERY)
                statuses.append(response.status_code)
                versions.append(response.headers.get("x-model-version", ""))

    asker = threading.Thread(target=keep_asking)
    asker.start()
    try:
        new = str(republish(store_root))
        wait_for(lambda: bool(versions) and versions[-1] == new)
        time.sleep(0.2)
    finally:
        stop.set()
        asker.join()
    assert set(statuses) == {200}, sorted(set(statuses))
    switch = versions.index(new)
    assert set(versions[:switch]) <= {old} and set(versions[switch:]) == {new}  # one switch, never back
    ready = httpx.get(reloading_server.url + "/readyz").json()
    assert ready["models"]["ci"] == int(new)


def test_fifty_clients_see_no_failure_across_a_switch(reloading_server: ServerProcess, store_root: Path) -> None:
    """50 concurrent clients query through a hot reload: every request answered, each answer names
    the version that produced it, and no client goes back to the old version once it saw the new."""
    old = served_version(reloading_server.url)
    seen: list[list[tuple[int, str]]] = [[] for _ in range(50)]
    switched = asyncio.Event()

    async def client(i: int, http: httpx.AsyncClient, stop_at: float) -> None:
        n = 0
        while time.monotonic() < stop_at:
            params = {**QUERY, "field": round((i * 37 + n) % 100 / 100, 2)}
            response = await http.get("/psf", params=params)
            seen[i].append((response.status_code, response.headers.get("x-model-version", "")))
            n += 1
            if switched.is_set() and len(seen[i]) > 3 and seen[i][-3][1] == new:
                return

    async def main() -> None:
        nonlocal new
        limits = httpx.Limits(max_connections=50, max_keepalive_connections=50)
        async with httpx.AsyncClient(base_url=reloading_server.url, timeout=30.0, limits=limits) as http:
            tasks = [asyncio.create_task(client(i, http, time.monotonic() + 30)) for i in range(50)]
            try:
                await asyncio.sleep(0.5)
                new = str(await asyncio.to_thread(republish, store_root))
                switched.set()
                await asyncio.gather(*tasks)
            finally:
                for task in tasks:
                    task.cancel()

    new = ""
    asyncio.run(main())
    answers = [answer for client_answers in seen for answer in client_answers]
    assert len(answers) >= 200 and {status for status, _ in answers} == {200}
    assert {version for _, version in answers} == {old, new}
    for client_answers in seen:  # each client: the old version, then the new one, never back
        versions = [version for _, version in client_answers]
        assert versions[-1] == new
        first_new = versions.index(new)
        assert set(versions[:first_new]) <= {old} and set(versions[first_new:]) == {new}


def test_a_tampered_version_is_refused_and_the_previous_keeps_serving(
        reloading_server: ServerProcess, store_root: Path) -> None:
    good = served_version(reloading_server.url)
    bad = republish(store_root, aliases=())  # not served yet: tamper first, then move latest onto it
    with open(store_root / "ci" / "versions" / str(bad) / "psf.onnx", "ab") as fh:
        fh.write(b"tampered")
    Store(store_root).set_alias("ci", "latest", bad)
    wait_for(lambda: f"refusing ci@{bad}" in reloading_server.output())
    log = reloading_server.output()
    assert "sha256" in log and f"latest keeps serving version {good}" in log
    assert served_version(reloading_server.url) == good
    explicit = httpx.get(reloading_server.url + "/psf", params={**QUERY, "version": str(bad)})
    assert explicit.status_code == 503 and "sha256" in explicit.json()["detail"]
    metrics = httpx.get(reloading_server.url + "/metrics").text
    assert f'psf_model_refused_total{{model="ci",version="{bad}"}} 1.0' in metrics


def test_a_moved_alias_is_followed(reloading_server: ServerProcess, store_root: Path) -> None:
    store = Store(store_root)
    first, second = store.versions("ci")[:2]
    store.set_alias("ci", "prod", first)
    wait_for(lambda: httpx.get(reloading_server.url + "/psf", params={**QUERY, "version": "prod"}).status_code == 200)
    assert served_version(reloading_server.url, version="prod") == str(first)
    store.set_alias("ci", "prod", second)
    wait_for(lambda: served_version(reloading_server.url, version="prod") == str(second))

