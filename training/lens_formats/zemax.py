"""Zemax sequential ``.zmx`` reader, written here from the format's public descriptions.

What it reads: STANDARD surfaces (a missing ``TYPE`` is STANDARD, as in Zemax; a conic makes them
aspheric), EVENASPH (``PARM 1..8``: the r^2 .. r^16 terms), a COORDBRK that neither tilts nor decentres
(read as a plain gap), the system aperture (``ENPD``, ``FNUM``, ``OBNA``, ``FLOA``), the field points
(``FTYP``, ``XFLN`` / ``YFLN``: angles, object heights or image heights), the wavelengths (``WAVM`` or
``WAVL``, ``PWAV``), and every ``GLAS`` record with the nd / vd it stores. Lengths in CM, IN or M are
converted to mm. What DeepLens cannot trace is refused by name before any tracing: mirrors, tilts and
decentres, other surface types, obscurations and non-circular apertures, negative thicknesses, a curved
image surface. Everything assumed or converted is a note of the description.
"""

from __future__ import annotations

import math
from pathlib import Path

from .base import Aperture, Fields, Glass, LensDescription, LensFileError, Surface
from .zemax_text import SurfaceRecords, ZemaxRecords, number, parse

SUPPORTED = ("STANDARD", "EVENASPH")
MAX_PARM = 8
UNITS_MM = {"MM": 1.0, "CM": 10.0, "IN": 25.4, "M": 1000.0, "METER": 1000.0, "METERS": 1000.0}
FIELD_KINDS = {0: "angle", 1: "object_height", 2: "paraxial_image_height", 3: "real_image_height", 4: "angle"}
TILT_PARMS = {1: "decentre x", 2: "decentre y", 3: "tilt about x", 4: "tilt about y", 5: "tilt about z"}
SMALLEST_SENSOR_MM = 1e-3   # an image semi-diameter below this is the size of a spot, not of a sensor


def _floats(path: Path, where: str, tokens: list[str] | None) -> list[float]:
    return [number(path, where, t) for t in tokens or []]


def _units(path: Path, zmx: ZemaxRecords, notes: list[str]) -> float:
    unit = zmx.first("UNIT")
    name = unit[0].upper() if unit else "MM"
    if name not in UNITS_MM:
        raise LensFileError(f"{path}: UNIT {name!r}; lens units MM, CM, IN and M are supported")
    if name != "MM":
        notes.append(f"lens units {name}: lengths converted to mm (x {UNITS_MM[name]:g})")
    return UNITS_MM[name]


def _wavelengths(path: Path, zmx: ZemaxRecords, count: int | None, notes: list[str]) -> tuple[list[float], float]:
    waves: list[float] = []
    if zmx.first("WAVL"):
        waves = [1000.0 * w for w in _floats(path, "WAVL", zmx.first("WAVL")) if w > 0]
    else:
        for tokens in zmx.system.get("WAVM", []):
            if len(tokens) >= 2 and (count is None or int(number(path, "WAVM", tokens[0])) <= count):
                waves.append(1000.0 * number(path, "WAVM", tokens[1]))
    if not waves:
        notes.append("no wavelengths in the file: 587.6 nm assumed")
        return [587.6], 587.6
    pwav = zmx.first("PWAV")
    index = int(number(path, "PWAV", pwav[0])) if pwav else 0
    if 1 <= index <= len(waves):
        return waves, waves[index - 1]
    primary = waves[(len(waves) - 1) // 2] if len(waves) > 2 else waves[0]
    notes.append(f"no primary wavelength (PWAV): {primary:.1f} nm, the middle of the file's wavelengths, used")
    return waves, primary


def _fields(path: Path, zmx: ZemaxRecords, scale: float, notes: list[str]) -> tuple[Fields | None, int | None]:
    ftyp = zmx.first("FTYP")
    kind_code, n_fields, n_waves = 0, None, None
    if ftyp:
        values = [int(number(path, "FTYP", t)) for t in ftyp[:4]]
        kind_code = values[0]
        n_fields = values[2] if len(values) > 2 else None
        n_waves = values[3] if len(values) > 3 else None
    else:
        notes.append("no FTYP record: field values read as angles [deg]")
    if kind_code not in FIELD_KINDS:
        raise LensFileError(f"{path}: FTYP field type {kind_code}; supported: 0 angle, 1 object height, 2 paraxial "
                            "image height, 3 real image height, 4 theodolite angle")
    xs = _floats(path, "XFLN", zmx.first("XFLN"))
    ys = _floats(path, "YFLN", zmx.first("YFLN"))
    if not xs and not ys:
        return None, n_waves
    n = n_fields if n_fields is not None else max(len(xs), len(ys))
    xs, ys = (xs + [0.0] * n)[:n], (ys + [0.0] * n)[:n]
    kind = FIELD_KINDS[kind_code]
    if kind_code == 4:
        notes.append("theodolite field angles read as field angles")
    radial = max((math.hypot(x, y) for x, y in zip(xs, ys, strict=True)), default=0.0)
    return Fields(kind, radial if kind == "angle" else radial * scale), n_waves


def _aperture(path: Path, zmx: ZemaxRecords, scale: float, notes: list[str]) -> Aperture:
    found: list[Aperture] = []
    for key in ("ENPD", "FNUM", "OBNA", "FLOA"):
        tokens = zmx.first(key)
        if tokens is None:
            continue
        if key == "FLOA":
            found.append(Aperture("FLOA"))
            continue
        value = number(path, key, tokens[0]) if tokens else float("nan")
        kind = int(number(path, key, tokens[1])) if len(tokens) > 1 else 0
        if not value > 0:
            raise LensFileError(f"{path}: {key} {tokens[0] if tokens else ''}: the system aperture must be positive")
        if key == "ENPD":
            found.append(Aperture("ENPD", value * scale))
        elif key == "FNUM":
            if kind == 1:
                notes.append("aperture FNUM is a paraxial working F/#: read as the image-space F/#")
            found.append(Aperture("FNUM", value))
        else:
            found.append(Aperture("CONE" if kind == 1 else "OBNA", value))
    if not found:
        notes.append("no system aperture record: the stop's semi-diameter sets the aperture (float by stop size)")
        return Aperture("FLOA")
    return found[0]


def _surface_type(s: SurfaceRecords) -> str:
    tokens = s.get("TYPE")
    return tokens[0].upper() if tokens else "STANDARD"


def _refuse_tilts_and_apertures(path: Path, s: SurfaceRecords) -> None:
    where = f"surface {s.number}"
    scbd = _floats(path, f"{where} SCBD", s.get("SCBD"))
    if any(v != 0 for v in scbd[3:]):
        raise LensFileError(f"{path}: {where} is tilted or decentred (SCBD {' '.join(s.get('SCBD') or [])}); "
                            "DeepLens traces centred systems only: tilts and decentres cannot be traced")
    if any(v != 0 for v in _floats(path, f"{where} OBDC", s.get("OBDC"))):
        raise LensFileError(f"{path}: {where} has a decentred aperture (OBDC {' '.join(s.get('OBDC') or [])}); "
                            "only apertures centred on the axis can be traced")
    if s.get("OBSC") is not None:
        raise LensFileError(f"{path}: {where} has a central obscuration (OBSC); DeepLens cannot block the centre "
                            "of the beam, so the PSF would be wrong")
    for key, what in (("SQAP", "rectangular"), ("ELAP", "elliptical")):
        if s.get(key) is not None:
            raise LensFileError(f"{path}: {where} has a {what} aperture ({key}); only circular apertures can be traced")
    clap = _floats(path, f"{where} CLAP", s.get("CLAP"))
    if len(clap) >= 2 and clap[0] > 0:
        raise LensFileError(f"{path}: {where} has an annular aperture (CLAP from {clap[0]:g}); only full circular "
                            "apertures can be traced")


def _glass(path: Path, s: SurfaceRecords) -> Glass | None:
    tokens = s.get("GLAS")
    if not tokens:
        return None
    name = tokens[0]
    if name.upper() == "MIRROR":
        raise LensFileError(f"{path}: surface {s.number} is a mirror (GLAS MIRROR); DeepLens traces refractive lenses "
                            "only (it would read a mirror as glass), so catadioptric and mirror systems are refused")
    if name.upper() == "AIR":
        return None
    values: list[float | None] = []
    for token in tokens[1:5]:
        try:
            values.append(float(token.replace(",", ".")))
        except ValueError:
            values.append(None)
    code = int(values[0]) if values and values[0] is not None else 0
    nd = values[2] if len(values) > 2 else None
    vd = values[3] if len(values) > 3 else None
    return Glass(name, s.number, code, nd, vd)


def _lens_surface(path: Path, s: SurfaceRecords, kind: str, scale: float, notes: list[str]) -> Surface:
    where = f"surface {s.number}"
    curv = _floats(path, f"{where} CURV", (s.get("CURV") or ["0"])[:1])[0] / scale
    disz = _floats(path, f"{where} DISZ", (s.get("DISZ") or ["0"])[:1])[0] * scale
    if not math.isfinite(disz) or disz < 0:
        raise LensFileError(f"{path}: {where}: thickness DISZ {disz:g} mm; DeepLens traces surfaces in order along "
                            "+z, so thicknesses must be finite and not negative (a negative one follows a mirror or "
                            "folds the system back)")
    conic = _floats(path, f"{where} CONI", (s.get("CONI") or ["0"])[:1])[0]
    diam = _floats(path, f"{where} DIAM", (s.get("DIAM") or [])[:1])
    r = diam[0] * scale if diam and diam[0] > 0 else None
    clap = _floats(path, f"{where} CLAP", s.get("CLAP"))
    if len(clap) >= 2 and clap[1] > 0 and (r is None or clap[1] * scale < r):
        r = clap[1] * scale
        notes.append(f"{where}: semi-diameter {r:.4g} mm from its circular aperture (CLAP)")
    ai: list[float] = []
    parms = {n: number(path, f"{where} PARM {n}", v) for n, v in s.parms.items()}
    if kind == "EVENASPH":
        extra = {n: v for n, v in parms.items() if n > MAX_PARM and v != 0}
        if extra:
            n, v = min(extra.items())
            raise LensFileError(f"{path}: {where} (EVENASPH) sets PARM{n} = {v}; only EVENASPH PARM 1..{MAX_PARM} "
                                "are supported")
        ai = [parms.get(i, 0.0) * scale ** (1 - 2 * i) for i in range(1, MAX_PARM + 1)]
    elif any(parms.values()):
        notes.append(f"{where}: PARM values on a STANDARD surface are unused by Zemax and ignored")
    return Surface(s.number, c=curv, d_next=disz, r=r, k=conic, ai=ai, glass=_glass(path, s), is_stop=s.stop)


def _image(path: Path, image: SurfaceRecords, fields: Fields | None, scale: float,
           desc: LensDescription) -> None:
    curv = _floats(path, f"image surface {image.number} CURV", (image.get("CURV") or ["0"])[:1])[0]
    if curv != 0:
        raise LensFileError(f"{path}: the image surface {image.number} is curved (CURV {curv:g}); DeepLens's sensor "
                            "is flat, so the PSFs away from the axis would be wrong")
    diam = _floats(path, f"image surface {image.number} DIAM", (image.get("DIAM") or [])[:1])
    semi = diam[0] * scale if diam else None
    off_axis = fields is not None and fields.radial_max > 0
    if fields is not None and not off_axis:
        desc.image_size_note = ("the file defines only an on-axis field, so it carries no sensor size"
                                + (f" (its image semi-diameter {semi:.3g} mm is the size of the on-axis spot)"
                                   if semi is not None else ""))
    elif semi is not None and semi >= SMALLEST_SENSOR_MM:
        desc.image_semi_diagonal = semi
    elif off_axis:
        desc.notes.append("the image surface has no DIAM: the sensor is sized from the file's field points")
    else:
        desc.image_size_note = "the image surface has no DIAM and the file defines no field points"


def read(path: Path) -> LensDescription:
    zmx = parse(path)
    desc = LensDescription(file=path, format="zemax")
    notes = desc.notes
    if zmx.encoding not in ("utf-8", "utf-16", "utf-8-sig"):
        notes.append(f"text encoding {zmx.encoding}")
    if zmx.unindented_surface_lines:
        notes.append(f"{zmx.unindented_surface_lines} surface record(s) not indented: read by their keys")
    mode = zmx.first("MODE")
    if mode and mode[0].upper() != "SEQ":
        raise LensFileError(f"{path}: MODE {mode[0]}; only sequential (MODE SEQ) systems can be traced")
    mnum = zmx.first("MNUM")
    if mnum and int(number(path, "MNUM", mnum[0])) > 1:
        notes.append(f"the file holds {mnum[0]} configurations: the stored one (configuration 1 as saved) is read")
    if len(zmx.surfaces) < 3:
        raise LensFileError(f"{path}: found {len(zmx.surfaces)} SURF blocks; a lens needs an object surface, "
                            "at least one lens surface and an image surface")
    scale = _units(path, zmx, notes)
    desc.fields, n_waves = _fields(path, zmx, scale, notes)
    desc.wavelengths_nm, desc.primary_nm = _wavelengths(path, zmx, n_waves, notes)
    desc.aperture = _aperture(path, zmx, scale, notes)
    if desc.aperture.kind == "FNUM":
        desc.claimed_f_number = desc.aperture.value

    obj, image, middle = zmx.surfaces[0], zmx.surfaces[-1], zmx.surfaces[1:-1]
    if obj.get("GLAS") and obj.get("GLAS", [""])[0].upper() not in ("AIR", ""):
        raise LensFileError(f"{path}: the object space is glass {obj.get('GLAS', [''])[0]}; only objects in air "
                            "can be traced")
    obj_d = _floats(path, "surface 0 DISZ", (obj.get("DISZ") or ["INFINITY"])[:1])[0] * scale
    desc.object_distance = obj_d if math.isfinite(obj_d) and obj_d < 1e9 else None

    for s in middle:  # a mirror is the cause to name first, whatever else the file holds
        _glass(path, s)
    untyped = [s.number for s in middle if s.get("TYPE") is None]
    if untyped:
        notes.append(f"surface(s) {', '.join(map(str, untyped))} have no TYPE record: read as STANDARD "
                     "(Zemax's default)")
    surfaces: list[Surface] = []
    lead_gap = 0.0  # thickness of dropped surfaces before the first kept one
    for s in middle:
        kind = _surface_type(s)
        _refuse_tilts_and_apertures(path, s)
        if kind == "COORDBRK":
            tilt = {n: number(path, f"surface {s.number} PARM {n}", v) for n, v in s.parms.items() if n in TILT_PARMS}
            moved = {n: v for n, v in tilt.items() if v != 0}
            if moved:
                n, v = min(moved.items())
                raise LensFileError(f"{path}: surface {s.number} (COORDBRK) sets {TILT_PARMS[n]} = {v:g} (PARM {n}); "
                                    "tilts and decentres cannot be traced (DeepLens traces centred systems only)")
            gap = _lens_surface(path, s, "STANDARD", scale, notes).d_next
            notes.append(f"surface {s.number}: COORDBRK without tilt or decentre read as a plain gap of {gap:g} mm")
            if surfaces:
                surfaces[-1].d_next += gap
            else:
                lead_gap += gap
            continue
        if kind not in SUPPORTED:
            raise LensFileError(f"{path}: surface {s.number} has type {kind}; supported Zemax surface types are "
                                f"{', '.join(SUPPORTED)} (and COORDBRK without tilt or decentre)")
        surf = _lens_surface(path, s, kind, scale, notes)
        before = surfaces[-1].glass if surfaces else None
        if not surf.is_stop and surf.glass is None and before is None:
            notes.append(f"surface {s.number}: air on both sides, a dummy surface: dropped")
            if surfaces:
                surfaces[-1].d_next += surf.d_next
            else:
                lead_gap += surf.d_next
            continue
        surfaces.append(surf)
    if lead_gap and desc.object_distance is not None:
        desc.object_distance += lead_gap
    if not any(s.glass is not None for s in surfaces):
        raise LensFileError(f"{path}: no surface has a glass (GLAS); there is no lens to trace")
    if surfaces[-1].glass is not None:
        raise LensFileError(f"{path}: the image surface lies inside glass {surfaces[-1].glass.name}; the sensor must "
                            "be in air")
    if not any(s.is_stop for s in surfaces):
        first = next(s for s in surfaces)
        first.is_stop = True
        notes.append(f"no STOP record: surface {first.number} is the aperture stop (Zemax's default)")
    desc.surfaces = surfaces
    _image(path, image, desc.fields, scale, desc)
    return desc
