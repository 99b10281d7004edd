"""MLP whose last linear layer is a learned basis of log-PSF images (a low-rank decoder)."""

from __future__ import annotations

import torch
from torch import nn

from ..conditioning import mlp
from .args import MLPBasisArgs


class MLPBasis(nn.Module):
    def __init__(self, n_in: int, kernel_size: int, args: MLPBasisArgs) -> None:
        super().__init__()
        rank = args.rank or args.hidden
        self.body = mlp(n_in, args.hidden, rank, args.depth)
        self.act = nn.SiLU()
        self.basis = nn.Linear(rank, kernel_size * kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.basis(self.act(self.body(x)))
