"""PSFClient: the HTTP API as Python calls returning numpy arrays."""

from __future__ import annotations

import io
from urllib.parse import quote
from types import TracebackType
from typing import Any

import httpx
import numpy as np

from ._exceptions import PSFError, TransportError, error_from_response

DEFAULT_BASE_URL = "http://127.0.0.1:8000"
DEFAULT_TIMEOUT = 10.0
NPY_MEDIA_TYPE = "application/x-npy"


def _param(value: Any) -> str:
    # numbers go out in full precision (repr round-trips), anything else as typed, for the server to judge
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        return repr(float(value))
    return str(value)


class PSFClient:
    """Client of a PSF server.

    >>> with PSFClient("http://127.0.0.1:8000") as client:
    ...     kernel = client.psf(field=0.5, depth=10.0, wavelength=550.0)   # float32 [k, k]

    Errors raise subclasses of :class:`PSFError`; ``transport`` is passed to ``httpx.Client`` (tests use
    ``httpx.MockTransport``).
    """

    def __init__(self, base_url: str = DEFAULT_BASE_URL, *, api_key: str | None = None,
                 timeout: float = DEFAULT_TIMEOUT, transport: httpx.BaseTransport | None = None) -> None:
        headers = {"X-API-Key": api_key} if api_key else {}
        self.base_url = base_url
        self._http = httpx.Client(base_url=base_url, timeout=timeout, headers=headers, transport=transport)

    def __repr__(self) -> str:
        return f"PSFClient({self.base_url!r})"

    def __enter__(self) -> PSFClient:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _get(self, path: str, params: dict[str, Any] | None = None) -> httpx.Response:
        query = {k: _param(v) for k, v in (params or {}).items() if v is not None}
        try:
            response = self._http.get(path, params=query)
        except httpx.TimeoutException as exc:
            raise TransportError(f"GET {self.base_url}{path} timed out: {exc}") from exc
        except httpx.TransportError as exc:
            raise TransportError(f"cannot reach the PSF server at {self.base_url} ({exc})") from exc
        if response.is_error:
            raise error_from_response(response)
        return response

    def psf(self, *, field: float | None = None, depth: float, wavelength: float, azimuth: float | None = None,
            x: float | None = None, y: float | None = None, focus: float | None = None,
            model: str | None = None, version: int | str | None = None) -> np.ndarray:
        """One PSF as a float32 [k, k] array (non-negative, sums to 1; row 0 is image +y).

        Position: ``field`` (fraction of the half-diagonal) with optional ``azimuth`` [deg], or ``x``
        and ``y`` (fractions of the half-width / half-height). ``depth`` and ``focus`` in metres,
        ``wavelength`` in nanometres.
        """
        params = {"field": field, "depth": depth, "wavelength": wavelength, "azimuth": azimuth, "x": x, "y": y,
                  "focus": focus, "model": model, "version": version, "format": "npy"}
        response = self._get("/psf", params)
        try:
            array = np.load(io.BytesIO(response.content), allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            kind = response.headers.get("content-type", "?")
            raise PSFError(f"the server's answer is not a .npy array (content-type {kind}): {exc}",
                           status_code=response.status_code) from exc
        if array.ndim != 2 or array.dtype != np.float32:
            raise PSFError(f"expected a float32 [k, k] PSF, got {array.dtype} {array.shape}",
                           status_code=response.status_code)
        return array

    def models(self) -> list[dict[str, Any]]:
        """Every model in the server's store: name, versions, aliases, summary of the latest manifest."""
        return self._get("/models").json()

    def model(self, name: str, version: int | str | None = None) -> dict[str, Any]:
        """The full manifest of one model version (trained ranges, lens, evaluation card)."""
        return self._get(f"/models/{quote(name, safe='')}", {"version": version}).json()

    def health(self) -> bool:
        """True when the server process answers (GET /healthz); False when it does not."""
        return self._ok("/healthz")

    def ready(self) -> bool:
        """True when the server can answer PSF queries (GET /readyz: at least one model loaded)."""
        return self._ok("/readyz")

    def _ok(self, path: str) -> bool:
        try:
            self._get(path)
        except PSFError:
            return False
        return True
