"""What every lens reader hands on: a torch-free description of one prescription, and the errors.

A reader turns a file into a :class:`LensDescription` (surfaces in DeepLens's terms, the file's own
system data, notes on everything assumed or converted) or refuses it with a :class:`LensFileError`
naming the file, the part at fault and what is allowed. Building the ray tracer from it
(``training.lens_formats.build``) is the only step that imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class LensFileError(ValueError):
    """A lens file that cannot be traced; the message names the file and the part at fault.

    ``facts`` holds what was known about the lens when it was refused (focal length, f-number, sensor,
    wavelengths, notes), so ``python -m training.lens inspect`` can report them with the cause."""

    def __init__(self, message: str, facts: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.facts: dict[str, Any] = dict(facts or {})


class LensMismatchError(LensFileError):
    """The traced focal length or f-number contradicts the file's own (lens.allow_mismatch overrides)."""


@dataclass
class Glass:
    """A GLAS record: the name, Zemax's solve code (0 catalogue, 1 model) and the nd / vd it stores."""

    name: str
    surface: int
    code: int = 0
    nd: float | None = None
    vd: float | None = None


@dataclass
class Surface:
    """One traced surface in DeepLens's terms, lengths in mm. ``number`` is the file's own surface number."""

    number: int
    c: float = 0.0                  # curvature [1/mm]
    d_next: float = 0.0             # distance to the next surface [mm]
    r: float | None = None          # semi-diameter [mm]; None: not in the file (sized paraxially)
    k: float = 0.0                  # conic constant
    ai: list[float] = field(default_factory=list)  # even aspheric terms r^2, r^4, ... r^16 [mm^(1-2i)]
    glass: Glass | None = None      # the medium after the surface; None = air
    is_stop: bool = False


@dataclass
class Aperture:
    """The system aperture as the file states it (Zemax's kinds; lengths in mm)."""

    kind: str                       # ENPD | FNUM | OBNA | CONE | FLOA
    value: float | None = None


@dataclass
class Fields:
    """The file's field points: kind (angle [deg] | object_height | paraxial_image_height |
    real_image_height [mm]) and the largest radial value."""

    kind: str
    radial_max: float


@dataclass
class LensDescription:
    """A prescription as read, before any tracing. ``deeplens_file`` is set when the file already is
    DeepLens's own format (it is then handed over as it is); otherwise ``surfaces`` are."""

    file: Path
    format: str
    surfaces: list[Surface] = field(default_factory=list)
    deeplens_file: Path | None = None
    aperture: Aperture | None = None
    fields: Fields | None = None
    image_semi_diagonal: float | None = None   # the file's own sensor semi-diagonal [mm], if it has one
    image_size_note: str = ""                  # why there is none (refusal text when no sensor is given)
    object_distance: float | None = None       # mm in front of the first surface; None = infinity
    wavelengths_nm: list[float] = field(default_factory=list)
    primary_nm: float | None = None
    claimed_focal_length: float | None = None  # the file's own statements, checked against the trace
    claimed_f_number: float | None = None
    notes: list[str] = field(default_factory=list)

    def facts(self) -> dict[str, Any]:
        """What is known before tracing (reported by inspect when a lens is refused)."""
        return {"file": self.file.name, "format": self.format, "wavelengths_nm": self.wavelengths_nm,
                "primary_wavelength_nm": self.primary_nm, "f_number_in_file": self.claimed_f_number,
                "focal_length_in_file_mm": self.claimed_focal_length,
                "sensor_semi_diagonal_in_file_mm": self.image_semi_diagonal, "notes": list(self.notes)}
