"""Errors the client raises: one base class, thin subclasses chosen by HTTP status."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

from models_store.wire import LIMIT_HEADERS


class PSFError(Exception):
    """Base of every client error.

    ``message`` is the server's own explanation (or ours when no answer came back); ``str(error)``
    adds the status and the request. ``status_code`` is None when no HTTP answer came back.
    """

    def __init__(self, message: str, *, status_code: int | None = None, request: str | None = None) -> None:
        context = ", ".join(str(part) for part in (f"HTTP {status_code}" if status_code else None, request) if part)
        super().__init__(f"{message} ({context})" if context else message)
        self.message = message
        self.status_code = status_code


class InvalidRequestError(PSFError):
    """422 (or another 4xx about the request): ``message`` is the server's explanation."""


class PayloadTooLargeError(InvalidRequestError):
    """413: a request over one of the server's limits; ``limit`` is the server's batch limit (conditions
    per request) when the answer announces it (header X-Max-Batch-Size).

    ``psf_batch`` handles this itself by splitting the batch; other calls raise it.
    """

    def __init__(self, message: str, *, status_code: int | None = None, request: str | None = None,
                 limit: int | None = None) -> None:
        super().__init__(message, status_code=status_code, request=request)
        self.limit = limit


class NotFoundError(PSFError):
    """404: unknown model, version or alias; ``message`` lists what exists."""


class UnauthorizedError(PSFError):
    """401/403: the server wants an API key (``PSFClient(api_key=...)``) or refused the one sent."""


class OverloadedError(PSFError):
    """503/429: try again later; ``retry_after`` is the server's hint in seconds, if it gave one."""

    def __init__(self, message: str, *, status_code: int | None = None, request: str | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(message, status_code=status_code, request=request)
        self.retry_after = retry_after


class ServerError(PSFError):
    """5xx other than 503: a fault on the server side."""


class TransportError(PSFError):
    """No HTTP answer: connection refused, DNS failure, connection dropped, timeout."""


class RequestTimeoutError(TransportError):
    """The server did not answer within the client's ``timeout``."""


def _detail(response: httpx.Response) -> str:
    try:
        data = response.json()
        detail = data.get("detail") or data.get("error")  # FastAPI's shape, or the v2 protocol's
    except (ValueError, AttributeError):
        detail = None
    if isinstance(detail, list):  # FastAPI's default shape, from servers without our handlers
        detail = "; ".join(str(item.get("msg", item)) if isinstance(item, dict) else str(item) for item in detail)
    return str(detail) if detail else (response.text.strip()[:500] or response.reason_phrase)


def _retry_after(response: httpx.Response) -> float | None:
    """Retry-After in seconds: a number, or an HTTP date (RFC 9110); None when absent or unreadable."""
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _batch_limit(response: httpx.Response) -> int | None:
    """The batch limit a 413 announces in its headers; None when it announces none."""
    header = response.headers.get(LIMIT_HEADERS["max_batch"], "").strip()
    return int(header) if header.isdigit() else None


def transport_error(exc: httpx.TransportError, method: str, url: str) -> TransportError:
    """The client error for an httpx transport failure (raise it ``from exc``)."""
    if isinstance(exc, httpx.TimeoutException):
        return RequestTimeoutError(f"{method} {url} timed out: {exc or type(exc).__name__}")
    return TransportError(f"cannot reach the PSF server at {url} ({exc or type(exc).__name__})")


def error_from_response(response: httpx.Response) -> PSFError:
    """The exception for an error response (status >= 400)."""
    status, message = response.status_code, _detail(response)
    request = f"{response.request.method} {response.request.url}"
    if status in (401, 403):
        return UnauthorizedError(message, status_code=status, request=request)
    if status == 404:
        return NotFoundError(message, status_code=status, request=request)
    if status == 413:
        return PayloadTooLargeError(message, status_code=status, request=request, limit=_batch_limit(response))
    if status in (429, 503):
        return OverloadedError(message, status_code=status, request=request, retry_after=_retry_after(response))
    if status >= 500:
        return ServerError(message, status_code=status, request=request)
    return InvalidRequestError(message, status_code=status, request=request)
