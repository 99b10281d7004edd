"""POST /interpolate: PSFs along the latent path between two conditions (or measured PSFs)."""

from __future__ import annotations

from fastapi import APIRouter, Response
from pydantic import ConfigDict, Field, field_validator

from models_store.interpolation import Method

from ..deps import ServerDep
from ..encoding import respond
from ..limits import check_size
from .params import ArrayFormatQuery, ModelChoice, Position, npy_responses, numbers_only

router = APIRouter(tags=["latent space"])


class Endpoint(Position):
    """One end of the path: a condition, optionally with a measured PSF at it."""

    model_config = ConfigDict(extra="forbid")

    psf: list[list[float]] | None = Field(
        default=None, description="a measured k x k PSF at this condition (row 0 = image +y, as served); its "
        "encoder mean is used as this end's latent instead of the prior mean")

    _numbers = field_validator("psf", mode="before")(numbers_only)


class InterpolateRequest(ModelChoice):
    model_config = ConfigDict(extra="forbid")

    start: Endpoint
    end: Endpoint
    steps: int = Field(description="points on the path, both ends included (>= 2; at most the server's limit, "
                       "413 above)", json_schema_extra={"minimum": 2})
    method: Method = Field(default="linear", description="linear, or slerp (great circle) in latent space")


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
    return await respond(onnx, psfs, fmt, server.limits, extra=extra)
