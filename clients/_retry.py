"""When to repeat a request, and after how long.

Retried: 503/429 (the server said "not now"; it did not act on the request), and connection
failures. A failure that may have happened after the server received the request (read timeout,
dropped connection) is retried only for idempotent calls; every PSF route is idempotent, but the rule
stays here so a future non-idempotent route is safe by default. Waits grow exponentially with jitter;
a Retry-After from the server is honoured, capped at ``max_retry_after`` so a server cannot park a
client for an hour. Everything else (4xx, 500) is raised at once.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass

import httpx

from ._exceptions import OverloadedError, PSFError, TransportError
from ._http import Call

log = logging.getLogger("clients")

DEFAULT_BACKOFF = 0.2
DEFAULT_MAX_BACKOFF = 5.0
DEFAULT_MAX_RETRY_AFTER = 30.0

# the request never reached the server: safe to repeat whatever it was
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


@dataclass(frozen=True)
class RetryPolicy:
    retries: int
    backoff: float = DEFAULT_BACKOFF
    max_backoff: float = DEFAULT_MAX_BACKOFF
    max_retry_after: float = DEFAULT_MAX_RETRY_AFTER

    def __post_init__(self) -> None:
        if self.retries < 0 or self.backoff < 0 or self.max_backoff < 0 or self.max_retry_after < 0:
            raise ValueError(f"retry settings must be >= 0, got {self}")

    def delay(self, attempt: int, error: PSFError, *, idempotent: bool) -> float | None:
        """Seconds to wait before attempt ``attempt + 1`` (0-based), or None to give up and raise."""
        if attempt >= self.retries:
            return None
        backoff = min(self.max_backoff, self.backoff * 2**attempt) * random.uniform(0.5, 1.0)
        if isinstance(error, OverloadedError):
            if error.retry_after is not None:
                return min(error.retry_after, self.max_retry_after)
            return backoff
        if isinstance(error, TransportError) and (idempotent or isinstance(error.__cause__, _NOT_SENT)):
            return backoff
        return None

    def wait(self, attempt: int, error: PSFError, call: Call) -> float | None:
        """:meth:`delay` for one call, logged; None means raise ``error``."""
        delay = self.delay(attempt, error, idempotent=call.idempotent)
        if delay is not None:
            log.warning("%s %s failed (%s); retry %d/%d in %.2f s", call.method, call.path, error, attempt + 1,
                        self.retries, delay)
        return delay
