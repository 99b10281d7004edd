"""Lens formats behind one seam: a reader per format, chosen by the file's suffix (any letter case).

Every reader is a function ``read(path) -> LensDescription`` in its own module, declared here by the
dotted path of that function, so reading a config never imports a reader (or torch) it does not need.
``training.lens_formats.build`` turns any description into a DeepLens ``GeoLens``. A new format (a Code V
``.seq``, a plain table) is one more module and one more ``FORMATS.add`` line.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

from .base import Aperture, Fields, Glass, LensDescription, LensFileError, LensMismatchError, Surface


@dataclass(frozen=True)
class LensFormat:
    name: str
    suffixes: tuple[str, ...]      # lower case, with the dot
    impl: str                      # "package.module:function" returning a LensDescription
    pixel_grid: bool               # whether the file gives the sensor's pixel grid
    description: str = ""


class LensFormats:
    def __init__(self) -> None:
        self._formats: dict[str, LensFormat] = {}

    def add(self, name: str, *, suffixes: tuple[str, ...], impl: str, pixel_grid: bool, description: str = "") -> None:
        if ":" not in impl:
            raise ValueError(f"lens format {name!r}: impl {impl!r} must be 'package.module:function'")
        taken = {s: f.name for f in self._formats.values() for s in f.suffixes if f.name != name}
        for suffix in suffixes:
            if suffix.lower() in taken:
                raise ValueError(f"lens format {name!r}: suffix {suffix} is already read by {taken[suffix.lower()]!r}")
        self._formats[name] = LensFormat(name, tuple(s.lower() for s in suffixes), impl, pixel_grid, description)

    def remove(self, name: str) -> None:
        self._formats.pop(name, None)

    def names(self) -> list[str]:
        return sorted(self._formats)

    def suffixes(self) -> list[str]:
        return [s for f in self._formats.values() for s in f.suffixes]

    def for_path(self, path: Path) -> LensFormat:
        suffix = path.suffix.lower()
        for fmt in self._formats.values():
            if suffix in fmt.suffixes:
                return fmt
        known = ", ".join(f"{f.description or f.name} ({'/'.join(f.suffixes)})" for f in self._formats.values())
        raise LensFileError(f"{path}: unknown lens format {path.suffix!r}; readable formats: {known}")


FORMATS = LensFormats()
FORMATS.add("deeplens-json", suffixes=(".json",), impl="training.lens_formats.deeplens_json:read", pixel_grid=True,
            description="DeepLens JSON")
FORMATS.add("zemax", suffixes=(".zmx",), impl="training.lens_formats.zemax:read", pixel_grid=False,
            description="Zemax sequential")


def read_lens(path: str | Path) -> LensDescription:
    """The description of a lens file, or :class:`LensFileError` naming what cannot be traced."""
    path = Path(path)
    if not path.is_file():
        raise LensFileError(f"lens file {path} does not exist (see lenses/ for shipped lenses)")
    fmt = FORMATS.for_path(path)
    module, _, attr = fmt.impl.partition(":")
    return getattr(importlib.import_module(module), attr)(path)


def check_lens_file(path: str | Path) -> Path:
    """Raise :class:`LensFileError` unless ``path`` is a prescription that can be handed to DeepLens
    (the checks that need no ray tracing: format, surfaces, mirrors, tilts, units, aperture, sensor)."""
    read_lens(path)
    return Path(path)


def require_pixel_grid(path: str | Path, sensor_res: tuple[int, int] | list[int] | None) -> None:
    """The one rule for the pixel grid: a format that gives none (Zemax) needs ``lens.sensor_res``."""
    path = Path(path)
    if sensor_res is None and not FORMATS.for_path(path).pixel_grid:
        raise LensFileError(f"{path} is a {FORMATS.for_path(path).description} file, which gives the sensor's size but "
                            "not its pixel grid: set lens.sensor_res: [width, height] (inspect: --sensor-res W H)")


__all__ = ["FORMATS", "Aperture", "Fields", "Glass", "LensDescription", "LensFileError", "LensFormat",
           "LensMismatchError", "Surface", "check_lens_file", "read_lens", "require_pixel_grid"]
