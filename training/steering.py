"""Turning a PSF predicted in its meridian frame to the query's azimuth, inside the decoder graph.

A rotationally symmetric lens images a point at azimuth a exactly as the same point on the +y meridian,
turned by a - 90 deg. So a steered decoder predicts log-PSFs in the meridian frame (where a comatic or
astigmatic PSF lines up with the axes, which a separable decoder represents with few terms; a diagonal
one it cannot) and this module turns the *log*-PSF to the azimuth: bilinear interpolation of a smooth
log-image, not of the PSF itself, so a sharp core is not smeared the way resampling a kernel smears it.
With ``supersample`` s > 1 the meridian frame is predicted on an s-times finer grid and the turned
PSF is integrated over each pixel's s x s cells (exact pixel integration of the finer PSF).

Orientation is the project's (models_store.conditions.rotate_psfs): row 0 is image +y, columns grow
toward +x, and a point moved counter-clockwise turns its PSF counter-clockwise.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

MERIDIAN_DEG = 90.0


class Steer(nn.Module):
    """(log-PSF logits in the meridian frame [N, (s k)^2], azimuth [N] deg) -> log PSF [N, k, k]."""

    def __init__(self, kernel_size: int, supersample: int = 1) -> None:
        super().__init__()
        self.k, self.s = kernel_size, supersample
        n = kernel_size * supersample
        centre = (n - 1) / 2.0
        axis = torch.arange(n, dtype=torch.float32) - centre
        # image coordinates of every fine output cell: u toward +x (columns), v toward +y (up = row 0)
        self.register_buffer("u", axis.reshape(1, 1, n).expand(1, n, n).contiguous(), persistent=False)
        self.register_buffer("v", (-axis).reshape(1, n, 1).expand(1, n, n).contiguous(), persistent=False)
        self.n = n

    def forward(self, logits: torch.Tensor, azimuth_deg: torch.Tensor) -> torch.Tensor:
        n = self.n
        if not torch.onnx.is_in_onnx_export() and bool((azimuth_deg == MERIDIAN_DEG).all()):
            return self._integrate(F.log_softmax(logits.reshape(-1, n * n), dim=-1))  # nothing to turn
        phi = (azimuth_deg - MERIDIAN_DEG) * (math.pi / 180.0)
        cos, sin = torch.cos(phi).reshape(-1, 1, 1), torch.sin(phi).reshape(-1, 1, 1)
        # the meridian-frame point each output cell shows: the output turned back by -phi
        src_x = self.u * cos + self.v * sin
        src_y = -self.u * sin + self.v * cos
        if torch.onnx.is_in_onnx_export():
            # the same interpolation as four gathers: onnxruntime's GridSample took 1.6x as long (128 px
            # grid, batch 256), while in torch grid_sample trains 3x faster than the gathers
            turned = self._bilinear_gather(logits, src_x, src_y)
        else:
            # grid_sample's normalised coordinates (align_corners=False): x along columns, y along rows (down)
            grid = torch.stack([src_x * (2.0 / n), -src_y * (2.0 / n)], dim=-1)
            image = logits.reshape(-1, 1, n, n)
            # cells turned in from beyond the predicted square read its edge: log-PSFs are lowest there
            turned = F.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=False)
        return self._integrate(F.log_softmax(turned.reshape(-1, n * n), dim=-1))

    def _bilinear_gather(self, logits: torch.Tensor, src_x: torch.Tensor, src_y: torch.Tensor) -> torch.Tensor:
        """grid_sample's bilinear interpolation with border padding, written as gathers [N, n*n]."""
        n, c = self.n, (self.n - 1) / 2.0
        col = (src_x + c).clamp(0.0, n - 1.0)
        row = (c - src_y).clamp(0.0, n - 1.0)
        c0, r0 = torch.floor(col).clamp(max=n - 2.0), torch.floor(row).clamp(max=n - 2.0)
        fc, fr = (col - c0).flatten(1), (row - r0).flatten(1)
        index = (r0 * n + c0).long().flatten(1)
        flat = logits.reshape(-1, n * n)

        def at(offset: int) -> torch.Tensor:
            return torch.gather(flat, 1, index + offset)

        top = at(0) + (at(1) - at(0)) * fc
        bottom = at(n) + (at(n + 1) - at(n)) * fc
        return top + (bottom - top) * fr

    def _integrate(self, log_p: torch.Tensor) -> torch.Tensor:
        k, s = self.k, self.s
        if s == 1:
            return log_p.reshape(-1, k, k)
        # integrate each pixel's s x s cells: log of a sum of probabilities
        return torch.logsumexp(log_p.reshape(-1, k, s, k, s).permute(0, 1, 3, 2, 4).reshape(-1, k, k, s * s), dim=-1)
