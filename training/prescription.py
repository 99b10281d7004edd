"""Lens prescription files: checked before DeepLens reads them, so a user's lens fails with a message
that names the file, the surface and what is supported, not with a trace from inside the ray tracer.

DeepLens reads its own JSON and Zemax ``.zmx`` (STANDARD and EVENASPH surfaces, lengths in mm, even
aspheric terms up to PARM 8).
"""

from __future__ import annotations

from pathlib import Path

SUFFIXES = (".json", ".zmx")
ZEMAX_SURFACES = ("STANDARD", "EVENASPH")
ZEMAX_MAX_PARM = 8


class LensFileError(ValueError):
    """A lens file that cannot be traced; the message names the file and the part at fault."""


def _zemax_lines(path: Path) -> list[str]:
    raw = path.read_bytes()
    for encoding in ("utf-8", "utf-16"):
        try:
            return raw.decode(encoding).splitlines()
        except UnicodeDecodeError:
            continue
    raise LensFileError(f"{path}: not a text file in UTF-8 or UTF-16")


def zemax_surfaces(path: Path) -> dict[int, dict[str, str]]:
    """SURF number -> {record: value} of a .zmx file (the object surface is 0, the image the last)."""
    surfaces: dict[int, dict[str, str]] = {}
    current = None
    for line in _zemax_lines(path):
        parts = line.strip().split(maxsplit=1)
        if not parts:
            continue
        if parts[0] == "SURF":
            try:
                current = int(parts[1].split()[0])
            except (IndexError, ValueError):
                raise LensFileError(f"{path}: malformed SURF line {line.strip()!r}") from None
            surfaces[current] = {}
        elif current is not None and line[:1].isspace():
            key = parts[0]
            value = parts[1] if len(parts) > 1 else ""
            if key == "PARM" and value:
                key, value = f"PARM{value.split()[0]}", " ".join(value.split()[1:])
            surfaces[current][key] = value
        else:
            current = None  # an unindented record ends the surface block
        if parts[0] == "UNIT":
            unit = parts[1].split()[0] if len(parts) > 1 else "<missing>"
            if unit.upper() != "MM":
                raise LensFileError(f"{path}: UNIT {unit!r}; only MM prescriptions are supported")
    return surfaces


def check_zemax(path: Path) -> None:
    surfaces = zemax_surfaces(path)
    if len(surfaces) < 3:
        raise LensFileError(f"{path}: found {len(surfaces)} SURF blocks; a lens needs an object surface, "
                            "at least one lens surface and an image surface")
    last = max(surfaces)
    for number in sorted(surfaces):
        if not 0 < number < last:
            continue
        record = surfaces[number]
        kind = record.get("TYPE", "<missing>").split()[0] if record.get("TYPE") else "<missing>"
        if kind not in ZEMAX_SURFACES:
            raise LensFileError(f"{path}: surface {number} has type {kind}; supported Zemax surface types are "
                                f"{', '.join(ZEMAX_SURFACES)}")
        for key, value in record.items():
            if not key.startswith("PARM"):
                continue
            try:
                order, coefficient = int(key[4:]), float(value.split()[0])
            except (ValueError, IndexError):
                raise LensFileError(f"{path}: surface {number}: malformed {key} {value!r}") from None
            if coefficient != 0.0 and (kind == "STANDARD" or order > ZEMAX_MAX_PARM):
                raise LensFileError(f"{path}: surface {number} ({kind}) sets {key} = {coefficient}; only "
                                    f"EVENASPH PARM 1..{ZEMAX_MAX_PARM} are supported")
    if "DIAM" not in surfaces[last]:
        raise LensFileError(f"{path}: the image surface {last} has no DIAM (the sensor semi-diagonal)")


def check_lens_file(path: str | Path) -> Path:
    """Raise :class:`LensFileError` unless ``path`` is a prescription DeepLens can trace."""
    path = Path(path)
    if not path.is_file():
        raise LensFileError(f"lens file {path} does not exist (see lenses/ for shipped lenses)")
    if path.suffix.lower() not in SUFFIXES:
        raise LensFileError(f"{path}: unknown lens format {path.suffix!r}; use DeepLens JSON (.json) or Zemax (.zmx)")
    if path.suffix.lower() == ".zmx":
        check_zemax(path)
    return path
