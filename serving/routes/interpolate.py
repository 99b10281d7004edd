"""POST /interpolate: PSFs along the latent path between two conditions (or measured PSFs)."""

from __future__ import annotations

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field

from models_store.interpolation import Method

from ..deps import ServerDep
from ..encoding import respond
from ..limits import check_size
from .params import DESCRIPTIONS, ArrayFormatQuery, npy_responses

router = APIRouter(tags=["latent space"])


def _d(name: str) -> object:
    return Field(default=None, description=DESCRIPTIONS[name])


class Endpoint(BaseModel):
    """One end of the path: a condition, optionally with a measured PSF at it."""

    model_config = ConfigDict(extra="forbid")

    field: float | None = _d("field")
    azimuth: float | None = _d("azimuth")
    x: float | None = _d("x")
    y: float | None = _d("y")
    depth: float | None = _d("depth")
    wavelength: float | None = _d("wavelength")
    focus: float | None = _d("focus")
    psf: list[list[float]] | None = Field(
        default=None, description="a measured k x k PSF at this condition (row 0 = image +y, as served); its "
        "encoder mean is used as this end's latent instead of the prior mean")


class InterpolateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start: Endpoint
    end: Endpoint
    steps: int = Field(description="points on the path, both ends included (>= 2; at most the server's limit)")
    method: Method = Field(default="linear", description="linear, or slerp (great circle) in latent space")
    model: str | None = Field(default=None, description=DESCRIPTIONS["model"])
    version: str | int | None = Field(default=None, description=DESCRIPTIONS["version"])


@router.post("/interpolate", responses=npy_responses("[steps, k, k]"),
             summary="PSFs along the latent path between two ends; json also returns the path's conditions")
async def post_interpolate(
    body: InterpolateRequest,
    server: ServerDep,
    fmt: ArrayFormatQuery = "npy",
) -> Response:
    check_size("steps", body.steps, server.settings.max_steps, "PSF_MAX_STEPS")
    onnx = await server.model(body.model, body.version)
    start, end = body.start.model_dump(exclude_none=True), body.end.model_dump(exclude_none=True)
    psfs, path = await server.batcher.run(body.steps, onnx.interpolate, start, end, body.steps, body.method)
    extra = {"method": body.method, "steps": body.steps,
             "conditions": {name: column.tolist() for name, column in path.items()}}
    return await respond(onnx, psfs, fmt, extra=extra)
