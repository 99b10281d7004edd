"""What every PSF source takes and gives: the query keywords and the results.

The method table (``clients._methods``) types its keywords with :class:`Point` and :class:`Columns`
and reads them with :func:`point` / :func:`columns`, so a misspelt keyword is refused the same way by
every source.

Positions are ``field`` (fraction of the sensor half-diagonal, 0..1) with ``azimuth`` [deg, 0 = +x, counter-
clockwise, default 90], or ``x`` and ``y`` (fractions of the half-width / half-height, -1..1), or ``x_mm`` and
``y_mm`` (millimetres from the optical axis, +y up), or ``px`` and ``py`` (pixels of the model's sensor grid,
(0, 0) = centre of the top-left pixel, rows grow downward): each names the ideal image point
(``models_store.sensor``). ``depth`` and ``focus`` in metres, ``wavelength`` in nanometres. ``model`` and
``version`` (number or alias) default to the source's default model and its ``latest`` version. ``depth`` and
``wavelength`` are required; leaving one out gets the server's message naming the trained range.

Kernels are :class:`PSFArray` s (non-negative, unit sum, row 0 is image +y, columns grow toward +x),
float32 unless ``dtype="float16"`` was asked (half the bytes; error bound in README.md), whose
``.meta`` gives model, version, kernel size and pixel pitch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple, TypedDict

import numpy as np

from models_store.wire import QUERY_COLUMNS, DType, check_dtype

from ._exceptions import InvalidRequestError

Number = float | int | np.number[Any]
Column = Number | Sequence[float] | np.ndarray
Version = int | str | None
DTypeLike = str | type | np.dtype[Any]


class Point(TypedDict, total=False):
    """The keywords of one PSF: a condition of scalars, and which model answers."""

    depth: Number | None
    wavelength: Number | None
    field: Number | None
    azimuth: Number | None
    x: Number | None
    y: Number | None
    x_mm: Number | None
    y_mm: Number | None
    px: Number | None
    py: Number | None
    focus: Number | None
    model: str | None
    version: Version


class Columns(TypedDict, total=False):
    """The keywords of many PSFs: each condition a number or a sequence / 1-D array; those of length N
    give one value per row, numbers (or length 1) apply to all."""

    depth: Column | None
    wavelength: Column | None
    field: Column | None
    azimuth: Column | None
    x: Column | None
    y: Column | None
    x_mm: Column | None
    y_mm: Column | None
    px: Column | None
    py: Column | None
    focus: Column | None
    model: str | None
    version: Version


class ImageGeometry(NamedTuple):
    """Where each PSF's chief ray lands and how much light arrives there, float64 arrays [N] (``geometry``)
    or [ny, nx] (``distortion``), in the sensor frame of ``models_store.sensor``: millimetres from the
    optical axis (+x right, +y up) and pixels of the model's sensor grid (column, row; (0, 0) = centre of
    the top-left pixel, rows grow downward)."""

    x_mm: np.ndarray
    y_mm: np.ndarray
    x_px: np.ndarray
    y_px: np.ndarray
    ideal_x_px: np.ndarray     # the ideal (distortion-free) image point
    ideal_y_px: np.ndarray
    distortion_px: np.ndarray  # radial shift of the chief ray from the ideal point, > 0 outward
    illumination: np.ndarray   # relative illumination, 1 on the axis at the middle of the trained band

    @classmethod
    def of(cls, values: Any) -> ImageGeometry:
        """From a mapping of the values (``models_store.image_geometry``, or an answer's JSON)."""
        return cls(*(np.asarray(values[name], dtype=np.float64) for name in cls._fields))


class Latent(NamedTuple):
    """Prior mean and log-variance of the latent, each a float32 [N, L] array with ``.meta``."""

    mu: np.ndarray
    logvar: np.ndarray


_KEYWORDS = (*QUERY_COLUMNS, "model", "version")


class Query(NamedTuple):
    """A call's keywords, read: every condition column (None where not given), the model reference."""

    conditions: dict[str, Any]
    model: str | None
    version: Version


def _read(method: str, given: Mapping[str, Any]) -> Query:
    unknown = sorted(set(given) - set(_KEYWORDS))
    if unknown:
        raise TypeError(f"{method}() got an unexpected keyword argument {unknown[0]!r}; it takes "
                        f"{', '.join(_KEYWORDS)}")
    return Query({k: given.get(k) for k in QUERY_COLUMNS}, given.get("model"), given.get("version"))


def point(method: str, given: Point) -> Query:
    return _read(method, given)


def columns(method: str, given: Columns) -> Query:
    return _read(method, given)


def dtype_of(dtype: DTypeLike) -> DType:
    """The dtype a caller asked for, as the protocol names it; InvalidRequestError naming what is allowed."""
    try:
        return check_dtype(dtype)
    except ValueError as exc:
        raise InvalidRequestError(str(exc)) from None
