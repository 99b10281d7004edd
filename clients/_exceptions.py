"""Errors the client raises: one base class, thin subclasses chosen by HTTP status."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

import httpx


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
    """413: a batch over the server's limit; ``limit`` is that limit when the message names it.

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
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def _batch_limit(response: httpx.Response, message: str) -> int | None:
    """The server's batch limit from a 413: a header if it sends one, else the number after 'limit'."""
    header = response.headers.get("X-Max-Batch-Size") or response.headers.get("X-Max-Batch")
    if header and header.strip().isdigit():
        return int(header)
    found = re.search(r"(?:limit|max(?:imum)?|at most)\D{0,30}?(\d+)", message, flags=re.IGNORECASE)
    return int(found.group(1)) if found else None


def transport_error(exc: httpx.TransportError, method: str, url: str) -> TransportError:
    """The client error for an httpx transport failure (raise it ``from exc``)."""
    if isinstance(exc, httpx.TimeoutException):
        return RequestTimeoutError(f"{method} {url} timed out: {exc or type(exc).__name__}")
    return TransportError(f"cannot reach the PSF server at {url} ({exc or type(exc).__name__})")


def error_from_response(response: httpx.Response) -> PSFError:
    """The exception for an error response (status >= 400)."""
    status, message = response.status_code, _detail(response)
    where = {"status_code": status, "request": f"{response.request.method} {response.request.url}"}
    if status in (401, 403):
        return UnauthorizedError(message, **where)
    if status == 404:
        return NotFoundError(message, **where)
    if status == 413:
        return PayloadTooLargeError(message, **where, limit=_batch_limit(response, message))
    if status in (429, 503):
        return OverloadedError(message, **where, retry_after=_retry_after(response))
    if status >= 500:
        return ServerError(message, **where)
    return InvalidRequestError(message, **where)
