"""One interface over a trained model wherever it lives: torch weights in a run folder or checkpoint,
or the ONNX graphs of a published store version. Validation and evaluation only need these four calls."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from safetensors.torch import load_file

from models_store import Store, rotate_psfs

from .models.base import SurrogateModel
from .registry import MODELS


class Predictor(Protocol):
    name: str
    kernel_size: int
    condition_names: list[str]

    def predict(self, condition: np.ndarray) -> np.ndarray: ...
    def latent(self, condition: np.ndarray) -> np.ndarray: ...
    def decode(self, z: np.ndarray, condition: np.ndarray) -> np.ndarray: ...


class TorchPredictor:
    def __init__(self, model: SurrogateModel, name: str = "torch") -> None:
        self.model, self.name = model.eval().cpu(), name
        self.kernel_size = model.args.kernel_size
        self.condition_names = [c[0] for c in model.args.conditions]

    @torch.no_grad()
    def predict(self, condition: np.ndarray) -> np.ndarray:
        return self.model.predict(torch.as_tensor(condition, dtype=torch.float32)).numpy()

    @torch.no_grad()
    def latent(self, condition: np.ndarray) -> np.ndarray:
        return self.model.prior(torch.as_tensor(condition, dtype=torch.float32))[0].numpy()

    @torch.no_grad()
    def decode(self, z: np.ndarray, condition: np.ndarray) -> np.ndarray:
        c = torch.as_tensor(condition, dtype=torch.float32)
        return self.model.decoder(torch.as_tensor(z, dtype=torch.float32), c).numpy()


class OnnxPredictor:
    def __init__(self, store: Store, ref: str) -> None:
        from models_store.engine import OnnxModel

        name, _, version = ref.partition("@")
        self.onnx = OnnxModel.from_store(store, name, version or None)
        self.name = f"{self.onnx.name}@{self.onnx.version}"
        self.kernel_size = self.onnx.manifest.kernel_size
        self.condition_names = self.onnx.manifest.condition_names

    def predict(self, condition: np.ndarray) -> np.ndarray:
        return self.onnx.psf_from_condition(condition)

    def latent(self, condition: np.ndarray) -> np.ndarray:
        return self.onnx.prior(condition)[0]

    def decode(self, z: np.ndarray, condition: np.ndarray) -> np.ndarray:
        return self.onnx.decode_condition(z, condition)


def predict_oriented(predictor: Predictor, conditions: np.ndarray) -> np.ndarray:
    """PSFs at evaluation conditions whose last column is azimuth [deg]: a model conditioned on
    azimuth takes it as is; a meridional model predicts on the +y meridian and rotates its kernels,
    exactly as serving does."""
    conditions = np.asarray(conditions, dtype=np.float32)
    if "azimuth" in predictor.condition_names:
        return predictor.predict(conditions)
    return rotate_psfs(predictor.predict(conditions[:, :-1]), conditions[:, -1].astype(np.float64))


def evaluation_columns(condition_names: list[str]) -> list[str]:
    """The model's columns, plus azimuth last when the model is meridional."""
    names = list(condition_names)
    return names if "azimuth" in names else [*names, "azimuth"]


def load_torch(path: Path) -> SurrogateModel:
    """A run folder (model.safetensors + model_args.json) or an accelerate checkpoint folder of a run."""
    path = Path(path)
    args_file = path / "model_args.json"
    if not args_file.is_file():
        raise FileNotFoundError(f"{path}: not a run folder or a checkpoint of one (no model_args.json)")
    record = json.loads(args_file.read_text())
    model = MODELS.get(record.get("type", "cvae")).from_record(record)  # runs before model types were recorded: cvae
    weights = path / "model.safetensors"
    if not weights.is_file():
        raise FileNotFoundError(f"{path}: no model.safetensors")
    model.load_state_dict(load_file(weights))
    return model


def load_predictor(target: str, store: Store) -> Predictor:
    """A path (run folder / checkpoint) or a store reference NAME[@VERSION]."""
    path = Path(target)
    if path.exists():
        return TorchPredictor(load_torch(path), name=str(path))
    return OnnxPredictor(store, target)
