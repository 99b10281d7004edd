"""Zemax ``.zmx`` text as Zemax writes it: encodings, records, surface blocks.

A ``.zmx`` file is lines of ``KEY value ...`` records. System records (``UNIT``, ``ENPD``, ``FTYP``,
``WAVM`` ...) stand at the start of a line; a ``SURF n`` record opens a surface block whose records
(``TYPE``, ``CURV``, ``DISZ``, ``GLAS``, ``DIAM`` ...) are usually indented by two spaces, but files
written by other tools put them at the start of the line too, so a surface record is recognised by
its key as well as by its indentation. OpticStudio writes UTF-16 (with a byte-order mark), older
versions and other tools write UTF-8 or ASCII, and vendor files are often Windows-1252 / Latin-1.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass, field
from pathlib import Path

from .base import LensFileError

# Keys that belong to a surface block wherever they stand on the line (from files OpticStudio and other
# tools write); an unindented record with another key ends the block.
SURFACE_KEYS = frozenset((
    "TYPE", "CURV", "DISZ", "DIAM", "GLAS", "CONI", "PARM", "XDAT", "STOP", "COMM", "HIDE", "MIRR", "SLAB", "POPS",
    "FIMP", "MEMA", "OEMA", "CLAP", "FLAP", "SQAP", "ELAP", "OBSC", "OBDC", "SCBD", "COAT", "PZUP", "PPAR", "VPAR",
    "VDSZ", "SSID", "MAZH", "DMFS", "TOLE", "CVUP",
))


@dataclass
class SurfaceRecords:
    number: int
    records: dict[str, list[str]] = field(default_factory=dict)   # key -> tokens after the key
    parms: dict[int, str] = field(default_factory=dict)           # PARM n value
    stop: bool = False
    line: int = 0

    def get(self, key: str) -> list[str] | None:
        return self.records.get(key)


@dataclass
class ZemaxRecords:
    system: dict[str, list[list[str]]] = field(default_factory=dict)  # key -> every occurrence's tokens
    surfaces: list[SurfaceRecords] = field(default_factory=list)
    encoding: str = "utf-8"
    unindented_surface_lines: int = 0

    def first(self, key: str) -> list[str] | None:
        found = self.system.get(key)
        return found[-1] if found else None


def decode(path: Path, raw: bytes) -> tuple[str, str]:
    """(text, encoding name) of a .zmx file's bytes."""
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        candidates = ["utf-16"]
    elif raw.startswith(codecs.BOM_UTF8):
        candidates = ["utf-8-sig"]
    elif len(raw) >= 2 and raw[1] == 0 and raw[0] != 0:
        candidates = ["utf-16-le"]  # UTF-16 without a byte-order mark
    elif len(raw) >= 2 and raw[0] == 0 and raw[1] != 0:
        candidates = ["utf-16-be"]
    else:
        candidates = ["utf-8", "cp1252", "latin-1"]
    for encoding in candidates:
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError:
            continue
        if "\x00" not in text:
            return text, encoding
    raise LensFileError(f"{path}: not a Zemax text file (tried {', '.join(candidates)}; Zemax writes UTF-16, "
                        "UTF-8 or Windows-1252 / Latin-1 text)")


def parse(path: Path) -> ZemaxRecords:
    text, encoding = decode(path, path.read_bytes())
    out = ZemaxRecords(encoding=encoding)
    current: SurfaceRecords | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        key, tokens = parts[0].upper(), parts[1:]
        if key == "SURF":
            try:
                current = SurfaceRecords(int(tokens[0]), line=number)
            except (IndexError, ValueError):
                raise LensFileError(f"{path}: line {number}: malformed SURF record {line.strip()!r}") from None
            out.surfaces.append(current)
            continue
        indented = line[:1].isspace()
        if current is not None and (indented or key in SURFACE_KEYS):
            if not indented:
                out.unindented_surface_lines += 1
            if key == "STOP":
                current.stop = True
            elif key == "PARM" and tokens:
                try:
                    current.parms[int(tokens[0])] = tokens[1] if len(tokens) > 1 else "0"
                except ValueError:
                    raise LensFileError(f"{path}: line {number}: surface {current.number}: malformed PARM record "
                                        f"{line.strip()!r}") from None
            else:
                current.records[key] = tokens
            continue
        current = None  # a system record ends the surface block
        out.system.setdefault(key, []).append(tokens)
    numbers = [s.number for s in out.surfaces]
    if numbers != list(range(len(numbers))):
        raise LensFileError(f"{path}: SURF numbers {numbers[:12]} are not 0, 1, 2, ... in order")
    return out


def number(path: Path, where: str, token: str) -> float:
    """A Zemax number (decimal comma tolerated); the error names where it stood."""
    try:
        return float(token.replace(",", "."))
    except ValueError:
        raise LensFileError(f"{path}: {where}: {token!r} is not a number") from None
