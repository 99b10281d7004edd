"""LocalPSFModel: the client's methods answered in-process from the ONNX files of one stored version.

Its backend's plans (``clients._plan``) never send a request: each returns the answer at once.

It wraps :class:`models_store.engine.OnnxModel`, the very runner the server uses, so the same query
gives the same array as the server for the same model version (and the same onnxruntime provider).
Needs ``onnxruntime`` (``pip install '.[embedded]'``), never torch; imported only when used, so
``import clients`` stays light.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Self

import numpy as np

from models_store.wire import DEFAULT_DTYPE, DType

from ._api import ImageGeometry, Latent, Query, Version
from ._arrays import PSFArray, PSFMeta, with_meta
from ._exceptions import InvalidRequestError, NotFoundError, PSFError, ServerError
from ._methods import PSFSource
from ._plan import Plan, no_requests, now, run_blocking

if TYPE_CHECKING:
    from models_store import Store
    from models_store.engine import OnnxModel


def _translated(call: Callable[[], Any]) -> Any:
    """Run ``call``; store and condition errors become the client errors the server would cause."""
    from models_store import GeometryUnavailable, StoreError
    from models_store import NotFoundError as StoreNotFound

    try:
        return call()
    except (StoreNotFound, GeometryUnavailable) as exc:
        raise NotFoundError(str(exc), status_code=404) from exc
    except StoreError as exc:
        raise PSFError(str(exc)) from exc
    except ValueError as exc:  # ConditionError and bad names: the server's 422
        raise InvalidRequestError(str(exc), status_code=422) from exc


class _LocalBackend:
    """The methods answered by one loaded version (``onnx``), its store (``store``) for the others."""

    def __init__(self, onnx: OnnxModel, store: Store | None, meta: PSFMeta) -> None:
        self.onnx, self.store, self.meta = onnx, store, meta

    def psf(self, q: Query, dtype: DType) -> Plan[PSFArray]:
        self._check_reference(q.model, q.version)
        return now(self._kernels(lambda: self.onnx.psf(**q.conditions)[0], dtype))

    def psf_batch(self, q: Query, dtype: DType) -> Plan[PSFArray]:
        self._check_reference(q.model, q.version)
        return now(self._kernels(lambda: self.onnx.psf(**q.conditions), dtype))

    def psf_grid(self, nx: int, ny: int, physical: dict[str, Any], model: str | None, version: Version,
                 dtype: DType) -> Plan[PSFArray]:
        self._check_reference(model, version)
        return now(self._kernels(lambda: self.onnx.psf_grid(nx, ny, **physical), dtype))

    def interpolate(self, start: Mapping[str, Any], end: Mapping[str, Any], steps: int, method: str,
                    model: str | None, version: Version) -> Plan[PSFArray]:
        self._check_reference(model, version)
        return now(self._kernels(lambda: self.onnx.interpolate(start, end, steps, method)[0]))

    def latent(self, q: Query) -> Plan[Latent]:
        self._check_reference(q.model, q.version)
        mu, logvar = _translated(lambda: self.onnx.latent(**q.conditions))
        meta = PSFMeta(model=self.meta.model, version=self.meta.version)
        return now(Latent(with_meta(mu, meta), with_meta(logvar, meta)))

    def decode(self, z: Any, q: Query) -> Plan[PSFArray]:
        self._check_reference(q.model, q.version)
        return now(self._kernels(lambda: self.onnx.decode(np.atleast_2d(np.asarray(z, dtype=np.float32)),
                                                          **q.conditions)))

    def geometry(self, q: Query) -> Plan[ImageGeometry]:
        from models_store import image_geometry

        self._check_reference(q.model, q.version)
        query = {k: v for k, v in q.conditions.items() if v is not None}
        return now(ImageGeometry.of(_translated(lambda: image_geometry(self.onnx.manifest, **query))))

    def distortion(self, nx: int, ny: int, physical: dict[str, Any], model: str | None,
                   version: Version) -> Plan[ImageGeometry]:
        from models_store import distortion_grid

        self._check_reference(model, version)
        query = {k: v for k, v in physical.items() if v is not None}
        return now(ImageGeometry.of(_translated(lambda: distortion_grid(self.onnx.manifest, nx, ny, **query))))

    def models(self) -> Plan[list[dict[str, Any]]]:
        store, name = self.store, self.meta.model
        names = store.models() if store is not None else [name]
        return now([{"name": n, "versions": store.versions(n) if store else [self.meta.version],
                     "aliases": store.aliases(n) if store else {},
                     "served_version": self.meta.version if n == name else None} for n in names])

    def model(self, name: str, version: Version) -> Plan[dict[str, Any]]:
        if self.store is None or (name == self.meta.model and version in (None, self.meta.version)):
            self._check_reference(name, version)
            manifest = self.onnx.manifest
        else:
            store = self.store
            manifest = _translated(lambda: store.manifest(name, version, verify=False))
        return now(json.loads(manifest.model_dump_json()))

    def probe(self, which: str) -> Plan[bool]:
        """Always True: the model is loaded, in this process."""
        return now(True)

    # -- helpers ----------------------------------------------------------------------------------
    def _check_reference(self, model: str | None, version: Version) -> None:
        name, number = self.meta.model, self.meta.version
        if model is not None and model != name:
            raise NotFoundError(f"model {model!r} is not here: this LocalPSFModel holds {name}@{number}",
                                status_code=404)
        if version is None or str(version) == str(number):
            return
        store = self.store
        resolved = _translated(lambda: store.resolve(name, version)) if store is not None else None
        if resolved != number:
            raise NotFoundError(f"version {version!r} of {name!r} is not here: this LocalPSFModel holds "
                                f"{name}@{number}", status_code=404)

    def _kernels(self, compute: Callable[[], np.ndarray], dtype: DType = DEFAULT_DTYPE) -> PSFArray:
        psfs = _translated(compute)
        if not np.isfinite(psfs).all():  # as the server does: a model bug, said rather than passed on
            raise ServerError(f"{self.meta.model}@{self.meta.version} produced non-finite values", status_code=500)
        return with_meta(psfs, self.meta, dtype)


class LocalPSFModel(PSFSource):
    """One model version, in this process; the methods of :class:`clients.PSFSource` (keywords: ``clients._api``).

    >>> model = LocalPSFModel.from_store("store", "cooke-quickstart")
    >>> grid = model.psf_grid(8, 6, depth=10.0, wavelength=550.0)
    """

    def __init__(self, onnx: OnnxModel, store: Store | None = None) -> None:
        self.onnx, self.store = onnx, store
        lens = onnx.manifest.lens
        self.meta = PSFMeta(model=onnx.name, version=onnx.version, kernel_size=onnx.manifest.kernel_size,
                            pixel_pitch_um=lens.pixel_pitch_um)
        self.backend = _LocalBackend(onnx, store, self.meta)

    @classmethod
    def from_store(cls, store: Store | str | os.PathLike[str] | None, name: str, version: Version = "latest", *,
                   threads: int | None = None, providers: list[str] | None = None) -> LocalPSFModel:
        """Load ``name@version`` (number or alias) from a store folder, checking every file's sha256."""
        from models_store import Store
        from models_store.engine import OnnxModel

        root = store if isinstance(store, Store) else Store(store)
        onnx = _translated(lambda: OnnxModel.from_store(root, name, version, threads=threads, providers=providers))
        return cls(onnx, root)

    def __repr__(self) -> str:
        return f"LocalPSFModel({self.meta.model}@{self.meta.version})"

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def close(self) -> None:
        """Nothing to release (sessions go with the object); here so sources are interchangeable."""

    def _run[T](self, plan: Plan[T]) -> T:
        return run_blocking(plan, no_requests)
