"""Log-PSF as a low-rank sum of separable images: logits(y, x) = sum_r u_r(y) v_r(x) [+ h(rho)].

The MLP predicts 2 x rank x k numbers per PSF instead of k^2, so output and weights grow with k, not
k^2. A softmax of a sum is a product of factors, and a Gaussian's log is rank 2 (a tilted one rank 3),
so smooth PSFs need few terms; sharp rings need more.

A flat defocus disc is what a sum of outer products draws worst: its log is a plateau with a cliff on a
circle, which 16 terms can only approximate with ripples inside and a bright rim. ``profile`` > 0 adds an
elliptical radial log-profile h(rho), rho = |((x) / a, (y - c) / b)|, with h sampled at ``profile``
radii out to RHO_MAX and the ellipse (centre c on the vertical axis, semi-axes a, b) predicted per PSF:
a disc, an ellipse, a vignetted ellipse are then a 1-D profile plus small separable corrections. The
ellipse is symmetric about the vertical axis, which is a meridian PSF's mirror axis (model.steer).
"""

from __future__ import annotations

import torch
from torch import nn

from ..conditioning import mlp
from .args import SeparableArgs

RHO_MAX = 2.0  # the profile reaches twice the ellipse's semi-axes; beyond, it keeps its last value


class Separable(nn.Module):
    def __init__(self, n_in: int, kernel_size: int, args: SeparableArgs) -> None:
        super().__init__()
        self.rank, self.kernel_size, self.profile = args.rank, kernel_size, args.profile
        extra = 3 + args.profile if args.profile else 0
        self.body = mlp(n_in, args.hidden, 2 * args.rank * kernel_size + extra, args.depth)
        if self.profile:
            axis = torch.arange(kernel_size, dtype=torch.float32) - (kernel_size - 1) / 2.0
            self.register_buffer("x", axis.reshape(1, 1, kernel_size), persistent=False)
            self.register_buffer("y", (-axis).reshape(1, kernel_size, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r, k = self.rank, self.kernel_size
        out = self.body(x)
        u, v = out[:, : 2 * r * k].reshape(-1, 2, r, k).unbind(dim=1)  # [N, r, k] each
        logits = torch.matmul(u.transpose(1, 2), v)  # [N, k, r] @ [N, r, k] -> [N, k, k]
        if self.profile:
            logits = logits + self._radial(out[:, 2 * r * k:])
        return logits.flatten(1)

    def _radial(self, extra: torch.Tensor) -> torch.Tensor:
        """h(rho) on the k x k grid [N, k, k], linearly interpolated between its samples."""
        k, m = self.kernel_size, self.profile
        scale = k / 8.0
        centre = (extra[:, 0] * scale).reshape(-1, 1, 1)
        a = (scale * torch.exp(extra[:, 1].clamp(-4.0, 3.0))).reshape(-1, 1, 1)
        b = (scale * torch.exp(extra[:, 2].clamp(-4.0, 3.0))).reshape(-1, 1, 1)
        h = extra[:, 3:]  # [N, m]
        rho = torch.sqrt((self.x / a) ** 2 + ((self.y - centre) / b) ** 2 + 1e-12)
        t = torch.clamp(rho * ((m - 1) / RHO_MAX), max=m - 1 - 1e-3).flatten(1)  # [N, k*k]
        i0 = torch.floor(t)
        w = t - i0
        i0 = i0.long()
        h0, h1 = torch.gather(h, 1, i0), torch.gather(h, 1, i0 + 1)
        return (h0 + (h1 - h0) * w).reshape(-1, k, k)
