"""What the sync and async HTTP clients share: construction, settings, the backend, reading an answer.

The backend (the PSF API, ``_psfapi``, or the Open Inference Protocol, ``_v2``) turns each method into
requests; answers are read here: an error answer becomes its exception
(``_exceptions.error_from_response``), and the limits the server announces in its headers
(``models_store.wire.Limits``) are kept, so ``psf_batch`` splits a large batch before sending it. The
two clients add only the sending: blocking in ``PSFClient``, awaited in ``AsyncPSFClient``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import httpx

from models_store.wire import API_KEY_HEADER, Limits

from ._exceptions import TransportError, error_from_response, transport_error
from ._http import DEFAULT_BASE_URL, DEFAULT_LIMITS, DEFAULT_RETRIES, DEFAULT_TIMEOUT, Call
from ._methods import Backend
from ._psfapi import PSFApi
from ._retry import DEFAULT_BACKOFF, DEFAULT_MAX_RETRY_AFTER, RetryPolicy
from ._v2 import V2

PROTOCOLS = ("psf", "v2")


class HTTPSource:
    """Keyword-only settings after ``base_url``, with module-level defaults:

    ``protocol`` (``"psf"``: the PSF server's API; ``"v2"``: the Open Inference Protocol of a Triton /
    KServe server holding an ``export-triton`` repository, or of the PSF server's own v2 routes; see
    clients/_v2.py), ``model`` (the default model name, needed by v2 when calls name none),
    ``api_key`` (sent as X-API-Key), ``timeout`` [s] or an ``httpx.Timeout``, ``retries`` (how often a
    503/429 or a connection failure is repeated, waiting ``backoff`` * 2^n seconds with jitter or the
    server's Retry-After up to ``max_retry_after``), ``max_batch`` (a batch limit of your own; the
    server's, announced in its answers, applies too), ``limits`` (an ``httpx.Limits`` for the connection
    pool) and ``transport`` (passed to httpx: proxies, tests).

    ``server_limits`` holds the limits of the server's latest answer that announced them (None before).
    """

    _http_class: ClassVar[type]  # httpx.Client or httpx.AsyncClient

    def __init__(self, base_url: str = DEFAULT_BASE_URL, *, protocol: str = "psf", model: str | None = None,
                 api_key: str | None = None,
                 timeout: float | httpx.Timeout = DEFAULT_TIMEOUT, retries: int = DEFAULT_RETRIES,
                 backoff: float = DEFAULT_BACKOFF, max_retry_after: float = DEFAULT_MAX_RETRY_AFTER,
                 max_batch: int | None = None, limits: httpx.Limits | None = None, transport: Any = None) -> None:
        if protocol not in PROTOCOLS:
            raise ValueError(f"protocol={protocol!r} is not allowed: use 'psf' (the PSF server's API) or 'v2' "
                             "(Open Inference Protocol: Triton, KServe)")
        self.base_url, self.protocol = base_url, protocol
        self.backend: Backend = V2(model=model) if protocol == "v2" else PSFApi(self)
        self.max_batch = self._own_max_batch = max_batch
        self.server_limits: Limits | None = None
        self.retry = RetryPolicy(retries=retries, backoff=backoff, max_retry_after=max_retry_after)
        headers = {API_KEY_HEADER: api_key} if api_key else {}
        self._http = self._http_class(base_url=base_url, timeout=timeout, headers=headers,
                                      limits=limits or DEFAULT_LIMITS, transport=transport)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.base_url!r})"

    def _unreachable(self, call: Call, exc: httpx.TransportError) -> TransportError:
        return transport_error(exc, call.method, f"{self.base_url}{call.path}")

    def _learn(self, limits: Limits) -> None:
        self.server_limits = limits
        own = self._own_max_batch
        self.max_batch = limits.max_batch if own is None else min(own, limits.max_batch)

    def _answer(self, call: Call, response: httpx.Response) -> Any:
        limits = Limits.from_headers(response.headers)
        if limits is not None and limits != self.server_limits:
            self._learn(limits)
        if response.is_error:
            raise error_from_response(response)
        return call.parse(response)
