"""MLP whose last linear layer is a learned basis of log-PSF images (a low-rank decoder)."""

from __future__ import annotations

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from ..conditioning import mlp
from ..registry import NETWORKS


class MLPBasisArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    hidden: int = Field(default=256, ge=8)
    depth: int = Field(default=3, ge=1, description="hidden layers")
    rank: int | None = Field(default=None, ge=1, description="basis size (default: hidden)")


@NETWORKS.register("mlp_basis", args=MLPBasisArgs)
class MLPBasis(nn.Module):
    def __init__(self, n_in: int, kernel_size: int, hidden: int = 256, depth: int = 3, rank: int | None = None) -> None:
        super().__init__()
        rank = rank or hidden
        self.body = mlp(n_in, hidden, rank, depth)
        self.act = nn.SiLU()
        self.basis = nn.Linear(rank, kernel_size * kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.basis(self.act(self.body(x)))
