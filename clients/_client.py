"""PSFClient: the HTTP API as blocking Python calls returning numpy arrays."""

from __future__ import annotations

import time
from types import TracebackType
from typing import Any, Self

import httpx

from ._base import HTTPSource
from ._exceptions import PSFError
from ._http import Call
from ._methods import PSFSource
from ._plan import Plan, run_blocking


class PSFClient(HTTPSource, PSFSource):
    """Client of a PSF server; one pooled HTTP connection set per client, so keep one and reuse it.

    >>> with PSFClient("http://127.0.0.1:8000") as client:
    ...     kernel = client.psf(field=0.5, depth=10.0, wavelength=550.0)   # float32 [k, k]
    ...     grid = client.psf_grid(8, 6, depth=10.0, wavelength=550.0)     # [6, 8, k, k]

    ``PSFClient(base_url, *, protocol, model, api_key, timeout, retries, backoff, max_retry_after,
    max_batch, limits, transport)``: see :class:`clients._base.HTTPSource` for each setting. Errors
    raise subclasses of :class:`PSFError`. The methods are :class:`clients.PSFSource`'s.
    """

    _http_class = httpx.Client

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _run[T](self, plan: Plan[T]) -> T:
        return run_blocking(plan, self._send)

    def _send(self, call: Call) -> Any:
        attempt = 0
        while True:
            try:
                return self._send_once(call)
            except PSFError as error:
                delay = self.retry.wait(attempt, error, call) if call.retry else None
                if delay is None:
                    raise
                time.sleep(delay)
                attempt += 1

    def _send_once(self, call: Call) -> Any:
        try:
            response = self._http.request(call.method, call.path, params=call.params, json=call.json,
                                          content=call.content, headers=call.headers)
        except httpx.TransportError as exc:
            raise self._unreachable(call, exc) from exc
        return self._answer(call, response)
