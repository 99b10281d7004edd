"""Training data: an index-only dataset whose PSFs are ray-traced when first asked for.

Conditions are drawn up front (cheap, seeded); a sample's PSF is traced the first time a batch needs
it and then kept in memory, so the first epoch pays the ray tracing and later epochs are free.
Samples are traced in blocks that share one wavelength, because DeepLens traces many points at one
wavelength in a single call.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from .config import ConditionsConfig
from .raytrace import LensTracer


def sample_conditions(ranges: ConditionsConfig, n: int, rng: np.random.Generator, block: int = 1) -> np.ndarray:
    """[n, 3] rows of (field, depth m, wavelength nm).

    Field is drawn uniformly over the image area (sqrt), which puts more samples at the edge where
    aberrations grow; depth uniformly in 1/depth, in which defocus blur is linear; wavelength is
    continuous, shared within each block of ``block`` rows.
    """
    f, d, w = ranges.field, ranges.depth, ranges.wavelength
    field = np.sqrt(rng.uniform(f.min**2, f.max**2, n))
    inv = rng.uniform(1.0 / d.max, 1.0 / d.min, n)
    n_blocks = -(-n // block)
    wavelength = np.repeat(rng.uniform(w.min, w.max, n_blocks), block)[:n]
    return np.stack([field, 1.0 / inv, wavelength], axis=1)


class RayTracedPSFs(Dataset):
    """Index-only dataset: item i is (psf [k, k], condition [3]) traced on first use."""

    def __init__(self, tracer: LensTracer, conditions: np.ndarray, *, ks: int, spp: int, block: int,
                 progress: bool = True, desc: str = "ray tracing") -> None:
        self.tracer, self.ks, self.spp, self.block = tracer, ks, spp, block
        self.conditions = np.asarray(conditions, dtype=np.float64)
        self.psfs = np.zeros((len(self.conditions), ks, ks), dtype=np.float32)
        self.traced = np.zeros(len(self.conditions), dtype=bool)
        self.bar = tqdm(total=len(self.conditions), desc=desc, unit="psf", disable=not progress, leave=False)

    def __len__(self) -> int:
        return len(self.conditions)

    def _ensure(self, indices: np.ndarray) -> None:
        for b in np.unique(indices[~self.traced[indices]] // self.block):
            rows = np.arange(b * self.block, min((b + 1) * self.block, len(self)))
            self.psfs[rows] = self.tracer.psf_conditions(self.conditions[rows], ks=self.ks, spp=self.spp)
            self.traced[rows] = True
            self.bar.update(len(rows))
        if self.traced.all():
            self.bar.close()

    def trace_all(self) -> None:
        self._ensure(np.arange(len(self)))

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.__getitems__([i])[0]

    def __getitems__(self, indices: list[int]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        # DataLoader calls this with a whole batch of indices, so one batch triggers one trace per block.
        idx = np.asarray(indices, dtype=np.int64)
        self._ensure(idx)
        psf = torch.from_numpy(self.psfs[idx])
        cond = torch.from_numpy(self.conditions[idx].astype(np.float32))
        return list(zip(psf, cond, strict=True))
