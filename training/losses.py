"""Reconstruction loss given as a spec string, e.g. ``1*L1+1e3*MSE``: parsed and checked once.

Terms (per PSF, averaged over the batch; PSFs sum to 1):
  L1   sum |p - r|            (the relative L1 error the evaluation reports)
  MSE  sum (p - r)^2          (small for unit-sum kernels: give it a large weight, e.g. 1e3*MSE)
  CE   -sum r log p           (cross-entropy of the pixel distributions; natural for a softmax output)
"""

from __future__ import annotations

import re

import torch

TERMS = {
    "L1": lambda p, r: (p - r).abs().sum(dim=(-2, -1)),
    "MSE": lambda p, r: ((p - r) ** 2).sum(dim=(-2, -1)),
    "CE": lambda p, r: -(r * torch.log(p.clamp_min(1e-12))).sum(dim=(-2, -1)),
}
_TERM_RE = re.compile(r"^\s*(?:([0-9.eE+-]+)\s*\*\s*)?([A-Za-z0-9_]+)\s*$")


def parse_loss(spec: str) -> list[tuple[float, str]]:
    """'1*L1+1e3*MSE' -> [(1.0, 'L1'), (1000.0, 'MSE')]; raises ValueError naming the bad part."""
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError("loss spec is empty; write e.g. '1*L1+1e3*MSE'")
    # split on '+' that is not part of an exponent such as 1e+3
    parts = re.split(r"(?<![eE])\+", spec)
    terms = []
    for part in parts:
        match = _TERM_RE.match(part)
        if not match:
            raise ValueError(f"cannot read loss term {part.strip()!r} in {spec!r}; write WEIGHT*NAME, e.g. 1e3*MSE")
        weight_text, name = match.groups()
        try:
            weight = float(weight_text) if weight_text else 1.0
        except ValueError:
            raise ValueError(f"loss term {part.strip()!r}: {weight_text!r} is not a number") from None
        if name not in TERMS:
            raise ValueError(f"loss term {name!r} is unknown; known: {', '.join(TERMS)}")
        if weight < 0:
            raise ValueError(f"loss term {part.strip()!r}: weights must be >= 0")
        terms.append((weight, name))
    return terms


class ReconLoss:
    def __init__(self, spec: str) -> None:
        self.spec, self.terms = spec, parse_loss(spec)

    def __call__(self, pred: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        total = pred.new_zeros(())
        for weight, name in self.terms:
            total = total + weight * TERMS[name](pred, ref).mean()
        return total
