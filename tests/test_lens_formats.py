"""Lens formats behind one seam, the file's own optics as the check, and inspect's report on a refusal."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from models_store import LensInfo
from tests.zemax_samples import TRIPLET, edited, write
from training import lens as lens_cli
from training.config import ConfigError, load_config
from training.lens_formats import FORMATS, LensDescription, LensMismatchError, Surface, read_lens
from training.lens_formats.base import Aperture, Glass
from training.prescription import LensFileError
from training.raytrace import LensTracer

COOKE = Path("lenses/cooke_triplet.json")


def read_table(path: Path) -> LensDescription:
    """A third format, as a plug-in would add it: one line per surface, 'c d_next r glass [stop]'."""
    surfaces = []
    for i, line in enumerate(path.read_text().splitlines(), start=1):
        c, d, r, glass, *flags = line.split()
        surfaces.append(Surface(i, c=float(c), d_next=float(d), r=float(r), is_stop="stop" in flags,
                                glass=None if glass == "air" else Glass(glass, i)))
    return LensDescription(file=path, format="table", surfaces=surfaces, aperture=Aperture("FLOA"),
                           image_semi_diagonal=18.0, wavelengths_nm=[587.6], primary_nm=587.6)


@pytest.fixture
def table_format():
    FORMATS.add("table", suffixes=(".lenstable",), impl=f"{__name__}:read_table", pixel_grid=False)
    yield
    FORMATS.remove("table")


def test_a_third_format_is_one_reader_and_one_line(tmp_path, table_format):
    rows = json.loads(COOKE.read_text())["surfaces"]
    lines = [f"{0.0 if s.get('roc', 0) == 0 else 1 / s['roc']} {s['d_next']} {s['r']} "
             f"{s.get('mat2', 'air')}{' stop' if s.get('is_aperture') else ''}" for s in rows]
    path = tmp_path / "triplet.LENSTABLE"
    path.write_text("\n".join(lines))
    table = LensTracer(path, 10.0, sensor_res=(2400, 1800), device="cpu")
    json_lens = LensTracer(COOKE, 10.0, device="cpu")
    assert table.facts["focal_length_mm"] == pytest.approx(json_lens.info().focal_length_mm, rel=1e-4)
    assert table.facts["f_number"] == pytest.approx(json_lens.info().f_number, rel=2e-3)
    assert table.info().format == "table"
    with pytest.raises(LensFileError, match=r"unknown lens format '.seq'; readable formats: DeepLens JSON \(.json\), "
                                            r"Zemax sequential \(.zmx\), table \(.lenstable\)"):
        read_lens(_touch(tmp_path / "x.seq"))
    with pytest.raises(LensFileError, match=r"sensor_res"):  # the pixel-grid rule follows the format's own flag
        LensTracer(path, 10.0, device="cpu")


def _touch(path: Path) -> Path:
    path.write_text("")
    return path


def test_a_json_whose_trace_contradicts_its_own_f_number_is_refused_unless_overridden(tmp_path):
    data = json.loads(COOKE.read_text()) | {"fnum": 8.0, "foclen": 50.0}
    path = tmp_path / "claims.json"
    path.write_text(json.dumps(data))
    with pytest.raises(LensMismatchError, match=r"the traced f-number 4.998 differs from the file's own 8 by 37.5 % "
                                                r"\(more than 5 %\).*lens.allow_mismatch"):
        LensTracer(path, 10.0, device="cpu")
    accepted = LensTracer(path, 10.0, device="cpu", allow_mismatch=True)
    assert any("accepted: lens.allow_mismatch" in n for n in accepted.info().notes)
    honest = tmp_path / "honest.json"
    honest.write_text(json.dumps(data | {"fnum": 5.0}))
    assert LensTracer(honest, 10.0, device="cpu").info().notes == ()


def test_the_manifest_records_the_reader_notes_and_old_manifests_still_load(tmp_path):
    path = write(tmp_path / "triplet.zmx", TRIPLET.replace("PWAV 2\n", ""))
    info = LensTracer(path, 10.0, sensor_res=(2400, 1800), device="cpu").info()
    assert info.format == "zemax" and any("no primary wavelength (PWAV)" in n for n in info.notes)
    assert LensInfo.model_validate_json(info.model_dump_json()) == info
    old = {"file": "lens.json", "sha256": "0" * 64, "focal_length_mm": 50.0, "f_number": 5.0,
           "sensor_size_mm": [28.8, 21.6], "sensor_resolution": [2400, 1800], "pixel_pitch_um": 12.0,
           "half_diagonal_mm": 18.0, "focus_m": 10.0}
    assert LensInfo.model_validate(old).notes == ()


def test_lens_config_keys_and_the_one_pixel_grid_rule(tmp_path):
    path = write(tmp_path / "triplet.zmx", TRIPLET)
    grid = [f"lens.file={path}", "lens.sensor_res=[2400,1800]"]
    cfg = load_config("configs/ci.yml", [*grid, "lens.sensor_diagonal_mm=30", "lens.glasses.HOUSE=F2",
                                         "lens.allow_mismatch=true"])
    assert cfg.lens.sensor_diagonal_mm == 30 and cfg.lens.glasses == {"HOUSE": "F2"} and cfg.lens.allow_mismatch
    with pytest.raises(ConfigError) as from_config:
        load_config("configs/ci.yml", [f"lens.file={path}", "lens.sensor_res=null"])
    with pytest.raises(LensFileError) as from_tracer:
        LensTracer(path, 10.0, device="cpu")
    assert str(from_tracer.value) in str(from_config.value)
    with pytest.raises(ConfigError, match=r"lens.sensor_diagonal_mm"):
        load_config("configs/ci.yml", [*grid, "lens.sensor_diagonal_mm=-1"])


def test_inspect_reports_what_it_knows_when_it_refuses(tmp_path, capsys):
    on_axis = write(tmp_path / "axis.zmx", edited("FTYP 0 0 3 3", "FTYP 0 0 1 3"))
    code = lens_cli.main(["inspect", str(on_axis), "--sensor-res", "2400", "1800", "--focus", "10", "--json"])
    out, err = capsys.readouterr()
    assert code == 2 and "error:" in err and "lens.sensor_diagonal_mm" in err
    report = json.loads(out)
    lens = report["lens"]
    assert lens["focal_length_in_file_mm"] == pytest.approx(49.95, rel=2e-3)
    assert lens["f_number_in_file"] == pytest.approx(5.0, rel=2e-3)
    assert lens["wavelengths_nm"] == pytest.approx([486.1327, 587.5618, 656.2725])
    assert "on-axis field" in report["refused"]["cause"]
    code = lens_cli.main(["inspect", str(on_axis), "--focus", "10"])  # no pixel grid: still the optics
    out, err = capsys.readouterr()
    assert code == 2 and "sensor_res" in err and "f = 49.95 mm" in out and "f/5.00" in out


def test_inspect_probes_a_design_for_another_band_over_its_own_wavelengths(tmp_path, capsys):
    nir = TRIPLET.replace("FTYP 0 0 3 3", "FTYP 0 0 3 1").replace("WAVM 1 0.4861327 1", "WAVM 1 0.92 1")
    path = write(tmp_path / "nir.zmx", nir.replace("PWAV 2", "PWAV 1"))
    code = lens_cli.main(["inspect", str(path), "--sensor-res", "1200", "900", "--focus", "10", "--depth", "5", "50",
                          "--probe-spp", "1024", "--png", str(tmp_path / "nir.png"), "--json"])
    out, _ = capsys.readouterr()
    assert code == 0
    report = json.loads(out)
    assert report["ranges"]["wavelength"] == {"min": 915.0, "max": 925.0}
    assert any("the lens file's own band" in s for s in report["said"])
    assert {p["wavelength"] for p in report["points"]} == {915.0, 920.0, 925.0}
    assert report["lens"]["primary_wavelength_nm"] == pytest.approx(920.0)


def test_a_fit_of_a_design_for_another_band_trains_on_its_own_band_unless_the_config_says(tmp_path):
    from training.band import with_file_band
    from training.config import load_config

    nir = TRIPLET.replace("FTYP 0 0 3 3", "FTYP 0 0 3 1").replace("WAVM 1 0.4861327 1", "WAVM 1 0.92 1")
    path = write(tmp_path / "nir.zmx", nir.replace("PWAV 2", "PWAV 1"))
    base = ["name=nir", f"lens.file={path}", "lens.sensor_res=[1200,900]"]  # conditions.wavelength left out
    cfg, note = with_file_band(load_config(None, base))
    assert (cfg.conditions.wavelength.min, cfg.conditions.wavelength.max) == (915.0, 925.0)
    assert note is not None and "the lens file's own band" in note and "conditions.wavelength" in note
    said = load_config(None, [*base, "conditions.wavelength={min: 900, max: 950}"])
    assert with_file_band(said) == (said, None)  # the config's own range is obeyed
    visible = load_config("configs/ci.yml")
    assert with_file_band(visible) == (visible, None)
