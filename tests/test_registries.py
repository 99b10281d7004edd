"""Registered names dispatch: the class a config names is the class that builds the dataset, the model
and its decoder network; checking a config needs no torch."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from accelerate import PartialState
from pydantic import BaseModel, ConfigDict
from torch import nn

from training.config import ConfigError, load_config
from training.datasets.bank import PSFBank
from training.datasets.online import RayTracedPSFs
from training.export import check_parity, export_onnx, psf_tolerance
from training.fit import build_model, make_dataset
from training.models.cvae import CVAE
from training.predictors import load_torch
from training.raytrace import LensTracer
from training.registry import DATASETS, NETWORKS, UnknownNameError

from .conftest import ROOT

CI = "configs/ci.yml"
LENS = ["name=plugin", "lens.file=lenses/cooke_triplet.json", "data.kernel_size=16"]
TINY = ["data.train_samples=16", "data.block=8", "data.spp=256"]


class EveryPSFUniform(RayTracedPSFs):
    """A dataset of this test: nothing is traced, every PSF is the uniform kernel."""

    @classmethod
    def from_config(cls, cfg, tracer, accelerator):
        ds = cls(tracer, np.zeros((cfg.data.train_samples, 3)), ks=cfg.data.kernel_size, spp=cfg.data.spp,
                 block=cfg.data.block, progress=False)
        ds.psfs[:] = 1.0 / cfg.data.kernel_size**2
        ds.traced[:] = True
        return ds


class ConstantArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    logit: float = 0.0


class ConstantLogits(nn.Module):
    """A network of this test: the same logits whatever the input (a uniform PSF)."""

    def __init__(self, n_in: int, kernel_size: int, args: ConstantArgs) -> None:
        super().__init__()
        self.logits = nn.Parameter(torch.full((kernel_size * kernel_size,), args.logit))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits.expand(x.shape[0], -1)


@pytest.fixture
def plugins():
    DATASETS.add("uniform_test", impl=f"{__name__}:EveryPSFUniform")
    NETWORKS.add("constant_test", impl=f"{__name__}:ConstantLogits", args=ConstantArgs)
    yield
    DATASETS.remove("uniform_test")
    NETWORKS.remove("constant_test")


@pytest.fixture(scope="module")
def tracer():
    return LensTracer.for_run(load_config(CI))


def test_checking_a_config_does_not_import_torch():
    code = ("import sys\nfrom training.config import load_config\n"
            "for name in ('ci', 'default', 'phone', 'achromat-quickstart'):\n"
            "    load_config(f'configs/{name}.yml', ['network.type=pixel_shuffle', 'network.factor=4'])\n"
            "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'deeplens'))\n"
            "assert not loaded, loaded\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]


@pytest.mark.parametrize("data_type, cls", [("online", RayTracedPSFs), ("bank", PSFBank)])
def test_shipped_datasets_build_from_their_name(tracer, tmp_path, data_type, cls):
    cfg = load_config(CI, [*TINY, f"data.type={data_type}", f"data.cache_dir={tmp_path}"])
    ds = make_dataset(cfg, tracer, PartialState(cpu=True))
    assert type(ds) is cls and len(ds) == 16
    psf, cond = ds[0]
    assert psf.shape == (16, 16) and cond.shape == (3,)


def test_a_newly_registered_dataset_is_the_one_trained_on(tracer, plugins):
    cfg = load_config(CI, [*TINY, "data.type=uniform_test"])
    ds = make_dataset(cfg, tracer, PartialState(cpu=True))
    assert type(ds) is EveryPSFUniform, "a registered data.type must build its own class, not online"
    np.testing.assert_allclose(ds[3][0].numpy(), 1.0 / 256)


def test_a_newly_registered_network_is_built_with_its_own_checked_keys(plugins):
    model = build_model(load_config(None, [*LENS, "network.type=constant_test", "network.logit=2.5"]))
    assert isinstance(model.decoder.net, ConstantLogits)
    assert model.decoder.net.logits[0].item() == 2.5
    with pytest.raises(ConfigError, match=r"logt: unknown key for network 'constant_test' \(its keys: logit\)"):
        load_config(None, [*LENS, "network.type=constant_test", "network.logt=1"])


def test_model_keys_are_the_models_own(tmp_path):
    model = build_model(load_config(CI, ["model.latent_size=3", "model.hidden=16"]))
    assert isinstance(model, CVAE) and model.args.latent_size == 3 and model.args.hidden == 16
    message = r"latent_sise: unknown key for model 'cvae' \(its keys: latent_size, hidden, steer, supersample\)"
    with pytest.raises(ConfigError, match=message):
        load_config(CI, ["model.latent_sise=3"])
    with pytest.raises(ConfigError, match=r"model: latent_size: Input should be greater than or equal to 1 \(got 0\)"):
        load_config(CI, ["model.latent_size=0"])


def test_a_run_folder_rebuilds_the_model_type_it_recorded(tmp_path):
    model = build_model(load_config(CI))
    record = model.record()
    assert record["type"] == "cvae"
    (tmp_path / "model_args.json").write_text(json.dumps({**record, "type": "nope"}))
    with pytest.raises(UnknownNameError, match="unknown model type 'nope'; known: cvae"):
        load_torch(tmp_path)


@pytest.mark.parametrize("network", NETWORKS.names())
def test_every_network_exports_the_same_four_graphs(tmp_path, network):
    cfg = load_config(CI, [f"network={{type: {network}, hidden: 32}}"])
    model = build_model(cfg)
    specs = export_onnx(model, tmp_path, cfg.export.opset)
    assert {role: (s.inputs, s.outputs) for role, s in specs.items()} == {
        "psf": (["condition"], ["psf"]), "prior": (["condition"], ["mu", "logvar"]),
        "decoder": (["z", "condition"], ["psf"]), "encoder": (["psf", "condition"], ["mu", "logvar"])}
    report = check_parity(model, tmp_path, specs, cfg)  # raises past the tolerance
    assert max(v for k, v in report.items() if k.endswith(".psf")) <= psf_tolerance(cfg, None)
    assert max(v for k, v in report.items() if not k.endswith(".psf")) <= cfg.export.parity_tol
