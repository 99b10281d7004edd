"""Image comparison for ``examples.render_chart``: PSNR, SSIM, sub-pixel registration, the written files.

All in linear light over the whole frame with peak 1 (the chart's values lie in [0.02, 0.9]).
SSIM is scikit-image's with the settings of Wang et al. 2004 (Gaussian window sigma 1.5,
K1 = 0.01, K2 = 0.03, population covariances), averaged over the colour channels.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from clients import linear_to_srgb


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return mse_psnr(float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2)))


def mse_psnr(mse: float) -> float:
    return float(10 * np.log10(1.0 / max(mse, 1e-30)))


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    from skimage.metrics import structural_similarity

    return float(structural_similarity(np.asarray(a, np.float64), np.asarray(b, np.float64), data_range=1.0,
                                       channel_axis=-1, gaussian_weights=True, sigma=1.5,
                                       use_sample_covariance=False))


def shifted(image: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """``image`` [H, W, C] sampled at (col + dx, row + dy), bilinear, edges replicated."""
    h, w = image.shape[:2]
    rows, cols = np.meshgrid(np.arange(h) + dy, np.arange(w) + dx, indexing="ij")
    r0 = np.clip(np.floor(rows).astype(int), 0, h - 2)
    c0 = np.clip(np.floor(cols).astype(int), 0, w - 2)
    fr, fc = np.clip(rows - r0, 0, 1)[..., None], np.clip(cols - c0, 0, 1)[..., None]
    return ((image[r0, c0] * (1 - fc) + image[r0, c0 + 1] * fc) * (1 - fr)
            + (image[r0 + 1, c0] * (1 - fc) + image[r0 + 1, c0 + 1] * fc) * fr)


def registration(reference: np.ndarray, image: np.ndarray, margin: int = 8, steps: int = 3) -> tuple[float, float]:
    """The shift (dx, dy) [px] with ``image`` sampled at (col + dx, row + dy) closest to ``reference``
    (least squares, linearised and iterated; the frame's outer ``margin`` pixels left out)."""
    inner = (slice(margin, -margin), slice(margin, -margin))
    dx = dy = 0.0
    for _ in range(steps):
        moved = shifted(image, dx, dy)
        gy, gx = np.gradient(moved, axis=(0, 1))
        gx, gy, r = gx[inner].ravel(), gy[inner].ravel(), (reference - moved)[inner].ravel()
        normal = np.array([[gx @ gx, gx @ gy], [gx @ gy, gy @ gy]])
        step = np.linalg.solve(normal, np.array([gx @ r, gy @ r]))
        dx, dy = dx + float(step[0]), dy + float(step[1])
    return dx, dy


def save_png(path: Path, image: np.ndarray) -> None:
    """A linear-light image as an 8-bit sRGB PNG."""
    import matplotlib.pyplot as plt

    plt.imsave(path, np.clip(linear_to_srgb(np.clip(image, 0.0, 1.0)), 0.0, 1.0))


def save_figure(path: Path, panels: list[tuple[str, np.ndarray]], title: str) -> None:
    """Rows of 3 panels: images (linear, shown sRGB) and difference maps (2-D, shown as they are)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = (len(panels) + 2) // 3
    h, w = panels[0][1].shape[:2]
    fig, axes = plt.subplots(rows, 3, figsize=(15, 5 * rows * h / w + 0.6))
    for ax in axes.ravel():
        ax.axis("off")
    for ax, (name, img) in zip(axes.ravel(), panels):
        shown = img if img.ndim == 2 else np.clip(linear_to_srgb(np.clip(img, 0.0, 1.0)), 0.0, 1.0)
        ax.imshow(shown, cmap="magma" if img.ndim == 2 else None, vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(name, fontsize=10)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def markdown_table(rows: list[dict]) -> str:
    lines = ["| image | against | PSNR [dB] | SSIM |", "| --- | --- | ---: | ---: |"]
    lines += [f"| {r['image']} | {r['against']} | {r['psnr_db']:.2f} | {r['ssim']:.4f} |" for r in rows]
    return "\n".join(lines)


def write_figures(out: Path, figures: dict) -> None:
    """``figures.json`` (everything) and ``figures.md`` (the table and the settings)."""
    (out / "figures.json").write_text(json.dumps(figures, indent=2) + "\n")
    s = figures["settings"]
    ref = figures["reference"]
    title = (f"# {figures['model']}: test chart at {s['depth_m']} m, {s['width']} x {s['height']} px "
             f"({s['pixel_pitch_um']:.1f} um, the sensor grid / {s['factor']}), wavelengths {s['wavelengths_nm']} nm")
    notes = (f"Reference: DeepLens `render_raytracing(vignetting=True)`, {ref['spp']} rays per pixel in two halves "
             f"(half vs half {ref['halves_psnr_db']:.2f} dB, so the reference's own noise is "
             f"{ref['noise_psnr_db']:.2f} dB PSNR), x H*W, / on-axis ray fraction {ref['axis_fraction']:.4f}; "
             f"{ref['seconds']:.0f} s. Alignment: {figures['alignment']}.")
    shift = (f"Registration of clients.render to the reference: dx {figures['registration_px'][0]:+.3f} px, "
             f"dy {figures['registration_px'][1]:+.3f} px.")
    timings = "Timings [s]: " + ", ".join(f"{k} {v:.2f}" for k, v in figures["seconds"].items())
    text = [title, "", markdown_table(figures["table"]), "", notes, "", shift, "", timings, ""]
    (out / "figures.md").write_text("\n".join(text))
