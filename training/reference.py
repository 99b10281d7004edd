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
    digest = hashlib.sha256(tracer.cache_identity())
    digest.update(json.dumps([ks, rays, repeats, list(columns or tracer.columns)]).encode())
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


def adaptive_reference(tracer: LensTracer, conditions: np.ndarray, *, ks: int, noise: float, max_rays: int,
                       pass_rays: int, cache_dir: Path | None = DEFAULT_CACHE, progress: bool = True,
                       columns: list[str] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Reference PSFs whose own noise is ``noise`` (relative L1) at *every* point, not just the widest.

    Each point is traced in passes of ``pass_rays`` rays into two independent halves; after each pass the
    noise of their mean is estimated from the halves (as :func:`converged_reference` does) and only the
    points still above ``noise`` get another pass, up to ``max_rays`` each. A small sharp PSF converges in
    one pass, a wide defocus disc takes many: the rays go where the noise is.
    Returns (psf [N, ks, ks], noise [N], rays [N])."""
    conditions = np.asarray(conditions, dtype=np.float64)
    path = None
    if cache_dir is not None:
        key = _key(tracer, conditions, ks, max_rays, 2, columns)
        path = Path(cache_dir) / f"ref-adaptive-{key}-{noise:.5f}-{pass_rays}.npz"
        if path.is_file():
            with np.load(path) as data:
                return data["psf"], data["noise"], data["rays"]
    pass_rays = min(pass_rays, max_rays)  # a pass never exceeds the cap
    n = len(conditions)
    sums = np.zeros((2, n, ks, ks), dtype=np.float64)  # each half: sum of its passes' PSFs
    passes = np.zeros(n, dtype=np.int64)
    half_spp = max(1, pass_rays // 2)
    est = np.full(n, np.inf)
    max_passes = max(1, max_rays // (2 * half_spp))
    bar = tqdm(total=n, desc=f"reference (to noise {noise}, <= {max_rays} rays/point, {ks} px)", unit="point",
               disable=not progress, leave=False)
    while True:
        todo = np.nonzero((est > noise) & (passes < max_passes))[0]
        if len(todo) == 0:
            break
        chunk = max(1, MAX_RAYS_PER_CALL // half_spp)
        for start in range(0, len(todo), chunk):
            rows = todo[start:start + chunk]
            for h in (0, 1):
                sums[h, rows] += tracer.psf_conditions(conditions[rows], ks=ks, spp=half_spp, columns=columns)
        passes[todo] += 1
        a = sums[0, todo] / sums[0, todo].sum(axis=(-2, -1), keepdims=True)
        b = sums[1, todo] / sums[1, todo].sum(axis=(-2, -1), keepdims=True)
        est[todo] = 0.5 * np.abs(a - b).sum(axis=(-2, -1))
        bar.update(int(((est[todo] <= noise) | (passes[todo] >= max_passes)).sum()))
    bar.close()
    total = sums.sum(axis=0)
    psf = (total / total.sum(axis=(-2, -1), keepdims=True)).astype(np.float32)
    rays = passes * 2 * half_spp
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        np.savez_compressed(tmp, psf=psf, conditions=conditions, noise=est, rays=rays)
        tmp.replace(path)
    return psf, est, rays
