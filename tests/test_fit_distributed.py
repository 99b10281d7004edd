"""Two data-parallel training processes on the CPU (torchrun), and resuming their checkpoint in one."""

from __future__ import annotations

import json

import numpy as np
import pytest

from models_store import Store
from models_store.engine import OnnxModel

from .conftest import ROOT, run_cli

# whole training runs (minutes)
pytestmark = pytest.mark.slow

# a short fit of configs/ci.yml: enough steps for two checkpoints, one thread per process on 2 cores
SHORT = ["train.steps=40", "train.log_every=20", "checkpoint.every=20", "validation.every=40", "train.threads=1"]


@pytest.fixture(scope="module")
def two_process_fit(tmp_path_factory) -> dict:
    base = tmp_path_factory.mktemp("fit2")
    store, runs = base / "store", base / "runs"
    # python -m torch.distributed.run is what the torchrun command runs
    proc = run_cli("-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "training.fit",
                   "configs/ci.yml", "--store", str(store), f"run_dir={runs}", *SHORT, timeout=600,
                   env={"OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, f"2-process fit failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    (run_dir,) = runs.iterdir()  # both ranks used the one run folder chosen by the main process
    return {"store": store, "run_dir": run_dir, "stdout": proc.stdout}


def test_both_ranks_trace_their_own_share_and_step_in_sync(two_process_fit):
    metrics = json.loads((two_process_fit["run_dir"] / "metrics.json").read_text())
    assert metrics["processes"] == 2
    ranks = metrics["ranks"]
    assert [r["rank"] for r in ranks] == [0, 1]
    assert all(r["steps"] == 40 for r in ranks)
    # whole blocks of 32 alternate between the ranks: 8 each of the 16 blocks, nothing traced twice
    assert [r["traced"] for r in ranks] == [256, 256] and metrics["ray_traced_samples"] == 512
    # each rank saw different samples, so equal weights mean the gradients were averaged every step
    assert ranks[0]["weights_sha256"] == ranks[1]["weights_sha256"]
    assert "2 process(es)" in two_process_fit["stdout"]


def test_only_the_main_process_publishes_and_the_model_loads(two_process_fit):
    store = Store(two_process_fit["store"])
    assert store.versions("ci") == [1]
    assert store.manifest("ci").training.processes == 2
    onnx = OnnxModel.from_store(store, "ci")
    psf = onnx.psf(field=0.5, depth=5.0, wavelength=550.0)
    assert psf.shape == (1, 16, 16) and np.isfinite(psf).all()
    np.testing.assert_allclose(psf.sum(), 1.0, rtol=1e-5)
    assert sorted(p.name for p in (two_process_fit["run_dir"] / "checkpoints").iterdir()) == [
        "checkpoint_0", "checkpoint_1"]


def test_a_two_process_checkpoint_resumes_in_one_process(two_process_fit, tmp_path):
    run_dir = two_process_fit["run_dir"]
    proc = run_cli("-m", "training.fit", "configs/ci.yml", "--store", str(tmp_path / "store"), f"resume={run_dir}",
                   *SHORT, "train.steps=50", "publish=false", cwd=ROOT, timeout=600)
    assert proc.returncode == 0, f"resume failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    assert "resumed from" in proc.stdout and "at step 40" in proc.stdout
    assert "1 process(es)" in proc.stdout
    steps = [json.loads(line)["step"] for line in (run_dir / "train_log.jsonl").read_text().splitlines()]
    assert steps == [20, 40, 50]
