"""Conditional VAE over PSFs: encoder q(z|psf,c), learned prior p(z|c), decoder p(psf|z,c).

Every network takes the condition in physical units and normalises it itself (ConditionFeatures),
so the exported ONNX graphs take physical units too and the convention exists in one place.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class CVAEArgs:
    """Everything needed to rebuild the networks (saved in checkpoints and the manifest)."""

    kernel_size: int
    latent_size: int
    hidden: int
    depth: int
    field_range: tuple[float, float]
    depth_range: tuple[float, float]
    wavelength_range: tuple[float, float]

    def to_dict(self) -> dict:
        return asdict(self)


class ConditionFeatures(nn.Module):
    """(field, depth m, wavelength nm) -> features in [-1, 1].

    Depth enters as 1/depth: defocus blur is linear in inverse object distance, so equal steps in
    the feature are equal steps in blur.
    """

    n_features = 3

    def __init__(self, args: CVAEArgs) -> None:
        super().__init__()
        (f0, f1), (d0, d1), (w0, w1) = args.field_range, args.depth_range, args.wavelength_range
        self.register_buffer("lo", torch.tensor([f0, 1.0 / d1, w0], dtype=torch.float32))
        self.register_buffer("hi", torch.tensor([f1, 1.0 / d0, w1], dtype=torch.float32))

    def forward(self, condition: torch.Tensor) -> torch.Tensor:
        torch._assert(condition.shape[-1] == 3, "condition must be [N, 3] = (field, depth, wavelength)")
        x = torch.stack([condition[:, 0], 1.0 / condition[:, 1], condition[:, 2]], dim=1)
        return 2.0 * (x - self.lo) / (self.hi - self.lo) - 1.0


def mlp(n_in: int, hidden: int, n_out: int, depth: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    width = n_in
    for _ in range(depth):
        layers += [nn.Linear(width, hidden), nn.SiLU()]
        width = hidden
    layers.append(nn.Linear(width, n_out))
    return nn.Sequential(*layers)


class Prior(nn.Module):
    def __init__(self, args: CVAEArgs) -> None:
        super().__init__()
        self.features = ConditionFeatures(args)
        self.net = mlp(ConditionFeatures.n_features, args.hidden, 2 * args.latent_size, args.depth)

    def forward(self, condition: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.net(self.features(condition)).chunk(2, dim=-1)
        return mu, logvar.clamp(-12.0, 6.0)


class Encoder(nn.Module):
    def __init__(self, args: CVAEArgs) -> None:
        super().__init__()
        k, h = args.kernel_size, args.hidden
        self.kernel_size = k
        self.features = ConditionFeatures(args)
        self.conv = nn.Sequential(
            nn.Conv2d(1, 16, 3, stride=2, padding=1), nn.SiLU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.SiLU(),
        )
        n_conv = 32 * ((k + 3) // 4) ** 2
        self.head = mlp(n_conv + ConditionFeatures.n_features, h, 2 * args.latent_size, args.depth)

    def forward(self, psf: torch.Tensor, condition: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        k = self.kernel_size
        # PSFs sum to 1, so pixel values are ~1/k^2; rescale and compress the dynamic range.
        x = torch.sqrt(psf.reshape(-1, 1, k, k).clamp_min(0.0) * float(k * k))
        h = torch.cat([self.conv(x).flatten(1), self.features(condition)], dim=1)
        mu, logvar = self.head(h).chunk(2, dim=-1)
        return mu, logvar.clamp(-12.0, 6.0)


class Decoder(nn.Module):
    """(z, c) -> PSF. A softmax over the k*k pixels makes the output non-negative with unit sum;
    the last linear layer is a learned basis of log-PSF images."""

    def __init__(self, args: CVAEArgs) -> None:
        super().__init__()
        self.kernel_size = args.kernel_size
        self.features = ConditionFeatures(args)
        self.net = mlp(args.latent_size + ConditionFeatures.n_features, args.hidden, args.kernel_size**2, args.depth)

    def forward(self, z: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        logits = self.net(torch.cat([z, self.features(condition)], dim=1))
        k = self.kernel_size
        return F.softmax(logits, dim=-1).reshape(-1, k, k)


class CVAE(nn.Module):
    def __init__(self, args: CVAEArgs) -> None:
        super().__init__()
        self.args = args
        self.encoder, self.prior, self.decoder = Encoder(args), Prior(args), Decoder(args)

    def predict(self, condition: torch.Tensor) -> torch.Tensor:
        """The served path: decode the prior mean (deterministic)."""
        mu, _ = self.prior(condition)
        return self.decoder(mu, condition)

    def forward(self, psf: torch.Tensor, condition: torch.Tensor, partner: torch.Tensor) -> dict[str, torch.Tensor]:
        """Loss terms for one batch (a forward, so DDP sees every parameter used).

        ``partner`` is a nearby condition per row; the prior mean at the midpoint condition should be
        the midpoint of the two prior means, which keeps latent interpolation meaningful.
        """
        mu_q, logvar_q = self.encoder(psf, condition)
        mu_p, logvar_p = self.prior(condition)
        z = mu_q + torch.randn_like(mu_q) * (0.5 * logvar_q).exp()
        mu_b, _ = self.prior(partner)
        mu_mid, _ = self.prior(0.5 * (condition + partner))
        return {
            "recon": relative_l1(self.decoder(z, condition), psf).mean(),
            "recon_prior": relative_l1(self.decoder(mu_p, condition), psf).mean(),
            "kl_per_dim": kl_divergence(mu_q, logvar_q, mu_p, logvar_p).mean(dim=0),
            "interp": ((mu_mid - 0.5 * (mu_p + mu_b)) ** 2).sum(dim=1).mean(),
        }


class PSFGraph(nn.Module):
    """condition -> psf through the prior mean; exported as psf.onnx."""

    def __init__(self, cvae: CVAE) -> None:
        super().__init__()
        self.prior, self.decoder = cvae.prior, cvae.decoder

    def forward(self, condition: torch.Tensor) -> torch.Tensor:
        mu, _ = self.prior(condition)
        return self.decoder(mu, condition)


def kl_divergence(mu_q, logvar_q, mu_p, logvar_p) -> torch.Tensor:
    """KL(N(mu_q, var_q) || N(mu_p, var_p)) per latent dimension, shape [N, L]."""
    return 0.5 * (logvar_p - logvar_q + (logvar_q.exp() + (mu_q - mu_p) ** 2) / logvar_p.exp() - 1.0)


def relative_l1(pred: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """sum|p - r| / sum r per PSF, shape [N]."""
    return (pred - ref).abs().sum(dim=(-2, -1)) / ref.sum(dim=(-2, -1)).clamp_min(1e-12)
