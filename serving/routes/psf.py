"""GET /psf (one PSF) and GET /psf/grid (PSFs at the centres of an nx x ny tiling of the sensor).

GET /psf is answered by two callers of the same functions: the route below, and, in front of
FastAPI for plain queries, the fast path (serving/fastpath.py). Both read the query with
:func:`plain_psf_request` (the route falls back to the pydantic model :class:`PSFQuery`, which names
what is wrong), compute or look up the PSF with :func:`psf_answer`, and encode it with
``encoding.encode``; so a change to any of them reaches both.
"""

from __future__ import annotations

from typing import NamedTuple
from urllib.parse import unquote_plus

import numpy as np
from fastapi import APIRouter, Request, Response

from models_store.engine import OnnxModel
from models_store.wire import DTYPES, DType

from ..deps import Server, ServerDep, parse_query, query_parameters
from ..encoding import Format, respond
from ..limits import check_size
from .params import COLUMNS, GridQuery, PSFQuery, npy_responses

router = APIRouter(tags=["psf"])

Query = dict[str, float | None]
_NAMES = frozenset((*COLUMNS, "model", "version", "format", "dtype"))
_FORMATS = frozenset(("json", "npy", "png"))


class PSFRequest(NamedTuple):
    """A GET /psf query: every condition column (None where not given), the model, the answer's form."""

    query: Query
    model: str | None = None
    version: str | None = None
    fmt: Format = "json"
    dtype: DType = "float32"


def _number(text: str) -> float | None:
    if "_" in text:  # 1_0: unusual, so pydantic judges it (it, too, reads it as 10)
        return None
    try:
        return float(text)
    except ValueError:
        return None


def plain_psf_request(raw: bytes) -> PSFRequest | None:
    """``field=0.5&depth=5&...`` read without pydantic, or None when anything is unusual: a name not
    known or given twice, a value that is not a number or an allowed choice (:class:`PSFQuery` then
    says what was wrong). Missing or out-of-range values are for the model's ranges to judge."""
    params: dict[str, str] = {}
    for part in raw.decode("latin-1").split("&"):
        if not part:
            continue
        name, eq, value = part.partition("=")
        if "%" in part or "+" in part:
            name, value = unquote_plus(name), unquote_plus(value)
        if not eq or name not in _NAMES or name in params:
            return None
        params[name] = value
    fmt, dtype = params.pop("format", "json"), params.pop("dtype", "float32")
    if fmt not in _FORMATS or dtype not in DTYPES:
        return None
    model, version = params.pop("model", None), params.pop("version", None)
    query: Query = dict.fromkeys(COLUMNS)
    for key, text in params.items():
        if (number := _number(text)) is None:
            return None
        query[key] = number
    return PSFRequest(query, model, version, fmt, dtype)  # type: ignore[arg-type]


def psf_request(request: Request) -> PSFRequest:
    """The query of ``request``; a 422 naming the parameter when it is not a valid one."""
    plain = plain_psf_request(request.scope["query_string"])
    if plain is not None:
        return plain
    q = parse_query(PSFQuery, request)  # raises the 422 the plain reading could not word
    version = None if q.version is None else str(q.version)
    return PSFRequest(q.query(), q.model, version, q.fmt, q.dtype)


async def psf_answer(server: Server, onnx: OnnxModel, query: Query) -> np.ndarray:
    """The [k, k] PSF of one query: from the answer cache, else computed through the micro-batcher.

    The cache holds float32 arrays only (a float16 answer is made from one when encoding), so the two
    dtypes share an entry and cannot be served for one another."""
    key = ("psf", onnx.name, onnx.version, *query.values())
    psf = server.cache.get(key)
    if psf is None:
        psf = server.cache.put(key, (await server.batcher.psf_query(onnx, query))[0])
    return psf


@router.get("/psf", responses=npy_responses("[k, k]", png=True), openapi_extra=query_parameters(PSFQuery),
            summary="one PSF for one sensor position, object depth and wavelength")
async def get_psf(request: Request, server: ServerDep) -> Response:
    q = psf_request(request)
    onnx = await server.model(q.model, q.version)
    psf = await psf_answer(server, onnx, q.query)
    return await respond(onnx, psf, q.fmt, server.limits, dtype=q.dtype)


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
    return await respond(onnx, grid, q.fmt, server.limits, dtype=q.dtype)
