"""Training data sources by ``data.type`` and where each lives (torch-free: config validation reads it).

A dataset class builds itself, ``Dataset.from_config(cfg, tracer, accelerator)``, from the shared
``data.*`` keys; it has a ``traced`` mask saying which samples were ray-traced by this process.
"""

from __future__ import annotations

from ..registry import DATASETS

DATASETS.add("online", impl="training.datasets.online:RayTracedPSFs")  # traced when a batch first needs it
DATASETS.add("bank", impl="training.datasets.bank:PSFBank")  # traced once, kept as safetensors, reused
