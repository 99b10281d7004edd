"""Error responses: every problem a caller can cause is a 4xx with one readable ``detail`` line.

422 bodies are ``{"detail": "<parameter>=<value> is not allowed: <what is allowed>", "errors": [...]}``
whether FastAPI's own parsing refused the value (depth=abc) or the model's trained ranges did
(depth=70); 404 names what exists; 413 names the limit a request is over; 503 says why nothing can
answer, with Retry-After.
"""

from __future__ import annotations

import math
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from models_store import ConditionError, GeometryUnavailable

from .limits import LimitExceeded, Overloaded
from .versions import InvalidReference, ModelNotFound, ModelUnavailable


class ErrorBody(BaseModel):
    """The body of every error answer (401, 404, 413, 503, ...)."""

    detail: str = Field(description="what was wrong, the value, and what is allowed")


class FieldError(BaseModel):
    loc: list[str] = Field(description="where: query or body, then the parameter's name")
    msg: str
    type: str | None = None
    input: Any = None


class ValidationErrorBody(ErrorBody):
    """The body of a 422: one line for people, and each refused parameter."""

    errors: list[FieldError]


# pydantic's wording for the types our parameters use, said the way the rest of our messages are
_PHRASES = {
    "float_parsing": "must be a number",
    "float_type": "must be a number",
    "int_parsing": "must be a whole number",
    "int_type": "must be a whole number",
    "finite_number": "must be a finite number",
    "extra_forbidden": "unknown parameter (see /docs for this route's parameters)",
    "given_twice": "given more than once; give each parameter once",
}


def _plain(value: Any) -> Any:
    """Something JSON can carry (Starlette refuses NaN and inf, and error inputs may be anything)."""
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    return str(value)


def _unprocessable(detail: str, errors: list[dict[str, Any]]) -> JSONResponse:
    return JSONResponse(status_code=422, content={"detail": detail, "errors": errors})


def _describe(error: dict[str, Any]) -> str:
    loc = [str(p) for p in error.get("loc", ())]
    where, name = (loc[0], ".".join(loc[1:])) if len(loc) > 1 else ("request", ".".join(loc) or "body")
    if error.get("type") == "missing":
        return f"{where} parameter {name} is required"
    if error.get("type") == "json_invalid":  # loc holds the character where parsing stopped
        reason = error.get("ctx", {}).get("error", "invalid JSON")
        return f"the request body is not valid JSON: {reason} at character {name}"
    phrase = _PHRASES.get(error.get("type", "")) or re.sub(r"^Input should be", "must be",
                                                           error.get("msg", "is invalid"))
    return f"{where} parameter {name}={error.get('input')!r} is not allowed: {phrase}"


async def _on_validation(_: Request, exc: RequestValidationError) -> JSONResponse:
    plain = [
        {"loc": [str(p) for p in e.get("loc", ())], "msg": _describe(e), "type": e.get("type"),
         "input": _plain(e.get("input"))}
        for e in exc.errors()
    ]
    detail = "; ".join(e["msg"] for e in plain) or "the request is not valid"
    return _unprocessable(detail, plain)


async def _on_condition(request: Request, exc: ConditionError) -> JSONResponse:
    where = "query" if request.method == "GET" else "body"
    error = {"loc": [where, exc.parameter], "msg": str(exc), "type": "out_of_range", "input": _plain(exc.value)}
    return _unprocessable(str(exc), [error])


async def _on_reference(_: Request, exc: InvalidReference) -> JSONResponse:
    return _unprocessable(str(exc), [{"loc": ["query", exc.parameter], "msg": str(exc), "type": "invalid_name"}])


async def _on_not_found(_: Request, exc: ModelNotFound) -> JSONResponse:
    return JSONResponse(status_code=404, content={"detail": str(exc)})


async def _on_no_geometry(_: Request, exc: GeometryUnavailable) -> JSONResponse:
    return JSONResponse(status_code=404, content={"detail": str(exc)})


async def _on_unavailable(_: Request, exc: ModelUnavailable) -> JSONResponse:
    return JSONResponse(status_code=503, content={"detail": str(exc)}, headers={"Retry-After": "30"})


async def _on_too_large(request: Request, exc: LimitExceeded) -> JSONResponse:
    # the limits go with the refusal, so a client can split its request without reading the message
    return JSONResponse(status_code=413, content={"detail": str(exc)},
                        headers=request.app.state.settings.limits.headers())


async def _on_overloaded(request: Request, exc: Overloaded) -> JSONResponse:
    request.app.state.metrics.rejected.inc()
    return JSONResponse(status_code=503, content={"detail": str(exc)},
                        headers={"Retry-After": str(exc.retry_after_s)})


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(ConditionError, _on_condition)
    app.add_exception_handler(InvalidReference, _on_reference)
    app.add_exception_handler(ModelNotFound, _on_not_found)
    app.add_exception_handler(ModelUnavailable, _on_unavailable)
    app.add_exception_handler(GeometryUnavailable, _on_no_geometry)
    app.add_exception_handler(LimitExceeded, _on_too_large)
    app.add_exception_handler(Overloaded, _on_overloaded)
