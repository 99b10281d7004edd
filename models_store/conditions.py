"""The condition convention, in one place: physical units in, validated, as the graphs expect them.

Queries name a sensor position either as ``field`` (fraction of the sensor half-diagonal) with
``azimuth`` (degrees, 0 = +x, counter-clockwise, default 90 = +y meridian), or as ``x``, ``y``
(fractions of the sensor half-width / half-height). Models with rotational symmetry are conditioned
on the +y meridian; :func:`rotate_psfs` turns their kernels to the requested azimuth. Serving and the
embedded client both go through these functions, so they answer identically.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .manifest import Manifest
from .sensor import SensorFrame
from .wire import POSITION_UNITS, tile_centres

DEFAULT_AZIMUTH = 90.0
# ranges every model shares: sensor fractions, and azimuth in degrees (the trained ranges are per manifest)
_TURN_PIXELS = 1 << 15  # rows per chunk of rotate_psfs: this many pixels
FIXED_RANGES = {"x": (-1.0, 1.0), "y": (-1.0, 1.0), "azimuth": (-360.0, 360.0)}


class ConditionError(ValueError):
    """A query value is missing, not a finite number, or outside what the model was trained on."""

    def __init__(self, parameter: str, value: Any, allowed: str) -> None:
        self.parameter, self.value, self.allowed = parameter, value, allowed
        # None means the caller left it out; "depth=None is not allowed" would read like a bad value
        shown = f"{parameter} is missing" if value is None else f"{parameter}={_show(value)} is not allowed"
        super().__init__(f"{shown}: {allowed}")


def _show(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return np.array2string(value, threshold=6)
    return repr(value) if isinstance(value, str) else str(value)


def _as_column(name: str, value: Any, n: int | None) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ConditionError(name, value, "must be a number or a list of numbers") from None
    arr = np.atleast_1d(arr)
    if arr.size == 0:
        raise ConditionError(name, "[]", "must hold at least one value")
    if arr.ndim != 1:
        raise ConditionError(name, value, "must be a number or a flat list of numbers")
    if n is not None and arr.size not in (1, n):
        raise ConditionError(name, f"<{arr.size} values>", f"must have 1 or {n} values like the other columns")
    return arr


def _check_range(name: str, arr: np.ndarray, lo: float, hi: float, unit: str) -> None:
    if lo <= arr.min() and arr.max() <= hi:  # NaN fails both comparisons, and the bounds are finite
        return
    bad = ~np.isfinite(arr) | (arr < lo) | (arr > hi)
    if bad.any():
        i = int(np.argmax(bad))
        where = f" (item {i})" if arr.size > 1 else ""
        unit_txt = f" {unit}" if unit and unit != "1" else ""
        raise ConditionError(f"{name}{where}", float(arr[i]), f"must be a finite number in [{lo:g}, {hi:g}]{unit_txt}")


def _fractions(manifest: Manifest, x: Any, y: Any, **units: Any) -> tuple[Any, Any]:
    """The image position as fractions ``(x, y)``: given as such, or converted from millimetres or pixels
    (one pair at most; :data:`models_store.wire.POSITION_UNITS`)."""
    given = [(a, b) for a, b in POSITION_UNITS.items() if (x if a == "x" else units[a]) is not None
             or (y if b == "y" else units[b]) is not None]
    if len(given) > 1:
        names = " and ".join(f"{a}/{b}" for a, b in given)
        raise ConditionError(names, None, "give the image position one way: field (+ azimuth), x and y, x_mm and "
                             "y_mm, or px and py")
    if not given or given[0][0] == "x":
        return x, y
    a, b = given[0]
    if (units[a] is None) != (units[b] is None):
        missing = b if units[b] is None else a
        raise ConditionError(missing, None, f"{a} and {b} must be given together")
    frame = SensorFrame.of(manifest.lens)
    # the sensor's edges, in the pair's unit: fractions -1..1 (pixel edges half a pixel beyond the centres)
    w, h = frame.fraction_to_mm(1.0, 1.0) if a == "x_mm" else ((frame.cols - 1) / 2 + 0.5, (frame.rows - 1) / 2 + 0.5)
    centre = (0.0, 0.0) if a == "x_mm" else ((frame.cols - 1) / 2, (frame.rows - 1) / 2)
    unit = "mm" if a == "x_mm" else "px"
    for name, half, mid in ((a, float(w), centre[0]), (b, float(h), centre[1])):
        try:
            values = np.asarray(units[name], dtype=np.float64)
        except (TypeError, ValueError):
            raise ConditionError(name, units[name], "must be numbers") from None
        bad = ~np.isfinite(values) | (np.abs(values - mid) > half * (1 + 1e-9))
        if bad.any():
            where = f" (item {int(np.argmax(bad))})" if values.size > 1 else ""
            raise ConditionError(f"{name}{where}", float(values.reshape(-1)[int(np.argmax(bad))]),
                                 f"must be a finite number in [{mid - half:g}, {mid + half:g}] {unit} (on the sensor)")
    mm = (units[a], units[b]) if a == "x_mm" else frame.px_to_mm(units[a], units[b])
    return frame.mm_to_fraction(*mm)


def resolve_conditions(
    manifest: Manifest,
    *,
    field: Any = None,
    azimuth: Any = None,
    x: Any = None,
    y: Any = None,
    x_mm: Any = None,
    y_mm: Any = None,
    px: Any = None,
    py: Any = None,
    **physical: Any,
) -> tuple[np.ndarray, np.ndarray]:
    """Validate one query (scalars) or many (columns) against the manifest's trained ranges.

    The image position is ``field`` (+ ``azimuth``), or ``x``, ``y`` (fractions of the half-width /
    half-height), ``x_mm``, ``y_mm`` (millimetres from the axis) or ``px``, ``py`` (pixels of the
    manifest's sensor grid), all in the frame of :mod:`models_store.sensor`: the ideal image point.
    Returns ``(condition [N, C] float32 in the manifest's order, azimuth [N] degrees)``. Raises
    :class:`ConditionError` naming the parameter, the value and what is allowed.
    """
    x, y = _fractions(manifest, x, y, x_mm=x_mm, y_mm=y_mm, px=px, py=py)
    extra = sorted(k for k, v in physical.items() if v is not None and k not in manifest.condition_names)
    if extra:
        raise ConditionError(extra[0], physical[extra[0]],
                             f"unknown parameter; this model takes {manifest.condition_names}")
    if field is not None and (x is not None or y is not None):
        raise ConditionError("x/y", (x, y), "give either field (+ azimuth) or x and y, not both")
    if azimuth is not None and (x is not None or y is not None):  # x and y fix the direction themselves
        raise ConditionError("azimuth/x/y", (azimuth, x, y), "give azimuth only with field; x and y fix the direction")
    if (x is None) != (y is None):
        missing = "y" if y is None else "x"
        raise ConditionError(missing, None, "x and y must be given together")

    given = [v for v in (field, azimuth, x, y, *physical.values()) if v is not None]
    n = max((np.size(v) for v in given), default=1)

    lens = manifest.lens
    if x is not None:
        xs, ys = _as_column("x", x, n), _as_column("y", y, n)
        _check_range("x", xs, *FIXED_RANGES["x"], "")
        _check_range("y", ys, *FIXED_RANGES["y"], "")
        frame = SensorFrame.of(lens)
        field_arr, az = frame.mm_to_field(*frame.fraction_to_mm(xs, ys), on_axis_azimuth=DEFAULT_AZIMUTH)
    else:
        if field is None:
            trained = next((f" in [{c.min:g}, {c.max:g}]" for c in manifest.conditions if c.name == "field"), "")
            raise ConditionError("field", None, f"give field{trained} (with optional azimuth), or x and y")
        field_arr = _as_column("field", field, n)
        az = _as_column("azimuth", DEFAULT_AZIMUTH if azimuth is None else azimuth, n)
        _check_range("azimuth", az, *FIXED_RANGES["azimuth"], "deg")

    columns = []
    for spec in manifest.conditions:
        if spec.name == "field":
            value = field_arr
        elif spec.name == "azimuth":  # mirror-symmetric models are conditioned on the first quadrant
            value = fold_azimuth(az)[0]
        else:
            supplied = physical.get(spec.name)
            if supplied is None:
                raise ConditionError(spec.name, None, f"give a value in [{spec.min:g}, {spec.max:g}] {spec.unit}")
            value = _as_column(spec.name, supplied, n)
        # x/y may land a hair beyond the trained field through rounding; everything else is strict.
        if spec.name == "field" and x is not None:
            value = np.minimum(value, spec.max) if np.all(value <= spec.max + 1e-9) else value
        _check_range(spec.name, value, spec.min, spec.max, spec.unit)
        columns.append(np.broadcast_to(value, (n,)))
    cond = np.stack(columns, axis=1).astype(np.float32)
    return cond, np.broadcast_to(az, (n,)).astype(np.float64)


def check_condition_matrix(manifest: Manifest, condition: Any, parameter: str = "condition") -> np.ndarray:
    """A graph's own ``condition`` input ([N, C], the manifest's columns in physical units, as a
    Triton client sends it), checked against the trained ranges column by column -> float32 [N, C]."""
    names = manifest.condition_names
    arr = np.asarray(condition, dtype=np.float32)
    if arr.ndim != 2 or arr.shape[1] != len(names) or len(arr) == 0:
        raise ConditionError(f"{parameter} shape", list(arr.shape),
                             f"must be [N, {len(names)}] (N >= 1), columns {names}")
    for i, spec in enumerate(manifest.conditions):
        _check_range(f"{parameter}[:, {i}] ({spec.name})", arr[:, i].astype(np.float64), spec.min, spec.max, spec.unit)
    return arr


def fold_azimuth(azimuth_deg: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Azimuth -> (azimuth in [0, 90], flip rows?, flip columns?).

    For a rotationally symmetric lens the PSF at -a is the PSF at a mirrored top-bottom, and at
    180 - a mirrored left-right; on the pixel grid these mirrors are exact (no resampling), unlike a
    rotation. Quadrant II mirrors columns, III both, IV rows.
    """
    a = np.remainder(np.asarray(azimuth_deg, dtype=np.float64), 360.0)
    # np.where instead of np.select: the same exact values (every difference below is exact by
    # Sterbenz's lemma), a fraction of the time on the one-row queries the server answers
    lower = a > 180  # quadrants III and IV: a - 180 is their mirror image in the upper half
    half = np.where(lower, a - 180.0, a)
    folded = np.where(half > 90, 180.0 - half, half)  # 180 - (a - 180) = 360 - a in quadrant IV
    return folded, lower, (a > 90) & (a < 270)


def mirror_psfs(psfs: np.ndarray, azimuth_deg: np.ndarray) -> np.ndarray:
    """First-quadrant kernels -> kernels at their azimuths by exact flips (self-inverse)."""
    psfs = np.array(psfs, dtype=np.float32, copy=True)
    _, flip_rows, flip_cols = fold_azimuth(np.broadcast_to(azimuth_deg, (len(psfs),)))
    psfs[flip_rows] = psfs[flip_rows, ::-1, :]
    psfs[flip_cols] = psfs[flip_cols, :, ::-1]
    return psfs


def orient_psfs(symmetry: str, psfs: np.ndarray, azimuth_deg: np.ndarray) -> np.ndarray:
    """Kernels in the model's frame -> kernels at their azimuths, for a manifest's ``symmetry``."""
    if symmetry == "rotational":
        return rotate_psfs(psfs, azimuth_deg)
    if symmetry == "mirror":
        return mirror_psfs(psfs, azimuth_deg)
    return psfs


def to_model_frame(symmetry: str, psfs: np.ndarray, azimuth_deg: np.ndarray) -> np.ndarray:
    """The inverse of :func:`orient_psfs`: kernels seen at their azimuths, in the model's frame."""
    if symmetry == "rotational":
        return to_meridian(psfs, azimuth_deg)
    return orient_psfs(symmetry, psfs, azimuth_deg)  # mirror flips are their own inverse


def rotate_psfs(psfs: np.ndarray, azimuth_deg: np.ndarray, *, meridian_deg: float = DEFAULT_AZIMUTH) -> np.ndarray:
    """Rotate kernels predicted on the meridian to their azimuth (bilinear, unit sum kept).

    Array convention: row 0 is image +y, column index grows toward +x, centre at ((k-1)/2, (k-1)/2).
    A point moved counter-clockwise on the sensor turns its PSF counter-clockwise as displayed.
    """
    psfs = np.asarray(psfs, dtype=np.float32)
    n, k, _ = psfs.shape
    phi = np.radians(np.asarray(azimuth_deg, dtype=np.float64) - meridian_deg).reshape(n)
    out = psfs.copy()
    todo = np.nonzero(np.abs(np.remainder(phi + np.pi, 2 * np.pi) - np.pi) > 1e-9)[0]
    # A few rows at a time (about 32k pixels): every row is turned on its own, so the bits are the same,
    # and temporaries that stay in the CPU's cache turned a batch of 256 at 128 px 3x faster.
    step = max(1, _TURN_PIXELS // (k * k))
    for start in range(0, todo.size, step):
        rows = todo[start:start + step]
        out[rows] = _turn(psfs[rows], phi[rows])
    return out


def _turn(psfs: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """[m, k, k] float32 kernels turned by ``phi`` [m] radians: bilinear, each renormalised to unit sum."""
    k = psfs.shape[-1]
    # float32 throughout, broadcast from one axis vector: at 128 px this is memory-bound, and float64
    # temporaries of every pixel doubled the time of a served GET /psf.
    c = (k - 1) / 2.0
    axis = np.arange(k, dtype=np.float32) - np.float32(c)
    u, v = axis[None, None, :], -axis[None, :, None]  # image coordinates of each output pixel
    cos = np.cos(phi).astype(np.float32)[:, None, None]
    sin = np.sin(phi).astype(np.float32)[:, None, None]
    src_c = (u * cos + v * sin) + np.float32(c)
    src_r = (u * sin - v * cos) + np.float32(c)
    r0, c0 = np.floor(src_r), np.floor(src_c)
    fr, fc = src_r - r0, src_c - c0
    # Taps read a copy with a zero border: a source index clipped onto the border reads 0, which is
    # what a tap outside the kernel contributes (one gather per tap instead of a mask per tap).
    m, w = len(psfs), k + 2
    padded = np.zeros((m, w, w), dtype=np.float32)
    padded[:, 1:-1, 1:-1] = psfs
    flat = padded.reshape(-1)
    index = np.int32 if m * w * w < 2**31 else np.int64
    base = (np.arange(m, dtype=index) * (w * w))[:, None, None]
    rows = [(np.clip(r0 + d, -1, k).astype(index) + 1) * w + base for d in (0, 1)]
    cols = [np.clip(c0 + d, -1, k).astype(index) + 1 for d in (0, 1)]
    gc = 1 - fc

    def tap(dr: int, dc: int) -> np.ndarray:
        return np.take(flat, rows[dr] + cols[dc])

    rotated = (tap(0, 0) * gc + tap(0, 1) * fc) * (1 - fr) + (tap(1, 0) * gc + tap(1, 1) * fc) * fr
    total = rotated.sum(axis=(1, 2), keepdims=True)
    return (rotated / np.where(total > 0, total, 1.0)).astype(np.float32)


def to_meridian(psfs: np.ndarray, azimuth_deg: np.ndarray, *, meridian_deg: float = DEFAULT_AZIMUTH) -> np.ndarray:
    """The inverse turn of :func:`rotate_psfs`: kernels seen at their azimuth, turned back onto the meridian."""
    return rotate_psfs(psfs, 2.0 * meridian_deg - np.asarray(azimuth_deg, dtype=np.float64), meridian_deg=meridian_deg)


def check_grid(nx: Any, ny: Any) -> None:
    """A grid of ``nx x ny`` tiles needs whole numbers >= 1 (ConditionError naming the one that is not)."""
    for name, n in (("nx", nx), ("ny", ny)):
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ConditionError(name, n, "must be a whole number >= 1")


def sensor_grid(nx: int, ny: int) -> tuple[np.ndarray, np.ndarray]:
    """Centres of an nx x ny tiling of the sensor as (x, y) columns of ny * nx points, row-major.

    Point j * nx + i is the centre of image tile (row j, column i); the formula is
    :func:`models_store.wire.tile_centres`.
    """
    check_grid(nx, ny)
    xs, ys = tile_centres(nx, ny)
    gy, gx = np.meshgrid(ys, xs, indexing="ij")
    return gx.reshape(-1), gy.reshape(-1)
