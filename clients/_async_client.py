"""AsyncPSFClient: the methods of PSFClient as coroutines (httpx.AsyncClient)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Self, Unpack

import httpx

from models_store.wire import DEFAULT_DTYPE, DType

from . import _http as routes
from ._api import Columns, DTypeLike, Latent, Number, Point, Query, Version, columns, dtype_of, point
from ._arrays import PSFArray
from ._base import HTTPSource
from ._batch import BatchPlan
from ._coalesce import Coalescer
from ._exceptions import PayloadTooLargeError, PSFError
from ._http import Call


class AsyncPSFClient(HTTPSource):
    """Async client of a PSF server, for rendering code that already runs an event loop.

    >>> async with AsyncPSFClient("http://127.0.0.1:8000") as client:
    ...     psfs = await asyncio.gather(*(client.psf(field=f, depth=5.0, wavelength=550.0) for f in fields))

    Every method of :class:`PSFClient` (but ``protocol="v2"``) exists here with the same arguments, as
    a coroutine of the same result; the constructor takes the settings of :class:`PSFClient`, and
    ``coalesce`` (default True): concurrent ``psf()`` calls go out together as one ``POST /psf/batch``
    (same arrays; see clients/_coalesce.py). Chunks of an oversized ``psf_batch`` go out concurrently
    (after the first, which pins the version and learns the limit).
    """

    _http_class = httpx.AsyncClient

    def __init__(self, *args: Any, coalesce: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._coalescer = Coalescer(self._single, self._batch) if coalesce else None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- the methods (keywords: clients._api) ---------------------------------------------------
    async def psf(self, *, dtype: DTypeLike = DEFAULT_DTYPE, **query: Unpack[Point]) -> PSFArray:
        """One PSF, [k, k] (float32, or float16 when asked)."""
        q, kind = point("psf", query), dtype_of(dtype)
        if self._coalescer is not None:
            return await self._coalescer.psf(q, kind)
        return await self._single(q, kind)

    async def psf_batch(self, *, dtype: DTypeLike = DEFAULT_DTYPE, **query: Unpack[Columns]) -> PSFArray:
        """Many PSFs, [N, k, k], in the order of the columns (split over the server's batch limit)."""
        return await self._batch(columns("psf_batch", query), dtype_of(dtype))

    async def psf_grid(self, nx: int, ny: int, *, depth: Number | None = None, wavelength: Number | None = None,
                       focus: Number | None = None, model: str | None = None, version: Version = None,
                       dtype: DTypeLike = DEFAULT_DTYPE) -> PSFArray:
        """PSFs on an ``ny x nx`` grid of sensor tiles, [ny, nx, k, k], laid out like the image."""
        physical = {"depth": depth, "wavelength": wavelength, "focus": focus}
        return await self._send(routes.grid_call(nx, ny, physical, model, version, dtype_of(dtype)))

    async def interpolate(self, start: Mapping[str, Any], end: Mapping[str, Any], *, steps: int,
                          method: str = "linear", model: str | None = None, version: Version = None) -> PSFArray:
        """PSFs along the latent path between two endpoints, float32 [steps, k, k] (see PSFClient)."""
        return await self._send(routes.interpolate_call(start, end, steps, method, model, version))

    async def latent(self, **query: Unpack[Columns]) -> Latent:
        """The learned prior of the latent at these conditions: ``Latent(mu, logvar)``, each [N, L]."""
        return await self._send(routes.latent_call(columns("latent", query)))

    async def decode(self, z: Any, **query: Unpack[Columns]) -> PSFArray:
        """Decode latents ``z`` [N, L] (or [L]) at these conditions into PSFs, float32 [N, k, k]."""
        return await self._send(routes.decode_call(z, columns("decode", query)))

    async def models(self) -> list[dict[str, Any]]:
        """Every model the server knows: name, versions, aliases, the version it serves, its limits."""
        return await self._send(routes.models_call())

    async def model(self, name: str, version: Version = None) -> dict[str, Any]:
        """The full manifest of one model version as a dict."""
        return await self._send(routes.model_call(name, version))

    async def health(self) -> bool:
        """True when the server answers at all."""
        return await self._probe(routes.probe_call("health"))

    async def ready(self) -> bool:
        """True when the server can answer PSF queries (a model is loaded)."""
        return await self._probe(routes.probe_call("ready"))

    # -- sending ----------------------------------------------------------------------------------
    async def _single(self, q: Query, dtype: DType) -> PSFArray:
        return await self._send(routes.psf_call(q, dtype))

    async def _batch(self, q: Query, dtype: DType) -> PSFArray:
        plan = BatchPlan(q, dtype, self.max_batch)
        # the first chunk alone: it learns the limit (413) and pins the version for the others
        while not plan.parts and (chunk := plan.next_chunk()) is not None:
            start, call = chunk
            try:
                plan.done(start, await self._send(call))
            except PayloadTooLargeError as error:
                self.max_batch = plan.too_large(start, error)
        rest = []
        while (chunk := plan.next_chunk()) is not None:
            rest.append(chunk)
        answers = await asyncio.gather(*(self._send(call) for _, call in rest))
        for (start, _), answer in zip(rest, answers, strict=True):
            plan.done(start, answer)
        return plan.result()

    async def _probe(self, call: Call) -> bool:
        # a health probe answers now: no retries
        try:
            return await self._send_once(call)
        except PSFError:
            return False

    async def _send(self, call: Call) -> Any:
        attempt = 0
        while True:
            try:
                return await self._send_once(call)
            except PSFError as error:
                delay = self.retry.wait(attempt, error, call)
                if delay is None:
                    raise
                await asyncio.sleep(delay)
                attempt += 1

    async def _send_once(self, call: Call) -> Any:
        try:
            response = await self._http.request(call.method, call.path, params=call.params, json=call.json)
        except httpx.TransportError as exc:
            raise self._unreachable(call, exc) from exc
        return self._answer(call, response)
