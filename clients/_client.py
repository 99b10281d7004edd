"""PSFClient: the HTTP API as blocking Python calls returning numpy arrays."""

from __future__ import annotations

import time
from types import TracebackType
from typing import Any

import httpx

from ._api import Op
from ._base import HTTPSource
from ._batch import BatchPlan
from ._exceptions import PayloadTooLargeError, PSFError
from ._http import DEFAULT_BASE_URL, Call, to_call
from ._v2 import V2Protocol


class PSFClient(HTTPSource):
    """Client of a PSF server; one pooled HTTP connection set per client, so keep one and reuse it.

    >>> with PSFClient("http://127.0.0.1:8000") as client:
    ...     kernel = client.psf(field=0.5, depth=10.0, wavelength=550.0)   # float32 [k, k]
    ...     grid = client.psf_grid(8, 6, depth=10.0, wavelength=550.0)     # [6, 8, k, k]

    ``PSFClient(base_url, *, api_key, timeout, retries, backoff, max_retry_after, max_batch, limits,
    transport)``: see :class:`clients._base.HTTPSource` for each setting. Errors raise subclasses of
    :class:`PSFError`.
    """

    _http_class = httpx.Client

    def __init__(self, base_url: str = DEFAULT_BASE_URL, *, protocol: str = "psf", model: str | None = None,
                 **settings: Any) -> None:
        """``protocol="v2"`` speaks the Open Inference Protocol to a Triton / KServe server holding an
        ``export-triton`` repository (or to the PSF server's own v2 routes); ``model`` is then the
        default model name (see clients/_v2.py)."""
        if protocol not in ("psf", "v2"):
            raise ValueError(f"protocol={protocol!r} is not allowed: use 'psf' (the PSF server's API) or 'v2' "
                             "(Open Inference Protocol: Triton, KServe)")
        super().__init__(base_url, **settings)
        self.protocol = protocol
        self._v2 = V2Protocol(self._send, model=model) if protocol == "v2" else None

    def _do(self, op: Op) -> Any:
        if self._v2 is not None:
            return self._v2.do(op)
        return super()._do(op)

    def __enter__(self) -> PSFClient:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

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
            response = self._http.request(call.method, call.path, params=call.params, json=call.json,
                                          content=call.content, headers=call.headers)
        except httpx.TransportError as exc:
            raise self._unreachable(call, exc) from exc
        return self._answer(call, response)
