"""What the routes depend on: the server's parts (one dependency), model lookup, query models, API key.

Per-request cost matters here (a cached PSF is answered in well under a millisecond), so the hot GET
routes read their query string into one pydantic model (:func:`parse_query`) instead of a FastAPI
parameter per field, which costs several times more per request in FastAPI's dependency solver; the
parameters are still documented in OpenAPI (:func:`query_parameters`). Every dependency is ``async
def``: a plain ``def`` one costs a thread-pool hop per request.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import Depends, HTTPException, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.security import APIKeyHeader
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool

from models_store.runtime import OnnxModel

from .batcher import Batcher
from .cache import AnswerCache
from .metrics import Metrics
from .registry import Registry
from .settings import Settings

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Server:
    """The parts of one running server, built in the app's lifespan."""

    settings: Settings
    registry: Registry
    batcher: Batcher
    cache: AnswerCache
    metrics: Metrics

    async def model(self, name: str | None, version: str | int | None) -> OnnxModel:
        """The model a query names, without blocking the event loop when it has to be loaded first."""
        version = None if version is None else str(version)
        onnx = self.registry.get(name, version, block=False)
        if onnx is None:
            onnx = await run_in_threadpool(self.registry.get, name, version)
        assert onnx is not None
        return onnx


async def get_server(request: Request) -> Server:
    return request.app.state.server


ServerDep = Annotated[Server, Depends(get_server)]


def parse_query(model: type[M], request: Request) -> M:
    """The query string as ``model``; errors are FastAPI's own 422 (loc ``query``)."""
    try:
        return model.model_validate(request.query_params)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("query", *e["loc"])} for e in exc.errors(include_url=False)]) from None


def query_parameters(model: type[BaseModel]) -> dict[str, Any]:
    """OpenAPI ``parameters`` describing the fields of a query model (for ``openapi_extra``)."""
    schema = model.model_json_schema(by_alias=True)
    required = set(schema.get("required", ()))
    params = []
    for name, prop in schema["properties"].items():
        description = prop.pop("description", "")
        prop.pop("title", None)
        params.append({"name": name, "in": "query", "required": name in required, "description": description,
                       "schema": prop})
    return {"parameters": params}


_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False,
                               description="required on every route but /healthz and /readyz when the "
                               "server has an API key (PSF_API_KEY)")


async def require_api_key(request: Request, key: Annotated[str | None, Security(_api_key_header)]) -> None:
    expected = request.app.state.settings.api_key
    if expected is None:
        return
    # compare_digest: the time taken must not hint how much of a guessed key was right. The key is
    # never logged: uvicorn's access log holds only the request line.
    if key is None or not hmac.compare_digest(key.encode(), expected.get_secret_value().encode()):
        what = "missing" if key is None else "wrong"
        raise HTTPException(status_code=401, detail=f"API key {what}: send it in the X-API-Key header")
