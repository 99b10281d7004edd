"""GET /psf (one PSF) and GET /psf/grid (PSFs at the centres of an nx x ny tiling of the sensor).

GET /psf is answered by two callers of the same functions: the route below, and, in front of
FastAPI for plain queries, the fast path (serving/fastpath.py). Both read the query with the one
parser :func:`read_psf_query` (the fast path hands every query it refuses to the route, which words
the 422), compute or look up the PSF with :func:`psf_answer`, and encode it with
``encoding.encode``; so a change to any of them reaches both. :class:`PSFQuery` describes the
parameters in OpenAPI, and the parser takes its names from it.
"""

from __future__ import annotations

from typing import Any, NamedTuple, get_args
from urllib.parse import unquote_plus

import numpy as np
from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError

from models_store import distortion_grid, image_geometry
from models_store.engine import OnnxModel
from models_store.wire import DTYPES, DType, geometry_fields, geometry_headers

from ..deps import Server, ServerDep, parse_query, query_parameters
from ..encoding import Format, respond
from ..limits import check_size
from .params import COLUMNS, GridQuery, PSFQuery, npy_responses

router = APIRouter(tags=["psf"])

Query = dict[str, float | None]
_NAMES = frozenset(field.alias or name for name, field in PSFQuery.model_fields.items())
_CHOICES: dict[str, tuple[str, ...]] = {"format": get_args(Format), "dtype": DTYPES, "geometry": ("true", "false")}


class PSFRequest(NamedTuple):
    """A GET /psf query: every condition column (None where not given), the model, the answer's form."""

    query: Query
    model: str | None = None
    version: str | None = None
    fmt: Format = "json"
    dtype: DType = "float32"
    geometry: bool = False  # the chief ray, distortion and illumination too (the route answers it)


class QueryError(ValueError):
    """A GET /psf query string that is not valid: ``errors`` as FastAPI words them (type, loc, msg, input)."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{e['loc'][-1]}: {e['msg']}" for e in errors))


def _error(kind: str, name: str, value: Any, msg: str) -> dict[str, Any]:
    return {"type": kind, "loc": ("query", name), "input": value, "msg": msg}


def _pairs(raw: bytes) -> list[tuple[str, str]]:
    pairs = []
    for part in raw.decode("latin-1").split("&"):
        if part:
            name, _, value = part.partition("=")
            if "%" in part or "+" in part:
                name, value = unquote_plus(name), unquote_plus(value)
            pairs.append((name, value))
    return pairs


def read_psf_query(raw: bytes) -> PSFRequest:
    """``field=0.5&depth=5&...`` -> :class:`PSFRequest`; :class:`QueryError` naming every parameter that
    is given twice, unknown, not a number or not an allowed choice. Missing or out-of-range values are
    for the model's ranges to judge (``models_store.conditions``)."""
    pairs = _pairs(raw)
    params = dict(pairs)
    if len(params) < len(pairs):  # one of two values would be taken silently
        values = {name: [v for n, v in pairs if n == name] for name in params}
        raise QueryError([_error("given_twice", name, values[name], "must be given once")
                          for name in sorted(params) if len(values[name]) > 1])
    errors, query, choices = [], dict.fromkeys(COLUMNS), {}
    for name, text in params.items():
        if name not in _NAMES:
            errors.append(_error("extra_forbidden", name, text, "Extra inputs are not permitted"))
        elif name in _CHOICES:
            allowed = _CHOICES[name]
            if text not in allowed:
                listed = " or ".join((", ".join(map(repr, allowed[:-1])), repr(allowed[-1])))
                errors.append(_error("literal_error", name, text, f"Input should be {listed}"))
            choices[name] = text
        elif name in query:
            try:
                query[name] = float(text)  # as pydantic reads it: inf and nan too, for the ranges to refuse
            except ValueError:
                errors.append(_error("float_parsing", name, text, "Input should be a valid number"))
    if errors:
        raise QueryError(errors)
    return PSFRequest(query, params.get("model"), params.get("version"), choices.get("format", "json"),  # type: ignore[arg-type]
                      choices.get("dtype", "float32"), choices.get("geometry") == "true")


def plain_psf_request(raw: bytes) -> PSFRequest | None:
    """:func:`read_psf_query`, or None when the query is not valid (the fast path's reading)."""
    try:
        return read_psf_query(raw)
    except QueryError:
        return None


def psf_request(request: Request) -> PSFRequest:
    """The query of ``request``; a 422 naming every parameter that is not valid."""
    try:
        return read_psf_query(request.scope["query_string"])
    except QueryError as exc:
        raise RequestValidationError(exc.errors) from None


async def psf_answer(server: Server, onnx: OnnxModel, query: Query) -> np.ndarray:
    """The [k, k] PSF of one query: from the answer cache, else computed through the micro-batcher.

    The cache holds float32 arrays only (a float16 answer is made from one when encoding), so the two
    dtypes share an entry and cannot be served for one another."""
    key = ("psf", onnx.name, onnx.version, *query.values())
    psf = server.cache.get(key)
    if psf is None:
        async def compute() -> np.ndarray:
            return (await server.batcher.psf_query(onnx, query))[0]

        psf = await server.cache.compute(key, compute)
    return psf


@router.get("/psf", responses=npy_responses("[k, k]", png=True), openapi_extra=query_parameters(PSFQuery),
            summary="one PSF for one sensor position, object depth and wavelength")
async def get_psf(request: Request, server: ServerDep) -> Response:
    q = psf_request(request)
    onnx = await server.model(q.model, q.version)
    psf = await psf_answer(server, onnx, q.query)
    if not q.geometry:
        return await respond(onnx, psf, q.fmt, server.limits, dtype=q.dtype)
    where = image_geometry(onnx.manifest, **q.query)
    response = await respond(onnx, psf, q.fmt, server.limits, dtype=q.dtype, extra=geometry_fields(where, 0))
    response.headers.update(geometry_headers(where))
    return response


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
        async def compute() -> np.ndarray:
            query = onnx.grid_query(q.nx, q.ny, depth=q.depth, wavelength=q.wavelength, focus=q.focus)
            psfs = await server.batcher.psf(onnx, *onnx.conditions(**query))
            return psfs.reshape(q.ny, q.nx, onnx.kernel_size, onnx.kernel_size)

        grid = await server.cache.compute(key, compute)
    extra = None
    if q.geometry == "true":
        extra = geometry_fields(distortion_grid(onnx.manifest, q.nx, q.ny, depth=q.depth, wavelength=q.wavelength,
                                                focus=q.focus))
    return await respond(onnx, grid, q.fmt, server.limits, dtype=q.dtype, extra=extra)
