"""Dependencies shared by the routers: the server's parts, model lookup, and the optional API key.

All are ``async def``: FastAPI runs a plain ``def`` dependency in its thread pool, a hop that costs
more than the rest of a cached PSF answer.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request
from starlette.concurrency import run_in_threadpool

from models_store.runtime import OnnxModel

from .batcher import Batcher
from .cache import AnswerCache
from .metrics import Metrics
from .registry import Registry
from .settings import Settings


async def get_app_settings(request: Request) -> Settings:
    # From the app, not a dependency override: FastAPI re-analyses an overridden dependency's
    # signature on every request (milliseconds). create_app(settings) is how tests choose settings.
    return request.app.state.settings


SettingsDep = Annotated[Settings, Depends(get_app_settings)]


async def get_registry(request: Request) -> Registry:
    return request.app.state.registry


async def get_batcher(request: Request) -> Batcher:
    return request.app.state.batcher


async def get_cache(request: Request) -> AnswerCache:
    return request.app.state.cache


async def get_metrics(request: Request) -> Metrics:
    return request.app.state.metrics


RegistryDep = Annotated[Registry, Depends(get_registry)]
BatcherDep = Annotated[Batcher, Depends(get_batcher)]
CacheDep = Annotated[AnswerCache, Depends(get_cache)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]


async def model_for(registry: Registry, model: str | None, version: str | None) -> OnnxModel:
    """The model a query names, without blocking the event loop when it has to be loaded first."""
    onnx = registry.get(model, version, block=False)
    if onnx is None:
        onnx = await run_in_threadpool(registry.get, model, version)
    assert onnx is not None
    return onnx


async def require_api_key(
    settings: SettingsDep,
    x_api_key: Annotated[str | None, Header(description="required when the server has an API key")] = None,
) -> None:
    expected = settings.api_key
    if expected is None:
        return
    # compare_digest: the time taken must not hint how much of a guessed key was right. The key is
    # never logged: uvicorn's access log holds only the request line.
    if x_api_key is None or not hmac.compare_digest(x_api_key.encode(), expected.get_secret_value().encode()):
        what = "missing" if x_api_key is None else "wrong"
        raise HTTPException(status_code=401, detail=f"API key {what}: send it in the X-API-Key header")
