"""The methods every PSF source offers, written once.

:class:`PSFClient`, :class:`AsyncPSFClient` and :class:`LocalPSFModel` inherit these methods; each
method only names an operation (:class:`Op`) and hands it to the source's ``_do``, which answers it
over HTTP (sync or async) or in-process. So the three share one signature and one docstring per
method, and an ``AsyncPSFClient`` method returns an awaitable of what the others return.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field as dc_field
from typing import Any, NamedTuple

import numpy as np

Number = float | int | np.number
Column = Number | Sequence[float] | np.ndarray
Version = int | str | None


@dataclass(frozen=True)
class Op:
    """One operation: its name and its arguments (``None`` meaning 'not given')."""

    name: str
    args: dict[str, Any] = dc_field(default_factory=dict)


class Latent(NamedTuple):
    """Prior mean and log-variance of the latent, each a float32 [N, L] array with ``.meta``."""

    mu: np.ndarray
    logvar: np.ndarray


def condition(field: Any, azimuth: Any, x: Any, y: Any, depth: Any, wavelength: Any, focus: Any) -> dict[str, Any]:
    return {"field": field, "azimuth": azimuth, "x": x, "y": y, "depth": depth, "wavelength": wavelength,
            "focus": focus}


class PSFMethods:
    """Positions are ``field`` (fraction of the sensor half-diagonal, 0..1) with ``azimuth`` [deg, 0 = +x,
    counter-clockwise, default 90], or ``x`` and ``y`` (fractions of the half-width / half-height,
    -1..1). ``depth`` and ``focus`` in metres, ``wavelength`` in nanometres. ``model`` and ``version``
    (number or alias) default to the source's default model and its ``latest`` version.

    Kernels are float32 :class:`PSFArray` s (non-negative, unit sum, row 0 is image +y, columns grow
    toward +x) whose ``.meta`` gives model, version, kernel size and pixel pitch. ``depth`` and
    ``wavelength`` are required; leaving one out gets the server's message naming the trained range.
    """

    def _do(self, op: Op) -> Any:  # pragma: no cover - every source overrides it
        raise NotImplementedError

    def psf(self, *, depth: Number | None = None, wavelength: Number | None = None,
            field: Number | None = None, azimuth: Number | None = None, x: Number | None = None,
            y: Number | None = None, focus: Number | None = None, model: str | None = None,
            version: Version = None) -> np.ndarray:
        """One PSF, float32 [k, k]."""
        return self._do(Op("psf", {**condition(field, azimuth, x, y, depth, wavelength, focus),
                                   "model": model, "version": version}))

    def psf_batch(self, *, depth: Column | None = None, wavelength: Column | None = None,
                  field: Column | None = None, azimuth: Column | None = None, x: Column | None = None,
                  y: Column | None = None, focus: Column | None = None, model: str | None = None,
                  version: Version = None) -> np.ndarray:
        """Many PSFs, float32 [N, k, k], in the order of the columns.

        Each condition is a number or a sequence / 1-D array; those of length N give one value per PSF,
        numbers (or length 1) apply to all. Clients split batches over the server's limit into several
        requests (the limit comes from ``max_batch=`` or is learned from the server's 413) and pin the
        version of the first answer, so every row comes from the same model version.
        """
        return self._do(Op("psf_batch", {**condition(field, azimuth, x, y, depth, wavelength, focus),
                                         "model": model, "version": version}))

    def psf_grid(self, nx: int, ny: int, *, depth: Number | None = None, wavelength: Number | None = None,
                 focus: Number | None = None, model: str | None = None, version: Version = None) -> np.ndarray:
        """PSFs on an ``ny x nx`` grid of sensor tiles, float32 [ny, nx, k, k].

        ``grid[j, i]`` is the PSF at the centre of tile (row j, column i): x_i = -1 + (2i+1)/nx (left to
        right), y_j = 1 - (2j+1)/ny (top row first), i.e. laid out like the image.
        """
        return self._do(Op("psf_grid", {"nx": int(nx), "ny": int(ny), "depth": depth, "wavelength": wavelength,
                                        "focus": focus, "model": model, "version": version}))

    def interpolate(self, start: Mapping[str, Any], end: Mapping[str, Any], *, steps: int,
                    method: str = "linear", model: str | None = None, version: Version = None) -> np.ndarray:
        """PSFs along the latent path between two endpoints, float32 [steps, k, k].

        Each endpoint is a condition (``{"field": .., "depth": .., "wavelength": ..}`` or with ``x``/``y``)
        and optionally ``"psf"``: a measured k x k PSF at that condition, placed in latent space by the
        encoder. ``method``: ``"linear"`` or ``"slerp"``.
        """
        return self._do(Op("interpolate", {"start": dict(start), "end": dict(end), "steps": int(steps),
                                           "method": method, "model": model, "version": version}))

    def latent(self, *, depth: Column | None = None, wavelength: Column | None = None,
               field: Column | None = None, azimuth: Column | None = None, x: Column | None = None,
               y: Column | None = None, focus: Column | None = None, model: str | None = None,
               version: Version = None) -> Latent:
        """The learned prior of the latent at these conditions: ``Latent(mu, logvar)``, each [N, L]."""
        return self._do(Op("latent", {**condition(field, azimuth, x, y, depth, wavelength, focus),
                                      "model": model, "version": version}))

    def decode(self, z: Any, *, depth: Column | None = None, wavelength: Column | None = None,
               field: Column | None = None, azimuth: Column | None = None, x: Column | None = None,
               y: Column | None = None, focus: Column | None = None, model: str | None = None,
               version: Version = None) -> np.ndarray:
        """Decode latents ``z`` [N, L] (or [L]) at these conditions into PSFs, float32 [N, k, k]."""
        return self._do(Op("decode", {"z": z, **condition(field, azimuth, x, y, depth, wavelength, focus),
                                      "model": model, "version": version}))

    def models(self) -> list[dict[str, Any]]:
        """Every model the source knows: name, versions, aliases, the version it serves."""
        return self._do(Op("models"))

    def model(self, name: str, version: Version = None) -> dict[str, Any]:
        """The full manifest of one model version (trained ranges, lens, evaluation card) as a dict."""
        return self._do(Op("model", {"name": name, "version": version}))

    def health(self) -> bool:
        """True when the source answers at all."""
        return self._do(Op("health"))

    def ready(self) -> bool:
        """True when the source can answer PSF queries (a model is loaded)."""
        return self._do(Op("ready"))
