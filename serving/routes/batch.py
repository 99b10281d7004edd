"""POST /psf/batch: many conditions as columns -> [N, k, k] PSFs (npy by default)."""

from __future__ import annotations

import hashlib
from functools import partial

from fastapi import APIRouter, Response

from models_store import image_geometry
from models_store.wire import geometry_fields

from ..deps import ServerDep
from ..encoding import respond
from ..limits import check_size
from .params import ArrayFormatQuery, Conditions, DTypeQuery, GeometryQuery, npy_responses

router = APIRouter(tags=["psf"])


@router.post("/psf/batch", responses=npy_responses("[N, k, k]"),
             summary="PSFs for many conditions, given as columns (lists of equal length, or single numbers)")
async def post_batch(
    body: Conditions,
    server: ServerDep,
    fmt: ArrayFormatQuery = "npy",
    dtype: DTypeQuery = "float32",
    geometry: GeometryQuery = "false",
) -> Response:
    check_size("conditions", body.rows(), server.settings.max_batch, "PSF_MAX_BATCH")
    onnx = await server.model(body.model, body.version)
    condition, azimuth = onnx.conditions(**body.query())
    digest = hashlib.blake2b(condition.tobytes() + azimuth.tobytes(), digest_size=16).digest()
    key = ("batch", onnx.name, onnx.version, digest)
    psfs = server.cache.get(key)
    if psfs is None:
        psfs = await server.cache.compute(key, partial(server.batcher.psf, onnx, condition, azimuth))
    extra = geometry_fields(image_geometry(onnx.manifest, **body.query())) if geometry == "true" else None
    return await respond(onnx, psfs, fmt, server.limits, dtype=dtype, extra=extra)
