"""Arrays that carry the metadata rendering needs, without getting in the way of plain numpy use.

Every PSF the clients return is a :class:`PSFArray`: an ``np.ndarray`` subclass with one extra
attribute, ``meta`` (a frozen :class:`PSFMeta`: model, version, kernel size, pixel pitch). It goes
anywhere an ndarray goes; slices and arithmetic keep ``meta``; reductions to a single number give a
plain numpy scalar; ``np.asarray(psfs)`` drops the subclass when a plain array is wanted. We chose a
subclass over a ``(array, meta)`` pair so that ``client.psf(...)`` stays a drop-in array.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Self

import numpy as np

from models_store.wire import (
    DEFAULT_DTYPE,
    HEADER_KERNEL_SIZE,
    HEADER_MODEL,
    HEADER_PIXEL_PITCH,
    HEADER_VERSION,
    DType,
    read_npy,
)

from ._exceptions import PSFError


@dataclass(frozen=True)
class PSFMeta:
    """What a PSF array was computed by and how it is sampled.

    ``pixel_pitch_um``: the sensor pixel pitch the kernel is sampled at [um]; ``kernel_size``: k of the
    ``k x k`` kernels. Both are None for results that are not kernels (latent vectors).
    """

    model: str
    version: int
    kernel_size: int | None = None
    pixel_pitch_um: float | None = None

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> PSFMeta | None:
        """From the model headers of an answer (``models_store.wire.MODEL_HEADERS``)."""
        try:
            kernel = headers.get(HEADER_KERNEL_SIZE)
            pitch = headers.get(HEADER_PIXEL_PITCH)
            return cls(model=headers[HEADER_MODEL], version=int(headers[HEADER_VERSION]),
                       kernel_size=int(kernel) if kernel else None,
                       pixel_pitch_um=float(pitch) if pitch else None)
        except (KeyError, ValueError):
            return None


class PSFArray(np.ndarray):
    """An ndarray of PSFs (or latents) with ``.meta``, float32 or the float16 asked for; see the module
    docstring."""

    meta: PSFMeta | None

    def __new__(cls, array: Any, meta: PSFMeta | None = None) -> Self:
        out = np.asarray(array).view(cls)
        out.meta = meta
        return out

    def __array_finalize__(self, obj: Any) -> None:
        self.meta = getattr(obj, "meta", None)

    def __array_wrap__(self, array: np.ndarray, context: Any = None, return_scalar: bool = False) -> Any:
        # psf.sum() is a number, not a 0-d PSFArray
        if return_scalar or array.ndim == 0:
            return array[()]
        return super().__array_wrap__(array, context, return_scalar)

    def __reduce__(self) -> tuple[Any, ...]:
        # pickling (multiprocessing, joblib) keeps meta
        return (PSFArray, (np.asarray(self), self.meta))


def with_meta(array: Any, meta: PSFMeta | None, dtype: DType = DEFAULT_DTYPE) -> PSFArray:
    return PSFArray(np.asarray(array, dtype=dtype), meta)


def load_npy(content: bytes, *, ndim: int, what: str, dtype: DType = DEFAULT_DTYPE, status_code: int | None = None,
             content_type: str | None = None) -> np.ndarray:
    """A ``dtype`` array of ``ndim`` dimensions from .npy bytes; a PSFError saying what came instead."""
    try:
        array = read_npy(content)
    except ValueError as exc:
        raise PSFError(f"the server's answer is {exc} (content-type {content_type or '?'})",
                       status_code=status_code) from exc
    if array.ndim != ndim or array.dtype != np.dtype(dtype):
        raise PSFError(f"expected {dtype} {what}, got {array.dtype} {list(array.shape)}", status_code=status_code)
    return array
