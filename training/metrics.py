"""Held-out accuracy against fresh ray tracing, and the predicted-vs-traced figure."""

from __future__ import annotations

import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from .config import RunConfig  # noqa: E402
from .data import sample_conditions  # noqa: E402
from .model import CVAE  # noqa: E402
from .raytrace import LensTracer  # noqa: E402


def rel_l1(pred: np.ndarray, ref: np.ndarray) -> np.ndarray:
    return np.abs(pred - ref).sum(axis=(-2, -1)) / ref.sum(axis=(-2, -1))


@torch.no_grad()
def predict(model: CVAE, conditions: np.ndarray) -> np.ndarray:
    model.eval()
    return model.predict(torch.as_tensor(conditions, dtype=torch.float32)).numpy()


def held_out_metrics(cfg: RunConfig, model: CVAE, tracer: LensTracer) -> dict:
    """Mean / p90 relative L1 of the surrogate vs a reference traced with val_spp rays, at held-out
    conditions drawn with a different seed; plus the same error of a ray trace at the training spp,
    which is the noise the training targets carried."""
    d = cfg.data
    rng = np.random.default_rng(cfg.seed + 1_000_003)
    cond = sample_conditions(cfg.conditions, d.val_samples, rng, block=max(1, d.val_samples // 8))
    t0 = time.perf_counter()
    ref = tracer.psf_conditions(cond, ks=d.kernel_size, spp=d.val_spp)
    ref_s = time.perf_counter() - t0
    pred = predict(model, cond)
    noisy = tracer.psf_conditions(cond, ks=d.kernel_size, spp=d.spp)
    err, err_rt = rel_l1(pred, ref), rel_l1(noisy, ref)
    return {
        "held_out_points": int(len(cond)),
        "reference_spp": d.val_spp,
        "rel_l1_mean": float(err.mean()),
        "rel_l1_p90": float(np.percentile(err, 90)),
        "rel_l1_max": float(err.max()),
        "raytrace_train_spp": d.spp,
        "raytrace_rel_l1_mean": float(err_rt.mean()),
        "reference_trace_s": round(ref_s, 2),
    }


def comparison_figure(cfg: RunConfig, model: CVAE, tracer: LensTracer, path: Path,
                      fields=(0.0, 0.35, 0.7, 1.0), depths=None) -> None:
    """Rows: field; columns: depth (prediction | ray trace | |error|) at the middle wavelength."""
    r, d = cfg.conditions, cfg.data
    if depths is None:
        inv = np.linspace(1 / r.depth.max, 1 / r.depth.min, 3)
        depths = tuple(1 / inv)
    wl = 0.5 * (r.wavelength.min + r.wavelength.max)
    fields = [min(max(f, r.field.min), r.field.max) for f in fields]
    grid = np.array([(f, z, wl) for f in fields for z in depths])
    ref = tracer.psf_conditions(grid, ks=d.kernel_size, spp=d.val_spp)
    pred = predict(model, grid)
    nf, nd = len(fields), len(depths)
    fig, axes = plt.subplots(nf, 3 * nd, figsize=(2.0 * 3 * nd, 2.1 * nf), squeeze=False)
    for i in range(nf):
        for j in range(nd):
            n = i * nd + j
            vmax = max(ref[n].max(), pred[n].max())
            panels = [(pred[n], "pred"), (ref[n], "ray trace"), (np.abs(pred[n] - ref[n]), "|err|")]
            for m, (img, label) in enumerate(panels):
                ax = axes[i, 3 * j + m]
                ax.imshow(img, cmap="inferno", vmin=0, vmax=vmax)
                ax.set_xticks([]), ax.set_yticks([])
                if i == 0:
                    ax.set_title(f"{label}\ndepth {depths[j]:.1f} m", fontsize=8)
            axes[i, 3 * j + 2].set_xlabel(f"relL1 {rel_l1(pred[n], ref[n]):.3f}", fontsize=7)
        axes[i, 0].set_ylabel(f"field {fields[i]:.2f}", fontsize=8)
    fig.suptitle(f"{cfg.name}: predicted vs ray-traced PSF at {wl:.0f} nm (same colour scale per triple)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
