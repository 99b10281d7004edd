"""sRGB transfer functions (IEC 61966-2-1): blur happens in linear light, images usually come encoded."""

from __future__ import annotations

from typing import Any

import numpy as np


def is_torch(x: Any) -> bool:
    return type(x).__module__.startswith("torch")


def srgb_to_linear(image: Any) -> Any:
    """sRGB-encoded values in [0, 1] -> linear light (numpy arrays or torch tensors)."""
    if is_torch(image):
        import torch

        x = image.clamp(0.0, 1.0)
        return torch.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)
    x = np.clip(np.asarray(image, dtype=np.float32), 0.0, 1.0)
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4).astype(np.float32)


def linear_to_srgb(image: Any) -> Any:
    """Linear light -> sRGB-encoded values in [0, 1] (values outside [0, 1] are clipped first)."""
    if is_torch(image):
        import torch

        x = image.clamp(0.0, 1.0)
        return torch.where(x <= 0.0031308, x * 12.92, 1.055 * x ** (1 / 2.4) - 0.055)
    x = np.clip(np.asarray(image, dtype=np.float32), 0.0, 1.0)
    return np.where(x <= 0.0031308, x * 12.92, 1.055 * x ** (1 / 2.4) - 0.055).astype(np.float32)
