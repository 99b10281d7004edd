"""DeepLens's own JSON: checked here, then handed to DeepLens as it is.

The checks are the ones DeepLens would otherwise fail on deep inside (or not at all): the file parses,
it has a list of surfaces of types DeepLens builds, a sensor, and no mirror. A JSON written by DeepLens
also states its focal length and f-number (``foclen``, ``fnum``): they are the file's own claims, and
the traced lens must agree with them.
"""

from __future__ import annotations

import json
from pathlib import Path

from .base import LensDescription, LensFileError

SURFACE_TYPES = ("Aperture", "Aspheric", "Cubic", "Phase", "Binary2Phase", "Plane", "Stop", "Spheric", "ThinLens")


def _positive(data: dict, key: str) -> float | None:
    value = data.get(key)
    return float(value) if isinstance(value, (int, float)) and value > 0 else None


def read(path: Path) -> LensDescription:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LensFileError(f"{path}: not a DeepLens JSON lens: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("surfaces"), list) or not data["surfaces"]:
        raise LensFileError(f"{path}: a DeepLens JSON lens needs a non-empty 'surfaces' list")
    for i, surface in enumerate(data["surfaces"]):
        kind = surface.get("type") if isinstance(surface, dict) else None
        if kind not in SURFACE_TYPES:
            raise LensFileError(f"{path}: surfaces[{i}] has type {kind!r}; DeepLens reads {', '.join(SURFACE_TYPES)}")
        if "d_next" not in surface:
            raise LensFileError(f"{path}: surfaces[{i}] ({kind}) has no d_next (the distance to the next surface, mm)")
        if str(surface.get("mat2", "")).lower() == "mirror":
            raise LensFileError(f"{path}: surfaces[{i}] is a mirror; only refractive lenses can be traced")
    if not (_positive(data, "r_sensor") or isinstance(data.get("sensor_size", data.get("(sensor_size)")), list)):
        raise LensFileError(f"{path}: no sensor: give r_sensor (semi-diagonal, mm) or sensor_size [w, h] (mm)")
    waves = [1000.0 * float(w) for w in data.get("wvln_rgb", [])] if isinstance(data.get("wvln_rgb"), list) else []
    primary = _positive(data, "primary_wvln")
    return LensDescription(file=path, format="deeplens-json", deeplens_file=path, wavelengths_nm=sorted(waves),
                           primary_nm=None if primary is None else 1000.0 * primary,
                           claimed_focal_length=_positive(data, "foclen"), claimed_f_number=_positive(data, "fnum"))
