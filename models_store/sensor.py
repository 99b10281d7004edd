"""Positions on the sensor, in one frame and three units: millimetres, pixels and fractions.

The image frame is the one every answer uses (README, "Units and conditions"): the image as seen
upright, origin at the sensor centre (the optical axis), +x to the right, +y up. It is DeepLens's
normalised frame scaled to millimetres: a DeepLens object point with normalised ``(x, y)`` has its ideal
(pinhole, ``foclen * tan``) image at ``(x * w / 2, y * h / 2)`` mm, which is DeepLens's
``psf_center(..., method="pinhole")`` (the sensor intercept negated, undoing the lens's inversion).

- millimetres ``(x_mm, y_mm)`` in that frame;
- fractions ``(x, y)`` of the sensor half-width / half-height (DeepLens's normalised coordinates), or
  ``field`` (fraction of the half-diagonal) with ``azimuth`` (degrees, 0 = +x, counter-clockwise);
- pixels ``(px, py)`` on the manifest's sensor grid (``sensor_resolution`` = columns x rows): column
  ``px`` grows to the right (+x), row ``py`` grows downward (-y); ``(0, 0)`` is the **centre** of the
  top-left pixel, so pixel ``(i, j)`` covers ``[i - 0.5, i + 0.5] x [j - 0.5, j + 0.5]``, an image array
  ``img[row, col]`` holds pixel ``(col, row)``, and the optical axis sits at
  ``((cols - 1) / 2, (rows - 1) / 2)``. The pitch is ``sensor_size_mm / sensor_resolution`` per axis.

DeepLens's ray-traced renderer (``render_raytracing``, without ``sub_pixel``) samples its output pixel
``(i, j)`` at ``(px, py) = (j + 0.5, i + 0.5)``, the pixel's lower-right corner, half a pixel right of and
below the centre this frame uses; but it also reads its input image at that corner, so the two offsets
cancel and its render lines up with this frame unshifted (``examples/render_chart``: registration within
0.02 px; shifting by half a pixel drops its PSNR from 32 to 16 dB).

Only numpy: the server, the embedded client and training convert with these functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .manifest import LensInfo


@dataclass(frozen=True)
class SensorFrame:
    """The sensor of one lens: its size [mm], its pixel grid and its half-diagonal [mm]."""

    width_mm: float
    height_mm: float
    cols: int
    rows: int
    half_diagonal_mm: float

    @classmethod
    def of(cls, lens: LensInfo) -> SensorFrame:
        """The frame of a manifest's ``lens`` entry."""
        (w, h), (cols, rows) = lens.sensor_size_mm, lens.sensor_resolution
        return cls(float(w), float(h), int(cols), int(rows), float(lens.half_diagonal_mm))

    @property
    def pitch_mm(self) -> tuple[float, float]:
        """Pixel pitch along x and y [mm]."""
        return self.width_mm / self.cols, self.height_mm / self.rows

    # -- pixels <-> millimetres -------------------------------------------------------------------
    def px_to_mm(self, px: Any, py: Any) -> tuple[np.ndarray, np.ndarray]:
        """Pixel coordinates (column, row; 0 = centre of the first pixel) -> (x_mm, y_mm)."""
        sx, sy = self.pitch_mm
        x = (np.asarray(px, dtype=np.float64) - (self.cols - 1) / 2.0) * sx
        y = ((self.rows - 1) / 2.0 - np.asarray(py, dtype=np.float64)) * sy
        return x, y

    def mm_to_px(self, x_mm: Any, y_mm: Any) -> tuple[np.ndarray, np.ndarray]:
        """(x_mm, y_mm) -> pixel coordinates (column, row); the inverse of :meth:`px_to_mm`."""
        sx, sy = self.pitch_mm
        px = np.asarray(x_mm, dtype=np.float64) / sx + (self.cols - 1) / 2.0
        py = (self.rows - 1) / 2.0 - np.asarray(y_mm, dtype=np.float64) / sy
        return px, py

    # -- sensor fractions <-> millimetres ---------------------------------------------------------
    def fraction_to_mm(self, x: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
        """Fractions of the half-width / half-height (DeepLens's normalised x, y) -> (x_mm, y_mm)."""
        return (np.asarray(x, dtype=np.float64) * (self.width_mm / 2.0),
                np.asarray(y, dtype=np.float64) * (self.height_mm / 2.0))

    def mm_to_fraction(self, x_mm: Any, y_mm: Any) -> tuple[np.ndarray, np.ndarray]:
        """(x_mm, y_mm) -> fractions of the half-width / half-height; the inverse of :meth:`fraction_to_mm`."""
        return (np.asarray(x_mm, dtype=np.float64) / (self.width_mm / 2.0),
                np.asarray(y_mm, dtype=np.float64) / (self.height_mm / 2.0))

    # -- field + azimuth <-> millimetres ----------------------------------------------------------
    def field_to_mm(self, field: Any, azimuth_deg: Any) -> tuple[np.ndarray, np.ndarray]:
        """(field, azimuth [deg]) -> (x_mm, y_mm): the ideal image point ``field * half-diagonal`` away from
        the axis in the direction ``azimuth`` (0 = +x, counter-clockwise)."""
        r = np.asarray(field, dtype=np.float64) * self.half_diagonal_mm
        a = np.radians(np.asarray(azimuth_deg, dtype=np.float64))
        return r * np.cos(a), r * np.sin(a)

    def mm_to_field(self, x_mm: Any, y_mm: Any, *, on_axis_azimuth: float = 90.0) -> tuple[np.ndarray, np.ndarray]:
        """(x_mm, y_mm) -> (field, azimuth [deg] in (-180, 180]); on the axis the azimuth is
        ``on_axis_azimuth`` (the service's default meridian), as :func:`models_store.resolve_conditions`
        does for x, y queries."""
        x, y = np.asarray(x_mm, dtype=np.float64), np.asarray(y_mm, dtype=np.float64)
        field = np.hypot(x, y) / self.half_diagonal_mm
        azimuth = np.where(field > 0, np.degrees(np.arctan2(y, x)), on_axis_azimuth)
        return field, azimuth
