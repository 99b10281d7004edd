"""GET /models and GET /models/{name}: what the store holds and what each model was trained on."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response
from fastapi.responses import JSONResponse

from models_store import Manifest, StoreError

from ..deps import ServerDep
from ..versions import ModelUnavailable
from .params import LIMIT_HEADERS_DOC, MODEL_ERRORS

router = APIRouter(tags=["models"])


def _summary(manifest: Manifest) -> dict[str, Any]:
    """The parts of a manifest a caller needs to form queries (the full one is at /models/{name})."""
    # through pydantic's JSON so NaN metrics become null (Starlette's encoder refuses NaN)
    data = json.loads(manifest.model_dump_json())
    lens = data["lens"]
    return {
        **{key: data[key] for key in ("version", "created", "kernel_size", "latent_size", "symmetry",
                                      "conditions", "evaluation")},
        "lens": {key: lens[key] for key in ("file", "focal_length_mm", "f_number", "pixel_pitch_um",
                                            "sensor_size_mm")},
    }


@router.get("/models", summary="models, versions, aliases, a summary of each latest manifest, and the limits",
            description="Each entry's `limits` are this server's request limits (the same for every model: "
            "conditions per batch, grid cells, interpolation steps, body bytes); the answer's headers "
            "carry them too, as every array answer's do.",
            responses={200: {"description": "one entry per model", "headers": LIMIT_HEADERS_DOC, "content": {
                "application/json": {"schema": {"type": "array", "items": {"type": "object"}}}}}})
def list_models(server: ServerDep) -> JSONResponse:
    store, served = server.registry.store, server.registry.served()
    out = []
    for name in store.models():
        entry: dict[str, Any] = {"name": name, "versions": store.versions(name), "aliases": store.aliases(name),
                                 "served_version": served.get(name), "limits": server.limits.as_dict()}
        try:  # listing must not hash every file; loading does that
            entry["latest"] = _summary(store.manifest(name, verify=False))
        except StoreError as exc:
            entry["latest"], entry["error"] = None, str(exc)
        out.append(entry)
    return JSONResponse(out, headers=server.limits.headers())


@router.get("/models/{name}", summary="the full manifest of one version, including its evaluation card",
            responses={404: MODEL_ERRORS[404], 422: {"description": "a name or alias that cannot exist"},
                       503: {"description": "the manifest on disk cannot be read"}})
def get_model(
    server: ServerDep,
    name: Annotated[str, Path(description="model name")],
    version: Annotated[str | None, Query(description="version number or alias (default: latest)")] = None,
) -> Response:
    registry = server.registry
    name = registry.model_name(name)
    number = registry.version_number(name, version)
    try:
        manifest = registry.store.manifest(name, number, verify=False)
    except StoreError as exc:  # unreadable manifest on disk: the server's problem, not the caller's
        raise ModelUnavailable(str(exc)) from exc
    # pydantic writes the JSON itself (NaN metrics become null, which Starlette's encoder would refuse)
    return Response(manifest.model_dump_json(), media_type="application/json")
