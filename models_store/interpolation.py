"""Paths between two points of latent space, and the condition path that goes with them.

A path of ``steps`` points runs from the start (t = 0) to the end (t = 1) inclusive. Latents move
linearly or along the great circle (slerp, which keeps the norm of a Gaussian latent from sagging in
the middle); the physical condition columns and the azimuth move linearly. Both ends are reproduced
exactly, so the first and last PSFs of a path equal the PSFs of the endpoints.
"""

from __future__ import annotations

from typing import Literal, get_args

import numpy as np

from .conditions import ConditionError

Method = Literal["linear", "slerp"]
METHODS: tuple[str, ...] = get_args(Method)
# below this angle between the two latents slerp is numerically linear interpolation
_SLERP_MIN_ANGLE = 1e-6


def path_weights(steps: int) -> np.ndarray:
    """t = 0 .. 1 inclusive, ``steps`` points (float64)."""
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 2:
        raise ConditionError("steps", steps, "must be a whole number >= 2 (the path includes both ends)")
    return np.linspace(0.0, 1.0, int(steps))


def lerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Rows (1 - t) a + t b in float64; t = 0 gives a and t = 1 gives b bit for bit."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)[:, None]
    return (1.0 - t) * a[None, :] + t * b[None, :]


def slerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Spherical interpolation of two vectors (rows, float64), linear when they are (anti)parallel-close."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0.0 or nb == 0.0:
        return lerp(a, b, t)
    cos = float(np.clip(np.dot(a / na, b / nb), -1.0, 1.0))
    omega = np.arccos(cos)
    sin = np.sin(omega)
    if sin < _SLERP_MIN_ANGLE:
        return lerp(a, b, t)
    t = np.asarray(t, dtype=np.float64)[:, None]
    # at t = 0 and t = 1 one weight is sin(0) = 0 and the other sin(omega) / sin(omega) = 1 exactly
    return (np.sin((1.0 - t) * omega) / sin) * a[None, :] + (np.sin(t * omega) / sin) * b[None, :]


def latent_path(z0: np.ndarray, z1: np.ndarray, t: np.ndarray, method: str) -> np.ndarray:
    """[L], [L], t [S] -> [S, L] float32 latents along the path."""
    if method == "linear":
        path = lerp(z0, z1, t)
    elif method == "slerp":
        path = slerp(z0, z1, t)
    else:
        raise ConditionError("method", method, f"must be one of {list(METHODS)}")
    return path.astype(np.float32)
