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
    digest.update(json.dumps([tracer.focus_m, ks, rays, repeats, list(columns or tracer.columns)]).encode())
    digest.update(np.ascontiguousarray(conditions, dtype=np.float64).tobytes())
    return digest.hexdigest()[:20]


def converged_reference(tracer: LensTracer, conditions: np.ndarray, *, ks: int, rays: int = 2**21,
                        repeats: int = 4, cache_dir: Path | None = DEFAULT_CACHE, chunk: int = 8,
                        progress: bool = True, columns: list[str] | None = None) -> np.ndarray:
    """[N, ks, ks] reference PSFs: the mean of ``repeats`` traces of ``rays // repeats`` rays each."""
    conditions = np.asarray(conditions, dtype=np.float64)
    path = None
    if cache_dir is not None:
        path = Path(cache_dir) / f"ref-{_key(tracer, conditions, ks, rays, repeats, columns)}.npz"
        if path.is_file():
            with np.load(path) as data:
                return data["psf"]
    spp = rays // repeats
    out = np.zeros((len(conditions), ks, ks), dtype=np.float64)
    bar = tqdm(total=len(conditions) * repeats, desc=f"reference ({rays} rays/point)", unit="trace",
               disable=not progress, leave=False)
    for start in range(0, len(conditions), chunk):
        rows = slice(start, start + chunk)
        for _ in range(repeats):
            out[rows] += tracer.psf_conditions(conditions[rows], ks=ks, spp=spp, columns=columns)
            bar.update(len(conditions[rows]))
    bar.close()
    psf = (out / repeats).astype(np.float32)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        np.savez_compressed(tmp, psf=psf, conditions=conditions)
        tmp.replace(path)
    return psf
