"""PSFClient: the HTTP API as blocking Python calls returning numpy arrays."""

from __future__ import annotations

import time
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Self, Unpack

import httpx

from models_store.wire import DEFAULT_DTYPE

from . import _http as routes
from ._api import Columns, DTypeLike, Latent, Number, Point, Version, columns, dtype_of, point
from ._arrays import PSFArray
from ._base import HTTPSource
from ._batch import BatchPlan
from ._exceptions import PayloadTooLargeError, PSFError
from ._http import DEFAULT_BASE_URL, Call
from ._v2 import V2Protocol


class PSFClient(HTTPSource):
    """Client of a PSF server; one pooled HTTP connection set per client, so keep one and reuse it.

    >>> with PSFClient("http://127.0.0.1:8000") as client:
    ...     kernel = client.psf(field=0.5, depth=10.0, wavelength=550.0)   # float32 [k, k]
    ...     grid = client.psf_grid(8, 6, depth=10.0, wavelength=550.0)     # [6, 8, k, k]

    ``PSFClient(base_url, *, api_key, timeout, retries, backoff, max_retry_after, max_batch, limits,
    transport)``: see :class:`clients._base.HTTPSource` for each setting. Errors raise subclasses of
    :class:`PSFError`. The keywords of every method are described in ``clients._api``.
    """

    _http_class = httpx.Client

    def __init__(self, base_url: str = DEFAULT_BASE_URL, *, protocol: str = "psf", model: str | None = None,
                 **settings: Any) -> None:
        """``protocol="v2"`` speaks the Open Inference Protocol to a Triton / KServe server holding an
        ``export-triton`` repository (or to the PSF server's own v2 routes); ``model`` is then the
        default model name (see clients/_v2.py)."""
        if protocol not in ("psf", "v2"):
            raise ValueError(f"protocol={protocol!r} is not allowed: use 'psf' (the PSF server's API) or 'v2' "
                             "(Open Inference Protocol: Triton, KServe)")
        super().__init__(base_url, **settings)
        self.protocol = protocol
        self._v2 = V2Protocol(self._send, model=model) if protocol == "v2" else None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # -- the methods (keywords: clients._api) ---------------------------------------------------
    def psf(self, *, dtype: DTypeLike = DEFAULT_DTYPE, **query: Unpack[Point]) -> PSFArray:
        """One PSF, [k, k] (float32, or float16 when asked)."""
        q, kind = point("psf", query), dtype_of(dtype)
        if self._v2 is not None:
            return self._v2.psf(q, kind)
        return self._send(routes.psf_call(q, kind))

    def psf_batch(self, *, dtype: DTypeLike = DEFAULT_DTYPE, **query: Unpack[Columns]) -> PSFArray:
        """Many PSFs, [N, k, k], in the order of the columns; split over the server's batch limit into
        several requests, every row from the version of the first answer."""
        q, kind = columns("psf_batch", query), dtype_of(dtype)
        if self._v2 is not None:
            return self._v2.psf_batch(q, kind)
        plan = BatchPlan(q, kind, self.max_batch)
        while (chunk := plan.next_chunk()) is not None:
            start, call = chunk
            try:
                plan.done(start, self._send(call))
            except PayloadTooLargeError as error:
                self.max_batch = plan.too_large(start, error)
        return plan.result()

    def psf_grid(self, nx: int, ny: int, *, depth: Number | None = None, wavelength: Number | None = None,
                 focus: Number | None = None, model: str | None = None, version: Version = None,
                 dtype: DTypeLike = DEFAULT_DTYPE) -> PSFArray:
        """PSFs on an ``ny x nx`` grid of sensor tiles, [ny, nx, k, k], laid out like the image."""
        physical, kind = {"depth": depth, "wavelength": wavelength, "focus": focus}, dtype_of(dtype)
        if self._v2 is not None:
            return self._v2.psf_grid(int(nx), int(ny), physical, model, version, kind)
        return self._send(routes.grid_call(nx, ny, physical, model, version, kind))

    def interpolate(self, start: Mapping[str, Any], end: Mapping[str, Any], *, steps: int,
                    method: str = "linear", model: str | None = None, version: Version = None) -> PSFArray:
        """PSFs along the latent path between two endpoints, float32 [steps, k, k].

        Each endpoint is a condition (``{"field": .., "depth": .., "wavelength": ..}`` or with ``x``/``y``)
        and optionally ``"psf"``: a measured k x k PSF at that condition, placed in latent space by the
        encoder. ``method``: ``"linear"`` or ``"slerp"``. Not offered over ``protocol="v2"``.
        """
        self._psf_api_only("interpolate")
        return self._send(routes.interpolate_call(start, end, steps, method, model, version))

    def latent(self, **query: Unpack[Columns]) -> Latent:
        """The learned prior of the latent at these conditions: ``Latent(mu, logvar)``, each [N, L]."""
        q = columns("latent", query)
        return self._v2.latent(q) if self._v2 is not None else self._send(routes.latent_call(q))

    def decode(self, z: Any, **query: Unpack[Columns]) -> PSFArray:
        """Decode latents ``z`` [N, L] (or [L]) at these conditions into PSFs, float32 [N, k, k]."""
        q = columns("decode", query)
        return self._v2.decode(z, q) if self._v2 is not None else self._send(routes.decode_call(z, q))

    def models(self) -> list[dict[str, Any]]:
        """Every model the server knows: name, versions, aliases, the version it serves, its limits."""
        self._psf_api_only("models")
        return self._send(routes.models_call())

    def model(self, name: str, version: Version = None) -> dict[str, Any]:
        """The full manifest of one model version (trained ranges, lens, evaluation card) as a dict."""
        return self._v2.model(name, version) if self._v2 is not None else self._send(routes.model_call(name, version))

    def health(self) -> bool:
        """True when the server answers at all."""
        return self._v2.probe("live") if self._v2 is not None else self._probe(routes.probe_call("health"))

    def ready(self) -> bool:
        """True when the server can answer PSF queries (a model is loaded)."""
        return self._v2.probe("ready") if self._v2 is not None else self._probe(routes.probe_call("ready"))

    # -- sending ----------------------------------------------------------------------------------
    def _psf_api_only(self, method: str) -> None:
        if self._v2 is not None:
            raise PSFError(f"{method} is not offered over protocol='v2'; use the PSF server's own API")

    def _probe(self, call: Call) -> bool:
        # a health probe answers now: no retries
        try:
            return self._send_once(call)
        except PSFError:
            return False

    def _send(self, call: Call) -> Any:
        attempt = 0
        while True:
            try:
                return self._send_once(call)
            except PSFError as error:
                delay = self.retry.wait(attempt, error, call)
                if delay is None:
                    raise
                time.sleep(delay)
                attempt += 1

    def _send_once(self, call: Call) -> Any:
        try:
            response = self._http.request(call.method, call.path, params=call.params, json=call.json,
                                          content=call.content, headers=call.headers)
        except httpx.TransportError as exc:
            raise self._unreachable(call, exc) from exc
        return self._answer(call, response)
