"""render(): an image through the lens, with PSF grids fetched from a PSF source.

A source is anything with the clients' ``psf_grid`` (and ``model`` for the sensor size):
``PSFClient`` or ``LocalPSFModel``. Each channel has a wavelength, or a list of (wavelength, weight)
for a spectral band; an optional depth map is cut into layers evenly spaced in 1/depth, each pixel
shared between its two nearest layers, and every layer is blurred with the grid at its depth and the
layers summed (no occlusion: fine for smooth depth, too soft across sharp depth edges).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence
from typing import Any, cast

import numpy as np

from .._arrays import PSFArray, PSFMeta, with_meta
from ._blur import blur
from ._color import is_torch, linear_to_srgb, srgb_to_linear
from ._kernels import resample_kernels
from ._warp import Warp

DEFAULT_GRID = (16, 12)
DISTORTION_GRID = (33, 25)  # points of the distortion and illumination grid (smooth: interpolated between)
# one wavelength per channel inside the band every shipped model is trained on (450-650 nm)
DEFAULT_RGB_NM = (620.0, 550.0, 470.0)
Spectrum = float | Sequence[tuple[float, float]]


def _spectra(wavelengths: Sequence[Spectrum] | None, channels: int) -> list[list[tuple[float, float]]]:
    if wavelengths is None:
        if channels not in (1, 3):
            raise ValueError(f"an image with {channels} channels needs wavelengths=[one per channel]")
        wavelengths = DEFAULT_RGB_NM if channels == 3 else (DEFAULT_RGB_NM[1],)
    if len(wavelengths) != channels:
        raise ValueError(f"wavelengths has {len(wavelengths)} entries for an image with {channels} channels")
    spectra = []
    for entry in wavelengths:
        if np.ndim(entry) == 0:  # a wavelength (a Python or numpy number)
            pairs = [(float(cast(float, entry)), 1.0)]
        else:
            pairs = [(float(w), float(a)) for w, a in cast(Sequence[tuple[float, float]], entry)]
        total = sum(a for _, a in pairs)
        if not pairs or total <= 0 or any(a < 0 for _, a in pairs):
            raise ValueError(f"channel spectrum {entry!r} needs non-negative weights with a positive sum")
        spectra.append([(w, a / total) for w, a in pairs])
    return spectra


def fetch_psf_grid(source: Any, nx: int, ny: int, *, depth: float, wavelengths: Sequence[Spectrum],
                   focus: float | None = None, model: str | None = None,
                   version: int | str | None = None) -> PSFArray:
    """Per-channel PSF grid [ny, nx, C, k, k]: each channel's kernels are its spectrum's weighted mean.

    Every wavelength is fetched once, all from the version the first answer came from.
    """
    spectra = _spectra(wavelengths, len(wavelengths))
    grids: dict[float, np.ndarray] = {}
    meta: PSFMeta | None = None
    for wavelength in sorted({w for spectrum in spectra for w, _ in spectrum}):
        grid = source.psf_grid(nx, ny, depth=depth, wavelength=wavelength, focus=focus, model=model, version=version)
        if inspect.isawaitable(grid):
            if inspect.iscoroutine(grid):
                grid.close()  # never awaited: closing it spares the "never awaited" warning
            raise TypeError("render() needs a PSFClient or LocalPSFModel; with an AsyncPSFClient, await its "
                            "psf_grid() per wavelength and pass the stacked grid to blur()")
        if meta is None and getattr(grid, "meta", None) is not None:
            meta = grid.meta
            model, version = meta.model, meta.version
        grids[wavelength] = np.asarray(grid, dtype=np.float32)
    channels = [sum(weight * grids[w] for w, weight in spectrum) for spectrum in spectra]
    return with_meta(np.stack(channels, axis=2), meta)


def depth_layers(depth_map: np.ndarray, layers: int) -> tuple[np.ndarray, np.ndarray]:
    """Layer depths [L] (evenly spaced in 1/depth over the map's range) and weights [L, H, W] summing to 1."""
    depth_map = np.asarray(depth_map, dtype=np.float64)
    if depth_map.ndim != 2 or not np.isfinite(depth_map).all() or (depth_map <= 0).any():
        raise ValueError("depth_map must be [H, W] of finite positive distances in metres")
    near, far = 1.0 / depth_map.min(), 1.0 / depth_map.max()
    if layers < 2 or np.isclose(near, far):
        return np.array([float(np.median(depth_map))]), np.ones((1, *depth_map.shape), dtype=np.float32)
    disparities = np.linspace(far, near, layers)
    t = (1.0 / depth_map - far) / (near - far) * (layers - 1)
    lower = np.minimum(np.floor(t).astype(np.int64), layers - 2)
    frac = t - lower
    weights = np.zeros((layers, *depth_map.shape), dtype=np.float32)
    rows, cols = np.indices(depth_map.shape)
    weights[lower, rows, cols] = 1.0 - frac
    weights[lower + 1, rows, cols] += frac
    return 1.0 / disparities, weights


def _pitch_factors(manifest: Callable[[], dict[str, Any]], meta: PSFMeta | None, height: int, width: int,
                   pixel_pitch_um: float | None) -> tuple[float, float]:
    """Image pixel pitch over PSF pixel pitch, per axis (the image spans the sensor unless told)."""
    if meta is None or meta.pixel_pitch_um is None:
        return 1.0, 1.0
    if pixel_pitch_um is not None:
        return pixel_pitch_um / meta.pixel_pitch_um, pixel_pitch_um / meta.pixel_pitch_um
    sensor_w, sensor_h = manifest()["lens"]["sensor_size_mm"]
    return 1000.0 * sensor_w / width / meta.pixel_pitch_um, 1000.0 * sensor_h / height / meta.pixel_pitch_um


def _lens_geometry(source: Any, manifest: Callable[[], dict[str, Any]], depth: float,
                   spectra: list[list[tuple[float, float]]], focus: float | None, model: str | None,
                   version: int | str | None, wanted: tuple[bool | None, bool | None],
                   shape: tuple[int, int]) -> tuple[Warp, list[np.ndarray] | None] | None:
    """The warp of an image of ``shape`` at ``depth`` and each channel's illumination [H, W], as ``wanted``
    (distortion, illumination: True, False, or None = when the model has a geometry table); None if neither."""
    if wanted == (False, False) or (True not in wanted and manifest().get("geometry") is None):
        return None  # nothing asked, or a version published before geometry tables: render as before
    nx, ny = DISTORTION_GRID
    per_wavelength = {w: source.distortion(nx, ny, depth=depth, wavelength=w, focus=focus, model=model,
                                           version=version)  # NotFoundError when asked of a version without one
                      for w in sorted({w for spectrum in spectra for w, _ in spectrum})}
    any_geometry = next(iter(per_wavelength.values()))
    sensor = manifest()["lens"]["sensor_resolution"]
    # the chief ray is the primary wavelength's at every wavelength (lateral colour is inside the kernels)
    warp = Warp(any_geometry, shape, (int(sensor[0]), int(sensor[1])), warp=wanted[0] is not False)
    if wanted[1] is False:
        return warp, None
    lights = {w: warp.light(g.illumination) for w, g in per_wavelength.items()}
    return warp, [np.sum([weight * lights[w] for w, weight in spectrum], axis=0) for spectrum in spectra]


def _warped(layer: Any, geometry: tuple[Warp, list[np.ndarray] | None]) -> Any:
    warp, light = geometry
    array = layer.detach().cpu().numpy() if is_torch(layer) else np.asarray(layer)
    out = warp.apply(array)
    if light is not None:
        out = out * (light[0] if out.ndim == 2 else np.stack(light, axis=-1))
    if is_torch(layer):
        import torch

        return torch.as_tensor(out, dtype=layer.dtype, device=layer.device)
    return out.astype(array.dtype if array.dtype.kind == "f" else np.float32, copy=False)


def render(image: Any, source: Any, *, depth: float | None = None, depth_map: Any = None, layers: int = 6,
           wavelengths: Sequence[Spectrum] | None = None, grid: tuple[int, int] = DEFAULT_GRID, srgb: bool = True,
           focus: float | None = None, model: str | None = None, version: int | str | None = None,
           pixel_pitch_um: float | None = None, padding: str = "reflect", backend: str | None = None,
           distortion: bool | None = None, illumination: bool | None = None) -> Any:
    """The image as the lens would form it: [H, W] or [H, W, C] in, the same shape and type out.

    Each layer is warped by the lens's distortion (the chief rays' landing points), shaded by its relative
    illumination, then blurred. ``distortion`` / ``illumination``: True (the model must have a geometry
    table), False (off), or None (the default: on when the model has one).

    ``depth`` [m] for a flat scene, or ``depth_map`` [H, W] in metres (inside the model's trained depth
    range; clip it first) cut into ``layers``. ``wavelengths``: one per channel, each a wavelength [nm]
    or [(wavelength, weight), ...]; default 620/550/470 nm for RGB. ``grid`` = (nx, ny) PSFs across
    the sensor. ``srgb``: the image is sRGB-encoded (decoded before and encoded after the blur, which
    happens in linear light); False for linear data. The image spans the whole sensor; kernels are
    resampled from the sensor's pixel pitch to the image's (``pixel_pitch_um`` overrides it).
    """
    if (depth is None) == (depth_map is None):
        raise ValueError("give either depth (metres, a flat scene) or depth_map ([H, W] metres)")
    shape = tuple(image.shape)
    if len(shape) not in (2, 3):
        raise ValueError(f"image must be [H, W] or [H, W, C], got shape {list(shape)}")
    spectra = _spectra(wavelengths, 1 if len(shape) == 2 else shape[2])
    if depth_map is not None:
        depth_map = depth_map.detach().cpu().numpy() if is_torch(depth_map) else np.asarray(depth_map)
        if depth_map.shape != shape[:2]:
            raise ValueError(f"depth_map is {list(depth_map.shape)}, the image {list(shape[:2])}")
        depths, masks = depth_layers(depth_map, layers)
    else:
        depths, masks = np.array([float(cast(float, depth))]), None  # depth is given when depth_map is not
    linear = srgb_to_linear(image) if srgb else image
    out, factors = None, None
    # the version's manifest, asked once (after the first grid has pinned model and version)
    manifest = functools.cache(lambda: source.model(model, version=version))
    for index, layer_depth in enumerate(depths):
        psfs = fetch_psf_grid(source, grid[0], grid[1], depth=float(layer_depth), wavelengths=spectra, focus=focus,
                              model=model, version=version)
        if psfs.meta is not None:
            model, version = psfs.meta.model, psfs.meta.version
        factors = factors or _pitch_factors(manifest, psfs.meta, shape[0], shape[1], pixel_pitch_um)
        fx, fy = factors
        kernels = np.asarray(psfs) if np.isclose(fx, 1.0) and np.isclose(fy, 1.0) else resample_kernels(psfs, fx, fy)
        layer = linear if masks is None else linear * _like(masks[index], linear, len(shape))
        geometry = _lens_geometry(source, manifest, float(layer_depth), spectra, focus, model, version,
                                  (distortion, illumination), (shape[0], shape[1]))
        if geometry is not None:
            layer = _warped(layer, geometry)
        blurred = blur(layer, kernels, padding=padding, backend=backend)
        out = blurred if out is None else out + blurred
    return linear_to_srgb(out) if srgb else out


def _like(mask: np.ndarray, image: Any, ndim: int) -> Any:
    mask = mask if ndim == 2 else mask[:, :, None]
    if is_torch(image):
        import torch

        return torch.as_tensor(mask, device=image.device)
    return mask
