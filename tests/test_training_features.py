"""The framework's comforts: name registries, loss specs, schedules, resume, banks, seeds,
--validate-only, and focus as a condition. Fits here are tiny real fits (a few seconds each)."""

import json
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

from models_store import Store
from models_store.engine import OnnxModel
from training.config import ConfigError, ScheduleConfig, load_config
from training.losses import parse_loss
from training.schedules import lr_lambda

from .conftest import run_cli

CI = "configs/ci.yml"


def tiny(tmp_path, *extra):
    """Overrides that make a fit take seconds; everything else from configs/ci.yml."""
    return ["data.train_samples=64", "data.block=16", "data.spp=256", "train.steps=20", "train.batch_size=16",
            "train.log_every=10", "checkpoint.every=10", "validation.every=20", "validation.samples=4",
            "validation.spp=1024", "evaluation.grid=[2,1,1]", "evaluation.rays=4096", "evaluation.repeats=1",
            "evaluation.spp_levels=[256]", "evaluation.interp_pairs=0", "train.threads=1",
            f"run_dir={tmp_path / 'runs'}", f"data.cache_dir={tmp_path / 'banks'}",
            f"evaluation.cache_dir={tmp_path / 'refs'}", *extra]


def fit(tmp_path, *extra, store=None):
    proc = run_cli("-m", "training.fit", CI, "--store", str(store or tmp_path / "store"), *tiny(tmp_path, *extra))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc, json.loads(proc.stdout[proc.stdout.index("\n{") + 1:])


@pytest.mark.parametrize("override, expected", [
    ("network.type=unet9", "unknown network type 'unet9'; known: conv_transpose, mlp_basis"),
    ("data.type=disk", "data.type: unknown data type 'disk'; known: bank, online"),
    ("model.type=vae", "model.type: unknown model type 'vae'; known: cvae"),
    ("network.widht=3", "widht: unknown key for network 'separable' (its keys: hidden, depth, rank)"),
    ("loss.recon=1*L3", "loss term 'L3' is unknown; known: L1, MSE, CE"),
    ("schedule.type=linear", "schedule.type"),
])
def test_names_that_do_not_resolve_list_what_exists(override, expected):
    with pytest.raises(ConfigError) as err:
        load_config(CI, [override])
    assert expected in str(err.value)


def test_loss_spec_parsing():
    assert parse_loss("1*L1+1e3*MSE") == [(1.0, "L1"), (1000.0, "MSE")]
    assert parse_loss("CE + 2.5e+1*L1") == [(1.0, "CE"), (25.0, "L1")]
    for bad in ("", "1*", "x*L1", "-1*L1", "L1+"):
        with pytest.raises(ValueError):
            parse_loss(bad)


def test_schedules():
    cos = lr_lambda(ScheduleConfig(type="cosine", warmup_steps=10, min_lr_ratio=0.1), 110)
    assert cos(0) == pytest.approx(0.1) and cos(9) == pytest.approx(1.0)
    assert cos(10) == pytest.approx(1.0) and cos(60) == pytest.approx(0.55) and cos(110) == pytest.approx(0.1)
    restarts = lr_lambda(ScheduleConfig(type="cosine_restarts", warmup_steps=0, cycles=2, min_lr_ratio=0.0), 100)
    assert restarts(49) < 0.01 and restarts(50) == pytest.approx(1.0)
    const = lr_lambda(ScheduleConfig(type="constant", warmup_steps=4), 100)
    assert const(1) == pytest.approx(0.5) and const(50) == 1.0


@pytest.mark.slow
def test_resume_latest_continues_the_same_run(tmp_path):
    _, result = fit(tmp_path, "publish=false")
    run_dir = result["run_dir"]
    proc, resumed = fit(tmp_path, "publish=false", "resume=latest", "train.steps=30")
    assert resumed["run_dir"] == run_dir
    assert "resumed from" in proc.stdout and "at step 20" in proc.stdout
    steps = [json.loads(line)["step"] for line in Path(run_dir, "train_log.jsonl").read_text().splitlines()]
    assert steps == [10, 20, 30]
    assert resumed["metrics"]["steps"] == 30


@pytest.mark.slow
def test_resume_without_a_run_is_a_clear_error(tmp_path):
    proc = run_cli("-m", "training.fit", CI, *tiny(tmp_path, "resume=latest"))
    assert proc.returncode == 2 and "found no run of 'ci' with checkpoints" in proc.stderr


@pytest.mark.slow
def test_same_seed_same_weights_and_the_bank_is_reused(tmp_path):
    _, a = fit(tmp_path, "publish=false", "data.type=bank")
    banks = list((tmp_path / "banks").glob("bank-*.safetensors"))
    assert len(banks) == 1
    stamp = banks[0].stat().st_mtime_ns
    _, b = fit(tmp_path, "publish=false", "data.type=bank")
    assert banks[0].stat().st_mtime_ns == stamp, "the bank was rebuilt instead of reused"
    wa, wb = load_file(f"{a['run_dir']}/model.safetensors"), load_file(f"{b['run_dir']}/model.safetensors")
    assert wa.keys() == wb.keys()
    for key in wa:
        np.testing.assert_array_equal(wa[key], wb[key], err_msg=key)
    fit(tmp_path, "publish=false", "data.type=bank", "seed=1")
    assert len(list((tmp_path / "banks").glob("bank-*.safetensors"))) == 2  # other seed, other samples


@pytest.mark.slow
def test_validate_only_on_checkpoint_run_and_published_model(tmp_path):
    store = tmp_path / "store"
    _, result = fit(tmp_path)
    run_dir = result["run_dir"]
    for target in (f"{run_dir}/checkpoints/checkpoint_1", run_dir, "ci@1"):
        proc = run_cli("-m", "training.fit", CI, "--store", str(store), "--validate-only", target,
                       "--out", str(tmp_path / "val"), *tiny(tmp_path))
        assert proc.returncode == 0, proc.stderr[-2000:]
        metrics = json.loads(proc.stdout[proc.stdout.index("{"):])
        assert 0 < metrics["rel_l1_mean"] < 2
    assert (tmp_path / "val" / "validate_only.png").is_file()
    for name in ("config.yaml", "model_args.json", "model.safetensors"):  # a checkpoint rebuilds on its own
        assert (tmp_path / "runs" / run_dir.split("/")[-1] / "checkpoints" / "checkpoint_1" / name).is_file()
    proc = run_cli("-m", "training.fit", CI, "--store", str(store), "--validate-only", "nope@3", *tiny(tmp_path))
    assert proc.returncode == 1 and "not in the store" in proc.stderr


@pytest.mark.slow
def test_focus_as_a_condition_end_to_end(tmp_path):
    store = tmp_path / "store"
    fit(tmp_path, "conditions.focus={min: 3, max: 20}", "name=focus", store=store)
    manifest = Store(store).manifest("focus")
    assert manifest.condition_names == ["field", "depth", "wavelength", "focus"]
    assert manifest.conditions[3].unit == "m" and manifest.conditions[3].max == 20
    model = OnnxModel.from_store(store, "focus")
    near, far = model.psf(field=0.0, depth=3.0, wavelength=550, focus=[3.0, 20.0])
    assert near.max() > far.max(), "an object at the focus distance must be the sharper one"
    with pytest.raises(ValueError, match="focus is missing"):
        model.psf(field=0.0, depth=3.0, wavelength=550)
