"""Render a test chart with a stored surrogate and check it against DeepLens's own renderings of it.

    python -m examples.render_chart --store DIR --model NAME [--depth 5] [--max-width 400] [--spp 512] [--out DIR]

One flat chart at ``--depth``, three images, all in linear light:
  reference   DeepLens ``GeoLens.render_raytracing(vignetting=True)``: rays from every sensor pixel traced
              back to the chart (distortion, vignetting and blur as ray tracing gives them), the ground truth;
  clients     ``clients.render``: warp by the served distortion, shade by the served relative illumination,
              blur with the surrogate's PSF grid;
  psf_map     DeepLens ``GeoLens.render(method="psf_map")``: its distortion warp, then block convolution with
              its own ray-traced PSF grid (no illumination).
PSNR (peak 1) and SSIM over the whole frame, each image against the reference, plus clients against psf_map,
and two diagnostics: clients.render fed DeepLens's ray-traced PSF grid (the surrogate's share of the error)
and with distortion and illumination off. No half-pixel shift: see ALIGNMENT (checked by a shifted row).

Ray tracing every pixel is slow on a CPU, so the comparison runs on the model's sensor grid divided by an
integer factor (``--max-width``): the same sensor and field, a coarser pixel pitch; clients.render resamples
its kernels to that pitch and DeepLens traces at it. Writes under ``--out``: the three images (sRGB PNG and
linear ``images.npz``), ``comparison.png`` with difference maps, ``figures.json`` and ``figures.md``;
``--reuse-reference`` takes the (slow) ray-traced reference from an earlier run with the same settings.
Uses DeepLens and training.raytrace for the references: an example, not part of clients.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from clients import DEFAULT_RGB_NM, LocalPSFModel, render
from examples import deeplens_reference as deeplens
from examples.chart import test_chart
from examples.image_metrics import mse_psnr, psnr, registration, save_figure, save_png, shifted, ssim, write_figures

ROOT = Path(__file__).resolve().parents[1]
ALIGNMENT = ("none: DeepLens samples output pixel (i, j) half a pixel right of and below its centre, but it also "
             "places chart pixel (i, j) half a pixel right of and below, so an ideal lens maps chart pixel (i, j) "
             "onto output pixel (i, j) and the two offsets cancel up to the lens's distortion slope over half a "
             "pixel; the half-pixel-shifted reference is reported beside it")


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m examples.render_chart", description=__doc__.split("\n")[0])
    parser.add_argument("--store", required=True, help="model store folder")
    parser.add_argument("--model", required=True, help="model name in the store")
    parser.add_argument("--version", default="latest")
    parser.add_argument("--depth", type=float, default=5.0, help="object distance of the flat chart [m]")
    parser.add_argument("--grid", default="16x12", help="PSF grid NXxNY (clients.render and DeepLens psf_map)")
    parser.add_argument("--max-width", type=int, default=400,
                        help="columns of the comparison's pixel grid at most: the sensor grid divided by the "
                        "smallest integer factor that gets there (the sensor grid itself if it is narrower)")
    parser.add_argument("--spp", type=int, default=512, help="rays per pixel of the ray-traced reference")
    parser.add_argument("--psf-spp", type=int, default=16384, help="rays per PSF of DeepLens's psf_map")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2, help="torch threads (DeepLens)")
    parser.add_argument("--out", default="render_chart", help="folder for the images and figures")
    parser.add_argument("--reuse-reference", action="store_true",
                        help="take the ray-traced reference from an earlier run's --out if its settings match")
    return parser.parse_args(argv)


def earlier_reference(out: Path, settings: dict, spp: int) -> deeplens.Reference | None:
    """The reference an earlier run wrote under ``out`` with the same settings and ray count, if any."""
    try:
        figures = json.loads((out / "figures.json").read_text())
        image = np.load(out / "images.npz")["reference"]
    except (OSError, KeyError, ValueError):
        return None
    saved = figures["reference"]
    if figures["settings"] != settings or saved["spp"] < spp:
        return None
    return deeplens.Reference(image=image, noise_mse=10 ** (-saved["noise_psnr_db"] / 10),
                              halves_psnr=saved["halves_psnr_db"], axis_fraction=saved["axis_fraction"],
                              spp=saved["spp"], seconds=saved["seconds"])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    nx, ny = (int(v) for v in args.grid.lower().split("x"))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    model = LocalPSFModel.from_store(args.store, args.model, args.version)
    manifest = model.model(model.meta.model, version=model.meta.version)
    if manifest.get("geometry") is None:
        raise SystemExit(f"{model.meta.model}@{model.meta.version} has no geometry table (published before "
                         "distortion and illumination were served): refit it with the current training code")
    lens_info, ks = manifest["lens"], int(manifest["kernel_size"])
    sensor_res = tuple(int(v) for v in lens_info["sensor_resolution"])
    factor = deeplens.reduction_factor(sensor_res, args.max_width)
    width, height = sensor_res[0] // factor, sensor_res[1] // factor
    pitch_um = lens_info["pixel_pitch_um"] * factor
    wavelengths = tuple(DEFAULT_RGB_NM)
    reference_nm = float(manifest["geometry"]["reference_wavelength_nm"])
    name = f"{model.meta.model}@{model.meta.version}"
    print(f"{name}: chart at {args.depth} m on {width} x {height} px ({pitch_um:.1f} um: the sensor grid "
          f"{sensor_res[0]} x {sensor_res[1]} / {factor}), grid {nx}x{ny}, kernel {ks} px at the sensor pitch, "
          f"wavelengths {wavelengths} nm, optics {lens_info.get('optics')}, {args.threads} torch thread(s)")

    lens = deeplens.reduced_lens(ROOT / "lenses" / lens_info["file"], lens_info["focus_m"], sensor_res, factor)
    chart = test_chart(width, height)
    seconds: dict[str, float] = {}
    # the surrogate: the image spans the sensor, so clients.render resamples the kernels to the coarser pitch
    ours, seconds["clients.render"] = timed(render, chart, model, depth=args.depth, grid=(nx, ny), srgb=False,
                                            wavelengths=wavelengths)
    blur_only, seconds["clients.render, blur only"] = timed(
        render, chart, model, depth=args.depth, grid=(nx, ny), srgb=False, wavelengths=wavelengths,
        distortion=False, illumination=False)
    print(f"clients.render {seconds['clients.render']:.2f} s", flush=True)
    map_ks = deeplens.psf_map_kernel(ks, factor)
    settings = {"depth_m": args.depth, "width": width, "height": height, "factor": factor, "pixel_pitch_um": pitch_um,
                "grid": [nx, ny], "kernel_size": ks, "psf_map_kernel": map_ks, "psf_map_spp": args.psf_spp,
                "wavelengths_nm": list(wavelengths), "seed": args.seed}
    ref = earlier_reference(out, settings, args.spp) if args.reuse_reference else None
    if ref is None:
        print(f"ray tracing the reference ({args.spp} rays per pixel) ...", flush=True)
        ref, seconds["DeepLens render_raytracing"] = timed(
            deeplens.raytraced, lens, chart, args.depth, wavelengths, spp=args.spp, reference_nm=reference_nm,
            seed=args.seed)
    else:
        print(f"reference taken from {out}/images.npz ({ref.spp} rays per pixel, {ref.seconds:.0f} s to trace)")
    traced_source = deeplens.TracedGrid(lens, model, ks=map_ks, spp=args.psf_spp, seed=args.seed)
    ours_traced, seconds["clients.render, DeepLens PSF grid"] = timed(
        render, chart, traced_source, depth=args.depth, grid=(nx, ny), srgb=False, wavelengths=wavelengths,
        model=model.meta.model, version=model.meta.version)  # its kernels carry no model name
    theirs, seconds["DeepLens render(psf_map)"] = timed(
        deeplens.psf_map, lens, chart, args.depth, wavelengths, grid=(nx, ny), ks=map_ks, spp=args.psf_spp,
        seed=args.seed)

    truth = ref.image
    rows = [{"image": "clients.render (warp + shade + blur)", "against": "ray-traced", "key": "clients"},
            {"image": "DeepLens render(psf_map)", "against": "ray-traced", "key": "psf_map"},
            {"image": "clients.render, DeepLens's ray-traced PSF grid (served geometry)", "against": "ray-traced",
             "key": "traced_grid"},
            {"image": "clients.render, blur only (distortion=False, illumination=False)", "against": "ray-traced",
             "key": "blur_only"},
            {"image": "the chart itself (no lens)", "against": "ray-traced", "key": "chart"},
            {"image": "clients.render", "against": "DeepLens render(psf_map)", "key": "clients_vs_psf_map"}]
    images = {"clients": ours, "psf_map": theirs, "traced_grid": ours_traced, "blur_only": blur_only, "chart": chart}
    for row in rows:
        a = ours if row["key"] == "clients_vs_psf_map" else images[row["key"]]
        b = theirs if row["key"] == "clients_vs_psf_map" else truth
        row["psnr_db"], row["ssim"] = psnr(a, b), ssim(a, b)
    # the reference shifted by the half pixel sensor.py describes: a check of the alignment, not the figure
    half = shifted(truth, -0.5, -0.5)
    rows.append({"image": "clients.render", "against": "ray-traced, shifted half a pixel left and up (check)",
                 "key": "clients_vs_shifted", "psnr_db": psnr(ours, half), "ssim": ssim(ours, half)})
    dx, dy = registration(truth, ours)

    figures = {
        "model": name, "lens": lens_info["file"], "optics": lens_info.get("optics"),
        "settings": settings,
        "reference": {"spp": ref.spp, "halves_psnr_db": ref.halves_psnr, "noise_psnr_db": mse_psnr(ref.noise_mse),
                      "axis_fraction": ref.axis_fraction,
                      "served_axis_fraction": manifest["geometry"]["illumination_axis"],
                      "seconds": ref.seconds},
        "alignment": ALIGNMENT, "registration_px": [dx, dy], "table": rows, "seconds": seconds,
        "targets": {"clients_psnr_at_least_40_db": rows[0]["psnr_db"] >= 40.0,
                    "clients_beats_psf_map": rows[0]["psnr_db"] > rows[1]["psnr_db"]},
    }
    print(f"\n{'image':<68} {'against':<24} {'PSNR dB':>8} {'SSIM':>7}")
    for row in rows:
        print(f"{row['image']:<68} {row['against'][:24]:<24} {row['psnr_db']:8.2f} {row['ssim']:7.4f}")
    print(f"reference: {ref.spp} rays per pixel, half vs half {ref.halves_psnr:.2f} dB -> own noise "
          f"{mse_psnr(ref.noise_mse):.2f} dB PSNR; on-axis ray fraction {ref.axis_fraction:.4f} (served "
          f"{manifest['geometry']['illumination_axis']})")
    print(f"registration of clients.render to the reference: dx {dx:+.3f} px, dy {dy:+.3f} px")
    print("seconds: " + ", ".join(f"{k} {v:.2f}" for k, v in seconds.items()))

    for key, image in (("reference_raytraced", truth), ("clients_render", ours), ("deeplens_psf_map", theirs)):
        save_png(out / f"{key}.png", image)
    np.savez_compressed(out / "images.npz", chart=chart, reference=truth, clients=ours, psf_map=theirs)
    save_figure(out / "comparison.png", [
        ("DeepLens render_raytracing (reference)", truth), ("clients.render", ours),
        ("DeepLens render(psf_map)", theirs),
        ("the chart", chart), ("|clients - reference| x 10, green", np.abs(ours - truth)[..., 1] * 10),
        ("|psf_map - reference| x 10, green", np.abs(theirs - truth)[..., 1] * 10)],
        f"{name}, {args.depth} m, {width}x{height}: clients {rows[0]['psnr_db']:.2f} dB, "
        f"DeepLens psf_map {rows[1]['psnr_db']:.2f} dB against DeepLens ray tracing ({ref.spp} spp)")
    write_figures(out, figures)
    print(f"wrote {out}/: reference_raytraced.png, clients_render.png, deeplens_psf_map.png, comparison.png, "
          "images.npz, figures.json, figures.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
