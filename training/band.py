"""A lens designed for another band trains on its own band unless the config says otherwise.

``conditions.wavelength`` defaults to the visible band. A lens file that declares its wavelengths (Zemax
``WAVM``) with its primary wavelength outside that default (a 920 nm design, say) is trained and
probed over the file's own band when the config does not set ``conditions.wavelength`` itself; the run
log and ``training.lens inspect`` say so. A config that sets it is obeyed.
"""

from __future__ import annotations

from pathlib import Path

from .config import ConditionsConfig, Range, RunConfig
from .prescription import LensFileError, read_lens

_DEFAULT: Range = ConditionsConfig.model_fields["wavelength"].default
DEFAULT_BAND = (_DEFAULT.min, _DEFAULT.max)


def file_band(path: str | Path) -> tuple[float, float] | None:
    """The lens file's own wavelength band when its primary wavelength lies outside the default band."""
    try:
        desc = read_lens(path)
    except LensFileError:
        return None
    waves, primary = desc.wavelengths_nm, desc.primary_nm
    if not waves or primary is None or DEFAULT_BAND[0] <= primary <= DEFAULT_BAND[1]:
        return None
    lo, hi = min(waves), max(waves)
    return (lo - 5.0, hi + 5.0) if hi - lo < 10.0 else (lo, hi)


def band_note(band: tuple[float, float], how_to_change: str) -> str:
    lo, hi = DEFAULT_BAND
    return (f"wavelength range {band[0]:g}-{band[1]:g} nm: the lens file's own band (its primary wavelength lies "
            f"outside the default {lo:g}-{hi:g} nm; {how_to_change} sets another)")


def with_file_band(cfg: RunConfig) -> tuple[RunConfig, str | None]:
    """``cfg`` on the lens file's own band when the config leaves ``conditions.wavelength`` at its default
    and the file is designed for another band; and the note that says so (None when nothing changed)."""
    if "wavelength" in cfg.conditions.model_fields_set:
        return cfg, None
    band = file_band(cfg.lens.file)
    if band is None:
        return cfg, None
    conditions = cfg.conditions.model_copy(update={"wavelength": Range(min=band[0], max=band[1])})
    return cfg.model_copy(update={"conditions": conditions}), band_note(band, "conditions.wavelength: {min, max}")
