"""Admission control and dynamic micro-batching of PSF computations.

Every PSF the server computes passes through :meth:`Batcher.psf` (conditions already resolved, as
the batch and grid routes have them) or :meth:`Batcher.psf_query` (one query in physical units, as
GET /psf has it). With micro-batching on, queries for the same model version that arrive together
are merged: the physical queries are validated and resolved as columns in one
``OnnxModel.conditions`` call, then everything runs as one ``OnnxModel.psf_at`` call (one
onnxruntime run plus one vectorised orientation), and the rows are split back to their callers.
A row's answer is the same computation whatever else is in its batch, but not always the same bits:
onnxruntime's matrix kernels sum in an order that can depend on the number of rows, so a merged row may
differ from the same query computed alone by float32 rounding (measured on cooke-quickstart: 7 of 50
rows, by at most 9e-8 per value against PSF values up to 1e-1; the ci model shows none). A query that
fails validation gets its own error and does not disturb the others.

When to run: a query on an idle server (no other request in flight, nothing queued or running for
its model) is computed at once, in the event loop when it is a few PSFs, else in a thread; while
other requests are about, it is queued. Since every query waits one event-loop turn first, a crowd
that arrives together is queued together rather than answered one by one. A worker per
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
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

from models_store import ConditionError
from models_store.engine import OnnxModel

from .inflight import RequestsInFlight
from .limits import Overloaded
from .metrics import Metrics

log = logging.getLogger(__name__)
T = TypeVar("T")
_INLINE_ROWS = 4


Query = dict[str, float | None]


@dataclass
class _Job:
    future: asyncio.Future[np.ndarray] = field(repr=False)
    condition: np.ndarray | None = None  # resolved rows [N, C] with their azimuths ...
    azimuth: np.ndarray | None = None
    query: Query | None = None  # ... or one query in physical units, resolved with its batch

    @property
    def rows(self) -> int:
        return 1 if self.condition is None else len(self.condition)


def resolve_jobs(model: OnnxModel, jobs: list[_Job]) -> list[ConditionError | None]:
    """Give every job its ``condition`` and ``azimuth``; physical queries are resolved as columns,
    one call per set of parameters given. Returns each job's validation error (None when valid)."""
    errors: list[ConditionError | None] = [None] * len(jobs)
    groups: dict[tuple[str, ...], list[int]] = {}
    for i, job in enumerate(jobs):
        if job.query is not None:
            groups.setdefault(tuple(k for k, v in job.query.items() if v is not None), []).append(i)
    for names, members in groups.items():
        try:
            condition, azimuth = model.conditions(**{n: [jobs[i].query[n] for i in members] for n in names})
        except ConditionError:  # someone's query is invalid: find whose, one at a time
            for i in members:
                try:
                    jobs[i].condition, jobs[i].azimuth = model.conditions(**jobs[i].query)
                except ConditionError as exc:
                    errors[i] = exc
            continue
        for row, i in enumerate(members):
            jobs[i].condition, jobs[i].azimuth = condition[row:row + 1], azimuth[row:row + 1]
    return errors


def compute_jobs(model: OnnxModel, jobs: list[_Job]) -> tuple[np.ndarray | None, list[ConditionError | None]]:
    """One batch: resolve, then one ``psf_at`` call over the valid jobs' rows, in job order."""
    errors = resolve_jobs(model, jobs)
    valid = [j for j, e in zip(jobs, errors, strict=True) if e is None]
    if not valid:
        return None, errors
    if len(valid) == 1:
        return model.psf_at(valid[0].condition, valid[0].azimuth), errors
    return model.psf_at(np.concatenate([j.condition for j in valid]),
                        np.concatenate([j.azimuth for j in valid])), errors


class Batcher:
    def __init__(self, metrics: Metrics, in_flight: RequestsInFlight, *, enabled: bool = True, max_rows: int = 512,
                 max_delay_s: float = 0.002, max_pending: int = 16384, retry_after_s: int = 1,
                 threads: int = 4) -> None:
        self.metrics, self.enabled = metrics, enabled
        self.in_flight = in_flight  # HTTP requests being answered (moved by metrics.RequestMeter)
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
        return await self._submit(model, condition=condition, azimuth=azimuth)

    async def psf_query(self, model: OnnxModel, query: Query) -> np.ndarray:
        """``model.psf(**query)`` for one query in physical units (scalars), merged likewise; a
        query outside the model's ranges raises :class:`ConditionError`."""
        return await self._submit(model, query=query)

    async def _submit(self, model: OnnxModel, **job: Any) -> np.ndarray:
        loop = asyncio.get_running_loop()
        item = _Job(loop.create_future(), **job)
        rows = item.rows
        with self._admitted(rows):
            # Let requests that arrived with this one reach the batcher before judging it alone:
            # one event-loop turn, far cheaper than the queue's hand-offs.
            await asyncio.sleep(0)
            if not self.enabled or rows >= self.max_rows or self._alone(model):
                self._observe(rows, 1)
                return await self._compute(model, [item])
            self._queue_for(model).put_nowait(item)
            return await item.future

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
        if self.pending + rows > self.max_pending:  # counted where the 503 is sent (errors.py)
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

    def _alone(self, model: OnnxModel) -> bool:
        """A query on an idle server: nothing to merge with, so skip the queue's hand-offs."""
        key = (model.name, model.version)
        queue = self._queues.get(key)
        return (key not in self._running and (queue is None or queue.empty())
                and self._requests_inside == 1 and not self._others_on_their_way())

    def _others_on_their_way(self) -> bool:
        return self.in_flight.count > self._requests_inside

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
            out, errors = await self._in_pool_or_inline(rows, compute_jobs, model, jobs)
        except Exception as exc:  # every caller of the batch hears about it
            log.exception("%s@%s: a batch of %d PSFs failed", model.name, model.version, rows)
            for j in jobs:
                if not j.future.done():
                    j.future.set_exception(exc)
            return
        finally:
            self._running.discard(key)
        start = 0
        for j, error in zip(jobs, errors, strict=True):
            done = j.future.done()  # a caller that went away has cancelled its future
            if error is not None:
                if not done:
                    j.future.set_exception(error)
                continue
            if not done:  # a lone job takes the whole array: a view would cost the answer cache a copy
                j.future.set_result(out if j.rows == len(out) else out[start:start + j.rows])
            start += j.rows

    async def _compute(self, model: OnnxModel, jobs: list[_Job]) -> np.ndarray:
        """One request's work on its own (batching off, or nothing to merge with)."""
        out, errors = await self._in_pool_or_inline(jobs[0].rows, compute_jobs, model, jobs)
        if errors[0] is not None:
            raise errors[0]
        assert out is not None
        return out

    async def _in_pool_or_inline(self, rows: int, fn: Callable[..., T], *args: Any) -> T:
        # A few PSFs on an idle server take less time than handing them to a thread and back;
        # anything larger, or with other requests about, runs in the pool and leaves the loop free.
        start = time.perf_counter()
        try:
            if rows <= _INLINE_ROWS and not self._others_on_their_way():
                return fn(*args)
            return await self.call(fn, *args)
        finally:
            self.metrics.compute.observe(time.perf_counter() - start)

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
