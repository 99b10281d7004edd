"""GET /psf (one PSF) and GET /psf/grid (PSFs at the centres of an nx x ny tiling of the sensor)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from ..deps import BatcherDep, CacheDep, RegistryDep, SettingsDep, model_for
from ..encoding import Format, respond
from ..limits import check_size
from .params import ModelQuery, OptionalFloat, VersionQuery, npy_responses, q

router = APIRouter(tags=["psf"])


@router.get("/psf", responses=npy_responses("[k, k]", png=True),
            summary="one PSF for one sensor position, object depth and wavelength")
async def get_psf(
    registry: RegistryDep,
    batcher: BatcherDep,
    cache: CacheDep,
    field: Annotated[OptionalFloat, q("field")] = None,
    depth: Annotated[OptionalFloat, q("depth")] = None,
    wavelength: Annotated[OptionalFloat, q("wavelength")] = None,
    azimuth: Annotated[OptionalFloat, q("azimuth")] = None,
    x: Annotated[OptionalFloat, q("x")] = None,
    y: Annotated[OptionalFloat, q("y")] = None,
    focus: Annotated[OptionalFloat, q("focus")] = None,
    model: ModelQuery = None,
    version: VersionQuery = None,
    fmt: Annotated[Format, Query(alias="format", description="json, npy (float32 .npy bytes) or png (a "
                                 "preview for people)")] = "json",
) -> Response:
    onnx = await model_for(registry, model, version)
    key = ("psf", onnx.name, onnx.version, field, azimuth, x, y, depth, wavelength, focus)
    psf = cache.get(key)
    if psf is None:
        condition, az = onnx.conditions(field=field, azimuth=azimuth, x=x, y=y, depth=depth,
                                        wavelength=wavelength, focus=focus)
        psf = cache.put(key, (await batcher.psf(onnx, condition, az))[0])
    return await respond(onnx, psf, fmt)


@router.get("/psf/grid", responses=npy_responses("[ny, nx, k, k]", png=True),
            summary="PSFs at the centres of an nx x ny tiling of the sensor, for spatially varying rendering")
async def get_grid(
    registry: RegistryDep,
    batcher: BatcherDep,
    cache: CacheDep,
    settings: SettingsDep,
    nx: Annotated[int, Query(description="tiles across; tile i is centred at x = -1 + (2i + 1) / nx [1]")],
    ny: Annotated[int, Query(description="tiles down; tile j is centred at y = 1 - (2j + 1) / ny [1] "
                                         "(row 0 is the top, +y)")],
    depth: Annotated[OptionalFloat, q("depth")] = None,
    wavelength: Annotated[OptionalFloat, q("wavelength")] = None,
    focus: Annotated[OptionalFloat, q("focus")] = None,
    model: ModelQuery = None,
    version: VersionQuery = None,
    fmt: Annotated[Format, Query(alias="format", description="npy (float32 [ny, nx, k, k]), json, or png "
                                 "(a mosaic for people)")] = "npy",
) -> Response:
    check_size("nx * ny", nx * ny, settings.max_grid, "PSF_MAX_GRID")
    onnx = await model_for(registry, model, version)
    key = ("grid", onnx.name, onnx.version, nx, ny, depth, wavelength, focus)
    grid = cache.get(key)
    if grid is None:
        query = onnx.grid_query(nx, ny, depth=depth, wavelength=wavelength, focus=focus)
        condition, az = onnx.conditions(**query)
        psfs = await batcher.psf(onnx, condition, az)
        grid = cache.put(key, psfs.reshape(ny, nx, onnx.kernel_size, onnx.kernel_size))
    return await respond(onnx, grid, fmt)

