"""Admission control and dynamic micro-batching of PSF computations.

Every PSF the server computes passes through :meth:`Batcher.psf`. With micro-batching on, queries
for the same model version that arrive together are concatenated into one ``OnnxModel.psf_at`` call
(one onnxruntime run plus one vectorised rotation) and the rows are split back to their callers.
Each row's answer does not depend on the other rows in its batch, so merging changes no bits.

When to run: a small query on an idle server (no other request in flight, nothing queued or
running for its model) is computed at once, in the event loop. Otherwise it is queued: a worker per
model version takes the first waiting query and adds every query already queued; it then waits for
more (at most ``max_delay_s``) only while other HTTP requests are in flight that have not reached
the queue yet. One call per model version runs at a time, in a thread; queries arriving meanwhile
form the next batch.

Admission: PSFs admitted and not yet answered are counted; a request that would push the count past
``max_pending`` is refused at once (503 + Retry-After) instead of waiting without bound.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

from models_store.runtime import OnnxModel

from .limits import Overloaded
from .metrics import Metrics

log = logging.getLogger(__name__)
T = TypeVar("T")
_INLINE_ROWS = 4


@dataclass
class _Job:
    condition: np.ndarray
    azimuth: np.ndarray
    future: asyncio.Future[np.ndarray] = field(repr=False)

    @property
    def rows(self) -> int:
        return len(self.condition)


class Batcher:
    def __init__(self, metrics: Metrics, *, enabled: bool = True, max_rows: int = 512, max_delay_s: float = 0.002,
                 max_pending: int = 16384, retry_after_s: int = 1, threads: int = 4) -> None:
        self.metrics, self.enabled = metrics, enabled
        self.max_rows, self.max_delay_s = max_rows, max_delay_s
        self.max_pending, self.retry_after_s = max_pending, retry_after_s
        self.pending = 0  # PSF rows admitted and not yet answered
        self._requests_inside = 0  # requests holding admitted work (those are not "on their way")
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="onnx")
        self._queues: dict[tuple[str, int], asyncio.Queue[_Job]] = {}
        self._workers: dict[tuple[str, int], asyncio.Task[None]] = {}
        self._running: set[tuple[str, int]] = set()  # model versions with a batch being computed

    # -- public ---------------------------------------------------------------------------------
    async def psf(self, model: OnnxModel, condition: np.ndarray, azimuth: np.ndarray) -> np.ndarray:
        """``model.psf_at(condition, azimuth)``, merged with concurrent queries when batching is on."""
        rows = len(condition)
        with self._admitted(rows):
            # Let requests that arrived with this one reach the batcher before judging it alone:
            # one event-loop turn, far cheaper than the queue's hand-offs.
            await asyncio.sleep(0)
            if not self.enabled or rows >= self.max_rows or self._alone(model, rows):
                self._observe(rows, 1)
                return await self._compute(model, condition, azimuth)
            future: asyncio.Future[np.ndarray] = asyncio.get_running_loop().create_future()
            self._queue_for(model).put_nowait(_Job(condition, azimuth, future))
            return await future

    async def run(self, rows: int, fn: Callable[..., T], *args: Any) -> T:
        """Other model work (latent, decode, interpolate): admitted like PSFs, run in the pool."""
        with self._admitted(rows):
            return await self.call(fn, *args)

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    async def close(self) -> None:
        """Stop the workers once their queues are empty (in-flight requests have been drained by then)."""
        for task in self._workers.values():
            task.cancel()
        await asyncio.gather(*self._workers.values(), return_exceptions=True)
        self._pool.shutdown(wait=True)

    # -- admission ------------------------------------------------------------------------------
    def _admitted(self, rows: int) -> _Admission:
        if self.pending + rows > self.max_pending:
            self.metrics.rejected.inc()
            raise Overloaded(f"the server is busy: {self.pending} PSFs are queued and the limit is "
                             f"{self.max_pending} (PSF_MAX_QUEUE); retry in {self.retry_after_s} s",
                             self.retry_after_s)
        return _Admission(self, rows)

    # -- batching -------------------------------------------------------------------------------
    def _queue_for(self, model: OnnxModel) -> asyncio.Queue[_Job]:
        key = (model.name, model.version)
        queue = self._queues.get(key)
        if queue is None:
            queue = self._queues[key] = asyncio.Queue()
            self._workers[key] = asyncio.get_running_loop().create_task(self._worker(model, queue),
                                                                          name=f"batcher {key}")
        return queue

    def _alone(self, model: OnnxModel, rows: int) -> bool:
        """A small query on an idle server: nothing to merge with, so skip the queue's hand-offs."""
        key = (model.name, model.version)
        queue = self._queues.get(key)
        return (rows <= _INLINE_ROWS and key not in self._running and (queue is None or queue.empty())
                and not self._others_on_their_way())

    def _others_on_their_way(self) -> bool:
        return self.metrics.active_requests > self._requests_inside

    async def _worker(self, model: OnnxModel, queue: asyncio.Queue[_Job]) -> None:
        loop = asyncio.get_running_loop()
        carry: _Job | None = None
        while True:
            job = carry if carry is not None else await queue.get()
            carry = None
            jobs, rows, deadline = [job], job.rows, loop.time() + self.max_delay_s
            while rows < self.max_rows:
                if queue.empty():
                    timeout = deadline - loop.time()
                    if timeout <= 0 or not self._others_on_their_way():
                        break
                    try:
                        nxt = await asyncio.wait_for(queue.get(), timeout)
                    except TimeoutError:
                        break
                else:
                    nxt = queue.get_nowait()
                if rows + nxt.rows > self.max_rows:
                    carry = nxt
                    break
                jobs.append(nxt)
                rows += nxt.rows
            await self._run_batch(model, jobs, rows)

    async def _run_batch(self, model: OnnxModel, jobs: list[_Job], rows: int) -> None:
        self._observe(rows, len(jobs))
        key = (model.name, model.version)
        self._running.add(key)
        try:
            if len(jobs) == 1:
                out = await self._compute(model, jobs[0].condition, jobs[0].azimuth)
            else:
                condition = np.concatenate([j.condition for j in jobs])
                azimuth = np.concatenate([j.azimuth for j in jobs])
                out = await self._compute(model, condition, azimuth)
        except Exception as exc:  # every caller of the batch hears about it
            log.exception("%s@%s: a batch of %d PSFs failed", model.name, model.version, rows)
            for j in jobs:
                if not j.future.done():
                    j.future.set_exception(exc)
            return
        finally:
            self._running.discard(key)
        start = 0
        for j in jobs:
            if not j.future.done():  # a caller that went away has cancelled its future
                j.future.set_result(out[start:start + j.rows])
            start += j.rows

    async def _compute(self, model: OnnxModel, condition: np.ndarray, azimuth: np.ndarray) -> np.ndarray:
        # A few PSFs on an idle server take less time than handing them to a thread and back;
        # anything larger, or with other requests about, runs in the pool and leaves the loop free.
        if len(condition) <= _INLINE_ROWS and not self._others_on_their_way():
            return model.psf_at(condition, azimuth)
        return await self.call(model.psf_at, condition, azimuth)

    def _observe(self, rows: int, requests: int) -> None:
        self.metrics.batch_size.observe(rows)
        self.metrics.batch_requests.observe(requests)


class _Admission:
    """Counts a request's rows as pending for as long as it holds them."""

    def __init__(self, batcher: Batcher, rows: int) -> None:
        self.batcher, self.rows = batcher, rows

    def __enter__(self) -> None:
        b = self.batcher
        b.pending += self.rows
        b._requests_inside += 1
        b.metrics.queue_depth.inc(self.rows)

    def __exit__(self, *exc: object) -> None:
        b = self.batcher
        b.pending -= self.rows
        b._requests_inside -= 1
        b.metrics.queue_depth.dec(self.rows)
