"""MLP to a small feature map, then transposed convolutions up to k x k (a spatial decoder)."""

from __future__ import annotations

import torch
from torch import nn

from ..conditioning import mlp
from .args import ConvTransposeArgs


class ConvTranspose(nn.Module):
    def __init__(self, n_in: int, kernel_size: int, args: ConvTransposeArgs) -> None:
        super().__init__()
        ups, side = 0, args.start
        while side < kernel_size:
            side, ups = side * 2, ups + 1
        if side != kernel_size:
            raise ValueError(f"network conv_transpose: kernel_size {kernel_size} must be start ({args.start}) "
                             "times a power of two; set network.start (e.g. 5 for 80 px)")
        self.channels, self.start = args.channels, args.start
        self.stem = mlp(n_in, args.hidden, args.channels * args.start**2, args.depth)
        layers: list[nn.Module] = []
        c = args.channels
        for _ in range(ups):
            layers += [nn.SiLU(), nn.ConvTranspose2d(c, max(c // 2, 8), 4, stride=2, padding=1)]
            c = max(c // 2, 8)
        layers += [nn.SiLU(), nn.Conv2d(c, 1, 3, padding=1)]
        self.up = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.stem(x).reshape(-1, self.channels, self.start, self.start)
        return self.up(h).flatten(1)
