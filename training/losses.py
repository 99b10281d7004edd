"""Reconstruction loss given as a spec string, e.g. ``1*CE`` or ``1*L1+1e3*MSE`` (parsed by loss_spec.py).

Terms (per PSF, averaged over the batch; PSFs sum to 1). ``r`` is a traced histogram of a finite number
of rays, a noisy sample of the true PSF; ``p`` the prediction:
  CE   -sum r log p           the multinomial likelihood of the rays (cross-entropy). Its optimum is the
                              per-pixel *mean* of the noisy targets, i.e. the true PSF: unbiased at any
                              ray count, so many cheap low-ray samples teach the whole PSF, faint tails
                              and defocus discs included. The default.
  L1   sum |p - r|            (the relative L1 error the evaluation reports). Its optimum is the per-pixel
                              *median* of the noisy target, which is 0 wherever a pixel expects fewer than
                              ~0.7 rays: it drops exactly the faint tails that make big PSFs big unless
                              each sample carries very many rays.
  MSE  sum (p - r)^2          unbiased too, but weights the bright core (give it a large weight, e.g. 1e3*MSE)

The terms take the prediction as log-probabilities (the decoder's log-softmax), so CE never takes the
log of an underflowed probability.
"""

from __future__ import annotations

import torch

from .loss_spec import TERM_NAMES, parse_loss

TERMS = {
    "L1": lambda logp, r: (logp.exp() - r).abs().sum(dim=(-2, -1)),
    "MSE": lambda logp, r: ((logp.exp() - r) ** 2).sum(dim=(-2, -1)),
    "CE": lambda logp, r: -(r * logp).sum(dim=(-2, -1)),
}
assert tuple(TERMS) == TERM_NAMES, f"loss terms {tuple(TERMS)} and the names the config accepts {TERM_NAMES} differ"


class ReconLoss:
    def __init__(self, spec: str) -> None:
        self.spec, self.terms = spec, parse_loss(spec)

    def __call__(self, log_pred: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        """``log_pred``: log-probabilities [N, k, k] (log-softmax over the k*k pixels); ``ref``: unit-sum PSFs."""
        total = log_pred.new_zeros(())
        for weight, name in self.terms:
            total = total + weight * TERMS[name](log_pred, ref).mean()
        return total
