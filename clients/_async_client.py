"""AsyncPSFClient: the same methods as PSFClient, each returning an awaitable (httpx.AsyncClient)."""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Any

import httpx

from ._api import Op
from ._base import HTTPSource
from ._batch import BatchPlan
from ._coalesce import Coalescer
from ._exceptions import PayloadTooLargeError, PSFError
from ._http import Call, to_call


class AsyncPSFClient(HTTPSource):
    """Async client of a PSF server, for rendering code that already runs an event loop.

    >>> async with AsyncPSFClient("http://127.0.0.1:8000") as client:
    ...     psfs = await asyncio.gather(*(client.psf(field=f, depth=5.0, wavelength=550.0) for f in fields))

    Every method of :class:`PSFClient` exists here with the same arguments and returns an awaitable of
    the same result; the constructor takes the settings of :class:`PSFClient`, and ``coalesce``
    (default True): concurrent ``psf()`` calls go out together as one ``POST /psf/batch`` (same
    arrays; see clients/_coalesce.py). Chunks of an oversized ``psf_batch`` go out concurrently (after
    the first, which pins the version and learns the limit).
    """

    _http_class = httpx.AsyncClient

    def __init__(self, *args: Any, coalesce: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._coalescer = Coalescer(lambda op: self._send(to_call(op)), self._batch) if coalesce else None

    def _do(self, op: Op) -> Any:
        if op.name == "psf" and self._coalescer is not None:
            return self._coalescer.psf(op.args)
        return super()._do(op)

    async def __aenter__(self) -> AsyncPSFClient:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _batch(self, op: Op) -> Any:
        plan = BatchPlan(op, self.max_batch)
        # the first chunk alone: it learns the limit (413) and pins the version for the others
        while not plan.parts and (chunk := plan.next_chunk()) is not None:
            start, part = chunk
            try:
                plan.done(start, await self._send(to_call(part)))
            except PayloadTooLargeError as error:
                self.max_batch = plan.too_large(start, error)
        rest = []
        while (chunk := plan.next_chunk()) is not None:
            rest.append(chunk)
        answers = await asyncio.gather(*(self._send(to_call(part)) for _, part in rest))
        for (start, _), answer in zip(rest, answers):
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
