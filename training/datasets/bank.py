"""A PSF bank: every training PSF traced once, stored with safetensors, reused by later runs.

The bank is keyed by everything that changes its contents (lens file bytes, focus, kernel size,
rays, the sampled conditions), so a changed lens or sampling config never reuses a stale bank.
With several processes each rank traces its own share of blocks; rank 0 merges the shards.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import load_file, save_file
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from ..raytrace import LensTracer
from .sampling import mirror_average, on_meridian, training_conditions


def bank_key(tracer: LensTracer, conditions: np.ndarray, ks: int, spp: int) -> str:
    digest = hashlib.sha256(tracer.cache_identity())
    digest.update(json.dumps([ks, spp]).encode())
    digest.update(np.ascontiguousarray(conditions, dtype=np.float64).tobytes())
    return digest.hexdigest()[:20]


def _trace_blocks(tracer, conditions, blocks, *, ks, spp, block, progress) -> np.ndarray:
    rows = np.concatenate([np.arange(b * block, min((b + 1) * block, len(conditions))) for b in blocks]) \
        if len(blocks) else np.zeros(0, dtype=np.int64)
    out = np.zeros((len(rows), ks, ks), dtype=np.float32)
    with tqdm(total=len(rows), desc="PSF bank", unit="psf", disable=not progress, leave=False) as bar:
        done = 0
        for b in blocks:
            idx = np.arange(b * block, min((b + 1) * block, len(conditions)))
            out[done:done + len(idx)] = tracer.psf_conditions(conditions[idx], ks=ks, spp=spp)
            done += len(idx)
            bar.update(len(idx))
    return rows, out


class PSFBank(Dataset):
    def __init__(self, conditions: np.ndarray, psfs: np.ndarray, path: Path | None = None, reused: bool = False):
        self.conditions = np.asarray(conditions, dtype=np.float64)
        self.psfs = psfs
        self.path, self.reused = path, reused
        self.traced = np.ones(len(self.conditions), dtype=bool)

    @classmethod
    def from_config(cls, cfg, tracer: LensTracer, accelerator) -> PSFBank:
        d = cfg.data
        bank = cls.load_or_build(tracer, training_conditions(cfg), ks=d.kernel_size, spp=d.spp, block=d.block,
                                 cache_dir=d.cache_dir, rank=accelerator.process_index, world=accelerator.num_processes,
                                 barrier=accelerator.wait_for_everyone, progress=accelerator.is_main_process)
        if on_meridian(cfg):  # the bank keeps the traces as traced; training sees them mirror-averaged
            bank.psfs = mirror_average(bank.psfs).astype(np.float32)
        return bank

    @classmethod
    def load_or_build(cls, tracer: LensTracer, conditions: np.ndarray, *, ks: int, spp: int, block: int,
                      cache_dir: Path, rank: int = 0, world: int = 1, barrier=lambda: None,
                      progress: bool = True) -> PSFBank:
        path = Path(cache_dir) / f"bank-{bank_key(tracer, conditions, ks, spp)}.safetensors"
        if path.is_file():
            data = load_file(path)
            return cls(data["conditions"], data["psf"], path, reused=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        n_blocks = -(-len(conditions) // block)
        rows, psfs = _trace_blocks(tracer, conditions, list(range(rank, n_blocks, world)), ks=ks, spp=spp,
                                   block=block, progress=progress)
        shard = path.with_name(f"{path.stem}.rank{rank}.tmp.safetensors")
        save_file({"rows": rows.astype(np.int64), "psf": psfs}, shard)
        barrier()
        if rank == 0:
            full = np.zeros((len(conditions), ks, ks), dtype=np.float32)
            for r in range(world):
                part = path.with_name(f"{path.stem}.rank{r}.tmp.safetensors")
                data = load_file(part)
                full[data["rows"]] = data["psf"]
                part.unlink()
            tmp = path.with_name(f"{path.stem}.tmp.safetensors")
            save_file({"conditions": np.ascontiguousarray(conditions, dtype=np.float64), "psf": full}, tmp)
            os.replace(tmp, path)
        barrier()
        data = load_file(path)
        return cls(data["conditions"], data["psf"], path, reused=False)

    def __len__(self) -> int:
        return len(self.conditions)

    def traced_count(self, indices: np.ndarray) -> int:
        return int(self.traced[indices].sum())

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.from_numpy(self.psfs[i]), torch.from_numpy(self.conditions[i].astype(np.float32))
