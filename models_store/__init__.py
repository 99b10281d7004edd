"""Versioned on-disk model store: the one contract between training and serving.

onnxruntime is needed only by :mod:`models_store.engine`, which is imported on demand.
"""

from .conditions import ConditionError, resolve_conditions, rotate_psfs
from .geometry import GeometryTable, GeometryUnavailable, distortion_grid, image_geometry
from .manifest import GRAPH_ROLES, ConditionSpec, GraphSpec, KernelSizing, LensInfo, Manifest, TrainingSummary
from .sensor import SensorFrame
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
    "GeometryTable",
    "GeometryUnavailable",
    "GraphSpec",
    "IntegrityError",
    "KernelSizing",
    "LensInfo",
    "Manifest",
    "NotFoundError",
    "PublishError",
    "SensorFrame",
    "Store",
    "StoreError",
    "TrainingSummary",
    "check_name",
    "default_store_root",
    "distortion_grid",
    "image_geometry",
    "resolve_conditions",
    "rotate_psfs",
    "sha256_file",
]
