"""Errors the client raises: one base class, thin subclasses chosen by HTTP status."""

from __future__ import annotations

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
    """No HTTP answer: connection refused, DNS failure, timeout."""


def _detail(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        detail = None
    if isinstance(detail, list):  # FastAPI's default shape, from servers without our handlers
        detail = "; ".join(str(item.get("msg", item)) if isinstance(item, dict) else str(item) for item in detail)
    return str(detail) if detail else (response.text.strip()[:500] or response.reason_phrase)


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return float(response.headers["Retry-After"])
    except (KeyError, ValueError):
        return None


def error_from_response(response: httpx.Response) -> PSFError:
    """The exception for an error response (status >= 400)."""
    status, message = response.status_code, _detail(response)
    where = {"status_code": status, "request": f"{response.request.method} {response.request.url}"}
    if status in (401, 403):
        return UnauthorizedError(message, **where)
    if status == 404:
        return NotFoundError(message, **where)
    if status in (429, 503):
        return OverloadedError(message, **where, retry_after=_retry_after(response))
    if status >= 500:
        return ServerError(message, **where)
    return InvalidRequestError(message, **where)
