"""The top-level Dockerfile: linted with hadolint, built (CPU variant) and run for real with podman."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import uuid

import httpx
import numpy as np
import pytest

from clients import PSFClient

from . import container
from .conftest import ROOT, free_port


def test_dockerfile_passes_hadolint():
    proc = subprocess.run([container.tool("hadolint"), "--failure-threshold", "info", str(ROOT / "Dockerfile")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def running(trained_store, tmp_path_factory):
    started = time.monotonic()
    container.build()
    build_s = time.monotonic() - started
    store = tmp_path_factory.mktemp("container") / "store"
    shutil.copytree(trained_store, store)
    name, port = f"psf-test-{uuid.uuid4().hex[:8]}", free_port()
    container.run("run", "-d", "--name", name, *container.RUN_LIMITS, "-p", f"127.0.0.1:{port}:8000",
                  "-v", f"{store}:/store:ro", "-e", "PSF_GRACEFUL_TIMEOUT_S=20", container.IMAGE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        else:
            logs = container.run("logs", name, check=False)
            pytest.fail(f"the container did not become ready:\n{logs.stdout[-3000:]}\n{logs.stderr[-3000:]}")
        yield {"name": name, "url": url, "store": store, "build_s": build_s}
    finally:
        container.run("rm", "-f", "-t", "0", name, check=False, timeout=60)


def inspect(ref: str, kind: str = "container") -> dict:
    return json.loads(container.run(kind, "inspect", ref).stdout)[0]


def test_the_container_answers_psf_queries_as_the_store_model_does(running):
    from models_store.engine import OnnxModel

    local = OnnxModel.from_store(running["store"], "ci", providers=["CPUExecutionProvider"])
    with PSFClient(running["url"]) as client:
        psf = client.psf(field=0.6, azimuth=30.0, depth=5.0, wavelength=550.0)
        grid = client.psf_grid(4, 3, depth=8.0, wavelength=500.0)
    assert psf.meta.model == "ci" and psf.shape == (16, 16)
    # the image runs Python 3.13 and its own wheels: the same onnxruntime release gives the same
    # floats up to the last bits
    np.testing.assert_allclose(psf, local.psf(field=0.6, azimuth=30.0, depth=5.0, wavelength=550.0)[0],
                               rtol=0, atol=1e-7)
    np.testing.assert_allclose(grid, local.psf_grid(4, 3, depth=8.0, wavelength=500.0), rtol=0, atol=1e-7)


def test_the_healthcheck_needs_no_curl_and_reports_healthy(running):
    image = inspect(container.IMAGE, "image")  # podman reports the docker-format HEALTHCHECK at the top level
    assert image["Healthcheck"]["Test"] == ["CMD", "python", "-m", "serving.healthcheck"]
    assert container.run("exec", running["name"], "sh", "-c", "command -v curl || echo none").stdout.strip() == "none"
    container.run("healthcheck", "run", running["name"])  # the image's HEALTHCHECK command, run by podman
    assert inspect(running["name"])["State"]["Health"]["Status"] == "healthy"


def test_the_server_runs_as_a_non_root_user(running):
    assert inspect(container.IMAGE, "image")["Config"]["User"] == "10001:10001"
    ids = container.run("exec", running["name"], "id", "-u").stdout.strip()
    assert ids == "10001"
    # the server process itself (PID 1), not only a shell exec'd beside it
    status = container.run("exec", running["name"], "cat", "/proc/1/status").stdout
    assert any(line.split()[:2] == ["Uid:", "10001"] for line in status.splitlines()), status


def test_sigterm_stops_it_cleanly_within_the_graceful_timeout(running):
    started = time.monotonic()
    container.run("stop", "--time", "25", running["name"], timeout=60)
    took = time.monotonic() - started
    state = inspect(running["name"])["State"]
    assert state["ExitCode"] == 0, state
    assert took < 20, f"stopping took {took:.1f} s; SIGTERM must end the server within PSF_GRACEFUL_TIMEOUT_S=20"
    logs = container.run("logs", running["name"]).stdout + container.run("logs", running["name"]).stderr
    assert "Finished server process" in logs or "Shutting down" in logs, logs[-2000:]
