"""The accelerate training loop: reads top to bottom, one prepare() call, scheduler after prepare."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator
from torch.utils.data import DataLoader

from .config import ConfigError, LossConfig, RunConfig
from .distributed import rank_share
from .models.base import SurrogateModel
from .schedules import lr_lambda


class TrainState:
    """The step counter, saved and restored with every accelerate checkpoint."""

    def __init__(self) -> None:
        self.step = 0

    def state_dict(self) -> dict:
        return {"step": self.step}

    def load_state_dict(self, state: dict) -> None:
        self.step = int(state["step"])


def partner_conditions(cond: torch.Tensor, cfg: RunConfig, generator: torch.Generator) -> torch.Tensor:
    """A nearby in-range condition for every row (for the interpolation-consistency term)."""
    cols = cfg.conditions.columns()
    lo = torch.tensor([c[1] for c in cols], dtype=cond.dtype)
    hi = torch.tensor([c[2] for c in cols], dtype=cond.dtype)
    step = (torch.rand(cond.shape, generator=generator) * 2 - 1) * cfg.loss.interp_span * (hi - lo)
    return torch.minimum(torch.maximum(cond.cpu() + step, lo), hi).to(cond.device)


def total_loss(terms: dict[str, torch.Tensor], loss_cfg: LossConfig) -> torch.Tensor:
    """The training objective from the model's loss terms: recon + prior recon + beta KL + interpolation."""
    kl = torch.clamp(terms["kl_per_dim"], min=loss_cfg.free_bits).sum()
    return (terms["recon"] + loss_cfg.prior_recon_weight * terms["recon_prior"]
            + loss_cfg.kl_weight * kl + loss_cfg.interp_weight * terms["interp"])


def train(cfg: RunConfig, model: SurrogateModel, dataset, run_dir: Path, accelerator: Accelerator, *,
          resume_from: Path | None = None, validate: Callable[[SurrogateModel, int], dict] | None = None,
          fit_started: float | None = None) -> dict:
    """Fit ``model``; ``fit_started`` (a perf_counter time) is when the whole command began, so the log's
    ``fit_elapsed_s`` counts the probe and the tracing too (time-to-accuracy curves read it)."""
    t, o, loss_cfg = cfg.train, cfg.optim, cfg.loss
    # data.rounds: the steps are split into rounds, each on freshly drawn conditions
    steps_per_round = -(-t.steps // cfg.data.rounds)
    if cfg.data.rounds > 1 and not hasattr(dataset, "set_round"):
        raise ConfigError(f"data.rounds = {cfg.data.rounds} needs a dataset that draws fresh conditions; "
                          f"data.type {cfg.data.type!r} does not (use online, or rounds: 1)")
    generator = torch.Generator().manual_seed(cfg.seed)
    # each rank draws its batches from its own share only, so it traces only that share; the loader is
    # therefore not prepared (accelerate would split it again)
    share = rank_share(dataset, cfg.data.block, accelerator.process_index, accelerator.num_processes)
    if len(share) < t.batch_size:
        raise ConfigError(f"train.batch_size={t.batch_size} is not allowed: each of the {accelerator.num_processes} "
                          f"process(es) has only {len(share)} samples; use at most {len(share)} "
                          "or more data.train_samples")
    loader = DataLoader(share, batch_size=t.batch_size, shuffle=True, drop_last=True, generator=generator)
    optimizer = torch.optim.AdamW(model.parameters(), lr=o.lr, betas=o.betas, eps=o.eps, weight_decay=o.weight_decay)
    model, optimizer = accelerator.prepare(model, optimizer)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(cfg.schedule, t.steps))
    state = TrainState()
    accelerator.register_for_checkpointing(scheduler, state)
    if resume_from is not None:
        accelerator.load_state(str(resume_from))
        accelerator.print(f"resumed from {resume_from} at step {state.step}")

    log_path = run_dir / "train_log.jsonl"
    started, running, count = time.perf_counter(), {}, 0
    fit_started = started if fit_started is None else fit_started
    model.train()
    while state.step < t.steps:
        if cfg.data.rounds > 1:
            dataset.set_round(state.step // steps_per_round)
        for psf, cond in loader:
            psf, cond = psf.to(accelerator.device), cond.to(accelerator.device)
            with accelerator.accumulate(model):
                terms = model(psf, cond, partner_conditions(cond, cfg, generator))
                loss = total_loss(terms, loss_cfg)
                accelerator.backward(loss)
                if accelerator.sync_gradients and o.grad_clip is not None:
                    accelerator.clip_grad_norm_(model.parameters(), o.grad_clip)
                optimizer.step()
                optimizer.zero_grad()
            for key in ("recon", "recon_prior", "l1_prior", "interp"):
                running[key] = running.get(key, 0.0) + terms[key].item()
            running["loss"] = running.get("loss", 0.0) + loss.item()
            running["kl"] = running.get("kl", 0.0) + terms["kl_per_dim"].sum().item()
            count += 1
            if not accelerator.sync_gradients:
                continue
            scheduler.step()
            state.step += 1
            step = state.step

            if step % t.log_every == 0 or step == t.steps:
                record = {k: v / count for k, v in running.items()}
                record["lr"] = scheduler.get_last_lr()[0]
                per_dim = terms["kl_per_dim"].detach().cpu().tolist()
                accelerator.log({**{f"train/{k}": v for k, v in record.items()},
                                 **{f"kl_dim/{i}": v for i, v in enumerate(per_dim)}}, step=step)
                accelerator.print(
                    f"step {step:6d}/{t.steps}  loss {record['loss']:.4f}  relL1(prior) {record['l1_prior']:.4f}  "
                    f"kl {record['kl']:.2f}  interp {record['interp']:.4f}  lr {record['lr']:.2e}")
                if accelerator.is_main_process:
                    with open(log_path, "a") as fh:
                        now = time.perf_counter()
                        fh.write(json.dumps({"step": step, "elapsed_s": round(now - started, 2),
                                             "fit_elapsed_s": round(now - fit_started, 2),
                                             **record, "kl_per_dim": per_dim}) + "\n")
                running, count = {}, 0
            if step % cfg.checkpoint.every == 0 or step == t.steps:
                saved = Path(accelerator.save_state())
                if accelerator.is_main_process:  # each checkpoint rebuilds on its own: config + network args
                    for name in ("config.yaml", "model_args.json"):
                        shutil.copyfile(run_dir / name, saved / name)
            if validate is not None and (step % cfg.validation.every == 0 or step == t.steps):
                accelerator.wait_for_everyone()
                if accelerator.is_main_process:
                    metrics = validate(accelerator.unwrap_model(model), step)
                    accelerator.log({f"val/{k}": v for k, v in metrics.items() if isinstance(v, float)}, step=step)
                model.train()
            if step >= t.steps or (cfg.data.rounds > 1 and step % steps_per_round == 0):
                break  # done, or the next round's conditions start with a fresh pass

    accelerator.wait_for_everyone()
    return {"steps": state.step, "train_wall_s": time.perf_counter() - started,
            "traced": dataset.traced_count(np.asarray(share.indices))}
