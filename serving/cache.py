"""A bounded LRU cache of answers, for rendering code that asks the same PSFs and grids again.

Keys always hold the model name and the *resolved* version number, so a hot reload or a moved alias
never serves a stale answer; versions are immutable, so an entry never goes stale otherwise. The
bound is in bytes of cached arrays. Cached arrays are read-only: every caller shares them. They are
the float32 answers as computed; a float16 answer (``dtype=float16``) is made from one when it is
encoded, so the dtype is not part of any key and one dtype can never be served for the other.

A question asked again while its first asking is still being computed waits for that answer
(:meth:`AnswerCache.compute`) instead of computing it a second time; should the first asker go away,
the next one computes it. With the cache off (``PSF_CACHE_MB=0``) every request computes its own.

An answer is kept from the second time its question is asked (``admit_after=2``, the
``PSF_CACHE_ADMIT_AFTER`` setting): a stream of questions asked once (a renderer sweeping the sensor)
then costs a set lookup each instead of a store, an eviction and a read-only copy, and never pushes out
the answers that are asked again. The in-flight table holds a future only once a second asker waits,
so the first asking of a question costs two dictionary operations. Measured (``benchmarks.load``,
README "Load"): with both, distinct queries are as fast with the cache on as off.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Hashable

import numpy as np
from cachetools import LRUCache

from .metrics import Metrics

_NOBODY_WAITS = None  # in the in-flight table: being computed, and no second asker yet


class AnswerCache:
    def __init__(self, max_bytes: int, metrics: Metrics | None = None, *, admit_after: int = 2) -> None:
        self.max_bytes, self.admit_after = max_bytes, admit_after
        self._metrics = metrics
        if metrics is not None:  # bound once: a labels() lookup per query costs more than the count
            self._hits, self._misses = metrics.cache.labels("hit"), metrics.cache.labels("miss")
        self._lru: LRUCache[Hashable, np.ndarray] | None = (
            LRUCache(maxsize=max_bytes, getsizeof=lambda a: a.nbytes) if max_bytes > 0 else None
        )
        self._lock = threading.Lock()  # cachetools caches are not thread-safe; sync routes run in threads
        # questions being computed -> the future their second askers wait on (event loop only)
        self._computing: dict[Hashable, asyncio.Future[np.ndarray] | None] = {}
        # questions asked once and not kept, oldest first (bounded like the cache, in entries)
        self._seen: dict[Hashable, None] = {}
        self._seen_max = max(1024, max_bytes >> 12)

    def get(self, key: Hashable) -> np.ndarray | None:
        if self._lru is None:
            return None
        with self._lock:
            value = self._lru.get(key)
        if self._metrics is not None:
            (self._misses if value is None else self._hits).inc()
        return value

    def put(self, key: Hashable, value: np.ndarray) -> np.ndarray:
        """Store ``value`` (made read-only) unless it alone exceeds the bound; returns it."""
        if self._lru is None or value.nbytes > self.max_bytes:
            return value
        if getattr(value.base, "nbytes", 0) > value.nbytes:  # a slice of a merged batch: keep only its rows alive
            value = value.copy()
        value.setflags(write=False)
        with self._lock:
            self._lru[key] = value
        return value

    def _admitted(self, key: Hashable) -> bool:
        """Whether ``key``'s answer is to be kept: from its ``admit_after``-th asking (counting up to 2)."""
        if self.admit_after <= 1 or self._seen.pop(key, 0) is None:
            return True
        if len(self._seen) >= self._seen_max:
            del self._seen[next(iter(self._seen))]
        self._seen[key] = None
        return False

    async def compute(self, key: Hashable, answer: Callable[[], Awaitable[np.ndarray]]) -> np.ndarray:
        """The answer for ``key`` (after a :meth:`get` missed): awaited from ``answer()`` and kept (see
        ``admit_after``), or, while the same key is being computed, that computation's answer or error."""
        if self._lru is None:
            return await answer()
        while key in self._computing:
            first = self._computing[key]
            if first is _NOBODY_WAITS:
                first = self._computing[key] = asyncio.get_running_loop().create_future()
            try:
                return await asyncio.shield(first)
            except asyncio.CancelledError:
                if not first.cancelled():  # this request went away itself
                    raise
            value = self.get(key)  # the first asker went away: answered meanwhile, or ours to compute
            if value is not None:
                return value
        self._computing[key] = _NOBODY_WAITS
        try:
            value = await answer()
        except BaseException as exc:
            waiting = self._computing.pop(key)
            if waiting is not None:
                if isinstance(exc, asyncio.CancelledError) or not isinstance(exc, Exception):
                    waiting.cancel()
                else:
                    waiting.set_exception(exc)
                    waiting.exception()  # retrieved: nobody may be waiting for it any more
            raise
        waiting = self._computing.pop(key)
        if waiting is not None or self._admitted(key):  # asked twice at once counts as asked again
            value = self.put(key, value)
        if waiting is not None:
            waiting.set_result(value)
        return value

    def __len__(self) -> int:
        return 0 if self._lru is None else len(self._lru)
