"""Ray-traced PSFs of one lens with DeepLens, in the project's units.

Conditions are (field, depth [m], wavelength [nm]) on the +y meridian: field is the image height as a
fraction of the sensor half-diagonal. DeepLens wants normalised (x, y) as fractions of the sensor
half-width / half-height, depth as a negative distance in mm and wavelength in um.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
from pathlib import Path

import numpy as np
import torch

from models_store import LensInfo, sha256_file

from .diffraction import OpticsDecision, cache_tag, decide_for_lens, diffracted_psf
from .lens_formats.build import load
from .prescription import LensFileError, read_lens, require_pixel_grid

log = logging.getLogger(__name__)

DEFAULT_COLUMNS = ("field", "depth", "wavelength")


def pick_device(requested: str = "auto") -> str:
    """Where to trace: ``cuda`` when asked for, or for ``auto`` when torch sees a GPU; ``cpu`` otherwise.
    Asking for ``cuda`` on a machine without one is an error that says so."""
    if requested not in ("auto", "cpu", "cuda"):
        raise ValueError(f"trace device {requested!r} is not one of auto, cpu, cuda")
    has_gpu = torch.cuda.is_available()
    if requested == "cuda" and not has_gpu:
        raise ValueError("data.trace_device = 'cuda', but torch sees no CUDA GPU here; use auto or cpu")
    return "cuda" if requested == "cuda" or (requested == "auto" and has_gpu) else "cpu"


class LensTracer:
    """A GeoLens focused once, answering PSF queries in physical units."""

    def __init__(self, lens_file: str | Path, focus_m: float | None = None, seed: int = 0,
                 columns: list[str] | tuple[str, ...] = DEFAULT_COLUMNS,
                 sensor_res: tuple[int, int] | None = None, device: str = "auto", *,
                 sensor_diagonal_mm: float | None = None, glasses: dict[str, str] | None = None,
                 allow_mismatch: bool = False) -> None:
        self.lens_file = Path(lens_file)
        require_pixel_grid(self.lens_file, sensor_res)
        self.device = pick_device(device)
        self.sensor_res = None if sensor_res is None else [int(v) for v in sensor_res]
        self.sensor_diagonal_mm = sensor_diagonal_mm
        # what else decides the traced lens besides the file (caches key on it: cache_identity)
        self.lens_options = {"sensor_diagonal_mm": sensor_diagonal_mm, "glasses": dict(sorted((glasses or {}).items())),
                             "allow_mismatch": allow_mismatch}
        built = load(read_lens(self.lens_file), sensor_res=sensor_res, sensor_diagonal_mm=sensor_diagonal_mm,
                     glasses=glasses, allow_mismatch=allow_mismatch, device=self.device)
        self.lens, self.facts = built.lens, built.facts
        self.format = str(self.facts.get("format", ""))
        self.refocus(focus_m, force=True)
        self.sensor_w, self.sensor_h = (float(v) for v in self.lens.sensor_size)
        # DeepLens samples rays from torch's global generator; tracing under our own seed sequence
        # keeps training randomness independent of how much was traced (or read from a cache).
        self._seeds = np.random.default_rng(seed)
        self.columns = list(columns)  # names of the condition columns psf_conditions receives
        self.optics = "geometric"  # what psf() computes; a run config's data.optics sets it (set_optics)
        self.optics_decision: OpticsDecision | None = None
        self.half_diagonal = float(np.hypot(self.sensor_w, self.sensor_h) / 2)

    def set_optics(self, requested: str, wavelength_max_nm: float) -> OpticsDecision:
        """Geometric or diffracted PSFs from here on (``auto``: by the Airy radius at ``wavelength_max_nm``)."""
        self.optics_decision = decide_for_lens(requested, self.lens, wavelength_max_nm)
        self.optics = self.optics_decision.optics
        return self.optics_decision

    @classmethod
    def for_run(cls, cfg, seed: int = 0) -> LensTracer:
        """The tracer a run config describes (lens file, focus, sensor grid, condition columns, optics)."""
        tracer = cls(cfg.lens.file, cfg.lens.focus_m, seed=seed, columns=cfg.conditions.names(),
                     sensor_res=cfg.lens.sensor_res, device=cfg.data.trace_device,
                     sensor_diagonal_mm=cfg.lens.sensor_diagonal_mm, glasses=cfg.lens.glasses,
                     allow_mismatch=cfg.lens.allow_mismatch)
        tracer.set_optics(cfg.data.optics, cfg.conditions.wavelength.max)
        return tracer

    def cache_identity(self) -> bytes:
        """The lens as traced, for the keys of every cache of traced PSFs (probe, bank, reference): the file's
        bytes, focus, pixel grid, the lens options that change the optics, and the PSF physics."""
        options = {k: v for k, v in self.lens_options.items() if v}  # the options set
        state = [self.focus_m, self.sensor_res, *([options] if options else [])]
        return self.lens_file.read_bytes() + json.dumps(state, sort_keys=True).encode() + cache_tag(self)

    def info(self) -> LensInfo:
        lens = self.lens
        return LensInfo(
            file=self.lens_file.name,
            sha256=sha256_file(self.lens_file),
            focal_length_mm=float(lens.foclen),
            f_number=float(lens.fnum),
            sensor_size_mm=(self.sensor_w, self.sensor_h),
            sensor_resolution=tuple(int(v) for v in lens.sensor_res),
            pixel_pitch_um=float(lens.pixel_size) * 1000.0,
            half_diagonal_mm=self.half_diagonal,
            focus_m=self.focus_m,
            format=self.format or None,
            notes=tuple(self.facts.get("notes", ())),
            optics=self.optics,
        )

    def points(self, field: np.ndarray, depth_m: np.ndarray, azimuth_deg: np.ndarray | float = 90.0) -> torch.Tensor:
        """Physical conditions -> DeepLens normalised object points [N, 3]."""
        field = np.asarray(field, dtype=np.float64)
        az = np.radians(np.broadcast_to(np.asarray(azimuth_deg, dtype=np.float64), field.shape))
        x = field * self.half_diagonal * np.cos(az) / (self.sensor_w / 2)
        y = field * self.half_diagonal * np.sin(az) / (self.sensor_h / 2)
        z = -1000.0 * np.asarray(depth_m, dtype=np.float64)
        return torch.as_tensor(np.stack([x, y, z], axis=-1), dtype=torch.float32, device=self.device)

    @torch.no_grad()
    def psf(self, field, depth_m, wavelength_nm: float, *, ks: int, spp: int,
            azimuth_deg: np.ndarray | float = 90.0) -> np.ndarray:
        """PSFs [N, ks, ks] float32 (unit sum, chief-ray centred) at one wavelength."""
        pts = self.points(np.atleast_1d(field), np.atleast_1d(depth_m), azimuth_deg)
        with torch.random.fork_rng(devices=[] if self.device == "cpu" else None):
            torch.manual_seed(int(self._seeds.integers(2**62)))
            if self.optics == "diffraction":  # wave optics (training/wave.py), deterministic: spp does not apply
                out = diffracted_psf(self.lens, pts, float(wavelength_nm), ks=ks, spp=spp)
            else:
                out = self.lens.psf(pts, wvln=float(wavelength_nm) / 1000.0, ks=ks, spp=spp, recenter=True)
        out = out.reshape(-1, ks, ks).float().cpu().numpy()
        assert out.shape == (pts.shape[0], ks, ks), f"DeepLens returned {out.shape}"
        return out

    def refocus(self, focus_m: float | None, *, force: bool = False) -> None:
        """Move the sensor to focus at ``focus_m`` (None = infinity); a no-op when already there."""
        if focus_m == getattr(self, "focus_m", None) and not force:
            return
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                self.lens.refocus(float("inf") if focus_m is None else -1000.0 * float(focus_m))
        except (AssertionError, ValueError, RuntimeError) as exc:
            where = "infinity" if focus_m is None else f"{focus_m:g} m"
            cause = str(exc) or type(exc).__name__
            raise LensFileError(f"{self.lens_file}: DeepLens cannot focus the lens at {where}: {cause} (no sharp "
                                "image behind the lens: is it a lens that forms a real image there?)",
                                self.facts) from exc
        self.focus_m = focus_m

    def psf_conditions(self, conditions: np.ndarray, *, ks: int, spp: int,
                       columns: list[str] | None = None) -> np.ndarray:
        """Rows of conditions named by ``self.columns`` (field, depth, wavelength and optionally focus
        and azimuth), in any mix -> [N, ks, ks].

        Rows are grouped by (wavelength, focus) because DeepLens traces one wavelength per call and
        focus moves the sensor."""
        conditions = np.asarray(conditions, dtype=np.float64)
        columns = list(columns or self.columns)
        assert conditions.shape[1] == len(columns), f"conditions {conditions.shape} vs columns {columns}"
        col = {name: conditions[:, i] for i, name in enumerate(columns)}
        azimuth = col.get("azimuth", np.full(len(conditions), 90.0))
        no_focus = -1.0  # focus distances are positive; NaN would not group under np.unique
        keys = np.stack([col["wavelength"], col.get("focus", np.full(len(conditions), no_focus))], axis=1)
        out = np.empty((len(conditions), ks, ks), dtype=np.float32)
        for key in np.unique(keys, axis=0):
            rows = np.nonzero((keys == key).all(axis=1))[0]
            if key[1] != no_focus:
                self.refocus(float(key[1]))
            out[rows] = self.psf(col["field"][rows], col["depth"][rows], float(key[0]), ks=ks, spp=spp,
                                 azimuth_deg=azimuth[rows])
        return out
