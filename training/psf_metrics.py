"""Error measures between predicted and reference PSFs (numpy, batched over the first axis).

All take arrays [N, k, k] and return one value per PSF, so callers can summarise (mean, p90) or map
them over field x depth.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def rel_l1(pred: Any, ref: Any) -> Any:
    """sum|p - r| / sum r per PSF: numpy arrays or torch tensors (the training loss logs it too)."""
    return abs(pred - ref).sum(axis=(-2, -1)) / ref.sum(axis=(-2, -1))


def centroid(psf: np.ndarray) -> np.ndarray:
    """Energy centroid [N, 2] as (column, row) in pixels."""
    k = psf.shape[-1]
    rows, cols = np.indices((k, k))
    total = psf.sum(axis=(-2, -1))
    return np.stack([(psf * cols).sum(axis=(-2, -1)) / total, (psf * rows).sum(axis=(-2, -1)) / total], axis=-1)


def centroid_error_px(pred: np.ndarray, ref: np.ndarray) -> np.ndarray:
    return np.linalg.norm(centroid(pred) - centroid(ref), axis=-1)


def encircled_energy_radius(psf: np.ndarray, fraction: float = 0.8) -> np.ndarray:
    """Radius [px] around each PSF's own centroid that holds ``fraction`` of its energy."""
    n, k, _ = psf.shape
    rows, cols = np.indices((k, k))
    c = centroid(psf)
    r = np.hypot(cols[None] - c[:, 0, None, None], rows[None] - c[:, 1, None, None]).reshape(n, -1)
    e = psf.reshape(n, -1) / psf.reshape(n, -1).sum(axis=1, keepdims=True)
    order = np.argsort(r, axis=1)
    r_sorted = np.take_along_axis(r, order, axis=1)
    cum = np.cumsum(np.take_along_axis(e, order, axis=1), axis=1)
    out = np.empty(n)
    for i in range(n):
        out[i] = np.interp(fraction, cum[i], r_sorted[i])
    return out


def ee80_error_pct(pred: np.ndarray, ref: np.ndarray) -> np.ndarray:
    rp, rr = encircled_energy_radius(pred), encircled_energy_radius(ref)
    return 100.0 * np.abs(rp - rr) / np.maximum(rr, 1e-6)


def peak_ratio_error(pred: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """|peak(p) / peak(r) - 1|."""
    return np.abs(pred.max(axis=(-2, -1)) / ref.max(axis=(-2, -1)) - 1.0)


METRICS = {
    "rel_l1": rel_l1,
    "centroid_px": centroid_error_px,
    "ee80_pct": ee80_error_pct,
    "peak_ratio": peak_ratio_error,
}


def all_errors(pred: np.ndarray, ref: np.ndarray) -> dict[str, np.ndarray]:
    return {name: fn(pred, ref) for name, fn in METRICS.items()}


def summarize(errors: dict[str, np.ndarray]) -> dict[str, float]:
    """{metric_mean, metric_p90} for every metric."""
    out: dict[str, float] = {}
    for name, values in errors.items():
        out[f"{name}_mean"] = float(np.mean(values))
        out[f"{name}_p90"] = float(np.percentile(values, 90))
    return out


def embed(psf: np.ndarray, window: int) -> np.ndarray:
    """[N, k, k] kernels, centred in zero [N, window, window] (window - k is even)."""
    k = psf.shape[-1]
    pad = (window - k) // 2
    assert pad >= 0 and 2 * pad + k == window, f"kernel {k} does not centre in a {window} px window"
    return np.pad(psf, ((0, 0), (pad, pad), (pad, pad)))


def energy_outside(ref: np.ndarray, ks: int) -> np.ndarray:
    """Fraction of each whole-window PSF that falls outside its centred ks x ks kernel."""
    pad = (ref.shape[-1] - ks) // 2
    inside = ref[:, pad: pad + ks, pad: pad + ks].sum(axis=(-2, -1))
    return np.clip(1.0 - inside / ref.sum(axis=(-2, -1)), 0.0, 1.0)  # float rounding gives -0.0 for a whole PSF
