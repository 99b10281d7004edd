"""Log-PSF as a low-rank sum of separable images: logits(y, x) = sum_r u_r(y) v_r(x).

The MLP predicts 2 x rank x k numbers per PSF instead of k^2, so output and weights grow with k, not
k^2. A softmax of a sum is a product of factors, and a Gaussian's log is rank 2 (a tilted one rank 3),
so smooth PSFs need few terms; sharp rings need more.
"""

from __future__ import annotations

import torch
from torch import nn

from ..conditioning import mlp
from .args import SeparableArgs


class Separable(nn.Module):
    def __init__(self, n_in: int, kernel_size: int, args: SeparableArgs) -> None:
        super().__init__()
        self.rank, self.kernel_size = args.rank, kernel_size
        self.body = mlp(n_in, args.hidden, 2 * args.rank * kernel_size, args.depth)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r, k = self.rank, self.kernel_size
        u, v = self.body(x).reshape(-1, 2, r, k).unbind(dim=1)  # [N, r, k] each
        return torch.matmul(u.transpose(1, 2), v).flatten(1)  # [N, k, r] @ [N, r, k] -> [N, k, k]
