"""GET /psf: one PSF for one sensor position, object depth and wavelength."""

from __future__ import annotations

import io
from typing import Annotated, Literal

import numpy as np
from fastapi import APIRouter, HTTPException, Query, Response
from pydantic import BaseModel, Field

from ..deps import RegistryDep

router = APIRouter(tags=["psf"])

NPY_MEDIA_TYPE = "application/x-npy"
_RANGES = "within the model's trained range (see GET /models/{name})"


class PSFResponse(BaseModel):
    model: str
    version: int
    kernel_size: int
    pixel_pitch_um: float = Field(description="sensor pixel pitch the kernel is sampled at [um]")
    psf: list[list[float]] = Field(description="k x k, non-negative, sums to 1; row 0 is image +y")


def _q(description: str) -> object:
    return Query(description=description)


@router.get(
    "/psf",
    response_model=PSFResponse,
    responses={200: {"content": {NPY_MEDIA_TYPE: {}}, "description": "JSON, or with format=npy a float32 "
                     "[k, k] .npy file with headers X-Model, X-Model-Version, X-Kernel-Size, X-Pixel-Pitch-Um"},
               404: {"description": "unknown model or version"},
               422: {"description": "a parameter is missing, not a number, or outside the trained range"}},
)
def get_psf(
    registry: RegistryDep,
    field: Annotated[float | None, _q("image height as a fraction of the sensor half-diagonal, 0 (on axis) "
                                      f"to 1 (corner) [1]; give it or x and y; {_RANGES}")] = None,
    depth: Annotated[float | None, _q(f"object distance [m], {_RANGES}; required")] = None,
    wavelength: Annotated[float | None, _q(f"wavelength [nm], {_RANGES}; required")] = None,
    azimuth: Annotated[float | None, _q("direction of the field point [deg], 0 = +x, counter-clockwise; "
                                        "default 90 (+y meridian); only with field")] = None,
    x: Annotated[float | None, _q("horizontal sensor position as a fraction of the half-width, -1..1 [1]; "
                                  "with y, instead of field")] = None,
    y: Annotated[float | None, _q("vertical sensor position as a fraction of the half-height, -1..1 [1]; "
                                  "with x, instead of field")] = None,
    focus: Annotated[float | None, _q("focus distance [m]; only for models trained over a focus range, "
                                      f"{_RANGES}")] = None,
    model: Annotated[str | None, _q("model name (default: the server's default model)")] = None,
    version: Annotated[str | None, _q("version number or alias such as prod (default: latest)")] = None,
    fmt: Annotated[Literal["json", "npy"],
                   Query(alias="format", description="json, or npy (float32 .npy bytes)")] = "json",
) -> PSFResponse | Response:
    onnx = registry.get(model, version)
    psf = onnx.psf(field=field, azimuth=azimuth, x=x, y=y, depth=depth, wavelength=wavelength, focus=focus)[0]
    if not np.isfinite(psf).all():  # a model bug, not the caller's: say so rather than send NaN
        raise HTTPException(status_code=500, detail=f"{onnx.name}@{onnx.version} produced non-finite values")
    manifest = onnx.manifest
    if fmt == "npy":
        buffer = io.BytesIO()
        np.save(buffer, np.ascontiguousarray(psf, dtype=np.float32), allow_pickle=False)
        headers = {
            "X-Model": onnx.name,
            "X-Model-Version": str(onnx.version),
            "X-Kernel-Size": str(manifest.kernel_size),
            "X-Pixel-Pitch-Um": repr(manifest.lens.pixel_pitch_um),
        }
        return Response(buffer.getvalue(), media_type=NPY_MEDIA_TYPE, headers=headers)
    return PSFResponse(model=onnx.name, version=onnx.version, kernel_size=manifest.kernel_size,
                       pixel_pitch_um=manifest.lens.pixel_pitch_um, psf=psf.tolist())
