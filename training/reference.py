"""Converged ray-traced reference PSFs at held-out conditions, cached on disk.

Each reference point averages several independent DeepLens traces (``repeats`` x ``rays/repeats``
rays), so the reference itself is far below the noise of any ray count we compare against. Traces
are expensive (seconds per point), so a reference set is keyed by everything that changes it (lens
file contents, focus, kernel size, rays, conditions) and reused.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from .config import ConditionsConfig
from .raytrace import LensTracer

DEFAULT_CACHE = Path(".cache") / "references"


def held_out_grid(ranges: ConditionsConfig, n_field: int = 4, n_depth: int = 4, n_wavelength: int = 3,
                  seed: int = 2024) -> np.ndarray:
    """A jittered grid over field x depth (in 1/depth) x wavelength: spread evenly, never on the
    training samples' exact values. Rows are (field, depth m, wavelength nm), wavelength-major.
    Callers add focus / azimuth columns (see evaluate.evaluation_conditions)."""
    rng = np.random.default_rng(seed)
    f, d, w = ranges.field, ranges.depth, ranges.wavelength

    def cells(lo: float, hi: float, n: int) -> np.ndarray:
        edges = np.linspace(lo, hi, n + 1)
        return edges[:-1] + (edges[1:] - edges[:-1]) * rng.uniform(0.2, 0.8, n)

    fields = cells(f.min, f.max, n_field)
    depths = 1.0 / cells(1.0 / d.max, 1.0 / d.min, n_depth)[::-1]
    wavelengths = cells(w.min, w.max, n_wavelength)
    grid = np.array([(fi, di, wi) for wi in wavelengths for fi in fields for di in depths])
    return grid


def _key(tracer: LensTracer, conditions: np.ndarray, ks: int, rays: int, repeats: int, columns) -> str:
    digest = hashlib.sha256()
    digest.update(tracer.lens_file.read_bytes())
    digest.update(json.dumps([tracer.focus_m, ks, rays, repeats, list(columns or tracer.columns)]
                             + ([tracer.sensor_res] if tracer.sensor_res else [])).encode())
    digest.update(np.ascontiguousarray(conditions, dtype=np.float64).tobytes())
    return digest.hexdigest()[:20]


MAX_RAYS_PER_CALL = 2**22  # rays DeepLens traces at once (points x rays per point): bounds memory


def converged_reference(tracer: LensTracer, conditions: np.ndarray, *, ks: int, rays: int = 2**21,
                        repeats: int = 4, cache_dir: Path | None = DEFAULT_CACHE, chunk: int = 8,
                        progress: bool = True, columns: list[str] | None = None,
                        with_noise: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """[N, ks, ks] reference PSFs: the mean of ``repeats`` traces of ``rays // repeats`` rays each.

    With ``with_noise``, also the reference's own expected relative-L1 noise per point, estimated from
    its two independent halves (|A - B| between halves of n/2 rays is twice the noise of their mean);
    NaN with a single repeat."""
    conditions = np.asarray(conditions, dtype=np.float64)
    path = None
    if cache_dir is not None:
        path = Path(cache_dir) / f"ref-{_key(tracer, conditions, ks, rays, repeats, columns)}.npz"
        if path.is_file():
            with np.load(path) as data:
                psf = data["psf"]
                noise = data["noise"] if "noise" in data else np.full(len(psf), np.nan)
            return (psf, noise) if with_noise else psf
    spp = rays // repeats
    pieces = max(1, -(-spp // MAX_RAYS_PER_CALL))  # a repeat of many rays is traced in equal pieces
    piece_spp = spp // pieces
    chunk = max(1, min(chunk, MAX_RAYS_PER_CALL // piece_spp))
    halves = np.zeros((2, len(conditions), ks, ks), dtype=np.float64)
    bar = tqdm(total=len(conditions) * repeats, desc=f"reference ({rays} rays/point, {ks} px)", unit="trace",
               disable=not progress, leave=False)
    for start in range(0, len(conditions), chunk):
        rows = slice(start, start + chunk)
        for r in range(repeats):
            for _ in range(pieces):
                halves[(2 * r) // repeats, rows] += tracer.psf_conditions(conditions[rows], ks=ks, spp=piece_spp,
                                                                          columns=columns)
            bar.update(len(conditions[rows]))
    bar.close()
    psf = (halves.sum(axis=0) / (repeats * pieces)).astype(np.float32)
    noise = np.full(len(conditions), np.nan)
    if repeats >= 2:
        a = halves[0] / halves[0].sum(axis=(-2, -1), keepdims=True)
        b = halves[1] / halves[1].sum(axis=(-2, -1), keepdims=True)
        noise = 0.5 * np.abs(a - b).sum(axis=(-2, -1))
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        np.savez_compressed(tmp, psf=psf, conditions=conditions, noise=noise)
        tmp.replace(path)
    return (psf, noise) if with_noise else psf
