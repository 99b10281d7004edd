"""The config keys of every decoder network, and where each lives (torch-free: config validation reads it).

Adding a network: its ``nn.Module`` in a new file here, taking ``(n_in, kernel_size, args)``, and its
schema below with ``@NETWORKS.register("name", impl="training.networks.FILE:Class")``.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from ..registry import NETWORKS


class NetworkArgs(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


@NETWORKS.register("mlp_basis", impl="training.networks.mlp_basis:MLPBasis")
class MLPBasisArgs(NetworkArgs):
    """MLP whose last linear layer is a learned basis of k x k log-PSF images: k^2 x rank weights."""

    hidden: int = Field(default=256, ge=8)
    depth: int = Field(default=3, ge=1, description="hidden layers")
    rank: int | None = Field(default=None, ge=1, description="basis size (default: hidden)")


@NETWORKS.register("conv_transpose", impl="training.networks.conv_transpose:ConvTranspose")
class ConvTransposeArgs(NetworkArgs):
    """MLP to a start x start feature map, then stride-2 transposed convolutions up to k (= start x 2^n)."""

    hidden: int = Field(default=256, ge=8)
    depth: int = Field(default=2, ge=1, description="hidden layers of the MLP stem")
    channels: int = Field(default=64, ge=4, description="channels at the smallest feature map")
    start: int = Field(default=4, ge=2, description="side of the smallest feature map")


@NETWORKS.register("pixel_shuffle", impl="training.networks.pixel_shuffle:PixelShuffleBasis")
class PixelShuffleArgs(NetworkArgs):
    """A learned basis on a k/factor grid with ``channels`` maps, then a learned 3x3 conv to factor^2 sub-pixel
    maps rearranged to k x k (pixel shuffle): basis weights shrink by factor^2 / channels against mlp_basis."""

    hidden: int = Field(default=256, ge=8)
    depth: int = Field(default=3, ge=1, description="hidden layers")
    rank: int = Field(default=128, ge=1, description="basis size")
    channels: int = Field(default=8, ge=1, description="maps of the coarse grid")
    factor: int = Field(default=4, ge=2, le=16, description="upsampling factor; must divide the kernel size")


@NETWORKS.register("separable", impl="training.networks.separable:Separable")
class SeparableArgs(NetworkArgs):
    """Log-PSF as a sum of ``rank`` outer products u_r(x) v_r(y) predicted per PSF: 2 x rank x k outputs, not k^2."""

    hidden: int = Field(default=256, ge=8)
    depth: int = Field(default=3, ge=1, description="hidden layers")
    rank: int = Field(default=16, ge=1, description="outer products summed")
