"""The Zemax reader on the kinds of files users bring (issue 19), one test per kind, with real DeepLens.

Every file is written by tests/zemax_samples.py from the Cooke triplet of lenses/cooke_triplet.json, so a
file that loads must trace the triplet's optics (f = 50 mm, f/5) and a file that is refused must say why.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from tests.zemax_samples import TRIPLET, edited, write
from training.lens_formats import read_lens
from training.prescription import LensFileError
from training.raytrace import LensTracer

RES = (2400, 1800)  # 12 um pixels on the triplet's 18 mm semi-diagonal, as the JSON triplet


def tracer(path: Path, **kw) -> LensTracer:
    return LensTracer(path, 10.0, sensor_res=kw.pop("sensor_res", RES), device="cpu", **kw)


def triplet_facts(t: LensTracer, f_number: float = 5.0) -> None:
    assert t.facts["focal_length_mm"] == pytest.approx(49.95, rel=2e-3)
    assert t.facts["f_number"] == pytest.approx(f_number, rel=0.01)


def test_every_encoding_zemax_writes_reads_the_same(tmp_path):
    latin = edited("NAME Cooke triplet", "NAME Cooke triplet Ø 15 mm, µ-coated")
    files = {"utf-16": write(tmp_path / "bom.zmx", TRIPLET, "utf-16"),
             "utf-16-le": write(tmp_path / "nobom.zmx", TRIPLET, "utf-16-le"),
             "utf-8": write(tmp_path / "utf8.zmx", latin, "utf-8"),
             "cp1252": write(tmp_path / "latin1.zmx", latin, "latin-1"),
             "upper": write(tmp_path / "UPPER.ZMX", TRIPLET)}
    descriptions = {name: read_lens(path) for name, path in files.items()}
    reference = descriptions["utf-16"]
    for name, desc in descriptions.items():
        assert [(s.c, s.d_next, s.r) for s in desc.surfaces] == [(s.c, s.d_next, s.r) for s in reference.surfaces], name
    assert "text encoding cp1252" in descriptions["cp1252"].notes
    triplet_facts(tracer(files["upper"]))  # DeepLens itself refuses the upper-case suffix: the reader hands it JSON
    with pytest.raises(LensFileError, match="not a Zemax text file"):
        read_lens(_binary(tmp_path / "binary.zmx"))


def _binary(path: Path) -> Path:
    path.write_bytes(bytes([0, 0, 0, 1]) * 8)
    return path


def test_unindented_records_and_missing_types_are_read_as_zemax_writes_them(tmp_path):
    text = edited("SURF 8\n  TYPE STANDARD\n  CURV 0.0 0 0 0 0 \"\"\n  DISZ 0\n  DIAM 18.0",
                  "SURF 8\nTYPE STANDARD\nCURV 0.0\nDISZ 0\nDIAM 18.0")
    desc = read_lens(write(tmp_path / "flat.zmx", text))
    assert desc.image_semi_diagonal == 18.0
    assert any("not indented" in n for n in desc.notes)
    untyped = "\n".join(line for line in TRIPLET.splitlines() if "TYPE STANDARD" not in line) + "\n"
    t = tracer(write(tmp_path / "untyped.zmx", untyped))
    triplet_facts(t)
    assert any("no TYPE record: read as STANDARD" in n for n in t.facts["notes"])


@pytest.mark.parametrize("kind", ["TOROIDAL", "PARAXIAL", "QED_TYPE", "BICONICX"])
def test_surface_types_deeplens_cannot_trace_are_refused_by_name(tmp_path, kind):
    path = write(tmp_path / "bad.zmx", edited("SURF 3\n  TYPE STANDARD", f"SURF 3\n  TYPE {kind}"))
    with pytest.raises(LensFileError, match=rf"surface 3 has type {kind}; supported Zemax surface types are "
                                            r"STANDARD, EVENASPH"):
        read_lens(path)


def test_coordinate_breaks_tilts_and_decentres(tmp_path):
    plain = "SURF 5\n  TYPE COORDBRK\n  CURV 0.0\n  DISZ 0.0\n  PARM 1 0\n  PARM 2 0\n  PARM 3 0\n  PARM 4 0\n" \
            "  PARM 5 0\n  PARM 6 0\n"
    text = edited("SURF 5\n  STOP", plain + "SURF 6\n  STOP")
    text = "\n".join(_renumber(text.splitlines())) + "\n"
    t = tracer(write(tmp_path / "cb.zmx", text))
    triplet_facts(t)
    assert any("COORDBRK without tilt or decentre read as a plain gap" in n for n in t.facts["notes"])
    tilted = write(tmp_path / "tilt.zmx", text.replace("  PARM 3 0\n", "  PARM 3 2.5\n", 1))
    with pytest.raises(LensFileError, match=r"surface 5 \(COORDBRK\) sets tilt about x = 2.5 \(PARM 3\); tilts and "
                                            "decentres cannot be traced"):
        read_lens(tilted)
    decentred = write(tmp_path / "scbd.zmx", edited("  DIAM 5.2 1 0 0 1 \"\"\nSURF 5",
                                                    "  DIAM 5.2 1 0 0 1 \"\"\n  SCBD 1 0 0 0 0.5 0 0 0\nSURF 5"))
    with pytest.raises(LensFileError, match=r"surface 4 is tilted or decentred \(SCBD"):
        read_lens(decentred)


def _renumber(lines: list[str]) -> list[str]:
    out, n = [], 0
    for line in lines:
        if line.startswith("SURF "):
            line, n = f"SURF {n}", n + 1
        out.append(line)
    return out


def test_mirrors_are_refused_by_name_before_anything_else(tmp_path):
    # DeepLens reads GLAS MIRROR as an n = 1.5 glass: a mirror must never load
    text = edited("  GLAS F2 0 0 1.62004 36.37 0 0 0 0 0 0", "  GLAS MIRROR 0 0 1.5 40 0 0 0 0 0 0")
    text = edited("  DISZ 1.0\n  DIAM 5.2", "  DISZ 1.0\n  DIAM 5.2\n  OBSC 0 2 0", text)
    with pytest.raises(LensFileError, match=r"surface 3 is a mirror \(GLAS MIRROR\)"):
        read_lens(write(tmp_path / "cat.zmx", text))


def test_unknown_glass_uses_the_nd_vd_the_file_stores_or_is_refused_by_name(tmp_path):
    renamed = edited("GLAS F2 0 0 1.62004 36.37", "GLAS HOUSE-F2_MOLD 0 0 1.62004 36.37")
    t = tracer(write(tmp_path / "model.zmx", renamed))
    triplet_facts(t)
    assert any("glass HOUSE-F2_MOLD is not in DeepLens's catalogues: the file's nd 1.62004, vd 36.37 used" in n
               for n in t.facts["notes"])
    f2 = "GLAS F2 0 0 1.62004 36.37"
    placeholder = write(tmp_path / "placeholder.zmx", edited(f2, "GLAS HOUSE-F2_MOLD 0 0 1.5 40"))
    with pytest.raises(LensFileError, match=r"surface 3: glass HOUSE-F2_MOLD is not in DeepLens's glass catalogues "
                                            r"and its GLAS record holds nd 1.5, vd 40, Zemax's placeholder.*"
                                            r"lens.glasses"):
        tracer(placeholder)
    fixed = tracer(placeholder, glasses={"HOUSE-F2_MOLD": "F2"})
    triplet_facts(fixed)
    blank = tracer(write(tmp_path / "blank.zmx", edited(f2, "GLAS ___BLANK 1 0 1.62004 36.37")))
    assert any("model glass nd 1.62004, vd 36.37" in n for n in blank.facts["notes"])


@pytest.mark.parametrize("aperture, f_number", [("ENPD 12.5", 4.0), ("FNUM 4 0", 4.0), ("FNUM 8 0", 8.0)])
def test_a_stop_without_semi_diameter_takes_the_file_aperture(tmp_path, aperture, f_number):
    text = edited("ENPD 10", aperture, edited("  DISZ 3.750409\n  DIAM 3.93 1 0 0 1 \"\"\n", "  DISZ 3.750409\n"))
    t = tracer(write(tmp_path / "stop.zmx", text))
    triplet_facts(t, f_number)
    assert t.facts["f_number_in_file"] == pytest.approx(f_number, rel=1e-3)
    floating = write(tmp_path / "floa.zmx", edited(aperture, "FLOA", text))
    with pytest.raises(LensFileError, match=r"the aperture floats by the stop's size, but the stop \(surface 5\) has "
                                            r"no semi-diameter"):
        tracer(floating)


def test_the_sensor_comes_from_the_field_points_when_the_image_has_no_diam(tmp_path):
    no_diam = edited("  DISZ 0\n  DIAM 18.0 0 0 0 1 \"\"\n", "  DISZ 0\n")
    angles = tracer(write(tmp_path / "angles.zmx", no_diam))
    expected = 49.955 * math.tan(math.radians(20.0))  # paraxial image height of the 20 deg field
    assert angles.half_diagonal == pytest.approx(expected, rel=2e-3)
    heights = tracer(write(tmp_path / "heights.zmx", edited("FTYP 0 0 3 3", "FTYP 3 0 3 3",
                                                              edited("YFLN 0 14 20", "YFLN 0 9 15.5", no_diam))))
    assert heights.half_diagonal == pytest.approx(15.5)
    assert any("sensor semi-diagonal 15.5 mm: the largest real image height" in n for n in heights.facts["notes"])
    on_axis = write(tmp_path / "axis.zmx", edited("FTYP 0 0 3 3", "FTYP 0 0 1 3",
                                                  edited("  DIAM 18.0 0 0 0 1", "  DIAM 1.2e-8 0 0 0 1")))
    with pytest.raises(LensFileError, match=r"only an on-axis field, so it carries no sensor size \(its image "
                                            r"semi-diameter 1.2e-08 mm.*lens.sensor_diagonal_mm"):
        tracer(on_axis)
    given = tracer(on_axis, sensor_diagonal_mm=30.0)
    assert given.half_diagonal == pytest.approx(15.0)


def test_a_design_in_inches_is_converted(tmp_path):
    inches = TRIPLET.replace("UNIT MM", "UNIT IN")
    for key in ("DISZ", "DIAM"):
        inches = "\n".join(_scaled(line, key, 1 / 25.4) for line in inches.splitlines()) + "\n"
    inches = "\n".join(_scaled(line, "CURV", 25.4) for line in inches.splitlines()) + "\n"
    inches = inches.replace("ENPD 10", f"ENPD {10 / 25.4}")
    t = tracer(write(tmp_path / "inch.zmx", inches))
    triplet_facts(t)
    assert "lens units IN: lengths converted to mm (x 25.4)" in t.facts["notes"]


def _scaled(line: str, key: str, factor: float) -> str:
    parts = line.split()
    if len(parts) >= 2 and parts[0] == key and parts[1] != "INFINITY":
        return f"  {key} {float(parts[1]) * factor!r} " + " ".join(parts[2:])
    return line


def test_a_lens_that_cannot_form_an_image_is_refused_not_asserted(tmp_path):
    # a single negative element: DeepLens's refocus would assert "Obtained negative sensor position"
    text = edited("SURF 2\n  TYPE STANDARD\n  CURV -2.294842E-03", "SURF 2\n  TYPE STANDARD\n  CURV 1.5E-01")
    with pytest.raises(LensFileError, match="not a lens that forms a real image"):
        tracer(write(tmp_path / "neg.zmx", text))
    assert np.isfinite(read_lens(tmp_path / "neg.zmx").surfaces[1].c)
