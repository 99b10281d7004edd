"""The Open Inference Protocol v2 (KServe v2, as Triton speaks it) over the same engine as /psf.

Each graph of each stored model is one v2 model, ``<name>-<role>`` (see ``models_store.triton``):
``ci-psf`` takes ``condition [N, C]`` and gives ``psf [N, k, k]`` in the model's frame, exactly as a
Triton server given ``python -m models_store export-triton`` answers. Requests go through the
micro-batcher, the size and queue limits, the API key and the metrics like every other route, and
conditions outside the trained ranges are refused (400) with the column, the value and the range.

Refusals are v2 ``{"error": ...}`` bodies: 404 for a name that is not ``<model>-<graph>`` or a model or
version the store does not hold, 400 for a malformed request or a version that is not a number (v2
versions are numbers; aliases are for the PSF API), 413 over a size limit, 503 when the model cannot
be served or the queue is full (with Retry-After). The OpenAPI document states these (serving/openapi.py).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Path, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from models_store import NAME_PATTERN, ConditionError
from models_store.conditions import DEFAULT_AZIMUTH, check_condition_matrix
from models_store.engine import OnnxModel
from models_store.manifest import GRAPH_ROLES
from models_store.triton import PLATFORM, model_config, split_v2_name, tensor_specs

from ..deps import Server, ServerDep
from ..encoding import check_finite
from ..limits import LimitExceeded, Overloaded, check_size
from ..v2_codec import HEADER_LENGTH, V2Error, encode_response, parse_request
from ..versions import InvalidReference, ModelNotFound, ModelUnavailable

health_router = APIRouter(tags=["open inference protocol v2"])
router = APIRouter(tags=["open inference protocol v2"])
SERVER_NAME = "psf-surrogate"
EXTENSIONS = ["binary_tensor_data", "model_configuration"]
# exactly the names split_v2_name splits into a storable model name and a graph role
V2_NAME_PATTERN = rf"^{NAME_PATTERN.strip('^$')}-({'|'.join(GRAPH_ROLES)})$"
V2_VERSION_PATTERN = r"^[0-9]+$"
_STATUS = {ConditionError: 400, InvalidReference: 400, V2Error: 400, ModelNotFound: 404, LimitExceeded: 413,
           ModelUnavailable: 503, Overloaded: 503}


class V2ErrorBody(BaseModel):
    """The body of every refusal on the v2 routes, as the protocol has it."""

    error: str = Field(description="what was wrong, the value, and what is allowed")


Name = Annotated[str, Path(description="`<model>-<graph>`, graph one of " + ", ".join(GRAPH_ROLES) + " (e.g. ci-psf)",
                           json_schema_extra={"pattern": V2_NAME_PATTERN})]
Version = Annotated[str, Path(description="a version number of the model (aliases are for the PSF API)",
                              json_schema_extra={"pattern": V2_VERSION_PATTERN})]

_REFUSED = {"model": V2ErrorBody}
_NOT_FOUND = {404: {**_REFUSED, "description": "the name is not <model>-<graph>, or the store holds no such "
                                               "model or version"},
              400: {**_REFUSED, "description": "a version that is not a number, or a model name that cannot exist"},
              503: {**_REFUSED, "description": "the model cannot be served (files that do not load)"}}
_INFER = {**_NOT_FOUND,
          400: {**_REFUSED, "description": "a request the protocol or the graph refuses: JSON, tensor names, "
                                           "shapes, datatypes, conditions outside the trained ranges"},
          413: {"description": 'over a size limit: more batch rows than PSF_MAX_BATCH (an {"error"} body), or '
                               'a body over PSF_MAX_BODY_MB (a {"detail"} body, from the limit in front of every '
                               "route)"},
          503: {**_REFUSED, "description": "the model cannot be served, or the queue is full (Retry-After)"}}


class TensorSpec(BaseModel):
    name: str
    datatype: str
    shape: list[int] = Field(description="-1 for the batch axis and any other free axis")


class ModelMetadata(BaseModel):
    name: str
    versions: list[str]
    platform: str
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]


class ServerMetadata(BaseModel):
    name: str
    version: str
    extensions: list[str]


def _error(request: Request, exc: Exception) -> JSONResponse:
    status = getattr(exc, "status", None) or next(s for t, s in _STATUS.items() if isinstance(exc, t))
    headers = {}
    if isinstance(exc, Overloaded):
        request.app.state.metrics.rejected.inc()
        headers["Retry-After"] = str(exc.retry_after_s)
    return JSONResponse(status_code=status, content={"error": str(exc)}, headers=headers)


async def _answer(request: Request, work: Callable[[], Awaitable[Any]]) -> Any:
    """``work()``, with the errors a caller can cause as v2 ``{"error": ...}`` bodies."""
    try:
        return await work()
    except tuple(_STATUS) as exc:
        return _error(request, exc)


async def _graph(server: Server, name: str, version: str | None) -> tuple[OnnxModel, str]:
    parts = split_v2_name(name)
    if version is not None and not re.fullmatch(V2_VERSION_PATTERN, version):
        raise V2Error(f"version={version!r} is not allowed: v2 versions are numbers (aliases are for the PSF API)")
    if parts is None:
        raise ModelNotFound(f"model {name!r} is not served: v2 model names are <model>-<graph>, graph one of "
                            "psf, prior, decoder, encoder (e.g. ci-psf)")
    onnx = await server.model(parts[0], version)
    return onnx, parts[1]


@health_router.get("/v2/health/live", summary="the process answers")
async def live() -> dict[str, bool]:
    return {"live": True}


class Readiness(BaseModel):
    ready: bool


@health_router.get("/v2/health/ready", summary="a model is loaded", response_model=Readiness,
                   responses={503: {"model": Readiness, "description": "none loaded"}})
async def ready(server: ServerDep) -> Any:
    if server.registry.ready:
        return {"ready": True}
    return JSONResponse(status_code=503, content={"ready": False})


@router.get("/v2", summary="server metadata", response_model=ServerMetadata)
async def server_metadata() -> dict[str, Any]:
    from importlib.metadata import PackageNotFoundError, version

    try:
        release = version("psf-surrogate")
    except PackageNotFoundError:  # run from a source tree
        release = "source"
    return {"name": SERVER_NAME, "version": release, "extensions": EXTENSIONS}


async def _metadata(request: Request, server: Server, name: str, version: str | None) -> Any:
    async def work() -> dict[str, Any]:
        onnx, role = await _graph(server, name, version)
        inputs, outputs = tensor_specs(onnx.sessions[role])
        versions = server.registry.snapshot.versions.get(onnx.name, (onnx.version,))
        return {"name": name, "versions": [str(v) for v in versions], "platform": PLATFORM,
                "inputs": inputs, "outputs": outputs}
    return await _answer(request, work)


@router.get("/v2/models/{name}", summary="model metadata: versions, input and output tensors",
            response_model=ModelMetadata, responses=_NOT_FOUND)
async def model_metadata(name: Name, request: Request, server: ServerDep) -> Any:
    return await _metadata(request, server, name, None)


@router.get("/v2/models/{name}/versions/{version}", summary="model metadata of one version",
            response_model=ModelMetadata, responses=_NOT_FOUND)
async def version_metadata(name: Name, version: Version, request: Request, server: ServerDep) -> Any:
    return await _metadata(request, server, name, version)


async def _ready(request: Request, server: Server, name: str, version: str | None) -> Any:
    async def work() -> Response:
        await _graph(server, name, version)
        return Response(status_code=200)
    return await _answer(request, work)


@router.get("/v2/models/{name}/ready", summary="the model can answer (an empty 200)", response_class=Response,
            responses=_NOT_FOUND)
async def model_ready(name: Name, request: Request, server: ServerDep) -> Any:
    return await _ready(request, server, name, None)


@router.get("/v2/models/{name}/versions/{version}/ready", summary="this version can answer (an empty 200)",
            response_class=Response, responses=_NOT_FOUND)
async def version_ready(name: Name, version: Version, request: Request, server: ServerDep) -> Any:
    return await _ready(request, server, name, version)


async def _config(request: Request, server: Server, name: str, version: str | None) -> Any:
    async def work() -> dict[str, Any]:
        onnx, role = await _graph(server, name, version)
        s = server.settings
        return model_config(onnx.manifest, role, onnx.sessions[role], max_batch_size=s.max_batch,
                            max_queue_delay_us=int(s.microbatch_delay_ms * 1000), max_queue_size=s.max_queue)
    return await _answer(request, work)


@router.get("/v2/models/{name}/config", summary="Triton's model configuration, with the manifest as a parameter",
            responses=_NOT_FOUND)
async def config(name: Name, request: Request, server: ServerDep) -> Any:
    return await _config(request, server, name, None)


@router.get("/v2/models/{name}/versions/{version}/config", summary="the configuration of one version",
            responses=_NOT_FOUND)
async def version_config(name: Name, version: Version, request: Request, server: ServerDep) -> Any:
    return await _config(request, server, name, version)


def _inputs(onnx: OnnxModel, role: str, arrays: dict[str, np.ndarray]) -> list[np.ndarray]:
    """The graph's inputs in its order, each checked against the graph's shape; conditions also
    against the trained ranges."""
    specs, _ = tensor_specs(onnx.sessions[role])
    names = [s["name"] for s in specs]
    unknown = sorted(set(arrays) - set(names))
    if unknown:
        raise V2Error(f"input {unknown[0]!r} is not allowed: this model's inputs are {names}")
    out, rows = [], None
    for spec in specs:
        name, arr = spec["name"], arrays.get(spec["name"])
        if arr is None:
            raise V2Error(f"input {name!r} is missing: this model's inputs are {names}")
        want = spec["shape"]
        if arr.ndim != len(want) or any(w not in (-1, d) for w, d in zip(want, arr.shape, strict=True)):
            raise V2Error(f"input {name} shape={list(arr.shape)} is not allowed: must be {want} (-1: any)")
        if rows is not None and len(arr) != rows:
            raise V2Error(f"input {name} has {len(arr)} rows: every input must have {rows} like the first")
        rows = len(arr)
        if name == "condition":
            arr = check_condition_matrix(onnx.manifest, arr, parameter="condition")
        elif not np.isfinite(arr).all():
            raise V2Error(f"input {name} is not allowed: it holds non-finite values")
        out.append(np.ascontiguousarray(arr, dtype=np.float32))
    return out


async def _run(server: Server, onnx: OnnxModel, role: str, inputs: list[np.ndarray]) -> list[np.ndarray]:
    rows = len(inputs[0])
    check_size("batch rows", rows, server.settings.max_batch, "PSF_MAX_BATCH")
    if role == "psf":
        # merged with concurrent /psf queries; at the default azimuth orienting changes no bit, for every
        # symmetry, so this is the graph's own output
        return [await server.batcher.psf(onnx, inputs[0], np.full(rows, DEFAULT_AZIMUTH))]
    run = {"prior": onnx.prior, "decoder": onnx.decode_condition, "encoder": onnx.encode}[role]
    result = await server.batcher.run(rows, partial(run, *inputs))
    return list(result) if isinstance(result, tuple) else [result]


async def _infer(request: Request, server: Server, name: str, version: str | None) -> Any:
    async def work() -> Response:
        onnx, role = await _graph(server, name, version)
        parsed, arrays = parse_request(await request.body(), request.headers.get(HEADER_LENGTH))
        results = await _run(server, onnx, role, _inputs(onnx, role, arrays))
        for arr in results:
            check_finite(onnx, arr)
        outputs = dict(zip(onnx.manifest.graphs[role].outputs, results, strict=True))
        body, headers = encode_response(parsed, name, onnx.version, outputs)
        return Response(body, headers=headers, media_type=headers.pop("content-type"))
    return await _answer(request, work)


@router.post("/v2/models/{name}/infer", summary="inference, JSON or binary tensors", responses=_INFER)
async def infer(name: Name, request: Request, server: ServerDep) -> Any:
    return await _infer(request, server, name, None)


@router.post("/v2/models/{name}/versions/{version}/infer", summary="inference on one version", responses=_INFER)
async def version_infer(name: Name, version: Version, request: Request, server: ServerDep) -> Any:
    return await _infer(request, server, name, version)
