"""The store under faults: a publisher killed (SIGKILL) at each step, a full disk, a read-only volume.
A reader never sees a partial version, the next publish succeeds, and verify says what was left."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from models_store import PublishError, Store
from tests.conftest import ROOT
from tests.manifests import manifest_fields

# A publisher that kills itself with SIGKILL at the N-th call of one step of Store.publish.
CHILD = r"""
import os, signal, sys
from pathlib import Path
from models_store import store as st
from tests.manifests import manifest_fields

root, src, step, nth = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])
calls = 0

def die_at(owner, attr, half_copy=False):
    real = getattr(owner, attr)
    def wrapped(*args, **kwargs):
        global calls
        calls += 1
        if calls == nth:
            if half_copy:  # the file half written, then the power goes
                data = Path(args[0]).read_bytes()
                with open(args[1], "wb") as fh:
                    fh.write(data[: len(data) // 2])
            os.kill(os.getpid(), signal.SIGKILL)
        return real(*args, **kwargs)
    setattr(owner, attr, wrapped)

steps = {"copy": (st.shutil, "copyfile"), "half-copy": (st.shutil, "copyfile"), "manifest": (st, "_write_atomic"),
         "rename": (st.os, "rename"), "replace": (st.os, "replace")}
owner, attr = steps[step]
die_at(owner, attr, half_copy=step == "half-copy")
files = {p.name: p for p in sorted(src.iterdir())}
st.Store(root).publish("cooke", files, manifest_fields())
print("published")
"""

# (step, n-th call, a new version is complete and listed afterwards, a staging folder is left)
POINTS = {
    "before the second file": ("copy", 2, False, True),
    "half-way through a file": ("half-copy", 3, False, True),
    "before the manifest": ("manifest", 1, False, True),
    "before the rename into place": ("rename", 1, False, True),
    "after the rename, before latest moves": ("replace", 2, True, False),
}


@pytest.fixture
def sources(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    for role in ("psf", "prior", "decoder", "encoder"):
        (src / f"{role}.onnx").write_bytes(os.urandom(64 << 10))
    return src


def publish(store: Store, src: Path) -> int:
    return store.publish("cooke", {p.name: p for p in sorted(src.iterdir())}, manifest_fields()).version


@pytest.mark.parametrize("step, nth, completes, leaves_staging", POINTS.values(), ids=POINTS.keys())
def test_a_publisher_killed_at_any_step_leaves_no_partial_version(
        tmp_path: Path, sources: Path, step: str, nth: int, completes: bool, leaves_staging: bool) -> None:
    store = Store(tmp_path / "store")
    assert publish(store, sources) == 1
    proc = subprocess.run([sys.executable, "-c", CHILD, str(store.root), str(sources), step, str(nth)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == -signal.SIGKILL, proc.stdout + proc.stderr
    # readers: only complete versions, and latest on one of them
    assert store.versions("cooke") == ([1, 2] if completes else [1])
    assert store.resolve("cooke") == 1  # latest had not moved yet
    stale = store.stale_staging("cooke")
    assert bool(stale) == leaves_staging
    report = store.verify()
    assert all(report[f"cooke@{v}"] == "ok" for v in store.versions("cooke"))
    assert [key for key, value in report.items() if value != "ok"] == [f"cooke/{p.name}" for p in stale]
    # the next publish succeeds, takes the next number, and cleans up after the dead one
    new = publish(store, sources)
    assert new == (3 if completes else 2) and store.resolve("cooke") == new
    assert store.stale_staging("cooke") == [] and not list((store.root / "cooke").glob(".publish-*"))
    assert set(store.verify().values()) == {"ok"}


def test_a_live_publishers_staging_folder_is_not_stale(tmp_path: Path, sources: Path) -> None:
    store = Store(tmp_path / "store")
    publish(store, sources)
    mine = store.root / "cooke" / f".publish-{os.uname().nodename}-{os.getpid()}-abc"
    mine.mkdir()
    assert store.stale_staging() == [] and set(store.verify().values()) == {"ok"}


@contextmanager
def small_volume(path: Path, size: str) -> Iterator[Path]:
    """A real tmpfs of ``size`` at ``path`` (CI and this project's machines run as root)."""
    path.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=True)


def test_a_full_disk_is_a_clear_error_and_leaves_nothing(tmp_path: Path, sources: Path) -> None:
    with small_volume(tmp_path / "vol", "400k") as vol:
        store = Store(vol / "store")
        assert publish(store, sources) == 1  # 256 KiB of 400
        with pytest.raises(PublishError, match="No space left on device") as info:
            publish(store, sources)
        assert "nothing was published" in str(info.value) and "cooke" in str(info.value)
        assert store.versions("cooke") == [1] and store.resolve("cooke") == 1
        assert not list((store.root / "cooke").glob(".publish-*"))
        assert store.verify() == {"cooke@1": "ok"}


def test_a_read_only_store_is_a_clear_error_and_leaves_nothing(tmp_path: Path, sources: Path) -> None:
    with small_volume(tmp_path / "vol", "4m") as vol:
        store = Store(vol / "store")
        publish(store, sources)
        subprocess.run(["mount", "-o", "remount,ro", str(vol)], check=True)
        with pytest.raises(PublishError, match="Read-only file system"):
            publish(store, sources)
        assert store.versions("cooke") == [1] and store.verify() == {"cooke@1": "ok"}
