"""Rendering with PSF grids: spatially varying blur in linear light (numpy, or torch when installed)."""

from ._blur import blur
from ._color import linear_to_srgb, srgb_to_linear
from ._kernels import resample_kernels
from ._pipeline import DEFAULT_GRID, DEFAULT_RGB_NM, depth_layers, fetch_psf_grid, render

__all__ = ["DEFAULT_GRID", "DEFAULT_RGB_NM", "blur", "depth_layers", "fetch_psf_grid", "linear_to_srgb",
           "render", "resample_kernels", "srgb_to_linear"]
