"""What the rest of training needs of a model type: the seam behind ``model.type``.

A model type is a class registered in ``args.py`` (``MODELS``) that builds itself (``from_config``,
``from_record``). The loop, the export, the evaluation and the predictors reach it only through
:class:`SurrogateModel`, so a second model type is its class and its keys' schema, nothing more. Its
graphs are the store's four roles (``models_store.GRAPH_ROLES``): psf, prior, decoder, encoder.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol

import torch
from torch import nn


class ExportGraph(NamedTuple):
    """One graph to export: the module, example inputs, and the ONNX input and output names."""

    module: nn.Module
    example: tuple[torch.Tensor, ...]
    inputs: list[str]
    outputs: list[str]


class SurrogateModel(Protocol):
    """A trainable PSF model (an ``nn.Module``): ``args`` holds ``kernel_size``, ``latent_size`` and the
    ``conditions`` columns ([(name, lo, hi)])."""

    args: Any
    encoder: nn.Module  # (psf, condition) -> (mu, logvar)
    prior: nn.Module    # condition -> (mu, logvar)
    decoder: nn.Module  # (z, condition) -> psf

    def record(self) -> dict:
        """What the class's ``from_record`` rebuilds the model from (model_args.json)."""
        ...

    def predict(self, condition: torch.Tensor) -> torch.Tensor:
        """The served path: condition -> PSF [N, k, k]."""
        ...

    def __call__(self, psf: torch.Tensor, condition: torch.Tensor, partner: torch.Tensor) -> dict[str, torch.Tensor]:
        """The loss terms of one batch."""
        ...

    def export_graphs(self, n: int = 2) -> dict[str, ExportGraph]:
        """The four graphs by role, with example inputs of ``n`` rows."""
        ...

    def parameters(self) -> Any: ...
    def train(self, mode: bool = True) -> Any: ...
    def eval(self) -> Any: ...
