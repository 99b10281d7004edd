"""Many concurrent ``AsyncPSFClient.psf()`` calls sent as one ``POST /psf/batch``.

Rendering code that gathers thousands of ``psf()`` calls would otherwise send thousands of requests,
and on the client's side each costs more Python than the server spends on it. Calls for the same
model, version and set of parameters that are made in the same event-loop turn, or while the
client's batches are in flight, are merged into one batch (split over the server's limit as
``psf_batch`` does); each call gets its own row, which is the same array the server answers to a
single query (the server computes both by one code path). A lone call is sent as a plain
``GET /psf``. When the server refuses a merged batch as invalid, its calls are sent again one by one,
so each gets its own answer or its own error.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from models_store.wire import DType

from ._api import Query
from ._exceptions import InvalidRequestError

Key = tuple[Any, Any, DType, tuple[str, ...]]
Call = tuple[Query, "asyncio.Future[Any]"]
Send = Callable[[Query, DType], Coroutine[Any, Any, Any]]


class Coalescer:
    def __init__(self, single: Send, batch: Send, *, max_rows: int = 4096,
                 max_in_flight: int = 4) -> None:
        self._single, self._batch = single, batch
        self.max_rows, self.max_in_flight = max_rows, max_in_flight
        self._waiting: dict[Key, list[Call]] = {}
        self._in_flight = 0
        self._scheduled = False
        self._tasks: set[asyncio.Task[None]] = set()

    async def psf(self, q: Query, dtype: DType) -> Any:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        key = (q.model, q.version, dtype, tuple(k for k, v in q.conditions.items() if v is not None))
        self._waiting.setdefault(key, []).append((q, future))
        self._schedule()
        return await future

    def _schedule(self) -> None:
        # after the calls made in this loop turn, and only while fewer batches than allowed are out
        if not self._scheduled and self._waiting and self._in_flight < self.max_in_flight:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._scheduled = False
        while self._waiting and self._in_flight < self.max_in_flight:
            key = next(iter(self._waiting))
            calls = self._waiting[key]
            taken, rest = calls[:self.max_rows], calls[self.max_rows:]
            if rest:
                self._waiting[key] = rest
            else:
                del self._waiting[key]
            self._in_flight += 1
            task = asyncio.get_running_loop().create_task(self._send(key, taken))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _send(self, key: Key, calls: list[Call]) -> None:
        try:
            model, version, dtype, names = key
            if len(calls) == 1:
                await _settle(calls[0][1], self._single(calls[0][0], dtype))
                return
            columns = {name: [q.conditions[name] for q, _ in calls] for name in names}
            try:
                batch = await self._batch(Query(columns, model, version), dtype)
            except InvalidRequestError:  # someone's query is wrong: let each call hear its own answer
                await asyncio.gather(*(_settle(f, self._single(q, dtype)) for q, f in calls))
                return
            except Exception as exc:  # noqa: BLE001 - handed to every caller; the same for every call of the batch (unreachable, unknown model, ...)
                for _, future in calls:
                    if not future.done():
                        future.set_exception(exc)
                return
            for i, (_, future) in enumerate(calls):
                if not future.done():  # a caller that went away has cancelled its future
                    future.set_result(batch[i])
        finally:
            self._in_flight -= 1
            self._schedule()


async def _settle(future: asyncio.Future[Any], answer: Coroutine[Any, Any, Any]) -> None:
    try:
        result = await answer
    except Exception as exc:  # noqa: BLE001 - handed to the caller through its future
        if not future.done():
            future.set_exception(exc)
        return
    if not future.done():
        future.set_result(result)
