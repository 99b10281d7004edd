"""LocalPSFModel: the client's methods answered in-process from the ONNX files of one stored version.

It wraps :class:`models_store.runtime.OnnxModel`, the very runner the server uses, so the same query
gives the same array as the server for the same model version (and the same onnxruntime provider).
Needs ``onnxruntime`` (``pip install '.[embedded]'``), never torch; imported only when used, so
``import clients`` stays light.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from ._api import Latent, Op, PSFMethods, Version
from ._arrays import PSFMeta, with_meta
from ._exceptions import InvalidRequestError, NotFoundError, PSFError, ServerError
from ._grid import grid_positions

if TYPE_CHECKING:
    from models_store import Store
    from models_store.runtime import OnnxModel

_CONDITION = ("field", "azimuth", "x", "y", "depth", "wavelength", "focus")


def _translated(call: Callable[[], Any]) -> Any:
    """Run ``call``; store and condition errors become the client errors the server would cause."""
    from models_store import StoreError
    from models_store import NotFoundError as StoreNotFound

    try:
        return call()
    except StoreNotFound as exc:
        raise NotFoundError(str(exc), status_code=404) from exc
    except StoreError as exc:
        raise PSFError(str(exc)) from exc
    except ValueError as exc:  # ConditionError and bad names: the server's 422
        raise InvalidRequestError(str(exc), status_code=422) from exc


def grid_from_points(onnx: OnnxModel, nx: int, ny: int, **query: Any) -> np.ndarray:
    """[ny, nx, k, k] from single-point queries at the tile centres (for runtimes without ``psf_grid``)."""
    x, y = grid_positions(nx, ny)
    gx, gy = np.meshgrid(x, y)  # [ny, nx], row j = y_j
    psfs = onnx.psf(x=gx.ravel(), y=gy.ravel(), **query)
    return psfs.reshape(ny, nx, *psfs.shape[1:])


class LocalPSFModel(PSFMethods):
    """One model version, in this process; the same methods as :class:`PSFClient`.

    >>> model = LocalPSFModel.from_store("store", "cooke-quickstart")
    >>> grid = model.psf_grid(8, 6, depth=10.0, wavelength=550.0)
    """

    def __init__(self, onnx: OnnxModel, store: Store | None = None) -> None:
        self.onnx, self.store = onnx, store
        lens = onnx.manifest.lens
        self.meta = PSFMeta(model=onnx.name, version=onnx.version, kernel_size=onnx.manifest.kernel_size,
                            pixel_pitch_um=lens.pixel_pitch_um)

    @classmethod
    def from_store(cls, store: Store | str | os.PathLike[str] | None, name: str, version: Version = "latest", *,
                   threads: int | None = None, providers: list[str] | None = None) -> LocalPSFModel:
        """Load ``name@version`` (number or alias) from a store folder, checking every file's sha256."""
        from models_store import Store
        from models_store.runtime import OnnxModel

        root = store if isinstance(store, Store) else Store(store)
        onnx = _translated(lambda: OnnxModel.from_store(root, name, version, threads=threads, providers=providers))
        return cls(onnx, root)

    def __repr__(self) -> str:
        return f"LocalPSFModel({self.meta.model}@{self.meta.version})"

    def __enter__(self) -> LocalPSFModel:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def close(self) -> None:
        """Nothing to release (sessions go with the object); here so sources are interchangeable."""

    # -- dispatch ----------------------------------------------------------------------------------
    def _do(self, op: Op) -> Any:
        args = dict(op.args)
        if op.name != "model" and ("model" in args or "version" in args):
            self._check_reference(args.pop("model", None), args.pop("version", None))
        return _translated(lambda: getattr(self, f"_{op.name}")(**args))

    def _check_reference(self, model: str | None, version: Version) -> None:
        name, number = self.meta.model, self.meta.version
        if model is not None and model != name:
            raise NotFoundError(f"model {model!r} is not here: this LocalPSFModel holds {name}@{number}",
                                status_code=404)
        if version is None or str(version) == str(number):
            return
        resolved = _translated(lambda: self.store.resolve(name, version)) if self.store is not None else None
        if resolved != number:
            raise NotFoundError(f"version {version!r} of {name!r} is not here: this LocalPSFModel holds "
                                f"{name}@{number}", status_code=404)

    def _kernels(self, psfs: np.ndarray) -> np.ndarray:
        if not np.isfinite(psfs).all():  # as the server does: a model bug, said rather than passed on
            raise ServerError(f"{self.meta.model}@{self.meta.version} produced non-finite values", status_code=500)
        return with_meta(psfs, self.meta)

    # -- operations (same names as in _api.PSFMethods, with a leading underscore) ------------------
    def _psf(self, **query: Any) -> np.ndarray:
        return self._kernels(self.onnx.psf(**query)[0])

    def _psf_batch(self, **query: Any) -> np.ndarray:
        return self._kernels(self.onnx.psf(**query))

    def _psf_grid(self, nx: int, ny: int, depth: Any, wavelength: Any, focus: Any = None) -> np.ndarray:
        runtime_grid = getattr(self.onnx, "psf_grid", None)
        if runtime_grid is not None:  # the server's own computation, once models_store has it
            return self._kernels(runtime_grid(nx, ny, depth=depth, wavelength=wavelength, focus=focus))
        return self._kernels(grid_from_points(self.onnx, nx, ny, depth=depth, wavelength=wavelength, focus=focus))

    def _interpolate(self, start: dict[str, Any], end: dict[str, Any], steps: int, method: str) -> np.ndarray:
        psfs, _conditions = self.onnx.interpolate(start, end, steps, method)
        return self._kernels(psfs)

    def _latent(self, **query: Any) -> Latent:
        mu, logvar = self.onnx.latent(**query)
        meta = PSFMeta(model=self.meta.model, version=self.meta.version)
        return Latent(with_meta(mu, meta), with_meta(logvar, meta))

    def _decode(self, z: Any, **query: Any) -> np.ndarray:
        return self._kernels(self.onnx.decode(np.atleast_2d(np.asarray(z, dtype=np.float32)), **query))

    def _models(self) -> list[dict[str, Any]]:
        store, name = self.store, self.meta.model
        names = store.models() if store is not None else [name]
        return [{"name": n, "versions": store.versions(n) if store else [self.meta.version],
                 "aliases": store.aliases(n) if store else {},
                 "served_version": self.meta.version if n == name else None} for n in names]

    def _model(self, name: str, version: Version = None) -> dict[str, Any]:
        if self.store is None or (name == self.meta.model and version in (None, self.meta.version)):
            self._check_reference(name, version)
            manifest = self.onnx.manifest
        else:
            manifest = self.store.manifest(name, version, verify=False)
        return json.loads(manifest.model_dump_json())

    def _health(self) -> bool:
        return True

    _ready = _health
