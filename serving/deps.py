"""What the routes depend on: the server's parts (one dependency), model lookup, query models.

Per-request cost matters here (a cached PSF is answered in well under a millisecond), so the hot GET
routes read their query string into one pydantic model (:func:`parse_query`) instead of a FastAPI
parameter per field, which costs several times more per request in FastAPI's dependency solver; the
parameters are still documented in OpenAPI (:func:`query_parameters`). Every dependency is ``async
def``: a plain ``def`` one costs a thread-pool hop per request.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool

from models_store.engine import OnnxModel
from models_store.wire import Limits

from .batcher import Batcher
from .cache import AnswerCache
from .metrics import Metrics
from .settings import Settings
from .versions import Registry


@dataclass(frozen=True)
class Server:
    """The parts of one running server, built in the app's lifespan."""

    settings: Settings
    registry: Registry
    batcher: Batcher
    cache: AnswerCache
    metrics: Metrics

    @cached_property
    def limits(self) -> Limits:
        return self.settings.limits

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


def parse_query[M: BaseModel](model: type[M], request: Request) -> M:
    """The query string as ``model``; errors are FastAPI's own 422 (loc ``query``). A parameter given
    twice is refused rather than one of its values silently taken."""
    params = request.query_params
    twice = sorted({name for name in params if len(params.getlist(name)) > 1})
    if twice:
        raise RequestValidationError([{"type": "given_twice", "loc": ("query", name), "input": params.getlist(name),
                                       "msg": "must be given once"} for name in twice])
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
