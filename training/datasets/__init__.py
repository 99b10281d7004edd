"""Training data sources, selected by ``data.type`` (declared in args.py): ``online`` (ray-traced on
first use) or ``bank`` (a PSF bank generated once, stored with safetensors, reused across runs)."""

from .sampling import sample_conditions, training_conditions

__all__ = ["sample_conditions", "training_conditions"]
