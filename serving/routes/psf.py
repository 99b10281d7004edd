"""GET /psf (one PSF) and GET /psf/grid (PSFs at the centres of an nx x ny tiling of the sensor)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from ..deps import ServerDep, parse_query, query_parameters
from ..encoding import respond
from ..limits import check_size
from .params import GridQuery, PSFQuery, npy_responses

router = APIRouter(tags=["psf"])


@router.get("/psf", responses=npy_responses("[k, k]", png=True), openapi_extra=query_parameters(PSFQuery),
            summary="one PSF for one sensor position, object depth and wavelength")
async def get_psf(request: Request, server: ServerDep) -> Response:
    q = parse_query(PSFQuery, request)
    onnx = await server.model(q.model, q.version)
    key = ("psf", onnx.name, onnx.version, q.field, q.azimuth, q.x, q.y, q.depth, q.wavelength, q.focus)
    psf = server.cache.get(key)
    if psf is None:
        psf = server.cache.put(key, (await server.batcher.psf_query(onnx, q.query()))[0])
    return await respond(onnx, psf, q.fmt)


@router.get("/psf/grid", responses=npy_responses("[ny, nx, k, k]", png=True),
            openapi_extra=query_parameters(GridQuery),
            summary="PSFs at the centres of an nx x ny tiling of the sensor, for spatially varying rendering")
async def get_grid(request: Request, server: ServerDep) -> Response:
    q = parse_query(GridQuery, request)
    check_size("nx * ny", q.nx * q.ny, server.settings.max_grid, "PSF_MAX_GRID")
    onnx = await server.model(q.model, q.version)
    key = ("grid", onnx.name, onnx.version, q.nx, q.ny, q.depth, q.wavelength, q.focus)
    grid = server.cache.get(key)
    if grid is None:
        query = onnx.grid_query(q.nx, q.ny, depth=q.depth, wavelength=q.wavelength, focus=q.focus)
        psfs = await server.batcher.psf(onnx, *onnx.conditions(**query))
        grid = server.cache.put(key, psfs.reshape(q.ny, q.nx, onnx.kernel_size, onnx.kernel_size))
    return await respond(onnx, grid, q.fmt)
