"""A lens description -> a DeepLens ``GeoLens``, checked against the file's own optics.

For a format other than DeepLens's own, this writes a DeepLens JSON prescription (glasses resolved,
the stop sized from the file's aperture, the sensor from its image surface or field points) and lets
DeepLens read that, so no quirk of DeepLens's own parsers reaches the user. Whatever DeepLens raises
(asserts included) becomes a :class:`LensFileError` that names the file. A lens whose traced focal
length or f-number differs from the file's own by more than ``MISMATCH`` is refused with both values,
unless ``allow_mismatch`` (then the difference is a note).
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import paraxial
from .base import Glass, LensDescription, LensFileError, LensMismatchError
from .sensor import sensor_semi_diagonal

MISMATCH = 0.05
PLACEHOLDER_GLASS = ((1.5, 40.0), (0.0, 0.0))  # nd, vd Zemax stores for a catalogue glass it does not spell out
DEEPLENS_ERRORS = (AssertionError, ValueError, KeyError, IndexError, NotImplementedError, RuntimeError,
                   ZeroDivisionError, TypeError)


@dataclass
class BuiltLens:
    lens: Any                       # deeplens.GeoLens
    facts: dict[str, Any] = field(default_factory=dict)


def _quiet():
    return contextlib.redirect_stdout(io.StringIO())  # DeepLens prints as it loads


def resolve_glass(desc: LensDescription, glass: Glass, overrides: dict[str, str], notes: list[str]) -> str:
    """The DeepLens material name for a GLAS record (a catalogue name or "nd/vd")."""
    from deeplens.material import Material

    where = f"{desc.file}: surface {glass.surface}"
    if glass.name in overrides or glass.name.upper() in {k.upper() for k in overrides}:
        value = next(v for k, v in overrides.items() if k.upper() == glass.name.upper())
        try:
            Material(value.lower())
        except (NotImplementedError, ValueError):
            raise LensFileError(f"lens.glasses: {glass.name} = {value!r} is neither a glass DeepLens knows nor "
                                "'nd/vd' (e.g. '1.6889/31.1')", desc.facts()) from None
        notes.append(f"surface {glass.surface}: glass {glass.name} replaced by {value} (lens.glasses)")
        return value.lower()
    data = glass.nd is not None and glass.vd is not None and glass.nd > 1.0 and glass.vd > 0
    model = f"{glass.nd:g}/{glass.vd:g}" if data else None
    if glass.code == 1 or glass.name.upper() == "___BLANK":
        if model is None:
            raise LensFileError(f"{where}: model glass {glass.name} stores no usable nd / vd ({glass.nd}, {glass.vd})",
                                desc.facts())
        notes.append(f"surface {glass.surface}: model glass nd {glass.nd:g}, vd {glass.vd:g} (dispersion from the "
                     "Abbe number)")
        return model
    try:
        known = Material(glass.name.lower())
    except NotImplementedError:
        known = None
    if known is not None:
        if model and (glass.nd, glass.vd) not in PLACEHOLDER_GLASS and abs(float(known.n) - glass.nd) > 0.005:
            notes.append(f"surface {glass.surface}: glass {glass.name}: DeepLens's catalogue nd {float(known.n):.4f} "
                         f"differs from the file's {glass.nd:g}; the catalogue is used")
        return glass.name.lower()
    if model and (glass.nd, glass.vd) not in PLACEHOLDER_GLASS:
        notes.append(f"surface {glass.surface}: glass {glass.name} is not in DeepLens's catalogues: the file's nd "
                     f"{glass.nd:g}, vd {glass.vd:g} used (dispersion from the Abbe number)")
        return model
    stored = "no nd / vd" if not data else f"nd {glass.nd:g}, vd {glass.vd:g}, Zemax's placeholder for catalogue glass"
    raise LensFileError(f"{where}: glass {glass.name} is not in DeepLens's glass catalogues and its GLAS record "
                        f"holds {stored}; name the glass to use with lens.glasses: {{{glass.name}: NAME or 'nd/vd'}} "
                        f"(inspect: --glass {glass.name}=NAME)", desc.facts())


def _index(desc: LensDescription, name: str, wavelength_nm: float) -> float:
    from deeplens.material import Material

    try:
        return float(Material(name).refractive_index(wavelength_nm / 1000.0))
    except (ValueError, NotImplementedError) as exc:
        raise LensFileError(f"{desc.file}: glass {name} at {wavelength_nm:g} nm: {exc}", desc.facts()) from None


def _surface_json(s, mat: str, before: str) -> dict[str, Any]:
    r = float(s.r)
    if mat == before == "air" and s.is_stop:  # an iris in air: no power whatever its shape
        return {"type": "Aperture", "r": r, "d_next": s.d_next, "is_aperture": True}
    if s.k != 0 or any(s.ai):
        out = {"type": "Aspheric", "r": r, "c": s.c, "k": s.k, "ai": list(s.ai or [0.0]), "use_ai2": True,
               "d_next": s.d_next, "mat2": mat}
    else:
        out = {"type": "Spheric", "r": r, "c": s.c, "d_next": s.d_next, "mat2": mat}
    if s.is_stop:
        out["is_aperture"] = True
    return out


def prescription(desc: LensDescription, *, sensor_diagonal_mm: float | None, glasses: dict[str, str],
                 sensor_res: tuple[int, int] | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """(DeepLens JSON dict, facts) for a description read from a foreign format."""
    notes = desc.notes
    mats = [resolve_glass(desc, s.glass, glasses, notes) if s.glass else "air" for s in desc.surfaces]
    primary = desc.primary_nm or 587.6
    elements = [paraxial.Element(s.c, s.d_next, _index(desc, m, primary) if m != "air" else 1.0)
                for s, m in zip(desc.surfaces, mats, strict=True)]
    efl = paraxial.focal_length(elements)
    facts = desc.facts() | {"focal_length_in_file_mm": efl if math.isfinite(efl) else None}
    if not (math.isfinite(efl) and efl > 0):
        raise LensFileError(f"{desc.file}: paraxial focal length {efl:.4g} mm at {primary:g} nm: not a lens that "
                            "forms a real image (negative or afocal)", facts)
    stop = next(i for i, s in enumerate(desc.surfaces) if s.is_stop)
    pupil = paraxial.pupil(elements, stop)
    if pupil.a == 0:
        raise LensFileError(f"{desc.file}: the stop (surface {desc.surfaces[stop].number}) lies at a focus of the "
                            "lens in front of it; the entrance pupil is undefined", facts)
    entrance = _entrance_radius(desc, stop, efl, pupil, facts)
    r_stop = entrance * abs(pupil.a)
    file_stop = desc.surfaces[stop].r
    if desc.aperture and desc.aperture.kind != "FLOA" and file_stop and abs(file_stop - r_stop) > 0.02 * r_stop:
        notes.append(f"stop (surface {desc.surfaces[stop].number}): semi-diameter {r_stop:.4g} mm from the aperture "
                     f"{desc.aperture.kind} {desc.aperture.value:g} (the file's DIAM {file_stop:.4g} mm is not used)")
    desc.surfaces[stop].r = r_stop
    f_number = efl / (2.0 * entrance)
    facts["f_number_in_file"] = desc.claimed_f_number or f_number
    marginal = paraxial.marginal_ray(elements, entrance, desc.object_distance, pupil)
    gap = paraxial.image_gap(marginal)
    semi = sensor_semi_diagonal(desc, elements, pupil, gap, sensor_diagonal_mm, facts)
    facts["sensor_semi_diagonal_mm"] = semi
    _fill_semi_diameters(desc, elements, marginal, pupil, gap, semi)
    waves = sorted(desc.wavelengths_nm) or [primary]
    rgb = [waves[-1], primary, waves[0]] if len(waves) != 3 else waves[::-1]
    data = {"info": f"written by training.lens_formats from {desc.file.name} ({desc.format})",
            "primary_wvln": primary / 1000.0, "wvln_rgb": [w / 1000.0 for w in rgb],
            "obj_depth": -(desc.object_distance or 20000.0), "r_sensor": semi,
            "sensor_res": list(sensor_res or (1000, 1000)),
            "surfaces": [_surface_json(s, m, b) for s, m, b in zip(desc.surfaces, mats, ["air", *mats], strict=False)]}
    data["surfaces"][-1]["d_next"] = gap if math.isfinite(gap) and gap > 0 else desc.surfaces[-1].d_next
    return data, facts


def _entrance_radius(desc: LensDescription, stop: int, efl: float, pupil: paraxial.Pupil, facts: dict) -> float:
    ap, stop_surface = desc.aperture, desc.surfaces[stop]
    if ap is None or ap.kind == "FLOA":
        if stop_surface.r is None:
            raise LensFileError(f"{desc.file}: the aperture floats by the stop's size, but the stop (surface "
                                f"{stop_surface.number}) has no semi-diameter (DIAM); give the system aperture in the "
                                "file (ENPD or FNUM) or the stop's DIAM", facts)
        return stop_surface.r / abs(pupil.a)
    assert ap.value is not None, f"aperture {ap.kind} without a value"
    if ap.kind == "ENPD":
        return ap.value / 2.0
    if ap.kind == "FNUM":
        return efl / (2.0 * ap.value)
    if desc.object_distance is None:
        raise LensFileError(f"{desc.file}: aperture {ap.kind} (object-space NA / cone angle) needs an object at a "
                            "finite distance, but the object is at infinity", facts)
    slope = math.tan(math.asin(min(ap.value, 0.999))) if ap.kind == "OBNA" else math.tan(math.radians(ap.value))
    return slope * (desc.object_distance + pupil.z)


def _fill_semi_diameters(desc: LensDescription, elements, marginal, pupil, gap: float, semi: float) -> None:
    missing = [i for i, s in enumerate(desc.surfaces) if s.r is None]
    if not missing:
        return
    unit = paraxial.chief_ray(elements, 1.0, pupil)
    per_slope = abs(paraxial.height_at(unit, gap)) if math.isfinite(gap) else 0.0
    chief = paraxial.chief_ray(elements, semi / per_slope, pupil) if per_slope > 0 else None
    for i in missing:
        s = desc.surfaces[i]
        r = 1.1 * (abs(marginal.heights[i]) + (abs(chief.heights[i]) if chief else 0.0))
        if s.c != 0:
            r = min(r, 0.98 / abs(s.c))
        s.r = r
    desc.notes.append(f"surface(s) {', '.join(str(desc.surfaces[i].number) for i in missing)} have no semi-diameter: "
                      "sized from the paraxial marginal and chief rays at full aperture and field, +10 %")


def load(desc: LensDescription, *, sensor_res: tuple[int, int] | None = None, sensor_diagonal_mm: float | None = None,
         glasses: dict[str, str] | None = None, allow_mismatch: bool = False, device: str = "cpu") -> BuiltLens:
    """The GeoLens of ``desc``, checked against the file's own focal length and f-number."""
    with _quiet():
        from deeplens import GeoLens
    if desc.deeplens_file is not None:
        facts = desc.facts()
        lens = _geolens(GeoLens, desc, desc.deeplens_file, device, facts)
        if sensor_diagonal_mm is not None:
            lens.r_sensor = sensor_diagonal_mm / 2.0
            desc.notes.append(f"sensor diagonal {sensor_diagonal_mm:g} mm from lens.sensor_diagonal_mm")
    else:
        data, facts = prescription(desc, sensor_diagonal_mm=sensor_diagonal_mm, glasses=glasses or {},
                                   sensor_res=sensor_res)
        with tempfile.TemporaryDirectory(prefix="lens-") as tmp:
            path = Path(tmp) / f"{desc.file.stem}.json"
            path.write_text(json.dumps(data))
            lens = _geolens(GeoLens, desc, path, device, facts)
        _real_pupil(desc, lens, facts)
    try:
        with _quiet():
            if sensor_res is not None or sensor_diagonal_mm is not None:
                lens.set_sensor_res(tuple(int(v) for v in (sensor_res or lens.sensor_res)))
    except DEEPLENS_ERRORS as exc:
        raise LensFileError(f"{desc.file}: DeepLens cannot set the sensor: {exc}", facts) from exc
    facts.update(focal_length_mm=float(lens.foclen), f_number=float(lens.fnum), notes=list(desc.notes))
    check_against_file(desc, facts, allow_mismatch)
    return BuiltLens(lens, facts)


def _real_pupil(desc: LensDescription, lens, facts: dict[str, Any]) -> None:
    """Resize the stop so the real (ray-aimed) entrance pupil is the file's aperture: the paraxial stop
    size lets a lens with pupil aberration take in a larger or smaller beam than the file says."""
    target = facts.get("f_number_in_file")
    if desc.aperture is None or desc.aperture.kind == "FLOA" or not target or abs(lens.fnum - target) <= 0.01 * target:
        return
    stop = lens.surfaces[lens.aper_idx]
    before = float(stop.r)
    try:
        with _quiet():
            lens.set_fnum(float(target))
    except DEEPLENS_ERRORS as exc:
        raise LensFileError(f"{desc.file}: the file's aperture (f/{target:.3g}) cannot be reached with real rays "
                            f"through the stop: {exc}", facts) from exc
    desc.notes.append(f"stop semi-diameter {float(stop.r):.4g} mm (paraxially {before:.4g} mm): sized with real rays "
                      f"so the entrance pupil is the file's aperture (f/{target:.3g})")


def _geolens(GeoLens, desc: LensDescription, path: Path, device: str, facts: dict):
    try:
        with _quiet():
            return GeoLens(str(path), device=device)
    except DEEPLENS_ERRORS as exc:
        raise LensFileError(f"{desc.file}: DeepLens cannot build the lens: {type(exc).__name__}: {exc}", facts) from exc


def check_against_file(desc: LensDescription, facts: dict[str, Any], allow_mismatch: bool) -> None:
    traced_f, traced_n = facts["focal_length_mm"], facts["f_number"]
    if not (math.isfinite(traced_f) and traced_f > 0 and math.isfinite(traced_n) and traced_n > 0):
        raise LensFileError(f"{desc.file}: DeepLens traces f = {traced_f:.4g} mm, f/{traced_n:.3g}: not a lens that "
                            "forms a real image", facts)
    pairs = [("focal length", facts.get("focal_length_in_file_mm"), traced_f, "mm"),
             ("f-number", facts.get("f_number_in_file"), traced_n, "")]
    for what, own, traced, unit in pairs:
        if own is None or abs(traced - own) <= MISMATCH * own:
            continue
        message = (f"{desc.file}: the traced {what} {traced:.4g}{unit} differs from the file's own {own:.4g}{unit} by "
                   f"{100 * abs(traced - own) / own:.1f} % (more than {100 * MISMATCH:.0f} %)")
        if not allow_mismatch:
            raise LensMismatchError(message + "; the lens DeepLens would trace is not the one the file describes. "
                                    "Set lens.allow_mismatch: true (inspect: --allow-mismatch) to use it anyway", facts)
        desc.notes.append(message + " (accepted: lens.allow_mismatch)")
        facts["notes"] = list(desc.notes)
