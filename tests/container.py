"""Building and running the top-level Dockerfile with podman, for tests/test_container.py.

No registry is reachable here, so the CPU variant is built FROM a local Debian base made by
.ci/container-base.sh. pip inside the build gets this machine's package index settings (build
arguments) and CA file (a build secret); podman runs with runc and explicit ulimits, which this host
needs (crun fails on its hybrid cgroups and podman's default limits are refused).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BASE_IMAGE = "localhost/psf-base:trixie"
IMAGE = "localhost/psf-surrogate:cpu-test"
PODMAN = ["podman", "--runtime", "runc"]
RUN_LIMITS = ["--ulimit", "nofile=20000:20000", "--ulimit", "nproc=32768:32768"]


def tool(name: str) -> str:
    """A command from PATH or beside this Python (the venv's bin); a clear failure when absent."""
    found = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    assert found, f"{name} is not installed: .ci/run installs it (apt-get / pip, see .ci/run)"
    return found


def _pip_settings() -> dict[str, str]:
    """index-url, extra-index-url, trusted-host and cert as pip sees them here (config files and PIP_*)."""
    out = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True).stdout
    found: dict[str, str] = {}
    for line in out.splitlines():
        key, _, value = line.partition("=")
        found[key.split(".")[-1]] = value.strip().strip("'\"")
    for key in ("index-url", "extra-index-url", "trusted-host", "cert"):
        env = os.environ.get("PIP_" + key.upper().replace("-", "_"))
        if env:
            found[key] = env
    return found


def build_args() -> list[str]:
    settings, args = _pip_settings(), []
    for key in ("index-url", "extra-index-url", "trusted-host"):
        # file:// indexes are folders of this machine, which the build cannot see
        value = " ".join(v for v in settings.get(key, "").split() if not v.startswith("file:"))
        if value:
            args += ["--build-arg", f"PIP_{key.upper().replace('-', '_')}={value}"]
    cert = settings.get("cert") or os.environ.get("SSL_CERT_FILE")
    if cert and Path(cert).is_file():
        args += ["--secret", f"id=pip-ca,src={cert}"]
    return args


def run(*args: str, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([*PODMAN, *args], capture_output=True, text=True, timeout=timeout)
    if check:
        assert proc.returncode == 0, \
            f"podman {' '.join(args[:3])} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def build() -> subprocess.CompletedProcess:
    tool("podman")
    base = subprocess.run(["bash", str(ROOT / ".ci" / "container-base.sh"), BASE_IMAGE], capture_output=True,
                          text=True, timeout=600)
    assert base.returncode == 0, f"could not make the base image:\n{base.stdout}\n{base.stderr}"
    # --format docker keeps the HEALTHCHECK (the OCI image format has no field for it)
    return run("build", "--format", "docker", "--network", "host", "--build-arg", f"BASE={BASE_IMAGE}",
               "--build-arg", "EXTRA=serve", *build_args(), "-t", IMAGE, str(ROOT))
