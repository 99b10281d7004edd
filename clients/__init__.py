"""Python client of the PSF server: ``from clients import PSFClient``."""

from ._client import DEFAULT_BASE_URL, DEFAULT_TIMEOUT, PSFClient
from ._exceptions import (
    InvalidRequestError,
    NotFoundError,
    OverloadedError,
    PSFError,
    ServerError,
    TransportError,
    UnauthorizedError,
)

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_TIMEOUT",
    "InvalidRequestError",
    "NotFoundError",
    "OverloadedError",
    "PSFClient",
    "PSFError",
    "ServerError",
    "TransportError",
    "UnauthorizedError",
]
