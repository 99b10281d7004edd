"""AsyncPSFClient: the same methods as PSFClient, each returning an awaitable (httpx.AsyncClient)."""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Any

import httpx

from ._api import Op, PSFMethods
from ._batch import BatchPlan
from ._exceptions import PayloadTooLargeError, PSFError, error_from_response, transport_error
from ._http import DEFAULT_BASE_URL, DEFAULT_RETRIES, DEFAULT_TIMEOUT, Call, http_options, to_call
from ._retry import DEFAULT_BACKOFF, DEFAULT_MAX_RETRY_AFTER, RetryPolicy


class AsyncPSFClient(PSFMethods):
    """Async client of a PSF server, for rendering code that already runs an event loop.

    >>> async with AsyncPSFClient("http://127.0.0.1:8000") as client:
    ...     psfs = await asyncio.gather(*(client.psf(field=f, depth=5.0, wavelength=550.0) for f in fields))

    Every method of :class:`PSFClient` exists here with the same arguments and returns an awaitable of
    the same result; constructor arguments are those of :class:`PSFClient`. Chunks of an oversized
    ``psf_batch`` go out concurrently (after the first, which pins the version and learns the limit).
    """

    def __init__(self, base_url: str = DEFAULT_BASE_URL, *, api_key: str | None = None,
                 timeout: float | httpx.Timeout = DEFAULT_TIMEOUT, retries: int = DEFAULT_RETRIES,
                 backoff: float = DEFAULT_BACKOFF, max_retry_after: float = DEFAULT_MAX_RETRY_AFTER,
                 max_batch: int | None = None, limits: httpx.Limits | None = None,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.base_url = base_url
        self.max_batch = max_batch
        self.retry = RetryPolicy(retries=retries, backoff=backoff, max_retry_after=max_retry_after)
        self._http = httpx.AsyncClient(**http_options(base_url, api_key, timeout, limits), transport=transport)

    def __repr__(self) -> str:
        return f"AsyncPSFClient({self.base_url!r})"

    async def __aenter__(self) -> AsyncPSFClient:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    def _do(self, op: Op) -> Any:
        # a coroutine: `await client.psf(...)`
        if op.name == "psf_batch":
            return self._batch(op)
        if op.name in ("health", "ready"):
            return self._probe(to_call(op))
        return self._send(to_call(op))

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
            raise transport_error(exc, call.method, f"{self.base_url}{call.path}") from exc
        if response.is_error:
            raise error_from_response(response)
        return call.parse(response)
