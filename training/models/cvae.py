"""Conditional VAE over PSFs: encoder q(z|psf,c), learned prior p(z|c), decoder p(psf|z,c).

Every sub-network takes the condition in physical units and normalises it itself, so the exported
ONNX graphs take physical units too. The decoder's architecture is ``network.type``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ..conditioning import ConditionFeatures, mlp
from ..config import ConfigError
from ..losses import ReconLoss
from ..psf_metrics import rel_l1
from ..registry import NETWORKS
from ..steering import Steer
from .args import CVAEConfig
from .base import ExportGraph

_NEW = CVAEConfig.model_fields  # the config's defaults are the record's (model.* keys: args.py)


@dataclass(frozen=True)
class CVAEArgs:
    """Everything needed to rebuild the networks (saved in checkpoints and the manifest)."""

    kernel_size: int
    latent_size: int
    conditions: list[tuple[str, float, float]]
    network: str = "mlp_basis"
    network_args: dict = field(default_factory=dict)
    hidden: int = _NEW["hidden"].default  # encoder and prior MLPs
    # The encoder first averages the PSF over pool x pool cells, so its size stops growing with k^2
    # (encoder_pool(k) for new models; 1 = the full-resolution encoder older runs were saved with).
    encoder_pool: int = 1
    steer: bool = _NEW["steer"].default  # the decoder turns a meridian-frame log-PSF to the azimuth (steering.py)
    supersample: int = 1   # a steered decoder's finer grid (cells per pixel a side)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> CVAEArgs:
        data = dict(data)
        data["conditions"] = [tuple(c) for c in data["conditions"]]
        return cls(**data)


class Prior(nn.Module):
    def __init__(self, args: CVAEArgs) -> None:
        super().__init__()
        self.features = ConditionFeatures(args.conditions)
        self.net = mlp(self.features.n_features, args.hidden, 2 * args.latent_size, 3)

    def forward(self, condition: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.net(self.features(condition)).chunk(2, dim=-1)
        return mu, logvar.clamp(-12.0, 6.0)


SUPERSAMPLE_UP_TO = 64  # steered decoders predict on a 2x finer grid up to this kernel size (cheap there)
ENCODER_GRID = 32  # the encoder sees the PSF on at most about this many cells a side


def encoder_pool(kernel_size: int) -> int:
    """Cells of pool x pool pixels the encoder averages over: a k px PSF is seen on a ~32-cell grid."""
    return max(1, kernel_size // ENCODER_GRID)


class Encoder(nn.Module):
    def __init__(self, args: CVAEArgs) -> None:
        super().__init__()
        k = args.kernel_size
        self.kernel_size, self.pool = k, args.encoder_pool
        self.features = ConditionFeatures(args.conditions)
        self.conv = nn.Sequential(
            nn.Conv2d(1, 16, 3, stride=2, padding=1), nn.SiLU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.SiLU(),
        )
        grid = k // self.pool
        n_conv = 32 * ((grid + 3) // 4) ** 2
        self.head = mlp(n_conv + self.features.n_features, args.hidden, 2 * args.latent_size, 2)

    def forward(self, psf: torch.Tensor, condition: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        k = self.kernel_size
        x = psf.reshape(-1, 1, k, k).clamp_min(0.0)
        if self.pool > 1:  # the mean over each cell; a remainder of k / pool pixels at the edge is left out
            x = F.avg_pool2d(x, self.pool)
        # PSFs sum to 1, so pixel values are ~1/k^2; rescale and compress the dynamic range.
        x = torch.sqrt(x * float(k * k))
        h = torch.cat([self.conv(x).flatten(1), self.features(condition)], dim=1)
        mu, logvar = self.head(h).chunk(2, dim=-1)
        return mu, logvar.clamp(-12.0, 6.0)


class Decoder(nn.Module):
    """(z, c) -> PSF; a softmax over the k*k pixels makes it non-negative with unit sum."""

    def __init__(self, args: CVAEArgs) -> None:
        super().__init__()
        self.kernel_size = args.kernel_size
        self.features = ConditionFeatures(args.conditions)
        network, options = NETWORKS.get(args.network), NETWORKS.parse_args(args.network, args.network_args)
        names = [name for name, _, _ in args.conditions]
        self.steer: Steer | None = None
        grid = args.kernel_size
        if args.steer:
            assert "azimuth" in names, "a steered decoder needs the azimuth condition"
            self.azimuth = names.index("azimuth")
            self.steer = Steer(args.kernel_size, args.supersample)
            grid = args.kernel_size * args.supersample
            # the meridian-frame PSF does not depend on the azimuth: its network does not see it
            self.register_buffer("keep", torch.tensor([name != "azimuth" for name in names], dtype=torch.float32))
        self.net = network(args.latent_size + self.features.n_features, grid, options)

    def forward(self, z: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        return self.log_prob(z, condition).exp()

    def log_prob(self, z: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        """log PSF [N, k, k] (a log-softmax over the pixels): what the likelihood loss needs, without
        the log of an underflowed probability."""
        features = self.features(condition)
        if self.steer is not None:
            logits = self.net(torch.cat([z, features * self.keep], dim=1))
            return self.steer(logits, condition[:, self.azimuth])
        logits = self.net(torch.cat([z, features], dim=1))
        k = self.kernel_size
        return F.log_softmax(logits, dim=-1).reshape(-1, k, k)


class CVAE(nn.Module):
    def __init__(self, args: CVAEArgs, recon: str = "1*CE") -> None:
        super().__init__()
        self.args = args
        self.recon = ReconLoss(recon)
        self.encoder, self.prior, self.decoder = Encoder(args), Prior(args), Decoder(args)

    @classmethod
    def from_config(cls, cfg) -> CVAE:
        """The model a RunConfig describes (``data.kernel_size`` already sized, not ``auto``)."""
        own = cfg.model.args()
        assert isinstance(own, CVAEConfig), f"model.type {cfg.model.type!r} is not cvae"
        ks = int(cfg.data.kernel_size)
        if own.steer and cfg.conditions.azimuth is None:
            raise ConfigError("model.steer: true turns the PSF to the azimuth condition, but conditions.azimuth is "
                              "not set (a meridional model is rotated when served); set conditions.azimuth: "
                              "{min: 0, max: 90} or model.steer: false")
        supersample = own.supersample or (2 if ks <= SUPERSAMPLE_UP_TO else 1)
        args = CVAEArgs(kernel_size=ks, latent_size=own.latent_size,
                        conditions=cfg.conditions.columns(), network=cfg.network.type,
                        network_args=cfg.network.options(), hidden=own.hidden,
                        encoder_pool=encoder_pool(ks), steer=own.steer,
                        supersample=supersample if own.steer else 1)
        return cls(args, recon=cfg.loss.recon)

    def record(self) -> dict:
        """What :meth:`from_record` rebuilds this model from (written as model_args.json)."""
        return {"type": "cvae", "args": self.args.to_dict(), "recon": self.recon.spec}

    @classmethod
    def from_record(cls, record: dict) -> CVAE:
        return cls(CVAEArgs.from_dict(record["args"]), recon=record.get("recon", "1*L1"))

    def export_graphs(self, n: int = 2) -> dict[str, ExportGraph]:
        """The four graphs by role (models_store.GRAPH_ROLES), with example inputs of ``n`` rows."""
        ks, latent = self.args.kernel_size, self.args.latent_size
        cond = torch.tensor([[0.5 * (lo + hi) for _, lo, hi in self.args.conditions]] * n, dtype=torch.float32)
        psf, z = torch.full((n, ks, ks), 1.0 / ks**2), torch.zeros((n, latent))
        return {
            "psf": ExportGraph(PSFGraph(self), (cond,), ["condition"], ["psf"]),
            "prior": ExportGraph(self.prior, (cond,), ["condition"], ["mu", "logvar"]),
            "decoder": ExportGraph(self.decoder, (z, cond), ["z", "condition"], ["psf"]),
            "encoder": ExportGraph(self.encoder, (psf, cond), ["psf", "condition"], ["mu", "logvar"]),
        }

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
        log_prior = self.decoder.log_prob(mu_p, condition)
        return {
            "recon": self.recon(self.decoder.log_prob(z, condition), psf),
            "recon_prior": self.recon(log_prior, psf),
            "l1_prior": rel_l1(log_prior.detach().exp(), psf).mean(),
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
