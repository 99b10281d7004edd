"""Versioned on-disk model store: the one contract between training and serving.

onnxruntime is needed only by :mod:`models_store.engine`, which is imported on demand.
"""

from .conditions import ConditionError, resolve_conditions, rotate_psfs
from .manifest import GRAPH_ROLES, ConditionSpec, GraphSpec, KernelSizing, LensInfo, Manifest, TrainingSummary
from .store import (
    DEFAULT_ALIAS,
    NAME_PATTERN,
    IntegrityError,
    NotFoundError,
    PublishError,
    Store,
    StoreError,
    check_name,
    default_store_root,
    sha256_file,
)

__all__ = [
    "DEFAULT_ALIAS",
    "GRAPH_ROLES",
    "NAME_PATTERN",
    "ConditionError",
    "ConditionSpec",
    "GraphSpec",
    "IntegrityError",
    "KernelSizing",
    "LensInfo",
    "Manifest",
    "NotFoundError",
    "PublishError",
    "Store",
    "StoreError",
    "TrainingSummary",
    "check_name",
    "default_store_root",
    "resolve_conditions",
    "rotate_psfs",
    "sha256_file",
]
