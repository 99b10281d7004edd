"""Answers as HTTP bodies: npy (float32 or float16, for programs), JSON (for anything), PNG (for people).

npy and PNG responses carry the model in headers X-Model, X-Model-Version, X-Kernel-Size,
X-Pixel-Pitch-Um; JSON bodies carry the same as fields. Every array answer also carries the server's
limits (``models_store.wire.Limits``). The header names and the npy bytes are the wire protocol's
(``models_store.wire``), which the client reads with the same module. Large bodies are encoded in a
worker thread so one big answer does not stall the event loop (JSON and PNG above a few thousand
values, npy only when huge).
"""

from __future__ import annotations

import asyncio
import io
import json
import weakref
from typing import Any, Literal

import numpy as np
from fastapi import HTTPException, Response

from models_store.engine import OnnxModel
from models_store.wire import DEFAULT_DTYPE, MODEL_HEADERS, NPY_MEDIA_TYPE, DType, Limits, npy_bytes

Format = Literal["npy", "json", "png"]
ArrayFormat = Literal["npy", "json"]
MEDIA_TYPES = {"npy": NPY_MEDIA_TYPE, "json": "application/json", "png": "image/png"}
# Array elements above which encoding moves off the event loop. npy is one copy of the data (about
# 0.2 ms for 1 MiB), far cheaper than the hand-off to a thread; JSON writes every float as text.
_THREAD_ABOVE = {"npy": 1 << 22, "json": 1 << 12}
_PNG_MAX_WIDTH = 1024


def model_fields(onnx: OnnxModel) -> dict[str, Any]:
    manifest = onnx.manifest
    return {"model": onnx.name, "version": onnx.version, "kernel_size": manifest.kernel_size,
            "pixel_pitch_um": manifest.lens.pixel_pitch_um}


def model_headers(onnx: OnnxModel) -> dict[str, str]:
    fields = model_fields(onnx)
    values = (fields["model"], str(fields["version"]), str(fields["kernel_size"]), repr(fields["pixel_pitch_um"]))
    return dict(zip(MODEL_HEADERS, values, strict=True))


Headers = tuple[tuple[str, str], ...]
# the headers of a model's answers in one format: the same for every answer, so made once per model
# (weakly held: a model unloaded by a hot reload takes its entries with it)
_HEADERS: weakref.WeakKeyDictionary[OnnxModel, dict[tuple[Format, Limits], Headers]] = weakref.WeakKeyDictionary()


def answer_headers(onnx: OnnxModel, fmt: Format, limits: Limits) -> Headers:
    """Content type, the model (npy, png) and the server's limits: the headers of an answer."""
    per_model = _HEADERS.get(onnx)
    if per_model is None:
        per_model = _HEADERS.setdefault(onnx, {})
    headers = per_model.get((fmt, limits))
    if headers is None:
        made = {"content-type": MEDIA_TYPES[fmt], **(model_headers(onnx) if fmt != "json" else {}), **limits.headers()}
        headers = per_model[(fmt, limits)] = tuple(made.items())
    return headers


def is_finite(arr: np.ndarray) -> bool:
    return bool(np.isfinite(arr).all())


def check_finite(onnx: OnnxModel, arr: np.ndarray) -> None:
    if not is_finite(arr):  # a model bug, not the caller's: say so rather than send NaN
        raise HTTPException(status_code=500, detail=f"{onnx.name}@{onnx.version} produced non-finite values")


def json_bytes(onnx: OnnxModel, key: str, arr: np.ndarray, extra: dict[str, Any] | None = None) -> bytes:
    # float32 -> Python float is exact, and json writes the shortest repr that reads back the same
    payload = {**model_fields(onnx), **(extra or {}), key: arr.tolist()}
    return json.dumps(payload, separators=(",", ":")).encode()


def png_bytes(arr: np.ndarray) -> bytes:
    """A grey-scale preview: each kernel scaled to its own peak, square-root tone curve, tiles framed."""
    from PIL import Image  # imported on use: only previews need Pillow

    tiles = arr[None, None] if arr.ndim == 2 else arr
    ny, nx, k, _ = tiles.shape
    peak = tiles.max(axis=(2, 3), keepdims=True)
    tones = np.sqrt(tiles / np.where(peak > 0, peak, 1.0))
    cell = k + 1  # one pixel of frame to the right of and below every kernel
    mosaic = np.full((ny * cell + 1, nx * cell + 1), 0.25)
    for j in range(ny):
        for i in range(nx):
            mosaic[1 + j * cell:1 + j * cell + k, 1 + i * cell:1 + i * cell + k] = tones[j, i]
    scale = max(1, min(16, _PNG_MAX_WIDTH // mosaic.shape[1]))
    image = Image.fromarray((mosaic * 255).round().astype(np.uint8), mode="L")
    image = image.resize((mosaic.shape[1] * scale, mosaic.shape[0] * scale), Image.Resampling.NEAREST)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def encode(onnx: OnnxModel, arr: np.ndarray, fmt: Format, limits: Limits, *, key: str = "psf",
           extra: dict[str, Any] | None = None, dtype: DType = DEFAULT_DTYPE) -> tuple[bytes, Headers]:
    """(body, headers with content-type) of the answer ``arr`` in ``fmt``; ``dtype`` applies to the values
    of npy and json answers (a PNG is a picture)."""
    if fmt == "npy":
        body = npy_bytes(arr, dtype)
    elif fmt == "json":
        body = json_bytes(onnx, key, arr if dtype == DEFAULT_DTYPE else arr.astype(dtype), extra)
    else:
        body = png_bytes(arr)
    return body, answer_headers(onnx, fmt, limits)


def _response(*args: Any, **kwargs: Any) -> Response:
    body, headers = encode(*args, **kwargs)
    return Response(body, headers=dict(headers))


async def respond(onnx: OnnxModel, arr: np.ndarray, fmt: Format, limits: Limits, *, key: str = "psf",
                  extra: dict[str, Any] | None = None, dtype: DType = DEFAULT_DTYPE) -> Response:
    """The answer ``arr`` in ``fmt``; JSON puts it under ``key`` next to the model fields and ``extra``."""
    check_finite(onnx, arr)
    if fmt == "png" or arr.size > _THREAD_ABOVE[fmt]:
        return await asyncio.to_thread(_response, onnx, arr, fmt, limits, key=key, extra=extra, dtype=dtype)
    return _response(onnx, arr, fmt, limits, key=key, extra=extra, dtype=dtype)
