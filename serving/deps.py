"""Dependencies shared by the routers: the registry and the optional API key check."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request

from .registry import Registry
from .settings import Settings, get_settings

SettingsDep = Annotated[Settings, Depends(get_settings)]


def get_registry(request: Request) -> Registry:
    return request.app.state.registry


RegistryDep = Annotated[Registry, Depends(get_registry)]


def require_api_key(
    settings: SettingsDep,
    x_api_key: Annotated[str | None, Header(description="required when the server has an API key")] = None,
) -> None:
    expected = settings.api_key
    if expected is None:
        return
    # compare_digest: the time taken must not hint how much of a guessed key was right
    if x_api_key is None or not secrets.compare_digest(x_api_key.encode(), expected.get_secret_value().encode()):
        what = "missing" if x_api_key is None else "wrong"
        raise HTTPException(status_code=401, detail=f"API key {what}: send it in the X-API-Key header")
