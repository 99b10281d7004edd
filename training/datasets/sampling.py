"""Where training samples go in condition space."""

from __future__ import annotations

import numpy as np

MERIDIAN_DEG = 90.0


def sample_conditions(cfg, n: int, rng: np.random.Generator, block: int = 1, meridian: bool = False) -> np.ndarray:
    """[n, C] rows of (field, depth m, wavelength nm[, focus m][, azimuth deg]) for a RunConfig ``cfg``.

    PSFs change fastest toward the field edge and near focus (where the blur is small and sharp
    features move quickly with depth), so: field is drawn as u ** field_power (0.5 = uniform over the
    image area, lower = more at the edge); depth is uniform in 1/depth (defocus is linear there) with
    a fraction ``near_focus_fraction`` drawn from a narrow band around the focus distance. Wavelength
    (and focus, when it is a condition) is continuous and shared by each block of ``block`` rows,
    because DeepLens traces one wavelength per call and a focus change moves the sensor.
    """
    r, s = cfg.conditions, cfg.data.sampling
    f, d, w = r.field, r.depth, r.wavelength
    field = f.min + (f.max - f.min) * rng.uniform(0.0, 1.0, n) ** s.field_power
    lo, hi = 1.0 / d.max, 1.0 / d.min
    inv = rng.uniform(lo, hi, n)
    n_blocks = -(-n // block)
    wavelength = np.repeat(rng.uniform(w.min, w.max, n_blocks), block)[:n]
    columns = [field, None, wavelength]
    if r.focus is not None:
        focus = np.repeat(1.0 / rng.uniform(1.0 / r.focus.max, 1.0 / r.focus.min, n_blocks), block)[:n]
        columns.append(focus)
        centre = 1.0 / focus
    else:
        centre = np.full(n, 1.0 / cfg.lens.focus_m if cfg.lens.focus_m else lo)
    near = rng.uniform(0.0, 1.0, n) < s.near_focus_fraction
    band = s.near_focus_width * (hi - lo)
    inv = np.where(near, np.clip(centre + rng.normal(0.0, band, n), lo, hi), inv)
    columns[1] = 1.0 / inv
    if r.azimuth is not None:
        azimuth = rng.uniform(r.azimuth.min, r.azimuth.max, n)
        columns.append(np.full(n, MERIDIAN_DEG) if meridian else azimuth)
    return np.stack(columns, axis=1)


def round_conditions(cfg, r: int) -> np.ndarray:
    """Round ``r``'s training conditions (``data.rounds``): round 0 is :func:`training_conditions`, later
    rounds are drawn under their own seed, so a resumed run draws the same ones."""
    if r == 0:
        return training_conditions(cfg)
    rng = np.random.default_rng([cfg.seed, 7919, r])
    return sample_conditions(cfg, cfg.data.train_samples, rng, cfg.data.block, meridian=on_meridian(cfg))


def training_conditions(cfg) -> np.ndarray:
    """The run's training conditions: ``data.train_samples`` rows drawn under ``seed``, in blocks of ``data.block``."""
    return sample_conditions(cfg, cfg.data.train_samples, np.random.default_rng(cfg.seed), cfg.data.block,
                             meridian=on_meridian(cfg))


def on_meridian(cfg) -> bool:
    """Whether training samples sit on the +y meridian (``data.sampling.azimuth: meridian``)."""
    return cfg.conditions.azimuth is not None and cfg.data.sampling.azimuth == "meridian"


def mirror_average(psfs: np.ndarray) -> np.ndarray:
    """A meridian PSF of a rotationally symmetric lens is its own left-right mirror image (about the
    chief ray at the kernel's centre, (k - 1) / 2): averaging the two halves the ray noise's variance."""
    return 0.5 * (psfs + psfs[..., ::-1])
