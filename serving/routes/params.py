"""Request parameters shared by the routes, described once with their units and ranges (OpenAPI)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Query
from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from models_store.wire import (
    DEFAULT_DTYPE,
    GEOMETRY_FIELDS,
    GEOMETRY_HEADERS,
    LIMIT_HEADERS,
    MODEL_HEADERS,
    NPY_MEDIA_TYPE,
    QUERY_COLUMNS,
    DType,
)

from ..encoding import ArrayFormat, Format

RANGES = "within the model's trained range (see GET /models/{name})"
GeometryFlag = Literal["true", "false"]
GEOMETRY_FLAG: Any = Field(default="false", description="true: the answer also carries where the chief ray "
                           "lands, its distortion and the relative illumination there (headers "
                           f"{', '.join(GEOMETRY_HEADERS)}; JSON fields {', '.join(GEOMETRY_FIELDS)}); about 0.5 ms "
                           "more per answer")
DESCRIPTIONS = {
    "field": "image height as a fraction of the sensor half-diagonal, 0 (on axis) to 1 (corner) [1]; "
             f"give it or x and y; {RANGES}",
    "azimuth": "direction of the field point [deg], 0 = +x, counter-clockwise; default 90 (+y meridian); "
               "only with field",
    "x": "horizontal sensor position as a fraction of the half-width, -1..1 [1]; with y, instead of field",
    "y": "vertical sensor position as a fraction of the half-height, -1..1 [1]; with x, instead of field",
    "x_mm": "horizontal sensor position [mm] from the optical axis (+x right); with y_mm, instead of field",
    "y_mm": "vertical sensor position [mm] from the optical axis (+y up); with x_mm, instead of field",
    "px": "sensor column [px] on the model's pixel grid, 0 = centre of the leftmost pixel; with py, instead of field",
    "py": "sensor row [px] on the model's pixel grid, 0 = centre of the top pixel (rows grow downward); with px",
    "depth": f"object distance [m], {RANGES}; required",
    "wavelength": f"wavelength [nm], {RANGES}; required",
    "focus": f"focus distance [m]; only for models trained over a focus range, {RANGES}",
    "model": "model name (default: the server's default model)",
    "version": "version number or alias such as prod (default: latest)",
}
COLUMNS = QUERY_COLUMNS
# the bound follows from float16's 11 significant bits; the measured figures: README.md, "float16 answers"
FLOAT16_BOUND = ("float16 differs from the float32 answer by at most 2^-12 = 2.4e-4 per value (2^-11 = 0.049 % "
                 "of it for values >= 2^-14), so by at most 4.9e-4 in relative L1 per kernel; measured on "
                 "cooke-quickstart: max 1.2e-4 per value, relative L1 3.2e-4 at most (1.8e-4 on average), "
                 "a kernel's sum 1 within 2.9e-4, far below the model's own error")
DTYPE_DESCRIPTION = (f"float32 (the default) or float16 (half the bytes): the values' type in npy and json answers "
                     f"(png previews are unchanged); {FLOAT16_BOUND}")


ArrayFormatQuery = Annotated[ArrayFormat, Query(alias="format", description="npy (float32 .npy bytes, the "
                                                "default) or json")]
_FORMATS = "json, npy (.npy bytes, float32 unless dtype says otherwise) or png (a preview for people)"
DTypeQuery = Annotated[DType, Query(description=DTYPE_DESCRIPTION)]
GeometryQuery = Annotated[GeometryFlag, Query(description="true: JSON answers also carry each PSF's chief-ray "
                                              "position, distortion and relative illumination (lists)")]


def _dtype() -> Any:
    return Field(default=DEFAULT_DTYPE, description=DTYPE_DESCRIPTION)


def _not_null(value: Any) -> Any:
    """A condition is a number or left out; JSON's null is refused rather than read as 'left out'."""
    if value is None:
        raise PydanticCustomError("not_null", "must be a number; leave the parameter out instead of null")
    return numbers_only(value)


def _has_bool(value: Any) -> bool:
    return isinstance(value, bool) or (isinstance(value, list) and any(_has_bool(v) for v in value))


def numbers_only(value: Any) -> Any:
    """JSON's true and false are not numbers (pydantic would read them as 1 and 0)."""
    if _has_bool(value):
        raise PydanticCustomError("bool_not_number", "must be numbers, not true or false")
    return value


def described(name: str) -> Any:
    return Field(default=None, description=DESCRIPTIONS[name])


class ModelChoice(BaseModel):
    """Which model and version answer (every route takes them)."""

    model: str | None = described("model")
    version: str | int | None = described("version")


class Position(BaseModel):
    """One condition: a sensor position, depth, wavelength (and focus), as scalars."""

    field: float | None = described("field")
    azimuth: float | None = described("azimuth")
    x: float | None = described("x")
    y: float | None = described("y")
    x_mm: float | None = described("x_mm")
    y_mm: float | None = described("y_mm")
    px: float | None = described("px")
    py: float | None = described("py")
    depth: float | None = described("depth")
    wavelength: float | None = described("wavelength")
    focus: float | None = described("focus")

    _given = field_validator(*COLUMNS, mode="before")(_not_null)

    def query(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in COLUMNS}


class PSFQuery(Position, ModelChoice):
    """GET /psf"""

    # a misspelt optional parameter (azimtuh=30) must not be answered as if it were absent
    model_config = ConfigDict(extra="forbid")

    fmt: Format = Field(default="json", alias="format", description=_FORMATS + "; default json")
    dtype: DType = _dtype()
    geometry: GeometryFlag = GEOMETRY_FLAG


class GridQuery(ModelChoice):
    """GET /psf/grid"""

    model_config = ConfigDict(extra="forbid")

    # minimum stated for OpenAPI; the check itself is models_store's (its message names the value as given)
    nx: int = Field(json_schema_extra={"minimum": 1},
                    description="tiles across; tile i is centred at x = -1 + (2i + 1) / nx [1]; nx * ny "
                    "at most the server's limit (413 above)")
    ny: int = Field(json_schema_extra={"minimum": 1},
                    description="tiles down; tile j is centred at y = 1 - (2j + 1) / ny [1] (row 0 is the "
                    "top, +y)")
    depth: float | None = described("depth")
    wavelength: float | None = described("wavelength")
    focus: float | None = described("focus")
    fmt: Format = Field(default="npy", alias="format", description=_FORMATS + "; default npy [ny, nx, k, k]")
    geometry: GeometryFlag = GEOMETRY_FLAG
    dtype: DType = _dtype()


# the errors of every route that computes with a model (their bodies: serving/openapi.py)
MODEL_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "unknown model or version"},
    413: {"description": "more conditions, cells, steps or body bytes than this server's limits"},
    422: {"description": "a parameter is missing, not a number, or outside the trained range"},
    503: {"description": "overloaded (see Retry-After) or the model cannot be loaded"},
}


_LIMITS_MEANING = {"max_batch": "most conditions in one /psf/batch, /latent or /decode",
                   "max_grid": "most cells (nx * ny) in one /psf/grid", "max_steps": "most steps of one /interpolate",
                   "max_body_bytes": "largest request body [bytes]"}
# every array answer, every 413 and GET /models carry them (models_store.wire.Limits)
LIMIT_HEADERS_DOC = {header: {"description": f"this server's limit: {_LIMITS_MEANING[name]}",
                              "schema": {"type": "string", "pattern": "^[0-9]+$"}}
                     for name, header in LIMIT_HEADERS.items()}


def npy_responses(shape: str, *, png: bool = False) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` of a route answering arrays."""
    content: dict[str, Any] = {NPY_MEDIA_TYPE: {}, "application/json": {"schema": _JSON_ANSWER}}
    if png:
        content["image/png"] = {}
    return {
        200: {"content": content, "description": f"npy: a {shape} .npy file (float32, or float16 with dtype=float16 "
              f"where offered) with headers {', '.join(MODEL_HEADERS)}; json: {{model, version, kernel_size, "
              "pixel_pitch_um, psf}" + ("; png: a preview image (each kernel scaled to its peak)" if png else "")
              + f". Every answer carries this server's limits in headers {', '.join(LIMIT_HEADERS.values())}",
              "headers": LIMIT_HEADERS_DOC},
        **MODEL_ERRORS,
    }


_JSON_ANSWER = {
    "type": "object", "required": ["model", "version", "kernel_size", "pixel_pitch_um", "psf"],
    "properties": {"model": {"type": "string"}, "version": {"type": "integer"}, "kernel_size": {"type": "integer"},
                   "pixel_pitch_um": {"type": "number"},
                   "psf": {"type": "array", "description": "the PSFs as nested lists, shaped as the npy answer"}},
}


def _column(name: str) -> Any:
    return Field(default=None, description=DESCRIPTIONS[name] + "; a list (one value per condition) or one "
                 "number for every condition")


Column = list[float] | float | None


class Conditions(ModelChoice):
    """Conditions as columns: lists of equal length, or single numbers shared by every row."""

    model_config = ConfigDict(extra="forbid")

    field: Column = _column("field")
    azimuth: Column = _column("azimuth")
    x: Column = _column("x")
    y: Column = _column("y")
    x_mm: Column = _column("x_mm")
    y_mm: Column = _column("y_mm")
    px: Column = _column("px")
    py: Column = _column("py")
    depth: Column = _column("depth")
    wavelength: Column = _column("wavelength")
    focus: Column = _column("focus")

    _given = field_validator(*COLUMNS, mode="before")(_not_null)

    def query(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in COLUMNS}

    def rows(self) -> int:
        return max((len(v) if isinstance(v, list) else 1 for v in self.query().values() if v is not None), default=1)
