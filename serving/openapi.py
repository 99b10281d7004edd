"""The OpenAPI document (``/openapi.json``), made to say what this server really does.

FastAPI's own document is the base. On top of it:

- every error answer names its body: ``{"detail"}``, and for 422 also ``"errors"`` (errors.py); a
  503 carries ``Retry-After``;
- the ``X-API-Key`` scheme, and a 401 on every route it guards, only when the server has a key;
- the condition parameters carry the ranges of the default model (another model's ranges are in
  ``GET /models/{name}``), a parameter the default model does not take (``focus``) is left out;
  ``model``, ``version`` and ``name`` carry the name pattern, an interpolation end's ``psf`` the
  model's k x k shape, ``/decode``'s ``z`` the latent size, lists at least one value.

The server's size limits are maxima (``maxItems`` of every column and of ``z``, ``maximum`` of ``nx``,
``ny`` and ``steps``). What JSON Schema cannot state is said in the descriptions: which of ``field``
or ``x`` and ``y`` a position needs, that columns have equal lengths, the product ``nx * ny`` and the
body's size in bytes.
The document follows the default model and is made again when hot reload serves another version.

The Open Inference Protocol v2 routes (``/v2/...``, routes/v2.py) answer refusals with the protocol's
``{"error"}`` body, and say so: their name is ``<model>-<graph>`` and their version a number, their
422 is gone (they send none), ``infer`` takes an ``InferRequest`` (JSON, or a JSON header followed by
binary tensors); only the API key's 401 and the body limit's 413 there are ``{"detail"}`` bodies.
Their examples are the default model's PSF graph and version, and an infer body it answers.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from models_store import NAME_PATTERN, Manifest
from models_store.conditions import FIXED_RANGES
from models_store.engine import LATENT_LIMIT, OnnxModel
from models_store.wire import Limits

from .errors import ErrorBody, ValidationErrorBody
from .routes.params import COLUMNS
from .routes.v2 import V2ErrorBody
from .security import HEADER, OPEN_PATHS
from .v2_codec import DATATYPES, HEADER_LENGTH, InferRequest
from .versions import InvalidReference, ModelNotFound, ModelUnavailable

_SCHEME = "APIKeyHeader"
_REF = "#/components/schemas/{model}"
_VERSION_PATTERN = rf"^[0-9]+$|{NAME_PATTERN}"
_V2_SCHEMAS = {InferRequest.__name__, *InferRequest.model_json_schema().get("$defs", {})}
_POSITION = ("field", "azimuth", "x", "y")
# field (with an optional azimuth), or x and y (which fix the direction: no azimuth); never both, never neither
_ONE_POSITION = [
    {"required": ["field"], "not": {"anyOf": [{"required": ["x"]}, {"required": ["y"]}]}},
    {"required": ["x", "y"], "not": {"anyOf": [{"required": ["field"]}, {"required": ["azimuth"]}]}},
]


def openapi_document(app: FastAPI) -> dict[str, Any]:
    onnx = _default_model(app)
    key = None if onnx is None else (onnx.name, onnx.version)
    cached = getattr(app.state, "openapi_cache", None)
    if cached is not None and cached[0] == key:
        return cached[1]
    doc = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    _error_bodies(doc)
    _v2(doc)
    if app.state.settings.api_keys:
        _security(doc)
    _names(doc)
    _limits(doc, app.state.settings.limits)
    if onnx is not None:
        _model_constraints(doc, onnx.manifest)
    app.state.openapi_cache = (key, doc)
    return doc


def _default_model(app: FastAPI) -> OnnxModel | None:
    server = getattr(app.state, "server", None)
    if server is None or not server.registry.ready:
        return None
    try:
        return server.registry.get(None, None, block=False)
    except (ModelNotFound, ModelUnavailable, InvalidReference):  # a default model that is not served
        return None


def _operations(doc: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for path, item in doc["paths"].items():
        for operation in item.values():
            yield path, operation


def _nodes(schema: Any) -> Iterator[dict[str, Any]]:
    """Every sub-schema of ``schema`` (itself included)."""
    if isinstance(schema, dict):
        yield schema
        for value in schema.values():
            yield from _nodes(value)
    elif isinstance(schema, list):
        for value in schema:
            yield from _nodes(value)


def _is_v2(path: str) -> bool:
    return path == "/v2" or path.startswith("/v2/")


def _properties(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(owner, name, schema) of every query parameter and every property of a component schema."""
    for path, operation in _operations(doc):
        for parameter in operation.get("parameters", ()):
            yield path, parameter["name"], parameter["schema"]
    for owner, schema in doc.get("components", {}).get("schemas", {}).items():
        for name, prop in schema.get("properties", {}).items():
            yield owner, name, prop


def _error_bodies(doc: dict[str, Any]) -> None:
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):  # FastAPI's 422 shape, which we do not send
        schemas.pop(name, None)
    for model in (ErrorBody, ValidationErrorBody):
        body = model.model_json_schema(ref_template=_REF)
        schemas.update(body.pop("$defs", {}))
        schemas[model.__name__] = body
    for path, operation in _operations(doc):
        if _is_v2(path):  # the protocol's own bodies, declared by its routes
            continue
        if "requestBody" in operation:  # Starlette's answer to a body that is not text
            operation["responses"].setdefault("400", {"description": "the body cannot be read as JSON"})
        for status, response in operation.get("responses", {}).items():
            if status[0] in "45":
                name = ValidationErrorBody.__name__ if status == "422" else ErrorBody.__name__
                response["content"] = {"application/json": {"schema": {"$ref": _REF.format(model=name)}}}
            if status == "503":
                response["headers"] = {"Retry-After": {"description": "seconds to wait before asking again",
                                                       "schema": {"type": "integer", "minimum": 0}}}


def _v2(doc: dict[str, Any]) -> None:
    schemas = doc["components"]["schemas"]
    body = InferRequest.model_json_schema(ref_template=_REF)
    schemas.update(body.pop("$defs", {}))
    schemas[InferRequest.__name__] = body
    tensor = schemas["InputTensor"]["properties"]
    tensor["datatype"]["enum"] = list(DATATYPES)
    tensor["shape"]["items"]["minimum"] = 0
    refused = {"$ref": _REF.format(model=V2ErrorBody.__name__)}
    for path, operation in _operations(doc):
        if not _is_v2(path):
            continue
        responses = operation["responses"]
        responses.pop("422", None)  # nothing these routes take is parsed by FastAPI
        if "503" in responses and path.endswith("/infer"):
            responses["503"]["headers"] = {"Retry-After": {"description": "seconds to wait before asking again "
                                                                          "(when the queue is full)",
                                                           "schema": {"type": "integer", "minimum": 0}}}
        if "413" in responses:
            responses["413"]["content"] = {"application/json": {"schema": {"anyOf": [
                refused, {"$ref": _REF.format(model=ErrorBody.__name__)}]}}}
        if path.endswith("/infer"):
            operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": {
                "$ref": _REF.format(model=InferRequest.__name__)}}}, "description": (
                    f"the inference request as JSON; with binary tensors, {HEADER_LENGTH} names the bytes of "
                    "that JSON and each tensor's binary_data_size its bytes after it")}
            operation.setdefault("parameters", []).append({
                "name": HEADER_LENGTH, "in": "header", "required": False,
                "description": "the bytes of the JSON header when binary tensors follow it in the body",
                "schema": {"type": "integer", "minimum": 0}})


def _security(doc: dict[str, Any]) -> None:
    doc["components"]["securitySchemes"] = {_SCHEME: {
        "type": "apiKey", "in": "header", "name": HEADER,
        "description": "one of the server's keys (PSF_API_KEY); every route but /healthz and /readyz needs it"}}
    for path, operation in _operations(doc):
        if path not in OPEN_PATHS:
            operation["security"] = [{_SCHEME: []}]
            operation["responses"]["401"] = {
                "description": f"the {HEADER} header is missing or holds no accepted key",
                "content": {"application/json": {"schema": {"$ref": _REF.format(model=ErrorBody.__name__)}}}}


def _names(doc: dict[str, Any]) -> None:
    """Names as the store allows them; no null where the server refuses it."""
    for owner, name, schema in _properties(doc):
        if _is_v2(owner) or owner in _V2_SCHEMAS:  # v2 names are <model>-<graph>, tensor names the graph's
            continue
        for node in _nodes(schema):
            if name in ("model", "name") and node.get("type") == "string":
                node["pattern"] = NAME_PATTERN
            elif name == "version" and node.get("type") == "string":
                node["pattern"] = _VERSION_PATTERN
            elif name == "version" and node.get("type") == "integer":
                node["minimum"] = 0
    # a condition is a number (or list) or left out, and a query string has no null
    conditions = [prop for _, name, prop in _properties(doc) if name in COLUMNS]
    parameters = [p["schema"] for _, operation in _operations(doc) for p in operation.get("parameters", ())]
    for schema in conditions + parameters:
        if "anyOf" not in schema:
            continue
        schema["anyOf"] = [option for option in schema["anyOf"] if option.get("type") != "null"]
        if len(schema["anyOf"]) == 1:
            schema.update(schema.pop("anyOf")[0])


def _limits(doc: dict[str, Any], limits: Limits) -> None:
    """The server's request-size limits as maxima: conditions per request (every column list, and
    /decode's z), grid cells per side (their product is said in the description) and path steps."""
    maxima = {("/psf/grid", "nx"): limits.max_grid, ("/psf/grid", "ny"): limits.max_grid,
              ("/distortion", "nx"): limits.max_grid, ("/distortion", "ny"): limits.max_grid,
              ("InterpolateRequest", "steps"): limits.max_steps}
    for owner, name, schema in _properties(doc):
        if (owner, name) in maxima:
            schema["maximum"] = maxima[(owner, name)]
        elif name in COLUMNS or (owner == "DecodeRequest" and name == "z"):
            for node in _nodes(schema):
                if node.get("type") == "array" and node is not schema.get("items"):
                    node["maxItems"] = limits.max_batch


def _model_constraints(doc: dict[str, Any], manifest: Manifest) -> None:
    ranges = {c.name: (c.min, c.max) for c in manifest.conditions if c.name != "azimuth"} | FIXED_RANGES
    required = [name for name in manifest.condition_names if name not in _POSITION]
    k, latent = manifest.kernel_size, manifest.latent_size
    for _, operation in _operations(doc):  # a parameter this model does not take is not offered
        if "parameters" in operation:
            operation["parameters"] = [p for p in operation["parameters"]
                                       if p["name"] not in COLUMNS or p["name"] in ranges]
            for parameter in operation["parameters"]:
                parameter["required"] = parameter["required"] or parameter["name"] in required
    for schema in doc["components"]["schemas"].values():
        properties = schema.get("properties", {})
        for name in [n for n in properties if n in COLUMNS and n not in ranges]:
            del properties[name]
        if "field" in properties:  # a condition: a position, and the model's other conditions
            schema["required"] = sorted({*schema.get("required", ()), *required})
            schema["anyOf"] = _ONE_POSITION
    for path, operation in _operations(doc):  # the served v2 models, as examples of names and versions
        for parameter in operation.get("parameters", ()) if _is_v2(path) else ():
            if parameter["name"] == "name":
                parameter["example"] = f"{manifest.name}-psf"
            elif parameter["name"] == "version":
                parameter["example"] = str(manifest.version)
        if _is_v2(path) and path.endswith("/infer"):  # one PSF from the middle of every trained range
            middle = [sum(ranges[name]) / 2 for name in manifest.condition_names]
            operation["requestBody"]["content"]["application/json"]["example"] = {"inputs": [{
                "name": "condition", "shape": [1, len(middle)], "datatype": "FP32", "data": middle}]}
    for owner, name, schema in _properties(doc):
        if name in ranges:
            lo, hi = ranges[name]
            for node in _nodes(schema):
                if node.get("type") == "number":
                    node["minimum"], node["maximum"] = lo, hi
                elif node.get("type") == "array":
                    node["minItems"] = 1
        elif owner == "Endpoint" and name == "psf":
            outer = next(n for n in _nodes(schema) if n.get("type") == "array")
            outer.update(minItems=k, maxItems=k)
            outer["items"].update(minItems=k, maxItems=k)
            outer["items"]["items"]["minimum"] = 0
        elif owner == "DecodeRequest" and name == "z":
            schema.update(minItems=1)
            schema["items"].update(minItems=latent, maxItems=latent)
            schema["items"]["items"].update(minimum=-LATENT_LIMIT, maximum=LATENT_LIMIT)
