"""The PSF server's wire protocol, defined once: the server (``serving``) and the client (``clients``) both
import it, so a column, a header or a limit cannot be spelt two ways.

- the query columns every PSF route takes (:data:`QUERY_COLUMNS`);
- the npy answers: media type, the dtypes offered (:data:`DTYPES`), encoding (:func:`npy_bytes`) and
  decoding (:func:`read_npy`);
- the response headers that describe the model (:data:`MODEL_HEADERS`) and the server's limits
  (:class:`Limits`, also listed in ``GET /models``);
- the image geometry of one answered PSF (chief-ray position, distortion, relative illumination) as
  headers and JSON fields (:data:`GEOMETRY_HEADERS`, :func:`geometry_headers`, :func:`read_geometry`);
- where the kernels of an ``nx x ny`` grid sit on the sensor (:func:`tile_centres`);
- the names the Open Inference Protocol (v2) routes add (:data:`V2_HEADER_LENGTH`,
  :data:`V2_MANIFEST_PARAMETER`).

Only numpy and the standard library: ``models_store``'s base dependencies.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, cast, get_args

import numpy as np

# -- queries -------------------------------------------------------------------------------------
# sensor position (field + azimuth; or x + y, fractions; or x_mm + y_mm; or px + py, pixels: the frame is
# models_store.sensor's), object depth, wavelength, focus: the order of the routes' docs
POSITION_UNITS = {"x": "y", "x_mm": "y_mm", "px": "py"}  # the pairs that name an image position
QUERY_COLUMNS = ("field", "azimuth", "x", "y", "x_mm", "y_mm", "px", "py", "depth", "wavelength", "focus")
API_KEY_HEADER = "X-API-Key"

# -- npy answers ---------------------------------------------------------------------------------
NPY_MEDIA_TYPE = "application/x-npy"
DType = Literal["float32", "float16"]
DTYPES: tuple[DType, ...] = get_args(DType)
DEFAULT_DTYPE: DType = "float32"
# float16 keeps 11 significant bits: a value >= 2^-14 is within 2^-11 (relative) of its float32 value,
# smaller ones within 2^-25 (absolute); so for a unit-sum kernel within 2^-12 per value and 2^-11 in
# relative L1. Measured on a real model: README.md, "float16 answers".
_NPY_DESCR = {"float32": "<f4", "float16": "<f2"}


def check_dtype(dtype: object) -> DType:
    """``dtype`` as one of :data:`DTYPES` (a name, a numpy dtype or type); ValueError naming what is allowed."""
    name = dtype
    if not isinstance(dtype, str):
        try:
            name = np.dtype(cast(Any, dtype)).name
        except TypeError:
            pass
    for offered in DTYPES:
        if name == offered:
            return offered
    allowed = " or ".join(repr(d) for d in DTYPES)
    raise ValueError(f"dtype={dtype!r} is not allowed: must be {allowed} (default {DEFAULT_DTYPE!r})")


@functools.lru_cache(maxsize=256)
def _npy_header(descr: str, shape: tuple[int, ...]) -> bytes:
    header = io.BytesIO()  # the same for every answer of a shape, and slow to make: made once
    np.lib.format.write_array_header_1_0(header, {"descr": descr, "fortran_order": False, "shape": shape})
    return header.getvalue()


def npy_bytes(arr: np.ndarray, dtype: DType = DEFAULT_DTYPE) -> bytes:
    """``np.save``'s bytes (format 1.0) of ``arr`` as ``dtype``, with one copy of the data instead of two."""
    descr = _NPY_DESCR[dtype]
    arr = np.ascontiguousarray(arr, dtype=descr)
    return _npy_header(descr, arr.shape) + arr.tobytes()


def read_npy(content: bytes) -> np.ndarray:
    """The array of .npy bytes (never a pickle); ValueError when the bytes are not one."""
    try:
        return np.load(io.BytesIO(content), allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise ValueError(f"not a .npy array: {exc}") from exc


# -- headers -------------------------------------------------------------------------------------
HEADER_MODEL = "X-Model"
HEADER_VERSION = "X-Model-Version"
HEADER_KERNEL_SIZE = "X-Kernel-Size"
HEADER_PIXEL_PITCH = "X-Pixel-Pitch-Um"
MODEL_HEADERS = (HEADER_MODEL, HEADER_VERSION, HEADER_KERNEL_SIZE, HEADER_PIXEL_PITCH)

# The image geometry of one answered PSF (models_store.geometry): where its chief ray lands ("x,y" in mm
# and in pixels), its radial distortion [px] and the relative illumination there. Values in full
# precision (repr), so every path gives the same numbers.
HEADER_CHIEF_RAY_MM = "X-Chief-Ray-Mm"
HEADER_CHIEF_RAY_PX = "X-Chief-Ray-Px"
HEADER_DISTORTION_PX = "X-Distortion-Px"
HEADER_ILLUMINATION = "X-Relative-Illumination"
GEOMETRY_HEADERS = (HEADER_CHIEF_RAY_MM, HEADER_CHIEF_RAY_PX, HEADER_DISTORTION_PX, HEADER_ILLUMINATION)
# JSON field -> the geometry values (models_store.geometry.geometry_at keys) it holds
# every value POST /geometry and GET /distortion answer (models_store.geometry.geometry_at keys), in order
GEOMETRY_VALUES = ("x_mm", "y_mm", "x_px", "y_px", "ideal_x_px", "ideal_y_px", "distortion_px", "illumination")
GEOMETRY_FIELDS = {"chief_ray_mm": ("x_mm", "y_mm"), "chief_ray_px": ("x_px", "y_px"),
                   "distortion_px": ("distortion_px",), "illumination": ("illumination",)}


def geometry_fields(geometry: Mapping[str, Any], row: int | None = None) -> dict[str, Any]:
    """JSON fields of ``geometry`` (arrays [N] or [ny, nx]): one row's numbers, or every row's as lists."""
    out: dict[str, Any] = {}
    for name, keys in GEOMETRY_FIELDS.items():
        values = [np.asarray(geometry[k], dtype=np.float64) for k in keys]
        if row is not None:
            picked = [float(v.reshape(-1)[row]) for v in values]
            out[name] = picked if len(keys) > 1 else picked[0]
        else:
            out[name] = np.stack(values, axis=-1).tolist() if len(keys) > 1 else values[0].tolist()
    return out


def geometry_headers(geometry: Mapping[str, Any], row: int = 0) -> dict[str, str]:
    """The geometry headers of row ``row`` of ``geometry``."""
    fields = geometry_fields(geometry, row)
    return {header: ",".join(repr(v) for v in np.atleast_1d(fields[name]).tolist())
            for header, name in zip(GEOMETRY_HEADERS, GEOMETRY_FIELDS, strict=True)}


def read_geometry(headers: Mapping[str, str]) -> dict[str, Any] | None:
    """The JSON-style geometry fields of an answer's headers, or None when it carries none."""
    if any(h not in headers for h in GEOMETRY_HEADERS):
        return None
    try:
        out: dict[str, Any] = {}
        for header, name in zip(GEOMETRY_HEADERS, GEOMETRY_FIELDS, strict=True):
            values = [float(v) for v in headers[header].split(",")]
            out[name] = values if len(values) > 1 else values[0]
        return out
    except ValueError:
        return None


@dataclass(frozen=True)
class Limits:
    """The sizes one request may have on this server (beyond them: 413).

    Sent as response headers on every array answer, every 413 and ``GET /models`` (and in its body),
    so a client learns them from its first answer instead of from a refusal.
    """

    max_batch: int  # conditions in one /psf/batch, /latent or /decode
    max_grid: int  # cells (nx * ny) of one /psf/grid
    max_steps: int  # steps of one /interpolate path
    max_body_bytes: int  # bytes of one request body

    def headers(self) -> dict[str, str]:
        return {header: str(getattr(self, name)) for name, header in LIMIT_HEADERS.items()}

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in LIMIT_HEADERS}

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> Limits | None:
        """The limits a response announces; None when it announces none (or not all, or not as numbers)."""
        values = {name: headers.get(header) for name, header in LIMIT_HEADERS.items()}
        if not all(v is not None and v.strip().isdigit() for v in values.values()):
            return None
        return cls(**{name: int(v) for name, v in values.items() if v is not None})


LIMIT_HEADERS = {"max_batch": "X-Max-Batch-Size", "max_grid": "X-Max-Grid-Cells", "max_steps": "X-Max-Steps",
                 "max_body_bytes": "X-Max-Body-Bytes"}


# -- the Open Inference Protocol (v2) -----------------------------------------------------------
# length of the JSON header before the binary tensors (the binary tensor data extension)
V2_HEADER_LENGTH = "Inference-Header-Content-Length"
# the config parameter that carries a version's manifest (JSON) to v2 clients
V2_MANIFEST_PARAMETER = "psf_surrogate_manifest"


# -- grids ---------------------------------------------------------------------------------------
def tile_centres(nx: int, ny: int) -> tuple[np.ndarray, np.ndarray]:
    """Centres of an ``nx x ny`` tiling of the sensor in sensor fractions: (x [nx], y [ny]).

    x_i = -1 + (2i + 1) / nx (left to right), y_j = 1 - (2j + 1) / ny (top row, +y, first): tile
    (row j, column i) of an image split into equal tiles is centred at (x_i, y_j), as image arrays are
    laid out. ``nx`` and ``ny`` are checked by the caller (:func:`models_store.conditions.sensor_grid`).
    """
    x = -1.0 + (2.0 * np.arange(nx) + 1.0) / nx
    y = 1.0 - (2.0 * np.arange(ny) + 1.0) / ny
    return x, y
