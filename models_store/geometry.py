"""Where each point lands and how bright it is: the chief ray's image position (distortion) and the
relative illumination of a model's lens, per condition, from a small table in the manifest.

Both are smooth functions of the condition, so training traces them once on a grid
(:mod:`training.geometry`) and the manifest carries the table (:class:`GeometryTable`, ``Manifest.geometry``);
this module interpolates it. No graph, no torch, no onnxruntime: numpy only.

What the values are (DeepLens, geometric optics; the lens is rotationally symmetric):

- **Chief-ray position**: the real ray from the object point through the centre of the aperture stop
  (aimed by Newton iteration, float64), where it meets the sensor, in the image frame of
  :mod:`models_store.sensor`. It is traced at the lens's primary wavelength at every queried wavelength,
  because that is where the served kernel is centred (DeepLens ``psf(..., recenter=True)`` centres every
  wavelength on the primary-wavelength chief ray, so lateral colour stays inside the kernels). The
  point at ``(field, azimuth)`` lands at ``h * (cos azimuth, sin azimuth)``, ``h`` the table's radial
  height; its offset from the ideal image point ``field * half-diagonal * (cos, sin)`` is the distortion.
- **Relative illumination**: what DeepLens's ray-traced renderer ``render_raytracing(...,
  vignetting=True)`` shades a pixel by: the fraction of rays from that sensor point, uniform over the
  area of DeepLens's exit-pupil disk, that pass every aperture back to object space (mechanical
  vignetting); **no cos^4 or pupil-projection factor** (DeepLens's renderer applies none). It is taken
  at the chief ray's image point, so it depends on depth and focus only through that point, and on the
  wavelength through dispersion. It is divided by the same fraction on the axis at the reference
  wavelength (the middle of the trained band), per focus; ``illumination_axis`` keeps that absolute
  on-axis fraction (multiply by it to reproduce DeepLens's render exactly).

Interpolation: monotone cubic (PCHIP) along each axis in turn; field, then 1/depth, then 1/focus for
positions; image height, then wavelength, then 1/focus for the illumination.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from .sensor import SensorFrame

if TYPE_CHECKING:
    from .manifest import LensInfo, Manifest


class GeometryTable(BaseModel):
    """The chief-ray heights and relative illumination of one lens on a grid of conditions."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    chief_ray_wavelength_nm: float = Field(description="wavelength of the chief ray (DeepLens's primary "
                                           "wavelength): the served kernels are centred on it at every wavelength")
    reference_wavelength_nm: float = Field(description="the illumination is 1 on the axis at this wavelength")
    field: list[float] = Field(description="ideal image height / half-diagonal, ascending from 0")
    depth_m: list[float] = Field(description="object distances [m], ascending; interpolated in 1/depth")
    focus_m: list[float] | None = Field(default=None, description="focus distances [m], ascending, "
                                        "interpolated in 1/focus; None: the lens's fixed focus")
    height_mm: list[list[list[float]]] = Field(description="chief-ray radial image height [mm], "
                                               "[focus][depth][field] (one focus entry when focus is fixed)")
    illumination_height_mm: list[float] = Field(description="image heights [mm] of the illumination "
                                                "samples, ascending from 0")
    wavelength_nm: list[float] = Field(description="wavelengths [nm] of the illumination samples, ascending")
    illumination: list[list[list[float]]] = Field(description="relative illumination, "
                                                  "[focus][wavelength][image height]")
    illumination_axis: list[float] = Field(description="absolute on-axis ray fraction at the reference "
                                           "wavelength, per focus (what the relative values are divided by)")
    illumination_rays: int = Field(ge=1, description="rays per illumination sample (a Fibonacci spiral over "
                                   "the exit pupil)")
    physics: str = Field(default="", description="what the values are, in words")

    @model_validator(mode="after")
    def _shapes(self) -> GeometryTable:
        for name in ("field", "depth_m", "illumination_height_mm", "wavelength_nm", "focus_m"):
            axis = getattr(self, name)
            if axis is not None and (len(axis) < 1 or np.any(np.diff(axis) <= 0)):
                raise ValueError(f"geometry.{name}: need a strictly ascending axis, got {axis}")
        nf = 1 if self.focus_m is None else len(self.focus_m)
        for name, shape in (("height_mm", (nf, len(self.depth_m), len(self.field))),
                            ("illumination", (nf, len(self.wavelength_nm), len(self.illumination_height_mm)))):
            got = np.shape(getattr(self, name))
            if got != shape:
                raise ValueError(f"geometry.{name}: shape {list(got)}, expected {list(shape)} from its axes")
        if len(self.illumination_axis) != nf:
            raise ValueError(f"geometry.illumination_axis: {len(self.illumination_axis)} values for {nf} foci")
        return self


# -- interpolation ----------------------------------------------------------------------------------
def _pchip_slopes(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Fritsch-Carlson slopes (as scipy's PchipInterpolator) of curves ``y [..., K]`` on ``x [K]``."""
    h = np.diff(x)
    m = np.diff(y, axis=-1) / h
    d = np.empty_like(y)
    if len(x) == 2:
        d[...] = m
        return d
    w1, w2 = 2 * h[1:] + h[:-1], h[1:] + 2 * h[:-1]
    same = (m[..., :-1] * m[..., 1:]) > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        harmonic = (w1 + w2) / (w1 / m[..., :-1] + w2 / m[..., 1:])
    d[..., 1:-1] = np.where(same, harmonic, 0.0)
    for end, (h0, h1, m0, m1) in ((0, (h[0], h[1], m[..., 0], m[..., 1])),
                                   (-1, (h[-1], h[-2], m[..., -1], m[..., -2]))):
        e = ((2 * h0 + h1) * m0 - h0 * m1) / (h0 + h1)
        e = np.where(np.sign(e) != np.sign(m0), 0.0, e)
        e = np.where((np.sign(m0) != np.sign(m1)) & (np.abs(e) > 3 * np.abs(m0)), 3 * m0, e)
        d[..., end] = e
    return d


def pchip(x: Any, y: Any, xq: Any) -> np.ndarray:
    """Monotone cubic interpolation along the last axis.

    ``x [K]`` ascending; ``y [B, ..., K]`` with ``B`` 1 (curves shared by every query) or ``N`` (one set
    of curves per query); ``xq [N]``, clipped into ``[x[0], x[-1]]``. Returns ``[N, ...]``.
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    xq = np.atleast_1d(np.asarray(xq, dtype=np.float64))
    n = len(xq)
    y = np.broadcast_to(y, (n, *y.shape[1:]))
    if len(x) == 1:
        return np.array(y[..., 0])
    d = _pchip_slopes(x, y)
    xq = np.clip(xq, x[0], x[-1])
    i = np.clip(np.searchsorted(x, xq, side="right") - 1, 0, len(x) - 2)
    width = x[i + 1] - x[i]
    t = (xq - x[i]) / width
    index = i.reshape((n,) + (1,) * (y.ndim - 1))

    def at(a: np.ndarray, offset: int) -> np.ndarray:
        return np.take_along_axis(a, index + offset, axis=-1)[..., 0]

    shape = (n,) + (1,) * (y.ndim - 2)
    t, width = t.reshape(shape), width.reshape(shape)
    t2, t3 = t * t, t * t * t
    return ((2 * t3 - 3 * t2 + 1) * at(y, 0) + (t3 - 2 * t2 + t) * width * at(d, 0)
            + (3 * t2 - 2 * t3) * at(y, 1) + (t3 - t2) * width * at(d, 1))


def chief_ray_height(table: GeometryTable, field: Any, depth_m: Any, focus_m: Any = None) -> np.ndarray:
    """Radial chief-ray image height [mm] per row (columns broadcast to one length)."""
    field, depth = np.broadcast_arrays(np.atleast_1d(np.asarray(field, dtype=np.float64)),
                                       np.atleast_1d(np.asarray(depth_m, dtype=np.float64)))
    heights = np.asarray(table.height_mm, dtype=np.float64)  # [F, D, K]
    per_depth = pchip(table.field, heights[None], field)  # [N, F, D]
    inv_depth = 1.0 / np.asarray(table.depth_m, dtype=np.float64)[::-1]
    per_focus = pchip(inv_depth, per_depth[..., ::-1], 1.0 / depth)  # [N, F]
    return _along_focus(table, per_focus, focus_m)


def relative_illumination(table: GeometryTable, height_mm: Any, wavelength_nm: Any, focus_m: Any = None) -> np.ndarray:
    """Relative illumination at radial image heights [mm] per row."""
    height, wavelength = np.broadcast_arrays(np.atleast_1d(np.asarray(height_mm, dtype=np.float64)),
                                             np.atleast_1d(np.asarray(wavelength_nm, dtype=np.float64)))
    values = np.asarray(table.illumination, dtype=np.float64)  # [F, W, H]
    per_wavelength = pchip(table.illumination_height_mm, values[None], np.abs(height))  # [N, F, W]
    per_focus = pchip(table.wavelength_nm, per_wavelength, wavelength)  # [N, F]
    return _along_focus(table, per_focus, focus_m)


def _along_focus(table: GeometryTable, per_focus: np.ndarray, focus_m: Any) -> np.ndarray:
    if table.focus_m is None:  # fixed focus: one entry
        return per_focus[:, 0]
    if focus_m is None:
        raise ValueError("this geometry table spans a focus range: give focus")
    focus = np.broadcast_to(np.asarray(focus_m, dtype=np.float64), (len(per_focus),))
    inv_focus = 1.0 / np.asarray(table.focus_m, dtype=np.float64)[::-1]
    return pchip(inv_focus, per_focus[:, ::-1], 1.0 / focus)


def geometry_at(table: GeometryTable, lens: LensInfo, *, field: Any, azimuth: Any, depth: Any,
                wavelength: Any, focus: Any = None) -> dict[str, np.ndarray]:
    """The image geometry of resolved conditions (physical units, columns of one length or scalars).

    Returns float64 arrays [N]:

    - ``x_mm``, ``y_mm``: where the chief ray meets the sensor, image frame (origin at the optical axis,
      +x right, +y up; :mod:`models_store.sensor`);
    - ``x_px``, ``y_px``: the same point in pixel coordinates (column, row; (0, 0) = centre of the
      top-left pixel, rows grow downward);
    - ``ideal_x_px``, ``ideal_y_px``: the ideal (undistorted) image point of the condition, in pixels;
    - ``shift_x_px``, ``shift_y_px``: chief-ray point minus ideal point, in pixel axes (distortion);
    - ``distortion_px``: the signed radial shift (> 0 outward: pincushion, < 0 inward: barrel);
    - ``height_mm``: the chief ray's radial image height;
    - ``illumination``: relative illumination (1 on the axis at the reference wavelength).
    """
    frame = SensorFrame.of(lens)
    field, azimuth, depth, wavelength = np.broadcast_arrays(
        *(np.atleast_1d(np.asarray(v, dtype=np.float64)) for v in (field, azimuth, depth, wavelength)))
    height = chief_ray_height(table, field, depth, focus)
    a = np.radians(azimuth)
    x_mm, y_mm = height * np.cos(a), height * np.sin(a)
    x_px, y_px = frame.mm_to_px(x_mm, y_mm)
    ideal_x_px, ideal_y_px = frame.mm_to_px(*frame.field_to_mm(field, azimuth))
    pitch = float(np.mean(frame.pitch_mm))
    return {"x_mm": x_mm, "y_mm": y_mm, "x_px": x_px, "y_px": y_px,
            "ideal_x_px": ideal_x_px, "ideal_y_px": ideal_y_px,
            "shift_x_px": x_px - ideal_x_px, "shift_y_px": y_px - ideal_y_px,
            "distortion_px": (height - field * frame.half_diagonal_mm) / pitch,
            "height_mm": height,
            "illumination": relative_illumination(table, height, wavelength, focus)}


class GeometryUnavailable(LookupError):
    """The model version was published without a geometry table (before it existed)."""


def _table(manifest: Manifest) -> GeometryTable:
    if manifest.geometry is None:
        raise GeometryUnavailable(f"{manifest.name}@{manifest.version} has no geometry table (published before "
                                  "distortion and illumination were traced); refit it to get one")
    return manifest.geometry


def image_geometry(manifest: Manifest, **query: Any) -> dict[str, np.ndarray]:
    """Chief-ray position, distortion and relative illumination of a query, per row.

    ``query`` is what :func:`models_store.resolve_conditions` takes (``field`` [+ ``azimuth``] or ``x``,
    ``y``; ``depth``, ``wavelength``, ``focus`` when it is a condition), scalars or columns; it is checked
    the same way (:class:`ConditionError` naming the parameter). Returns :func:`geometry_at`'s dict.
    Raises :class:`GeometryUnavailable` for a version published without a table.
    """
    from .conditions import resolve_conditions

    table = _table(manifest)
    cond, azimuth = resolve_conditions(manifest, **query)
    # float32 columns (the graphs' input): 6e-8 relative, far below a pixel on any sensor
    column = {name: cond[:, i].astype(np.float64) for i, name in enumerate(manifest.condition_names)}
    return geometry_at(table, manifest.lens, field=column["field"], azimuth=azimuth, depth=column["depth"],
                       wavelength=column["wavelength"], focus=column.get("focus"))


def distortion_grid(manifest: Manifest, nx: int, ny: int, **query: Any) -> dict[str, np.ndarray]:
    """:func:`image_geometry` on an ``nx x ny`` grid of ideal image points, as arrays ``[ny, nx]``.

    The grid is :func:`models_store.conditions.sensor_grid`'s (tile centres, row 0 = +y, the same points
    as ``GET /psf/grid``); with ``nx, ny`` = the sensor resolution it is the pixel centres. ``query`` holds
    ``depth``, ``wavelength`` (and ``focus``) as scalars. Points beyond the trained field are refused like
    any query.
    """
    from .conditions import sensor_grid

    x, y = sensor_grid(nx, ny)
    out = image_geometry(manifest, x=x, y=y, **query)
    return {name: values.reshape(ny, nx) for name, values in out.items()}
