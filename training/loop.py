"""The accelerate training loop: reads top to bottom, one prepare() call, scheduler after prepare."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator
from torch.utils.data import DataLoader

from .config import RunConfig
from .model import CVAE


def partner_conditions(cond: torch.Tensor, cfg: RunConfig, generator: torch.Generator) -> torch.Tensor:
    """A nearby in-range condition for every row (for the interpolation-consistency term)."""
    r = cfg.conditions
    lo = torch.tensor([r.field.min, r.depth.min, r.wavelength.min], dtype=cond.dtype)
    hi = torch.tensor([r.field.max, r.depth.max, r.wavelength.max], dtype=cond.dtype)
    step = (torch.rand(cond.shape, generator=generator) * 2 - 1) * cfg.train.interp_span * (hi - lo)
    return torch.minimum(torch.maximum(cond + step.to(cond.device), lo), hi)


def warmup_cosine(warmup: int, total: int):
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total - warmup)
        return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return factor


def train(cfg: RunConfig, model: CVAE, dataset, run_dir: Path, accelerator: Accelerator) -> dict:
    t = cfg.train
    generator = torch.Generator().manual_seed(cfg.seed)
    loader = DataLoader(dataset, batch_size=t.batch_size, shuffle=True, drop_last=True, generator=generator)
    optimizer = torch.optim.AdamW(model.parameters(), lr=t.lr, weight_decay=t.weight_decay)
    model, optimizer, loader = accelerator.prepare(model, optimizer, loader)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(t.warmup_steps, t.steps))

    log_path = run_dir / "train_log.jsonl"
    step, started = 0, time.perf_counter()
    running: dict[str, float] = {}
    model.train()
    while step < t.steps:
        for psf, cond in loader:
            partner = partner_conditions(cond.cpu(), cfg, generator).to(cond.device)
            terms = model(psf, cond, partner)
            kl = terms["kl_per_dim"].sum()
            loss = terms["recon"] + t.prior_recon_weight * terms["recon_prior"] + t.beta_kl * kl \
                + t.interp_weight * terms["interp"]
            accelerator.backward(loss)
            if t.grad_clip is not None:
                accelerator.clip_grad_norm_(model.parameters(), t.grad_clip)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            step += 1

            values = {"loss": loss.item(), "recon": terms["recon"].item(),
                      "recon_prior": terms["recon_prior"].item(), "kl": kl.item(), "interp": terms["interp"].item()}
            for key, value in values.items():
                running[key] = running.get(key, 0.0) + value
            if step % t.log_every == 0 or step == t.steps:
                n = t.log_every if step % t.log_every == 0 else step % t.log_every
                record = {"step": step, "lr": scheduler.get_last_lr()[0],
                          "elapsed_s": round(time.perf_counter() - started, 2),
                          **{k: round(v / n, 6) for k, v in running.items()},
                          "kl_per_dim": [round(v, 5) for v in terms["kl_per_dim"].tolist()]}
                running = {}
                accelerator.print(
                    f"step {step:5d}/{t.steps}  loss {record['loss']:.4f}  recon(q) {record['recon']:.4f}  "
                    f"recon(prior) {record['recon_prior']:.4f}  kl {record['kl']:.3f}  interp {record['interp']:.4f}"
                )
                if accelerator.is_main_process:
                    with open(log_path, "a") as fh:
                        fh.write(json.dumps(record) + "\n")
            if step % t.checkpoint_every == 0 or step == t.steps:
                accelerator.save_state(str(run_dir / "checkpoints" / f"step_{step:06d}"))
            if step >= t.steps:
                break

    accelerator.wait_for_everyone()
    return {"steps": step, "train_wall_s": time.perf_counter() - started,
            "final_recon_prior": float(np.nan if not values else values["recon_prior"])}
