"""A learned basis on a coarse grid, then learned upsampling by pixel shuffle (sub-pixel convolution).

The MLP writes ``channels`` maps of (k/f)^2 pixels through a learned basis, a 3x3 convolution turns
them into f^2 maps, and pixel shuffle interleaves those into one k x k logit image: every output pixel
is its own learned function of the coarse neighbourhood, so sharp cores survive the coarse grid.
"""

from __future__ import annotations

import torch
from torch import nn

from ..conditioning import mlp
from .args import PixelShuffleArgs


class PixelShuffleBasis(nn.Module):
    def __init__(self, n_in: int, kernel_size: int, args: PixelShuffleArgs) -> None:
        super().__init__()
        if kernel_size % args.factor:
            raise ValueError(f"network pixel_shuffle: factor {args.factor} must divide kernel_size {kernel_size}; "
                             "allowed: a divisor of the kernel size (2, 4 or 8 divide every auto size)")
        self.channels, self.coarse = args.channels, kernel_size // args.factor
        self.body = mlp(n_in, args.hidden, args.rank, args.depth)
        self.act = nn.SiLU()
        self.basis = nn.Linear(args.rank, args.channels * self.coarse**2)
        self.up = nn.Sequential(nn.Conv2d(args.channels, args.factor**2, 3, padding=1), nn.PixelShuffle(args.factor))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        coarse = self.basis(self.act(self.body(x))).reshape(-1, self.channels, self.coarse, self.coarse)
        return self.up(coarse).flatten(1)
