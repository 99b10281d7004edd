"""PSFClient: the HTTP API as blocking Python calls returning numpy arrays."""

from __future__ import annotations

import time
from types import TracebackType
from typing import Any

import httpx

from ._api import Op, PSFMethods
from ._batch import BatchPlan
from ._exceptions import PayloadTooLargeError, PSFError, error_from_response, transport_error
from ._http import DEFAULT_BASE_URL, DEFAULT_RETRIES, DEFAULT_TIMEOUT, Call, http_options, to_call
from ._retry import DEFAULT_BACKOFF, DEFAULT_MAX_RETRY_AFTER, RetryPolicy


class PSFClient(PSFMethods):
    """Client of a PSF server; one pooled HTTP connection set per client, so keep one and reuse it.

    >>> with PSFClient("http://127.0.0.1:8000") as client:
    ...     kernel = client.psf(field=0.5, depth=10.0, wavelength=550.0)   # float32 [k, k]
    ...     grid = client.psf_grid(8, 6, depth=10.0, wavelength=550.0)     # [6, 8, k, k]

    ``retries``: how often a 503/429 or a connection failure is retried (with backoff, honouring
    Retry-After up to ``max_retry_after`` seconds). ``max_batch``: the server's batch limit if known
    (else learned from its first 413). ``transport`` goes to ``httpx.Client`` (tests, proxies).
    Errors raise subclasses of :class:`PSFError`.
    """

    def __init__(self, base_url: str = DEFAULT_BASE_URL, *, api_key: str | None = None,
                 timeout: float | httpx.Timeout = DEFAULT_TIMEOUT, retries: int = DEFAULT_RETRIES,
                 backoff: float = DEFAULT_BACKOFF, max_retry_after: float = DEFAULT_MAX_RETRY_AFTER,
                 max_batch: int | None = None, limits: httpx.Limits | None = None,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.base_url = base_url
        self.max_batch = max_batch
        self.retry = RetryPolicy(retries=retries, backoff=backoff, max_retry_after=max_retry_after)
        self._http = httpx.Client(**http_options(base_url, api_key, timeout, limits), transport=transport)

    def __repr__(self) -> str:
        return f"PSFClient({self.base_url!r})"

    def __enter__(self) -> PSFClient:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _do(self, op: Op) -> Any:
        if op.name == "psf_batch":
            return self._batch(op)
        if op.name in ("health", "ready"):
            return self._probe(to_call(op))
        return self._send(to_call(op))

    def _batch(self, op: Op) -> Any:
        plan = BatchPlan(op, self.max_batch)
        while (chunk := plan.next_chunk()) is not None:
            start, part = chunk
            try:
                plan.done(start, self._send(to_call(part)))
            except PayloadTooLargeError as error:
                self.max_batch = plan.too_large(start, error)
        return plan.result()

    def _probe(self, call: Call) -> bool:
        # a health probe answers now: no retries
        try:
            return self._send_once(call)
        except PSFError:
            return False

    def _send(self, call: Call) -> Any:
        attempt = 0
        while True:
            try:
                return self._send_once(call)
            except PSFError as error:
                delay = self.retry.wait(attempt, error, call)
                if delay is None:
                    raise
                time.sleep(delay)
                attempt += 1

    def _send_once(self, call: Call) -> Any:
        try:
            response = self._http.request(call.method, call.path, params=call.params, json=call.json)
        except httpx.TransportError as exc:
            raise transport_error(exc, call.method, f"{self.base_url}{call.path}") from exc
        if response.is_error:
            raise error_from_response(response)
        return call.parse(response)
