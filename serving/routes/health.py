"""GET /healthz (the process answers) and GET /readyz (it can answer PSF queries)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from ..deps import ServerDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "no model is loaded"}})
def readyz(server: ServerDep) -> Any:
    registry = server.registry
    if not registry.ready:
        # a server started before training published anything becomes ready once a model appears
        registry.refresh()
    served = registry.served()
    if not served:
        return JSONResponse(status_code=503, content={"status": "not ready", "detail": registry.why_not_ready()},
                            headers={"Retry-After": "5"})
    return {"status": "ready", "models": served, "providers": registry.provider_names}
