"""Reconstruction loss given as a spec string, e.g. ``1*L1+1e3*MSE`` (parsed by loss_spec.py).

Terms (per PSF, averaged over the batch; PSFs sum to 1):
  L1   sum |p - r|            (the relative L1 error the evaluation reports)
  MSE  sum (p - r)^2          (small for unit-sum kernels: give it a large weight, e.g. 1e3*MSE)
  CE   -sum r log p           (cross-entropy of the pixel distributions; natural for a softmax output)
"""

from __future__ import annotations

import torch

from .loss_spec import TERM_NAMES, parse_loss

TERMS = {
    "L1": lambda p, r: (p - r).abs().sum(dim=(-2, -1)),
    "MSE": lambda p, r: ((p - r) ** 2).sum(dim=(-2, -1)),
    "CE": lambda p, r: -(r * torch.log(p.clamp_min(1e-12))).sum(dim=(-2, -1)),
}
assert tuple(TERMS) == TERM_NAMES, f"loss terms {tuple(TERMS)} and the names the config accepts {TERM_NAMES} differ"


class ReconLoss:
    def __init__(self, spec: str) -> None:
        self.spec, self.terms = spec, parse_loss(spec)

    def __call__(self, pred: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        total = pred.new_zeros(())
        for weight, name in self.terms:
            total = total + weight * TERMS[name](pred, ref).mean()
        return total
