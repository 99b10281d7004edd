"""Run one stored model version with onnxruntime (no torch needed).

Serving and the embedded client both load models through :class:`OnnxModel`, and every answer the
server gives is computed by these methods, so a query answered in-process equals the same query
answered over HTTP bit for bit. Two levels:

- query level, physical units in, validated, PSFs at their azimuth: :meth:`~OnnxModel.psf`,
  :meth:`~OnnxModel.psf_grid`, :meth:`~OnnxModel.latent`, :meth:`~OnnxModel.decode`,
  :meth:`~OnnxModel.interpolate`;
- graph level, validated ``[N, C]`` conditions in, meridian PSFs out: :meth:`~OnnxModel.psf_from_condition`,
  :meth:`~OnnxModel.prior`, :meth:`~OnnxModel.decode_condition`, :meth:`~OnnxModel.encode`.

The graphs answer each row independently of the others in its batch (checked by the tests), which is
what lets the server merge concurrent queries into one call.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from .conditions import (
    ConditionError,
    fold_azimuth,
    orient_psfs,
    resolve_conditions,
    sensor_grid,
    to_model_frame,
)
from .interpolation import latent_path, lerp, path_weights
from .manifest import Manifest
from .store import Store

log = logging.getLogger(__name__)

# where the TensorRT provider keeps built engines (building one takes seconds to minutes)
TRT_CACHE_ENV = "PSF_TRT_CACHE"
# |z| accepted by decode: the learned prior sits near N(0, 1); far beyond it float32 overflows
LATENT_LIMIT = 1000.0
Provider = str | tuple[str, dict[str, Any]]


def gpu_present() -> bool:
    """True only when an NVIDIA device is really there (the CUDA EP alone is not enough)."""
    return any(Path(p).exists() for p in ("/dev/nvidia0", "/dev/nvidiactl")) or bool(
        os.environ.get("PSF_FORCE_CUDA")
    )


def choose_providers(prefer_gpu: bool = True, *, tensorrt: bool = True) -> list[Provider]:
    """TensorRT (when installed and allowed), then CUDA, on a real GPU; the CPU provider always last.

    onnxruntime falls back to the next provider when one fails to initialise.
    """
    available = ort.get_available_providers()
    providers: list[Provider] = []
    if prefer_gpu and gpu_present():
        if tensorrt and "TensorrtExecutionProvider" in available:
            cache = os.environ.get(TRT_CACHE_ENV) or str(Path(".cache") / "trt")
            providers.append(("TensorrtExecutionProvider", {"trt_engine_cache_enable": True,
                                                            "trt_engine_cache_path": cache}))
        if "CUDAExecutionProvider" in available:
            providers.append("CUDAExecutionProvider")
    providers.append("CPUExecutionProvider")
    return providers


def provider_names(providers: list[Provider]) -> list[str]:
    return [p if isinstance(p, str) else p[0] for p in providers]


def session_options(threads: int | None = None, *, spinning: bool = False) -> ort.SessionOptions:
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.inter_op_num_threads = 1  # the graphs are a chain: nothing to run side by side
    opts.log_severity_level = 3  # warnings about unused providers are noise on CPU machines
    if threads:
        opts.intra_op_num_threads = threads
    # Spinning workers wait for the next op at 100% CPU; between the small calls of a server they
    # would take the core the event loop needs.
    opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    return opts


class OnnxModel:
    """The four graphs of one model version, plus the condition convention around them."""

    def __init__(self, folder: Path, manifest: Manifest, *, providers: list[Provider] | None = None,
                 threads: int | None = None, spinning: bool = False) -> None:
        self.folder, self.manifest = Path(folder), manifest
        self.providers = providers or choose_providers()
        opts = session_options(threads, spinning=spinning)
        self.sessions: dict[str, ort.InferenceSession] = {}
        for role, graph in manifest.graphs.items():
            self.sessions[role] = ort.InferenceSession(str(self.folder / graph.file), opts, providers=self.providers)

    @classmethod
    def from_store(cls, store: Store | str | os.PathLike[str], name: str, version: int | str | None = None,
                   **kwargs: Any) -> OnnxModel:
        store = store if isinstance(store, Store) else Store(store)
        manifest = store.manifest(name, version, verify=True)
        return cls(store.version_dir(name, manifest.version), manifest, **kwargs)

    def __repr__(self) -> str:
        return f"OnnxModel({self.name}@{self.version}, {provider_names(self.providers)[0]})"

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def version(self) -> int:
        return self.manifest.version

    @property
    def kernel_size(self) -> int:
        return self.manifest.kernel_size

    # -- graph level: validated [N, C] conditions, meridian PSFs -----------------------------------
    def _run(self, role: str, **inputs: np.ndarray) -> list[np.ndarray]:
        graph = self.manifest.graphs[role]
        feed = {name: np.ascontiguousarray(inputs[name], dtype=np.float32) for name in graph.inputs}
        return self.sessions[role].run(graph.outputs, feed)

    def psf_from_condition(self, condition: np.ndarray) -> np.ndarray:
        """[N, C] physical conditions (already validated) -> [N, k, k] meridian PSFs."""
        return self._run("psf", condition=condition)[0]

    def prior(self, condition: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mu, logvar = self._run("prior", condition=condition)
        return mu, logvar

    def decode_condition(self, z: np.ndarray, condition: np.ndarray) -> np.ndarray:
        """z [N, L], [N, C] conditions -> [N, k, k] meridian PSFs."""
        return self._run("decoder", z=z, condition=condition)[0]

    def encode(self, psf: np.ndarray, condition: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mu, logvar = self._run("encoder", psf=psf, condition=condition)
        return mu, logvar

    # -- the pieces every query is made of --------------------------------------------------------
    def conditions(self, **query: Any) -> tuple[np.ndarray, np.ndarray]:
        """Validated query -> (condition [N, C] float32, azimuth [N] degrees); see resolve_conditions."""
        return resolve_conditions(self.manifest, **query)

    def orient(self, psfs: np.ndarray, azimuth: np.ndarray) -> np.ndarray:
        """PSFs in the model's frame -> PSFs at their azimuths: a rotation for meridional models,
        exact mirror flips for models conditioned on the first-quadrant azimuth."""
        return orient_psfs(self.manifest.symmetry, psfs, azimuth)

    def psf_at(self, condition: np.ndarray, azimuth: np.ndarray) -> np.ndarray:
        """Validated conditions and azimuths -> [N, k, k] PSFs: the unit of work the server batches."""
        return self.orient(self.psf_from_condition(condition), azimuth)

    # -- query level --------------------------------------------------------------------------------
    def psf(self, **query: Any) -> np.ndarray:
        """Validated query (scalars or columns) -> [N, k, k] float32 PSFs at their azimuths."""
        return self.psf_at(*self.conditions(**query))

    def grid_query(self, nx: int, ny: int, **physical: Any) -> dict[str, Any]:
        """The query of :meth:`psf_grid`: the tile centres as x/y columns plus the physical values."""
        x, y = sensor_grid(nx, ny)
        return {"x": x, "y": y, **physical}

    def psf_grid(self, nx: int, ny: int, *, depth: Any, wavelength: Any, focus: Any = None) -> np.ndarray:
        """PSFs at the centres of an nx x ny tiling of the sensor: [ny, nx, k, k], row 0 = top (+y).

        ``grid[j, i]`` is the PSF at x = -1 + (2i + 1) / nx, y = 1 - (2j + 1) / ny.
        """
        psfs = self.psf(**self.grid_query(nx, ny, depth=depth, wavelength=wavelength, focus=focus))
        return psfs.reshape(ny, nx, self.kernel_size, self.kernel_size)

    def latent(self, **query: Any) -> tuple[np.ndarray, np.ndarray]:
        """Validated query -> prior (mu [N, L], logvar [N, L]); the prior mean is what psf() decodes."""
        condition, _ = self.conditions(**query)
        return self.prior(condition)

    def decode(self, z: Any, **query: Any) -> np.ndarray:
        """Latents z [N, L] (or [L]) at a query's conditions -> [N, k, k] PSFs at their azimuths.

        A single condition is used for every row of z; a single z for every condition.
        """
        z = self._check_latent(z)
        condition, azimuth = self.conditions(**query)
        n = max(len(z), len(condition))
        if len(z) not in (1, n) or len(condition) not in (1, n):
            raise ConditionError("z", f"<{len(z)} rows>", f"must have 1 or {n} rows like the condition columns")
        z, condition = np.broadcast_to(z, (n, z.shape[1])), np.broadcast_to(condition, (n, condition.shape[1]))
        return self.orient(self.decode_condition(z, condition), np.broadcast_to(azimuth, (n,)))

    def interpolate(self, start: Mapping[str, Any], end: Mapping[str, Any], steps: int,
                    method: str = "linear") -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """PSFs along the latent path between two endpoints -> (psfs [steps, k, k], path conditions).

        Each endpoint is a condition query (field/azimuth or x/y, depth, wavelength[, focus]) and
        optionally ``psf``, a measured k x k kernel at that condition: its encoder mean is then the
        endpoint's latent instead of the prior mean. The physical condition columns and the azimuth
        move linearly; the latent moves linearly or by slerp. The path conditions come back as
        columns ``t``, ``azimuth`` and one per model condition.
        """
        t = path_weights(steps)
        (c0, a0, z0), (c1, a1, z1) = self._endpoint("start", start), self._endpoint("end", end)
        condition = lerp(c0, c1, t).astype(np.float32)
        azimuth = lerp(a0, a1, t)[:, 0]
        if "azimuth" in self.manifest.condition_names:  # the folded column follows the path's azimuth
            condition[:, self.manifest.condition_names.index("azimuth")] = fold_azimuth(azimuth)[0]
        z = latent_path(z0, z1, t, method)
        psfs = self.orient(self.decode_condition(z, condition), azimuth)
        path = {"t": t, "azimuth": azimuth}
        path.update({name: condition[:, i].astype(np.float64) for i, name in enumerate(self.manifest.condition_names)})
        return psfs, path

    # -- helpers --------------------------------------------------------------------------------
    def _endpoint(self, side: str, endpoint: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One path end -> (condition [C], azimuth [1], latent [L])."""
        query = {k: v for k, v in endpoint.items() if k != "psf"}
        try:
            condition, azimuth = self.conditions(**query)
        except ConditionError as exc:  # say which end was wrong
            raise ConditionError(f"{side}.{exc.parameter}", exc.value, exc.allowed) from None
        if len(condition) != 1:
            raise ConditionError(f"{side}", f"<{len(condition)} conditions>", "each end is one condition (scalars)")
        measured = endpoint.get("psf")
        if measured is None:
            mu, _ = self.prior(condition)
        else:
            kernel = self._check_kernel(f"{side}.psf", measured)
            # the graphs work in the model's frame (meridian or first quadrant): bring the kernel there
            kernel = to_model_frame(self.manifest.symmetry, kernel, azimuth)
            mu, _ = self.encode(kernel, condition)
        return condition[0], azimuth, mu[0]

    def _check_kernel(self, parameter: str, psf: Any) -> np.ndarray:
        k = self.kernel_size
        try:
            arr = np.asarray(psf, dtype=np.float64)
        except (TypeError, ValueError):
            raise ConditionError(parameter, "<not numbers>", f"must be a {k} x {k} array of numbers") from None
        if arr.shape != (k, k):
            raise ConditionError(f"{parameter} shape", arr.shape, f"must be ({k}, {k}), the model's kernel size")
        total = float(arr.sum()) if np.isfinite(arr).all() else float("nan")
        if not (arr.min() >= 0 and 0 < total < np.inf):  # a sum of huge values overflows to inf
            raise ConditionError(parameter, "<array>", "must be finite and non-negative with a positive sum")
        return (arr / total).astype(np.float32)[None]  # the graphs learned unit-sum kernels

    def _check_latent(self, z: Any) -> np.ndarray:
        size = self.manifest.latent_size
        try:
            arr = np.asarray(z, dtype=np.float64)
        except (TypeError, ValueError):
            raise ConditionError("z", "<not numbers>", f"must be an [N, {size}] array of numbers") from None
        arr = arr[None] if arr.ndim == 1 else arr
        if arr.ndim != 2 or arr.shape[1] != size or len(arr) == 0:
            raise ConditionError("z shape", arr.shape, f"must be [N, {size}] (N >= 1), the model's latent size")
        if not (np.abs(arr) <= LATENT_LIMIT).all():  # NaN fails too; far beyond it the decoder overflows
            raise ConditionError("z", "<values beyond the limit>", f"must be finite numbers within "
                                 f"+-{LATENT_LIMIT:g} (the prior is near N(0, 1))")
        return arr.astype(np.float32)
