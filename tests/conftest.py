"""Shared fixtures: a real fit of configs/ci.yml into a temporary store, and a real server on it."""

from __future__ import annotations

import io
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import numpy as np
import pytest

if TYPE_CHECKING:
    from clients import LocalPSFModel, PSFClient

ROOT = Path(__file__).resolve().parents[1]

# A test that needs one of these (directly or through another fixture) is marked slow: the session fit
# (minutes) or a server process. `pytest -m "not slow"` is the fast tier; `make test` runs everything.
SLOW_FIXTURES = {"fit_result", "trained_store", "server"}


def pytest_collection_modifyitems(config, items) -> None:
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


def run_cli(*args: str, cwd: Path = ROOT, timeout: float = 300, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})}, check=False)


@pytest.fixture(scope="session")
def fit_result(tmp_path_factory) -> dict:
    """One real `python -m training.fit configs/ci.yml` run, shared by the whole session."""
    base = tmp_path_factory.mktemp("fit")
    store, runs = base / "store", base / "runs"
    # 300 s is not enough for the ci fit on two cores shared with other work (110-250 s seen here)
    proc = run_cli("-m", "training.fit", "configs/ci.yml", "--store", str(store), f"run_dir={runs}", timeout=900)
    assert proc.returncode == 0, f"fit failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    run_dir = next(runs.iterdir())
    return {"store": store, "run_dir": run_dir, "stdout": proc.stdout, "stderr": proc.stderr}


@pytest.fixture(scope="session")
def trained_store(request, tmp_path_factory) -> Path:
    """The store of the session's fit; PSF_TEST_STORE=DIR (a store holding a configs/ci.yml model
    named ci) skips the fit for tests that only need the store, on a busy machine. It is copied."""
    reuse = os.environ.get("PSF_TEST_STORE")
    if reuse:
        copy = tmp_path_factory.mktemp("reused") / "store"
        shutil.copytree(reuse, copy)
        return copy
    return request.getfixturevalue("fit_result")["store"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """`python -m serving` on a loopback port, stopped when the test session ends."""

    def __init__(self, store: Path, *extra: str, env: dict | None = None, log_path: Path | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # A file, not a pipe: a pipe nobody reads fills up with access-log lines and blocks the server.
        self.log_path = log_path or Path(store).parent / f"server-{self.port}.log"
        self.log = open(self.log_path, "w")  # noqa: SIM115 - open while the server runs, closed when it stops
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "serving", "--store", str(store), "--host", "127.0.0.1", "--port", str(self.port),
             *extra],
            cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT, text=True,
            env={**os.environ, **(env or {})},
        )

    def output(self) -> str:
        self.log.flush()
        return self.log_path.read_text()

    def wait(self, path: str = "/healthz", timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.output()}")
            try:
                if httpx.get(self.url + path, timeout=1).status_code < 500:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"server on {self.url} did not answer {path} within {timeout}s")

    def stop(self) -> str:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        return self.log_path.read_text()


@contextmanager
def ready_server(store: Path, *extra: str, env: dict | None = None, log_path: Path | None = None,
                 wait_path: str = "/readyz") -> Iterator[ServerProcess]:
    """A server answering ``wait_path`` for the block, stopped after it (also when it fails to start)."""
    server = ServerProcess(store, *extra, env=env, log_path=log_path)
    try:
        server.wait(wait_path)
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def server(trained_store):
    with ready_server(trained_store) as srv:
        yield srv


@pytest.fixture(scope="session")
def server_url(server) -> str:
    return server.url


@pytest.fixture(scope="session")
def local_model(trained_store: Path):
    """The served model, in this process (what every HTTP answer must equal)."""
    from models_store.engine import OnnxModel

    return OnnxModel.from_store(trained_store, "ci")


@pytest.fixture(scope="session")
def http(server_url: str):
    with httpx.Client(base_url=server_url, timeout=30.0) as client:
        yield client


# the embedded model and a client of the session's server, for the client tests
@pytest.fixture(scope="module")
def local(trained_store: Path) -> LocalPSFModel:
    from clients import LocalPSFModel

    return LocalPSFModel.from_store(trained_store, "ci")


@pytest.fixture(scope="module")
def client(server_url: str) -> Iterator[PSFClient]:
    from clients import PSFClient

    with PSFClient(server_url, timeout=30.0) as psf_client:
        yield psf_client


def imports_in_a_fresh_python(code: str) -> None:
    """Run ``code`` (import statements and asserts on ``sys.modules``) in a new interpreter; fail with its error."""
    result = run_cli("-c", code, timeout=120)
    assert result.returncode == 0, result.stderr


def load_npy(response: httpx.Response) -> np.ndarray:
    """The array of a 200 npy response (fails with the server's message otherwise)."""
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/x-npy"
    return np.load(io.BytesIO(response.content), allow_pickle=False)


def republish(root: Path, name: str = "ci", aliases: tuple[str, ...] = ("latest",), *,
              source: Path | None = None) -> int:
    """Publish the latest version's files (of ``source``, default ``root``) as a new version of ``root``;
    returns its number."""
    from models_store import Store

    origin = Store(source or root)
    manifest = origin.manifest(name)
    folder = origin.version_dir(name, manifest.version)
    fields = manifest.model_dump(exclude={"name", "version", "files"})
    return Store(root).publish(name, {file: folder / file for file in manifest.files}, fields,
                               aliases=aliases).version


def metric(text: str, name: str, **labels: str) -> float:
    """The sum of the Prometheus samples called ``name`` with these labels in /metrics text (0 if none)."""
    from prometheus_client.parser import text_string_to_metric_families

    return sum(sample.value for family in text_string_to_metric_families(text) for sample in family.samples
               if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()))


def wait_until(what: str, done: Callable[[], bool], timeout: float = 30.0) -> None:
    """Poll ``done`` until it is true (events are ordered by what the server reports, not by sleeping)."""
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.02)


def requests_in_flight(url: str) -> float:
    """Requests the server is answering, not counting the /metrics request that asks."""
    return metric(httpx.get(url + "/metrics").text, "psf_http_requests_in_flight") - 1


@pytest.fixture
def empty_store(tmp_path: Path) -> Path:
    root = tmp_path / "empty-store"
    root.mkdir()
    return root


@pytest.fixture
def dead_url() -> str:
    """A URL on which nothing listens."""
    return f"http://127.0.0.1:{free_port()}"
