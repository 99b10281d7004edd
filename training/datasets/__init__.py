"""Training data sources, selected by ``data.type``: ``online`` (ray-traced on first use) or
``bank`` (a PSF bank generated once, stored with safetensors, reused across runs)."""

from . import bank, online  # noqa: F401
from .sampling import sample_conditions

__all__ = ["sample_conditions"]
