"""The method table: every client method, once, over a :class:`Backend`.

:class:`PSFSource` (blocking) and :class:`AsyncPSFSource` (coroutines) read a method's keywords
(``clients._api``) and hand them to their backend, which answers with a plan (``clients._plan``);
the shell runs it: ``PSFClient`` and ``LocalPSFModel`` are ``PSFSource`` s, ``AsyncPSFClient`` an
``AsyncPSFSource``. The async table repeats the blocking one's signatures with ``async`` (the type
checker needs them written out); ``tests/test_client_methods.py`` holds the two tables, and every
backend, to the same methods and parameters.

Adding a method: one entry in each table here, one plan per backend (``_psfapi.py``, ``_v2.py``,
``_local.py``) and the :class:`Backend` signature.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, Unpack

from models_store.wire import DEFAULT_DTYPE, DType

from ._api import Columns, DTypeLike, ImageGeometry, Latent, Number, Point, Query, Version, columns, dtype_of, point
from ._arrays import PSFArray
from ._plan import Plan


class Backend(Protocol):
    """One way of answering the methods: the PSF API, the Open Inference Protocol, or in-process."""

    def psf(self, q: Query, dtype: DType) -> Plan[PSFArray]: ...
    def psf_batch(self, q: Query, dtype: DType) -> Plan[PSFArray]: ...
    def psf_grid(self, nx: int, ny: int, physical: dict[str, Any], model: str | None, version: Version,
                 dtype: DType) -> Plan[PSFArray]: ...
    def interpolate(self, start: Mapping[str, Any], end: Mapping[str, Any], steps: int, method: str,
                    model: str | None, version: Version) -> Plan[PSFArray]: ...
    def latent(self, q: Query) -> Plan[Latent]: ...
    def decode(self, z: Any, q: Query) -> Plan[PSFArray]: ...
    def geometry(self, q: Query) -> Plan[ImageGeometry]: ...
    def distortion(self, nx: int, ny: int, physical: dict[str, Any], model: str | None,
                   version: Version) -> Plan[ImageGeometry]: ...
    def models(self) -> Plan[list[dict[str, Any]]]: ...
    def model(self, name: str, version: Version) -> Plan[dict[str, Any]]: ...
    def probe(self, which: str) -> Plan[bool]: ...


def _physical(depth: Number | None, wavelength: Number | None, focus: Number | None) -> dict[str, Any]:
    return {"depth": depth, "wavelength": wavelength, "focus": focus}


class PSFSource:
    """The blocking methods every PSF source offers (keywords: ``clients._api``); the interface rendering
    code accepts. ``PSFClient`` (either protocol) and ``LocalPSFModel`` are PSF sources."""

    backend: Backend

    def _run[T](self, plan: Plan[T]) -> T:
        raise NotImplementedError

    def psf(self, *, dtype: DTypeLike = DEFAULT_DTYPE, **query: Unpack[Point]) -> PSFArray:
        """One PSF, [k, k] (float32, or float16 when asked)."""
        return self._run(self.backend.psf(point("psf", query), dtype_of(dtype)))

    def psf_batch(self, *, dtype: DTypeLike = DEFAULT_DTYPE, **query: Unpack[Columns]) -> PSFArray:
        """Many PSFs, [N, k, k], in the order of the columns. HTTP clients split batches over the server's
        limit into several requests and pin the version of the first answer."""
        return self._run(self.backend.psf_batch(columns("psf_batch", query), dtype_of(dtype)))

    def psf_grid(self, nx: int, ny: int, *, depth: Number | None = None, wavelength: Number | None = None,
                 focus: Number | None = None, model: str | None = None, version: Version = None,
                 dtype: DTypeLike = DEFAULT_DTYPE) -> PSFArray:
        """PSFs on an ``ny x nx`` grid of sensor tiles, [ny, nx, k, k]: ``grid[j, i]`` is the PSF at the
        centre of tile (row j, column i), laid out like the image (``models_store.wire.tile_centres``)."""
        return self._run(self.backend.psf_grid(int(nx), int(ny), _physical(depth, wavelength, focus), model,
                                                 version, dtype_of(dtype)))

    def interpolate(self, start: Mapping[str, Any], end: Mapping[str, Any], *, steps: int,
                    method: str = "linear", model: str | None = None, version: Version = None) -> PSFArray:
        """PSFs along the latent path between two endpoints, float32 [steps, k, k].

        Each endpoint is a condition (``{"field": .., "depth": .., "wavelength": ..}`` or with ``x``/``y``)
        and optionally ``"psf"``: a measured k x k PSF at that condition, placed in latent space by the
        encoder. ``method``: ``"linear"`` or ``"slerp"``. Not offered over ``protocol="v2"``.
        """
        return self._run(self.backend.interpolate(start, end, int(steps), method, model, version))

    def latent(self, **query: Unpack[Columns]) -> Latent:
        """The learned prior of the latent at these conditions: ``Latent(mu, logvar)``, each [N, L]."""
        return self._run(self.backend.latent(columns("latent", query)))

    def decode(self, z: Any, **query: Unpack[Columns]) -> PSFArray:
        """Decode latents ``z`` [N, L] (or [L]) at these conditions into PSFs, float32 [N, k, k]."""
        return self._run(self.backend.decode(z, columns("decode", query)))

    def geometry(self, **query: Unpack[Columns]) -> ImageGeometry:
        """Where the chief ray of each condition lands, its distortion and the relative illumination there:
        an :class:`ImageGeometry` of arrays [N]."""
        return self._run(self.backend.geometry(columns("geometry", query)))

    def distortion(self, nx: int, ny: int, *, depth: Number | None = None, wavelength: Number | None = None,
                   focus: Number | None = None, model: str | None = None, version: Version = None) -> ImageGeometry:
        """:meth:`geometry` on the ``ny x nx`` grid of ideal image points of :meth:`psf_grid` (tile centres), as
        arrays [ny, nx]: for warping and shading an image (``render`` does)."""
        return self._run(self.backend.distortion(int(nx), int(ny), _physical(depth, wavelength, focus), model,
                                                 version))

    def models(self) -> list[dict[str, Any]]:
        """Every model the source knows: name, versions, aliases, the version it serves (not over v2)."""
        return self._run(self.backend.models())

    def model(self, name: str, version: Version = None) -> dict[str, Any]:
        """The full manifest of one model version (trained ranges, lens, evaluation card) as a dict."""
        return self._run(self.backend.model(name, version))

    def health(self) -> bool:
        """True when the source answers at all."""
        return self._run(self.backend.probe("health"))

    def ready(self) -> bool:
        """True when the source can answer PSF queries (a model is loaded)."""
        return self._run(self.backend.probe("ready"))


class AsyncPSFSource:
    """:class:`PSFSource`'s methods as coroutines of the same results (docstrings there)."""

    backend: Backend

    async def _run[T](self, plan: Plan[T]) -> T:
        raise NotImplementedError

    async def _psf(self, q: Query, dtype: DType) -> PSFArray:
        return await self._run(self.backend.psf(q, dtype))

    async def psf(self, *, dtype: DTypeLike = DEFAULT_DTYPE, **query: Unpack[Point]) -> PSFArray:
        return await self._psf(point("psf", query), dtype_of(dtype))

    async def psf_batch(self, *, dtype: DTypeLike = DEFAULT_DTYPE, **query: Unpack[Columns]) -> PSFArray:
        return await self._run(self.backend.psf_batch(columns("psf_batch", query), dtype_of(dtype)))

    async def psf_grid(self, nx: int, ny: int, *, depth: Number | None = None, wavelength: Number | None = None,
                       focus: Number | None = None, model: str | None = None, version: Version = None,
                       dtype: DTypeLike = DEFAULT_DTYPE) -> PSFArray:
        return await self._run(self.backend.psf_grid(int(nx), int(ny), _physical(depth, wavelength, focus),
                                                       model, version, dtype_of(dtype)))

    async def interpolate(self, start: Mapping[str, Any], end: Mapping[str, Any], *, steps: int,
                          method: str = "linear", model: str | None = None, version: Version = None) -> PSFArray:
        return await self._run(self.backend.interpolate(start, end, int(steps), method, model, version))

    async def latent(self, **query: Unpack[Columns]) -> Latent:
        return await self._run(self.backend.latent(columns("latent", query)))

    async def decode(self, z: Any, **query: Unpack[Columns]) -> PSFArray:
        return await self._run(self.backend.decode(z, columns("decode", query)))

    async def geometry(self, **query: Unpack[Columns]) -> ImageGeometry:
        return await self._run(self.backend.geometry(columns("geometry", query)))

    async def distortion(self, nx: int, ny: int, *, depth: Number | None = None, wavelength: Number | None = None,
                         focus: Number | None = None, model: str | None = None,
                         version: Version = None) -> ImageGeometry:
        return await self._run(self.backend.distortion(int(nx), int(ny), _physical(depth, wavelength, focus), model,
                                                       version))

    async def models(self) -> list[dict[str, Any]]:
        return await self._run(self.backend.models())

    async def model(self, name: str, version: Version = None) -> dict[str, Any]:
        return await self._run(self.backend.model(name, version))

    async def health(self) -> bool:
        return await self._run(self.backend.probe("health"))

    async def ready(self) -> bool:
        return await self._run(self.backend.probe("ready"))


for _name, _method in vars(AsyncPSFSource).items():  # one docstring per method: the blocking table's
    if not _name.startswith("_") and callable(_method) and _method.__doc__ is None:
        _method.__doc__ = getattr(PSFSource, _name).__doc__
