"""Splitting a batch over the server's limit into requests, and putting the answers back in order.

The plan is pure bookkeeping; the sync and async clients drive it. The limit is the client's
``max_batch``: given by the caller, or announced by the server in its answers' headers
(``models_store.wire.Limits``, read in ``_base.HTTPSource``); a 413 on a chunk lowers it to the
limit that refusal announces, or to half the refused size when it announces none.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from models_store.wire import QUERY_COLUMNS, DType

from ._api import Query
from ._arrays import PSFArray, PSFMeta, with_meta
from ._exceptions import InvalidRequestError, PayloadTooLargeError
from ._http import Call, batch_call


def batch_length(conditions: dict[str, Any]) -> int:
    sizes = {k: int(np.size(v)) for k, v in conditions.items() if v is not None}
    return max(sizes.values(), default=1)


class BatchPlan:
    """Chunks ``[start, stop)`` of one ``psf_batch`` call, answered in any order, joined in order."""

    def __init__(self, query: Query, dtype: DType, limit: int | None) -> None:
        self.query, self.dtype = query, dtype
        self.n = max(1, batch_length(query.conditions))  # an empty batch is still one request, for the server to judge
        self.limit = limit if limit and limit > 0 else self.n
        self.parts: dict[int, np.ndarray] = {}
        self.next_start = 0
        if self.limit < self.n:
            self._check_columns()

    def _check_columns(self) -> None:
        for name in QUERY_COLUMNS:
            value = self.query.conditions.get(name)
            if value is not None and np.size(value) not in (1, self.n):
                raise InvalidRequestError(f"{name} has {np.size(value)} values; give 1 or {self.n} like the "
                                          "other columns")

    def _slice(self, start: int, stop: int) -> Call:
        conditions = dict(self.query.conditions)
        for name, value in conditions.items():
            if value is not None and np.size(value) == self.n and self.n > 1:
                conditions[name] = np.asarray(value).reshape(-1)[start:stop]
        return batch_call(self.query._replace(conditions=conditions), self.dtype)

    def next_chunk(self) -> tuple[int, Call] | None:
        """The next chunk's start and request, or None when every chunk has been handed out."""
        if self.next_start >= self.n:
            return None
        start, stop = self.next_start, min(self.n, self.next_start + self.limit)
        self.next_start = stop
        return start, self._slice(start, stop)

    def done(self, start: int, part: np.ndarray) -> None:
        if not self.parts:
            self._pin(getattr(part, "meta", None))
        self.parts[start] = part

    def _pin(self, meta: PSFMeta | None) -> None:
        # the rest of the batch must come from the same version, even if `latest` moves meanwhile
        if meta is not None:
            self.query = self.query._replace(model=meta.model, version=meta.version)

    def too_large(self, start: int, error: PayloadTooLargeError) -> int:
        """Learn a smaller limit from a 413 on the chunk at ``start``; re-raise when none is possible."""
        refused = min(self.n, start + self.limit) - start
        limit = error.limit if error.limit is not None and 0 < error.limit < refused else refused // 2
        if limit < 1:
            raise error
        self.limit, self.next_start = limit, start
        return limit

    def result(self) -> PSFArray:
        parts = [self.parts[start] for start in sorted(self.parts)]
        meta = getattr(parts[0], "meta", None) if parts else None
        return with_meta(np.concatenate(parts, axis=0), meta, self.dtype)
