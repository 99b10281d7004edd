"""POST /latent (conditions -> prior mu, logvar) and POST /decode (latents + conditions -> PSFs)."""

from __future__ import annotations

from functools import partial

import numpy as np
from fastapi import APIRouter, Response
from pydantic import BaseModel, Field, field_validator

from models_store.engine import LATENT_LIMIT

from ..deps import ServerDep
from ..encoding import check_finite, model_fields, respond
from ..limits import check_size
from .params import MODEL_ERRORS, ArrayFormatQuery, Conditions, npy_responses, numbers_only

router = APIRouter(tags=["latent space"])


class LatentResponse(BaseModel):
    model: str
    version: int
    kernel_size: int
    pixel_pitch_um: float
    mu: list[list[float]] = Field(description="prior mean per condition, [N][L]; decoding it gives the served PSF")
    logvar: list[list[float]] = Field(description="prior log-variance per condition, [N][L]")


class DecodeRequest(Conditions):
    z: list[list[float]] = Field(description="latents, [N][L] (L = the model's latent_size); one row is "
                                 "used for every condition, one condition for every row; each value within "
                                 f"+-{LATENT_LIMIT:g}")

    _numbers = field_validator("z", mode="before")(numbers_only)


@router.post("/latent", response_model=LatentResponse, responses=MODEL_ERRORS,
             summary="the prior p(z | c) of each condition")
async def post_latent(body: Conditions, server: ServerDep) -> LatentResponse:
    rows = body.rows()
    check_size("conditions", rows, server.settings.max_batch, "PSF_MAX_BATCH")
    onnx = await server.model(body.model, body.version)
    mu, logvar = await server.batcher.run(rows, partial(onnx.latent, **body.query()))
    check_finite(onnx, np.concatenate([mu, logvar]))
    return LatentResponse(**model_fields(onnx), mu=mu.tolist(), logvar=logvar.tolist())


@router.post("/decode", responses=npy_responses("[N, k, k]"), summary="PSFs decoded from given latents")
async def post_decode(
    body: DecodeRequest,
    server: ServerDep,
    fmt: ArrayFormatQuery = "npy",
) -> Response:
    rows = max(body.rows(), len(body.z))
    check_size("conditions", rows, server.settings.max_batch, "PSF_MAX_BATCH")
    onnx = await server.model(body.model, body.version)
    psfs = await server.batcher.run(rows, partial(onnx.decode, body.z, **body.query()))
    return await respond(onnx, psfs, fmt, server.limits)
