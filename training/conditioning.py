"""Condition vector -> network features, inside every graph (so ONNX takes physical units).

Columns are named; distances (depth, focus) enter as their inverse, in which defocus blur is linear,
so equal feature steps are equal blur steps. Every feature spans [-1, 1] over the trained range.
"""

from __future__ import annotations

import torch
from torch import nn

INVERSE = {"depth", "focus"}


class ConditionFeatures(nn.Module):
    def __init__(self, conditions: list[tuple[str, float, float]]) -> None:
        super().__init__()
        self.names = [name for name, _, _ in conditions]
        lo, hi, inv = [], [], []
        for name, a, b in conditions:
            inverse = name in INVERSE
            lo.append(1.0 / b if inverse else a)
            hi.append(1.0 / a if inverse else b)
            inv.append(inverse)
        self.register_buffer("lo", torch.tensor(lo, dtype=torch.float32))
        self.register_buffer("hi", torch.tensor(hi, dtype=torch.float32))
        self.register_buffer("inverse", torch.tensor(inv, dtype=torch.bool))

    @property
    def n_features(self) -> int:
        return len(self.names)

    def forward(self, condition: torch.Tensor) -> torch.Tensor:
        torch._assert(condition.shape[-1] == len(self.names),
                      f"condition must be [N, {len(self.names)}] = {self.names}")
        x = torch.where(self.inverse, 1.0 / condition, condition)
        return 2.0 * (x - self.lo) / (self.hi - self.lo) - 1.0


def mlp(n_in: int, hidden: int, n_out: int, depth: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    width = n_in
    for _ in range(depth):
        layers += [nn.Linear(width, hidden), nn.SiLU()]
        width = hidden
    layers.append(nn.Linear(width, n_out))
    return nn.Sequential(*layers)
