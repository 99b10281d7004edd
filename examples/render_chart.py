"""Render a test chart with a stored surrogate and check it against DeepLens's own PSF-map rendering.

    python -m examples.render_chart --store /tmp/store --model cooke-quickstart [--depth 5] [--grid 16x12]

Three comparisons at the lens's full sensor resolution, the same grid and kernel size, the same
channel wavelengths, all in linear light (PSNR over the whole frame, peak 1):
  A  clients.blur vs DeepLens ``conv_psf_map`` (what ``GeoLens.render(method="psf_map")`` convolves
     with), both fed the same ray-traced PSF grid: isolates the rendering method (blended vs blocks);
  B  clients.render with the surrogate's PSF grid vs DeepLens with the ray-traced grid: the whole path;
  C  (--full-deeplens) B's image vs ``GeoLens.render(method="psf_map")`` as shipped, which also warps
     the chart by the lens distortion and places its PSFs on its own grid.
Prints PSNR and timings, and writes a PNG with the chart, both renders, their difference and the
PSF grid. Uses DeepLens and training.raytrace for the reference: an example, not part of clients.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import time
from pathlib import Path

import numpy as np
import torch

from clients import DEFAULT_RGB_NM, LocalPSFModel, blur, grid_positions, linear_to_srgb, render
from examples.chart import test_chart

ROOT = Path(__file__).resolve().parents[1]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2)))


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def traced_grid(lens, nx: int, ny: int, depth_m: float, wavelengths: tuple[float, ...], ks: int,
                spp: int) -> np.ndarray:
    """DeepLens PSFs at the tile centres clients use, [ny, nx, C, ks, ks] (row 0 = image +y)."""
    x, y = grid_positions(nx, ny)
    gx, gy = np.meshgrid(x, y)
    points = torch.tensor(np.stack([gx.ravel(), gy.ravel(), np.full(gx.size, -1000.0 * depth_m)], -1),
                          dtype=torch.float32)
    channels = []
    with torch.no_grad():
        for wavelength in wavelengths:
            psfs = [lens.psf(points=chunk, wvln=wavelength / 1000.0, ks=ks, spp=spp, recenter=True)
                    for chunk in torch.split(points, 32)]
            channels.append(torch.cat(psfs).reshape(ny, nx, ks, ks).numpy())
    return np.stack(channels, axis=2).astype(np.float32)


def deeplens_blocks(chart: np.ndarray, grid: np.ndarray) -> np.ndarray:
    from deeplens.imgsim.psf import conv_psf_map

    with torch.no_grad():
        out = conv_psf_map(torch.from_numpy(chart).permute(2, 0, 1)[None], torch.from_numpy(grid))
    return out[0].permute(1, 2, 0).numpy()


def deeplens_full(lens, chart: np.ndarray, depth_m: float, nx: int, ny: int, ks: int, spp: int,
                  wavelengths: tuple[float, ...]) -> np.ndarray:
    lens.wvln_rgb = [w / 1000.0 for w in wavelengths]
    with torch.no_grad():
        out = lens.render(torch.from_numpy(chart).permute(2, 0, 1)[None], depth=-1000.0 * depth_m, method="psf_map",
                          psf_grid=(nx, ny), psf_ks=ks, psf_spp=spp)
    return out[0].permute(1, 2, 0).numpy()


def save_figure(path: Path, chart: np.ndarray, ours: np.ndarray, theirs: np.ndarray, grid: np.ndarray,
                title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ny, nx, _, k, _ = grid.shape
    peak = grid[:, :, 1].max(axis=(-2, -1), keepdims=True)  # green channel, each kernel to its own peak
    mosaic = (grid[:, :, 1] / peak).transpose(0, 2, 1, 3).reshape(ny * k, nx * k)
    h, w = chart.shape[:2]
    crop = (slice(h // 20, h // 20 + h // 6), slice(w // 20, w // 20 + w // 6))  # top-left corner, 1:1
    panels = [("test chart (sRGB)", linear_to_srgb(chart)), ("ours: surrogate PSF grid", linear_to_srgb(ours)),
              ("DeepLens conv_psf_map: ray-traced grid", linear_to_srgb(theirs)),
              ("|ours - DeepLens| x 10", np.clip(10 * np.abs(ours - theirs), 0, 1)),
              ("corner crop, chart", linear_to_srgb(chart[crop])), ("corner crop, ours", linear_to_srgb(ours[crop])),
              ("corner crop, DeepLens", linear_to_srgb(theirs[crop])),
              (f"surrogate PSF grid {nx}x{ny}, green, each to its peak", mosaic)]
    fig, axes = plt.subplots(2, 4, figsize=(20, 8.5))
    for ax, (name, img) in zip(axes.ravel(), panels):
        ax.imshow(img, cmap="magma" if img.ndim == 2 else None, interpolation="nearest")
        ax.set_title(name, fontsize=10)
        ax.axis("off")
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m examples.render_chart", description=__doc__.split("\n")[0])
    parser.add_argument("--store", required=True, help="model store folder")
    parser.add_argument("--model", required=True, help="model name in the store")
    parser.add_argument("--version", default="latest")
    parser.add_argument("--depth", type=float, default=5.0, help="object distance of the flat chart [m]")
    parser.add_argument("--grid", default="16x12", help="PSF grid NXxNY (both renderers)")
    parser.add_argument("--spp", type=int, default=16384, help="rays per ray-traced PSF")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (DeepLens and the torch backend)")
    parser.add_argument("--full-deeplens", action="store_true", help="also run GeoLens.render(method='psf_map')")
    parser.add_argument("--out", default="render_chart.png", help="PNG to write")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    nx, ny = (int(v) for v in args.grid.lower().split("x"))

    model = LocalPSFModel.from_store(args.store, args.model, args.version)
    manifest = model.model(model.meta.model, version=model.meta.version)
    lens_info, ks = manifest["lens"], manifest["kernel_size"]
    width, height = lens_info["sensor_resolution"]
    wavelengths = DEFAULT_RGB_NM
    from training.raytrace import LensTracer

    with contextlib.redirect_stdout(io.StringIO()):
        tracer = LensTracer(ROOT / "lenses" / lens_info["file"], focus_m=lens_info["focus_m"],
                            sensor_res=tuple(lens_info["sensor_resolution"]))  # a .zmx carries no pixel grid
    chart = test_chart(width, height)
    print(f"{model.meta.model}@{model.meta.version}: {width}x{height} chart at {args.depth} m, grid {nx}x{ny}, "
          f"kernel {ks}, wavelengths {wavelengths} nm, {args.threads} torch thread(s)")

    surrogate_grid, t_grid_sur = timed(lambda: np.stack([model.psf_grid(nx, ny, depth=args.depth, wavelength=w)
                                                         for w in wavelengths], axis=2))
    traced, t_grid_ray = timed(traced_grid, tracer.lens, nx, ny, args.depth, wavelengths, ks, args.spp)
    theirs, t_deeplens = timed(deeplens_blocks, chart, traced)
    ours_traced, t_numpy = timed(blur, chart, traced)
    _, t_torch = timed(blur, chart, traced, backend="torch")
    ours, t_render = timed(render, chart, model, depth=args.depth, grid=(nx, ny), srgb=False, wavelengths=wavelengths)

    print(f"A  same ray-traced grid, ours vs DeepLens conv_psf_map:    PSNR {psnr(ours_traced, theirs):6.2f} dB")
    print(f"B  ours on the surrogate vs DeepLens on ray tracing:       PSNR {psnr(ours, theirs):6.2f} dB")
    print(f"   (reference: blurred vs unblurred chart                  PSNR {psnr(chart, theirs):6.2f} dB)")
    l1 = np.abs(surrogate_grid - traced).sum(axis=(-2, -1)).mean()
    print(f"   surrogate grid vs ray-traced grid: mean L1 per PSF {l1:.3f}")
    if args.full_deeplens:
        full, t_full = timed(deeplens_full, tracer.lens, chart, args.depth, nx, ny, ks, args.spp, wavelengths)
        print(f"C  ours (surrogate) vs GeoLens.render(psf_map) as shipped: PSNR {psnr(ours, full):6.2f} dB "
              f"({t_full:.1f} s incl. its ray tracing and distortion warp)")
    print(f"PSF grid ({3 * nx * ny} PSFs): surrogate {t_grid_sur:.3f} s, DeepLens ray tracing {t_grid_ray:.1f} s "
          f"({args.spp} rays each)")
    print(f"blur: clients numpy {t_numpy:.2f} s, clients torch {t_torch:.2f} s, DeepLens conv_psf_map "
          f"{t_deeplens:.2f} s; clients.render end to end on the surrogate {t_render:.2f} s")
    save_figure(Path(args.out), chart, ours, theirs, surrogate_grid,
                f"{model.meta.model}@{model.meta.version}, depth {args.depth} m, grid {nx}x{ny}, kernel {ks}: "
                f"PSNR ours(surrogate) vs DeepLens(ray-traced) {psnr(ours, theirs):.2f} dB, "
                f"same grid {psnr(ours_traced, theirs):.2f} dB")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
