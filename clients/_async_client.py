"""AsyncPSFClient: the methods of PSFClient as coroutines (httpx.AsyncClient)."""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Any, Self

import httpx

from models_store.wire import DType

from ._api import Query
from ._arrays import PSFArray
from ._base import HTTPSource
from ._coalesce import Coalescer
from ._exceptions import PSFError
from ._http import Call
from ._methods import AsyncPSFSource
from ._plan import Plan, run_async


class AsyncPSFClient(HTTPSource, AsyncPSFSource):
    """Async client of a PSF server, for rendering code that already runs an event loop.

    >>> async with AsyncPSFClient("http://127.0.0.1:8000") as client:
    ...     psfs = await asyncio.gather(*(client.psf(field=f, depth=5.0, wavelength=550.0) for f in fields))

    Every method of :class:`PSFClient` exists here with the same arguments, as a coroutine of the same
    result; the constructor takes the settings of :class:`PSFClient` (``protocol="v2"`` included), and
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

    async def _psf(self, q: Query, dtype: DType) -> PSFArray:
        if self._coalescer is not None:
            return await self._coalescer.psf(q, dtype)
        return await self._single(q, dtype)

    async def _single(self, q: Query, dtype: DType) -> PSFArray:
        return await self._run(self.backend.psf(q, dtype))

    async def _batch(self, q: Query, dtype: DType) -> PSFArray:
        return await self._run(self.backend.psf_batch(q, dtype))

    async def _run[T](self, plan: Plan[T]) -> T:
        return await run_async(plan, self._send)

    async def _send(self, call: Call) -> Any:
        attempt = 0
        while True:
            try:
                return await self._send_once(call)
            except PSFError as error:
                delay = self.retry.wait(attempt, error, call) if call.retry else None
                if delay is None:
                    raise
                await asyncio.sleep(delay)
                attempt += 1

    async def _send_once(self, call: Call) -> Any:
        try:
            response = await self._http.request(call.method, call.path, params=call.params, json=call.json,
                                                content=call.content, headers=call.headers)
        except httpx.TransportError as exc:
            raise self._unreachable(call, exc) from exc
        return self._answer(call, response)
