"""Figures for people: predicted vs ray-traced PSFs over field x depth, and error maps."""

from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from .psf_metrics import rel_l1


def comparison_figure(pred: np.ndarray, ref: np.ndarray, fields, depths, title: str, path: Path) -> None:
    """pred/ref [len(fields) * len(depths), k, k], field-major. Each cell: prediction | ray trace | |error|."""
    nf, nd = len(fields), len(depths)
    fig, axes = plt.subplots(nf, 3 * nd, figsize=(1.8 * 3 * nd, 1.9 * nf + 0.4), squeeze=False, layout="constrained")
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
                    ax.set_title(f"{label}\n{depths[j]:.1f} m", fontsize=7)
            axes[i, 3 * j + 2].set_xlabel(f"relL1 {rel_l1(pred[n], ref[n]):.3f}", fontsize=7)
        axes[i, 0].set_ylabel(f"field {fields[i]:.2f}", fontsize=8)
    fig.suptitle(title + " (same colour scale per triple)", fontsize=9)
    fig.savefig(path, dpi=80)
    plt.close(fig)


def error_maps(maps: dict[str, np.ndarray], fields, depths, title: str, path: Path) -> None:
    """One heat map per method: mean relative L1 over field (rows) x depth (columns)."""
    vmax = max(float(m.max()) for m in maps.values())
    # constrained layout keeps the (wrapped) figure title clear of the two-line panel titles
    fig, axes = plt.subplots(1, len(maps), figsize=(3.2 * len(maps), 3.4), squeeze=False, layout="constrained")
    for ax, (label, grid) in zip(axes[0], maps.items(), strict=True):
        im = ax.imshow(grid, cmap="viridis", vmin=0, vmax=vmax, aspect="auto")
        ax.set_title(f"{label}\nmean {grid.mean():.3f}", fontsize=8)
        ax.set_yticks(range(len(fields)), [f"{f:.2f}" for f in fields], fontsize=7)
        ax.set_xticks(range(len(depths)), [f"{d:.1f}" for d in depths], fontsize=7)
        ax.set_xlabel("depth [m]", fontsize=7)
        for (r, c), v in np.ndenumerate(grid):
            ax.text(c, r, f"{v:.3f}", ha="center", va="center", fontsize=6, color="w")
    axes[0, 0].set_ylabel("field", fontsize=8)
    fig.colorbar(im, ax=axes[0].tolist(), shrink=0.8, label="relative L1 (energy fraction)")
    fig.suptitle(textwrap.fill(title, 40 * len(maps)), fontsize=9)
    fig.savefig(path, dpi=80)
    plt.close(fig)
