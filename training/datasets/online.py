"""Index-only dataset whose PSFs are ray-traced when a batch first asks for them.

Conditions are drawn up front (cheap, seeded); a sample's PSF is traced the first time a batch needs
it and then kept in memory, so the first epoch pays the ray tracing and later epochs are free. With
several processes, accelerate gives each rank its own batches, so each rank traces only its share.
Samples are traced in blocks that share one wavelength (DeepLens traces one wavelength per call).

With ``data.rounds`` > 1 the fit moves to freshly drawn conditions every round (:meth:`set_round`):
the network sees rounds x train_samples conditions, so it learns the PSF's mean instead of one noisy
draw per condition, while memory holds one round.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from ..raytrace import LensTracer
from .sampling import mirror_average, on_meridian, round_conditions


class RayTracedPSFs(Dataset):
    """Item i is (psf [k, k], condition [C]), traced on first use."""

    @classmethod
    def from_config(cls, cfg, tracer: LensTracer, accelerator) -> RayTracedPSFs:
        d = cfg.data
        return cls(tracer, round_conditions(cfg, 0), ks=d.kernel_size, spp=d.spp, block=d.block,
                   progress=accelerator.is_main_process, mirror=on_meridian(cfg),
                   draw_round=lambda r: round_conditions(cfg, r))

    def __init__(self, tracer: LensTracer, conditions: np.ndarray, *, ks: int, spp: int, block: int,
                 progress: bool = True, desc: str = "ray tracing", mirror: bool = False,
                 draw_round: Callable[[int], np.ndarray] | None = None) -> None:
        self.tracer, self.ks, self.spp, self.block = tracer, ks, spp, block
        self.mirror = mirror  # meridian samples: average each with its mirror image
        self.conditions = np.asarray(conditions, dtype=np.float64)
        self.psfs = np.zeros((len(self.conditions), ks, ks), dtype=np.float32)
        self.traced = np.zeros(len(self.conditions), dtype=bool)
        self.progress, self.desc, self.bar = progress, desc, None
        self.round, self.traced_before = 0, 0  # samples this process traced in earlier rounds
        self.draw_round = draw_round  # round -> its conditions (data.rounds); None: a single round

    def set_round(self, r: int) -> None:
        """Move to round ``r``'s conditions (traced when first used); a no-op in the current round."""
        if r == self.round:
            return
        if self.draw_round is None:
            raise RuntimeError("this dataset was not built from a config, so it has no further rounds")
        self.traced_before += int(self.traced.sum())
        self.conditions = np.asarray(self.draw_round(r), dtype=np.float64)
        assert len(self.conditions) == len(self.traced), "every round has data.train_samples conditions"
        self.traced[:] = False
        self.round, self.bar = r, None

    def traced_count(self, indices: np.ndarray) -> int:
        """Samples among ``indices`` traced by this process, over every round so far (the earlier rounds'
        count is this process's whole share, since each rank only ever traces its own)."""
        return self.traced_before + int(self.traced[indices].sum())

    def __len__(self) -> int:
        return len(self.conditions)

    def _ensure(self, indices: np.ndarray) -> None:
        if self.bar is None and not self.traced.all():  # created on first use so its rate is honest
            desc = self.desc if self.round == 0 else f"{self.desc} (round {self.round + 1})"
            self.bar = tqdm(total=len(self), desc=desc, unit="psf", disable=not self.progress, leave=False)
        for b in np.unique(indices[~self.traced[indices]] // self.block):
            rows = np.arange(b * self.block, min((b + 1) * self.block, len(self)))
            traced = self.tracer.psf_conditions(self.conditions[rows], ks=self.ks, spp=self.spp)
            self.psfs[rows] = mirror_average(traced) if self.mirror else traced
            self.traced[rows] = True
            self.bar.update(len(rows))
        if self.bar is not None and self.traced.all():
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
