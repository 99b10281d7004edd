"""A bounded LRU cache of answers, for rendering code that asks the same PSFs and grids again.

Keys always hold the model name and the *resolved* version number, so a hot reload or a moved alias
never serves a stale answer; versions are immutable, so an entry never goes stale otherwise. The
bound is in bytes of cached arrays. Cached arrays are read-only: every caller shares them. They are
the float32 answers as computed; a float16 answer (``dtype=float16``) is made from one when it is
encoded, so the dtype is not part of any key and one dtype can never be served for the other.

A question asked again while its first asking is still being computed waits for that answer
(:meth:`AnswerCache.compute`) instead of computing it a second time; should the first asker go away,
the next one computes it. With the cache off (``PSF_CACHE_MB=0``) every request computes its own.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Hashable

import numpy as np
from cachetools import LRUCache

from .metrics import Metrics


class AnswerCache:
    def __init__(self, max_bytes: int, metrics: Metrics | None = None) -> None:
        self.max_bytes = max_bytes
        self._metrics = metrics
        if metrics is not None:  # bound once: a labels() lookup per query costs more than the count
            self._hits, self._misses = metrics.cache.labels("hit"), metrics.cache.labels("miss")
        self._lru: LRUCache[Hashable, np.ndarray] | None = (
            LRUCache(maxsize=max_bytes, getsizeof=lambda a: a.nbytes) if max_bytes > 0 else None
        )
        self._lock = threading.Lock()  # cachetools caches are not thread-safe; sync routes run in threads
        self._computing: dict[Hashable, asyncio.Future[np.ndarray]] = {}  # event loop only

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

    async def compute(self, key: Hashable, answer: Callable[[], Awaitable[np.ndarray]]) -> np.ndarray:
        """The answer for ``key`` (after a :meth:`get` missed): awaited from ``answer()`` and kept, or,
        while the same key is being computed, that computation's answer or error."""
        if self._lru is None:
            return await answer()
        while (first := self._computing.get(key)) is not None:
            try:
                return await asyncio.shield(first)
            except asyncio.CancelledError:
                if not first.cancelled():  # this request went away itself
                    raise
            value = self.get(key)  # the first asker went away: answered meanwhile, or ours to compute
            if value is not None:
                return value
        future = self._computing[key] = asyncio.get_running_loop().create_future()
        try:
            value = self.put(key, await answer())
        except BaseException as exc:
            if isinstance(exc, asyncio.CancelledError) or not isinstance(exc, Exception):
                future.cancel()
            else:
                future.set_exception(exc)
                future.exception()  # retrieved: nobody may be waiting for it
            raise
        else:
            future.set_result(value)
            return value
        finally:
            del self._computing[key]

    def __len__(self) -> int:
        return 0 if self._lru is None else len(self._lru)
