"""What the sync and async HTTP clients share: construction, settings, and reading an answer."""

from __future__ import annotations

from typing import Any, ClassVar

import httpx

from ._api import Op, PSFMethods
from ._exceptions import TransportError, error_from_response, transport_error
from ._http import DEFAULT_BASE_URL, DEFAULT_LIMITS, DEFAULT_RETRIES, DEFAULT_TIMEOUT, Call, to_call
from ._retry import DEFAULT_BACKOFF, DEFAULT_MAX_RETRY_AFTER, RetryPolicy


class HTTPSource(PSFMethods):
    """Keyword-only settings after ``base_url``, with module-level defaults:

    ``api_key`` (sent as X-API-Key), ``timeout`` [s] or an ``httpx.Timeout``, ``retries`` (how often a
    503/429 or a connection failure is repeated, waiting ``backoff`` * 2^n seconds with jitter or the
    server's Retry-After up to ``max_retry_after``), ``max_batch`` (the server's batch limit if known,
    else learned from its first 413), ``limits`` (an ``httpx.Limits`` for the connection pool) and
    ``transport`` (passed to httpx: proxies, tests).
    """

    _http_class: ClassVar[type]  # httpx.Client or httpx.AsyncClient

    def __init__(self, base_url: str = DEFAULT_BASE_URL, *, api_key: str | None = None,
                 timeout: float | httpx.Timeout = DEFAULT_TIMEOUT, retries: int = DEFAULT_RETRIES,
                 backoff: float = DEFAULT_BACKOFF, max_retry_after: float = DEFAULT_MAX_RETRY_AFTER,
                 max_batch: int | None = None, limits: httpx.Limits | None = None, transport: Any = None) -> None:
        self.base_url = base_url
        self.max_batch = max_batch
        self.retry = RetryPolicy(retries=retries, backoff=backoff, max_retry_after=max_retry_after)
        headers = {"X-API-Key": api_key} if api_key else {}
        self._http = self._http_class(base_url=base_url, timeout=timeout, headers=headers,
                                      limits=limits or DEFAULT_LIMITS, transport=transport)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.base_url!r})"

    def _do(self, op: Op) -> Any:
        # _batch, _probe and _send are the client's own: blocking in PSFClient, coroutines in AsyncPSFClient
        if op.name == "psf_batch":
            return self._batch(op)
        if op.name in ("health", "ready"):
            return self._probe(to_call(op))
        return self._send(to_call(op))

    def _unreachable(self, call: Call, exc: httpx.TransportError) -> TransportError:
        return transport_error(exc, call.method, f"{self.base_url}{call.path}")

    @staticmethod
    def _answer(call: Call, response: httpx.Response) -> Any:
        if response.is_error:
            raise error_from_response(response)
        return call.parse(response)
