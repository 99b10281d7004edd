"""POST /geometry (where each condition's chief ray lands, its distortion and relative illumination) and
GET /distortion (the same on an nx x ny grid of ideal image points, for warping and shading an image).

Both read the model's geometry table (``models_store.geometry``); a version published before it existed
gets a 404 that says so. Positions are in the sensor frame of ``models_store.sensor``: millimetres from
the optical axis (+x right, +y up) and pixels of the model's sensor grid (column, row; (0, 0) = centre
of the top-left pixel).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from models_store import distortion_grid, image_geometry
from models_store.wire import GEOMETRY_VALUES

from ..deps import ServerDep, parse_query, query_parameters
from ..encoding import model_fields
from ..limits import check_size
from .params import MODEL_ERRORS, Conditions, ModelChoice, described

router = APIRouter(tags=["geometry"])

_VALUES = {
    "x_mm": "where the chief ray meets the sensor, x [mm] (+x right)",
    "y_mm": "where the chief ray meets the sensor, y [mm] (+y up)",
    "x_px": "the same point, sensor column [px]",
    "y_px": "the same point, sensor row [px] (rows grow downward)",
    "ideal_x_px": "the ideal (distortion-free) image point, column [px]",
    "ideal_y_px": "the ideal image point, row [px]",
    "distortion_px": "radial shift of the chief ray from the ideal point [px], > 0 outward",
    "illumination": "relative illumination (vignetting included), 1 on the axis at the middle of the trained band",
}


class GeometryAnswer(BaseModel):
    """One list per value, one entry per condition (GET /distortion: [ny][nx])."""

    model_config = ConfigDict(extra="allow")

    model: str
    version: int
    kernel_size: int
    pixel_pitch_um: float
    x_mm: list[Any] = Field(description=_VALUES["x_mm"])
    y_mm: list[Any] = Field(description=_VALUES["y_mm"])
    x_px: list[Any] = Field(description=_VALUES["x_px"])
    y_px: list[Any] = Field(description=_VALUES["y_px"])
    ideal_x_px: list[Any] = Field(description=_VALUES["ideal_x_px"])
    ideal_y_px: list[Any] = Field(description=_VALUES["ideal_y_px"])
    distortion_px: list[Any] = Field(description=_VALUES["distortion_px"])
    illumination: list[Any] = Field(description=_VALUES["illumination"])


class DistortionQuery(ModelChoice):
    """GET /distortion"""

    model_config = ConfigDict(extra="forbid")

    nx: int = Field(json_schema_extra={"minimum": 1}, description="grid points across (the tile centres of "
                    "GET /psf/grid: x = -1 + (2i + 1) / nx); nx * ny at most the server's grid limit")
    ny: int = Field(json_schema_extra={"minimum": 1}, description="grid points down (row 0 is the top, +y)")
    depth: float | None = described("depth")
    wavelength: float | None = described("wavelength")
    focus: float | None = described("focus")


def _answer(onnx: Any, values: dict[str, Any]) -> GeometryAnswer:
    return GeometryAnswer(**model_fields(onnx), **{name: values[name].tolist() for name in GEOMETRY_VALUES})


@router.post("/geometry", response_model=GeometryAnswer, responses=MODEL_ERRORS,
             summary="where each condition's chief ray lands, its distortion and the relative illumination")
async def post_geometry(body: Conditions, server: ServerDep) -> GeometryAnswer:
    check_size("conditions", body.rows(), server.settings.max_batch, "PSF_MAX_BATCH")
    onnx = await server.model(body.model, body.version)
    return _answer(onnx, image_geometry(onnx.manifest, **body.query()))


@router.get("/distortion", response_model=GeometryAnswer, responses=MODEL_ERRORS,
            openapi_extra=query_parameters(DistortionQuery),
            summary="chief-ray positions and relative illumination on an nx x ny grid, for warping an image")
async def get_distortion(request: Request, server: ServerDep) -> GeometryAnswer:
    q = parse_query(DistortionQuery, request)
    check_size("nx * ny", q.nx * q.ny, server.settings.max_grid, "PSF_MAX_GRID")
    onnx = await server.model(q.model, q.version)
    return _answer(onnx, distortion_grid(onnx.manifest, q.nx, q.ny, depth=q.depth, wavelength=q.wavelength,
                                         focus=q.focus))
