"""What every PSF source takes and gives: the query keywords, the results, and :class:`PSFSource`.

:class:`PSFClient`, :class:`AsyncPSFClient` and :class:`LocalPSFModel` each write their methods out
(the async client's are coroutines), with the keywords typed once here (:class:`Point`,
:class:`Columns`) and read by :func:`point` / :func:`columns`, so a misspelt keyword is refused the
same way everywhere. :class:`PSFSource` is the blocking interface rendering code can accept
(``PSFClient``, ``PSFClient(protocol="v2")`` and ``LocalPSFModel`` satisfy it).

Positions are ``field`` (fraction of the sensor half-diagonal, 0..1) with ``azimuth`` [deg, 0 = +x,
counter-clockwise, default 90], or ``x`` and ``y`` (fractions of the half-width / half-height,
-1..1). ``depth`` and ``focus`` in metres, ``wavelength`` in nanometres. ``model`` and ``version``
(number or alias) default to the source's default model and its ``latest`` version. ``depth`` and
``wavelength`` are required; leaving one out gets the server's message naming the trained range.

Kernels are :class:`PSFArray` s (non-negative, unit sum, row 0 is image +y, columns grow toward +x),
float32 unless ``dtype="float16"`` was asked (half the bytes; error bound in README.md), whose
``.meta`` gives model, version, kernel size and pixel pitch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple, Protocol, TypedDict, Unpack

import numpy as np

from models_store.wire import DEFAULT_DTYPE, QUERY_COLUMNS, DType, check_dtype

from ._arrays import PSFArray
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
    focus: Column | None
    model: str | None
    version: Version


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


class PSFSource(Protocol):
    """The blocking methods every PSF source offers (see the module docstring for the keywords)."""

    def psf(self, *, dtype: DTypeLike = DEFAULT_DTYPE, **query: Unpack[Point]) -> PSFArray:
        """One PSF, [k, k]."""
        ...

    def psf_batch(self, *, dtype: DTypeLike = DEFAULT_DTYPE, **query: Unpack[Columns]) -> PSFArray:
        """Many PSFs, [N, k, k], in the order of the columns. HTTP clients split batches over the server's
        limit into several requests and pin the version of the first answer."""
        ...

    def psf_grid(self, nx: int, ny: int, *, depth: Number | None = None, wavelength: Number | None = None,
                 focus: Number | None = None, model: str | None = None, version: Version = None,
                 dtype: DTypeLike = DEFAULT_DTYPE) -> PSFArray:
        """PSFs on an ``ny x nx`` grid of sensor tiles, [ny, nx, k, k]: ``grid[j, i]`` is the PSF at the
        centre of tile (row j, column i), laid out like the image (``models_store.wire.tile_centres``)."""
        ...

    def latent(self, **query: Unpack[Columns]) -> Latent:
        """The learned prior of the latent at these conditions: ``Latent(mu, logvar)``, each [N, L]."""
        ...

    def decode(self, z: Any, **query: Unpack[Columns]) -> PSFArray:
        """Decode latents ``z`` [N, L] (or [L]) at these conditions into PSFs, float32 [N, k, k]."""
        ...

    def model(self, name: str, version: Version = None) -> dict[str, Any]:
        """The full manifest of one model version (trained ranges, lens, evaluation card) as a dict."""
        ...

    def health(self) -> bool:
        """True when the source answers at all."""
        ...

    def ready(self) -> bool:
        """True when the source can answer PSF queries (a model is loaded)."""
        ...
