"""Several training processes (torchrun or ``accelerate launch``): what they share and what each does.

Every rank traces and trains on its own share of the samples (whole blocks, so no block is traced
twice) and DDP averages the gradients, so every rank holds the same weights after every step. Only the
main process writes the run folder's files, validates, evaluates, exports and publishes.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable

import torch
from accelerate import PartialState
from accelerate.utils import broadcast_object_list, gather_object
from torch.utils.data import Dataset, Subset


def launched_world_size() -> int:
    """Processes the launcher started (torchrun, accelerate launch, MPI), 1 when run directly."""
    for var in ("WORLD_SIZE", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE"):
        if os.environ.get(var, "").isdigit():
            return int(os.environ[var])
    return 1


def use_cpu() -> bool:
    """Whether accelerate must be told ``cpu=True``.

    Without it, accelerate turns ranks started by torchrun on a machine without a GPU into separate
    single-process runs (each would train and publish on its own); with it they form one gloo group.
    """
    return launched_world_size() > 1 and not torch.cuda.is_available()


def init_processes() -> PartialState:
    """Join the launched processes into one group (before anything that they must agree on)."""
    return PartialState(cpu=use_cpu())


def decided_by_main[T](state: PartialState, decide: Callable[[], T]) -> T:
    """``decide()`` run on the main process only, its answer handed to every rank (e.g. the run
    folder, whose name holds the time and must not differ between ranks)."""
    box = [decide() if state.is_main_process else None]
    if state.num_processes > 1:
        broadcast_object_list(box, from_process=0)
    return box[0]


def rank_share(dataset: Dataset, block: int, rank: int, world: int) -> Subset:
    """The samples rank ``rank`` of ``world`` trains on: blocks rank, rank + world, ... of ``block``
    rows each (a block is traced in one call, so a block split between ranks would be traced twice)."""
    n = len(dataset)
    rows = [i for b in range(rank, -(-n // block), world) for i in range(b * block, min((b + 1) * block, n))]
    return Subset(dataset, rows)


def weights_digest(model: torch.nn.Module) -> str:
    """sha256 of every parameter and buffer: equal on all ranks when their gradients were averaged."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def per_rank(state: PartialState, record: dict) -> list[dict]:
    """Every rank's ``record``, in rank order, on every rank."""
    if state.num_processes == 1:
        return [record]
    return sorted(gather_object([record]), key=lambda r: r["rank"])
