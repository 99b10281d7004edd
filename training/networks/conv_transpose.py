"""MLP to a small feature map, then transposed convolutions up to k x k (a spatial decoder)."""

from __future__ import annotations

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from ..conditioning import mlp
from ..registry import NETWORKS


class ConvTransposeArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    hidden: int = Field(default=256, ge=8)
    depth: int = Field(default=2, ge=1, description="hidden layers of the MLP stem")
    channels: int = Field(default=64, ge=4, description="channels at the smallest feature map")
    start: int = Field(default=4, ge=2, description="side of the smallest feature map")


@NETWORKS.register("conv_transpose", args=ConvTransposeArgs)
class ConvTranspose(nn.Module):
    def __init__(self, n_in: int, kernel_size: int, hidden: int = 256, depth: int = 2, channels: int = 64,
                 start: int = 4) -> None:
        super().__init__()
        ups, side = 0, start
        while side < kernel_size:
            side, ups = side * 2, ups + 1
        assert side == kernel_size, f"kernel_size {kernel_size} must be start ({start}) times a power of two"
        self.kernel_size, self.channels, self.start = kernel_size, channels, start
        self.stem = mlp(n_in, hidden, channels * start * start, depth)
        layers: list[nn.Module] = []
        c = channels
        for _ in range(ups):
            layers += [nn.SiLU(), nn.ConvTranspose2d(c, max(c // 2, 8), 4, stride=2, padding=1)]
            c = max(c // 2, 8)
        layers += [nn.SiLU(), nn.Conv2d(c, 1, 3, padding=1)]
        self.up = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.stem(x).reshape(-1, self.channels, self.start, self.start)
        return self.up(h).flatten(1)
