"""The Open Inference Protocol (KServe v2) request and response bodies, JSON and binary.

With the binary tensor data extension a body is a JSON header of ``Inference-Header-Content-Length``
bytes followed by the raw little-endian tensors, in the order of the header's tensors that carry
``parameters.binary_data_size``; otherwise every tensor is a JSON list under ``data``.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from models_store.wire import V2_HEADER_LENGTH as HEADER_LENGTH

_NUMPY = {"FP32": "<f4", "FP64": "<f8", "FP16": "<f2", "INT64": "<i8", "INT32": "<i4"}
DATATYPES = tuple(sorted(_NUMPY))


class V2Error(Exception):
    """A request the protocol refuses; ``status`` is the HTTP status of the ``{"error": ...}`` answer."""

    def __init__(self, message: str, status: int = 400) -> None:
        self.status = status
        super().__init__(message)


class _Loose(BaseModel):
    model_config = ConfigDict(extra="allow")


class InputTensor(_Loose):
    name: str
    shape: list[int] = Field(description="dimensions, batch first")
    datatype: str
    parameters: dict[str, Any] = Field(default_factory=dict)
    data: Any = None


class RequestedOutput(_Loose):
    name: str
    parameters: dict[str, Any] = Field(default_factory=dict)


class InferRequest(_Loose):
    id: str | None = None
    parameters: dict[str, Any] = Field(default_factory=dict)
    inputs: list[InputTensor]
    outputs: list[RequestedOutput] | None = None


def parse_request(body: bytes, header_length: str | None) -> tuple[InferRequest, dict[str, np.ndarray]]:
    """An infer body -> (the request, every input as an array of its declared shape and type)."""
    if header_length is not None:
        # ASCII digits only: str.isdigit also takes '²', which int() refuses
        if not (header_length.isascii() and header_length.isdigit()) or int(header_length) > len(body):
            raise V2Error(f"{HEADER_LENGTH}={header_length!r} is not allowed: must be a byte count within the "
                          f"{len(body)}-byte body")
        header, binary = body[:int(header_length)], memoryview(body)[int(header_length):]
    else:
        header, binary = body, memoryview(b"")
    try:
        request = InferRequest.model_validate(json.loads(header))
    except (ValueError, ValidationError) as exc:
        raise V2Error(f"the inference request is not valid: {exc}") from None
    arrays, offset = {}, 0
    for tensor in request.inputs:
        if tensor.datatype not in _NUMPY:
            raise V2Error(f"input {tensor.name}: datatype={tensor.datatype!r} is not allowed: use one of "
                          f"{sorted(_NUMPY)}")
        if any(d < 0 for d in tensor.shape):
            raise V2Error(f"input {tensor.name}: shape={tensor.shape} is not allowed: dimensions must be >= 0")
        size = tensor.parameters.get("binary_data_size")
        try:
            if size is not None:
                if not isinstance(size, int) or size < 0 or offset + size > len(binary):
                    raise V2Error(f"input {tensor.name}: binary_data_size={size!r} is not allowed: the body holds "
                                  f"{len(binary) - offset} more bytes")
                flat = np.frombuffer(binary[offset:offset + size], dtype=_NUMPY[tensor.datatype])
                offset += size
            else:
                flat = np.asarray(tensor.data, dtype=_NUMPY[tensor.datatype]).reshape(-1)
            arrays[tensor.name] = flat.reshape(tensor.shape)
        except (TypeError, ValueError) as exc:
            raise V2Error(f"input {tensor.name}: data does not fit shape {tensor.shape} {tensor.datatype}: "
                          f"{exc}") from None
    return request, arrays


def encode_response(request: InferRequest, model: str, version: int,
                    outputs: dict[str, np.ndarray]) -> tuple[bytes, dict[str, str]]:
    """(body, extra headers): the outputs a request asked for (all when it named none), as binary
    tensors when it asked for them, else as JSON lists."""
    binary_all = bool(request.parameters.get("binary_data_output", False))
    wanted = request.outputs if request.outputs is not None else [RequestedOutput(name=n) for n in outputs]
    unknown = [o.name for o in wanted if o.name not in outputs]
    if unknown:
        raise V2Error(f"output {unknown[0]!r} is not allowed: this model's outputs are {list(outputs)}")
    entries, blobs = [], []
    for out in wanted:
        arr = np.ascontiguousarray(outputs[out.name], dtype="<f4")
        entry: dict[str, Any] = {"name": out.name, "datatype": "FP32", "shape": list(arr.shape)}
        if out.parameters.get("binary_data", binary_all):
            blob = arr.tobytes()
            entry["parameters"] = {"binary_data_size": len(blob)}
            blobs.append(blob)
        else:
            entry["data"] = arr.reshape(-1).tolist()
        entries.append(entry)
    header = json.dumps({"model_name": model, "model_version": str(version), "id": request.id or "",
                         "outputs": entries}, separators=(",", ":")).encode()
    if not blobs:
        return header, {"content-type": "application/json"}
    return header + b"".join(blobs), {"content-type": "application/octet-stream", HEADER_LENGTH: str(len(header))}
