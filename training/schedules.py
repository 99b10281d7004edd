"""Learning-rate schedules (multipliers of optim.lr), all with a linear warm-up."""

from __future__ import annotations

import math
from collections.abc import Callable

from .config import ScheduleConfig


def lr_lambda(cfg: ScheduleConfig, total_steps: int) -> Callable[[int], float]:
    warmup, floor = cfg.warmup_steps, cfg.min_lr_ratio

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if cfg.type == "constant":
            return 1.0
        progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
        if cfg.type == "cosine_restarts":
            progress = (progress * cfg.cycles) % 1.0
        return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor
