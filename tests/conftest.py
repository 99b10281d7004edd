"""Shared fixtures: a real fit of configs/ci.yml into a temporary store, and a real server on it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from serving.process import ServerProcess, free_port  # noqa: F401  (tests import ServerProcess from here)

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args: str, cwd: Path = ROOT, timeout: float = 300, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


@pytest.fixture(scope="session")
def fit_result(tmp_path_factory) -> dict:
    """One real `python -m training.fit configs/ci.yml` run, shared by the whole session."""
    base = tmp_path_factory.mktemp("fit")
    store, runs = base / "store", base / "runs"
    proc = run_cli("-m", "training.fit", "configs/ci.yml", "--store", str(store), f"run_dir={runs}")
    assert proc.returncode == 0, f"fit failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    run_dir = next(runs.iterdir())
    return {"store": store, "run_dir": run_dir, "stdout": proc.stdout, "stderr": proc.stderr}


@pytest.fixture(scope="session")
def trained_store(fit_result) -> Path:
    return fit_result["store"]


@pytest.fixture(scope="session")
def server(trained_store):
    srv = ServerProcess(trained_store)
    srv.wait("/readyz")
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def server_url(server) -> str:
    return server.url


@pytest.fixture
def empty_store(tmp_path: Path) -> Path:
    root = tmp_path / "empty-store"
    root.mkdir()
    return root


@pytest.fixture
def dead_url() -> str:
    """A URL on which nothing listens."""
    return f"http://127.0.0.1:{free_port()}"
