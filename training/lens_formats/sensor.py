"""The sensor's size (semi-diagonal) of a lens read from a file without one of its own.

In order: ``lens.sensor_diagonal_mm`` when given; the file's image surface (Zemax ``DIAM``, the image
semi-diameter Zemax computes for the field points) when the fields reach off the axis; else the field
points themselves: image heights as they are, field angles and object heights through the paraxial
chief ray (distortion is not included). A file with only an on-axis field has no sensor at all: the
reader refuses it and names the setting that gives one.
"""

from __future__ import annotations

import math
from typing import Any

from . import paraxial
from .base import LensDescription, LensFileError


def sensor_semi_diagonal(desc: LensDescription, elements: list[paraxial.Element], pupil: paraxial.Pupil, gap: float,
                         sensor_diagonal_mm: float | None, facts: dict[str, Any]) -> float:
    if sensor_diagonal_mm is not None:
        desc.notes.append(f"sensor diagonal {sensor_diagonal_mm:g} mm from lens.sensor_diagonal_mm")
        return sensor_diagonal_mm / 2.0
    if desc.image_semi_diagonal is not None:
        return desc.image_semi_diagonal
    fields = desc.fields
    if desc.image_size_note or fields is None or fields.radial_max <= 0:
        cause = desc.image_size_note or "the file gives neither an image semi-diameter nor field points"
        raise LensFileError(f"{desc.file}: {cause}; give the sensor's size: lens.sensor_diagonal_mm (inspect: "
                            "--sensor-diagonal MM)", facts)
    if fields.kind in ("paraxial_image_height", "real_image_height"):
        what = fields.kind.replace("_", " ")
        desc.notes.append(f"sensor semi-diagonal {fields.radial_max:.4g} mm: the largest {what} of the file's "
                          "field points")
        return fields.radial_max
    if not math.isfinite(gap):
        raise LensFileError(f"{desc.file}: the lens forms no image at a finite distance (afocal)", facts)
    if fields.kind == "angle":
        if fields.radial_max >= 89.0:
            raise LensFileError(f"{desc.file}: field angle {fields.radial_max:g} deg: a paraxial image height is not "
                                "defined; give lens.sensor_diagonal_mm", facts)
        ray = paraxial.chief_ray(elements, math.tan(math.radians(fields.radial_max)), pupil)
        what = f"field angle {fields.radial_max:g} deg"
    else:
        if desc.object_distance is None:
            raise LensFileError(f"{desc.file}: the fields are object heights but the object is at infinity; give "
                                "lens.sensor_diagonal_mm", facts)
        h, distance = fields.radial_max, desc.object_distance
        slope = -h / (distance + pupil.z)
        ray = paraxial.trace(elements, h + slope * distance, slope)
        what = f"object height {h:g} mm"
    semi = abs(paraxial.height_at(ray, gap))
    desc.notes.append(f"sensor semi-diagonal {semi:.4g} mm: the paraxial image height of the largest {what} "
                      "(distortion not included)")
    return semi
