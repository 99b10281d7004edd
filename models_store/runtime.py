"""Run one stored model version with onnxruntime (no torch needed).

Serving and the embedded client both load models through :class:`OnnxModel`, so a query answered
in-process equals the same query answered over HTTP.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from .conditions import resolve_conditions, rotate_psfs
from .manifest import Manifest
from .store import Store

log = logging.getLogger(__name__)


def gpu_present() -> bool:
    """True only when an NVIDIA device is really there (the CUDA EP alone is not enough)."""
    return any(Path(p).exists() for p in ("/dev/nvidia0", "/dev/nvidiactl")) or bool(
        os.environ.get("PSF_FORCE_CUDA")
    )


def choose_providers(prefer_gpu: bool = True) -> list[str]:
    available = ort.get_available_providers()
    providers = []
    if prefer_gpu and "CUDAExecutionProvider" in available and gpu_present():
        providers.append("CUDAExecutionProvider")
    providers.append("CPUExecutionProvider")
    return providers


def session_options(threads: int | None = None) -> ort.SessionOptions:
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3  # warnings about unused providers are noise on CPU machines
    if threads:
        opts.intra_op_num_threads = threads
    return opts


class OnnxModel:
    """The four graphs of one model version, plus the condition convention around them."""

    def __init__(self, folder: Path, manifest: Manifest, *, providers: list[str] | None = None,
                 threads: int | None = None) -> None:
        self.folder, self.manifest = Path(folder), manifest
        self.providers = providers or choose_providers()
        opts = session_options(threads)
        self.sessions: dict[str, ort.InferenceSession] = {}
        for role, graph in manifest.graphs.items():
            self.sessions[role] = ort.InferenceSession(str(self.folder / graph.file), opts, providers=self.providers)

    @classmethod
    def from_store(cls, store: Store | str | os.PathLike[str], name: str, version: int | str | None = None,
                   **kwargs: Any) -> OnnxModel:
        store = store if isinstance(store, Store) else Store(store)
        manifest = store.manifest(name, version, verify=True)
        return cls(store.version_dir(name, manifest.version), manifest, **kwargs)

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def version(self) -> int:
        return self.manifest.version

    def _run(self, role: str, **inputs: np.ndarray) -> list[np.ndarray]:
        graph = self.manifest.graphs[role]
        feed = {name: np.ascontiguousarray(inputs[name], dtype=np.float32) for name in graph.inputs}
        return self.sessions[role].run(graph.outputs, feed)

    def psf_from_condition(self, condition: np.ndarray) -> np.ndarray:
        """[N, C] physical conditions (already validated) -> [N, k, k] meridian PSFs."""
        return self._run("psf", condition=condition)[0]

    def psf(self, **query: Any) -> np.ndarray:
        """Validated query (scalars or columns) -> [N, k, k] float32 PSFs at their azimuths."""
        condition, azimuth = resolve_conditions(self.manifest, **query)
        psfs = self.psf_from_condition(condition)
        if self.manifest.symmetry == "rotational":
            psfs = rotate_psfs(psfs, azimuth)
        return psfs

    def prior(self, condition: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mu, logvar = self._run("prior", condition=condition)
        return mu, logvar

    def decode(self, z: np.ndarray, condition: np.ndarray) -> np.ndarray:
        return self._run("decoder", z=z, condition=condition)[0]

    def encode(self, psf: np.ndarray, condition: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mu, logvar = self._run("encoder", psf=psf, condition=condition)
        return mu, logvar
