"""DeepLens's own surrogate, ``deeplens.PSFNetLens``, trained on the same ray-traced samples as ours.

PSFNetLens is built around conventions of its own, so it is adapted here, as little as possible:

- Input. PSFNetLens feeds its network (field angle [rad], depth [m, negative], focus distance [m,
  negative]) and predicts RGB PSFs at three fixed wavelengths; a mono query takes the nearest RGB
  channel. Our models are trained at one fixed focus over a continuous 450-650 nm band, so the focus
  channel would be constant and a nearest-of-three-wavelengths answer would not be comparable. We keep
  its first two inputs exactly (field angle from our field via atan(field * half-diagonal / f), depth
  in metres, negative) and put the wavelength [um] in the third channel; the network is built with
  ``PSFNetLens(..., in_chan=3, psf_chan=1)`` (a mono PSF).
- Architecture. ``model_name="mlp"`` (DeepLens's ``MLP``: 8 hidden layers of 256, sigmoid, L1
  normalised), which works at any kernel size. Its default ``mlpconv`` decoder is fixed at 128 x 128
  and costs ~0.25 GFLOP per PSF, too much to train on a CPU pair within a benchmark; its throughput is
  reported untrained (speed does not depend on the weights) with no accuracy. DeepLens's ``mlp``
  returns a flat [N, k*k] vector that its own ``psf_rgb`` cannot rotate (it wants [N, C, k, k]); we
  reshape it.
- Training. ``PSFNetLens.train_psfnet`` draws fresh ray-traced batches every step from its own
  distributions (random focus, depths around it, RGB) and has no sample budget, so it cannot be pointed
  at our conditions. The loop below is that loop (L1 loss, AdamW, DeepLens's cosine schedule with 1 %
  warm-up, its default learning rate 5e-5) over a fixed set: the same conditions our model was trained
  on (same seed and sampler, count, ray count and kernel size; on the +y meridian, where PSFNetLens
  learns, when our model has an azimuth condition; a PSF bank, the model's own when it was trained
  from one), our batch size and, unless
  ``--psfnet-steps`` says otherwise, our number of optimiser steps (DeepLens's default is 100k).
  Tried on configs/quickstart.yml (ks 32, 4096 samples, 3000 steps): lr 5e-5 / 1e-4 / 3e-4 gave held-out
  relative L1 1.36 / 1.37 / 1.38; from 3e-4 up (also with inputs normalised to [-1, 1]) the sigmoid output
  saturates into one disk whatever the input. On configs/ci.yml (ks 16, 512 samples, 3000 steps) 3e-4
  reached 0.33 and 5e-5 0.47: the MLP learns small kernels, and needs far more steps for larger ones
  (10000 steps at 5e-5 on the quickstart samples: 1.25).
- Not used: ``PSFNetLens.points2input`` unpacks ``sensor_size`` as (h, w) where GeoLens stores (w, h),
  so its field angle is off by the sensor's aspect ratio on the y meridian; we compute the angle
  ourselves.
- Orientation. PSFNetLens predicts on the +y meridian and rotates kernels to their azimuth; we rotate
  with this project's ``rotate_psfs``, the rotation our meridional models use, so the comparison is
  between the networks and both answer in the project's array orientation.

Trained weights are cached under CACHE/psfnet and the traced samples as a PSF bank under CACHE/banks,
keyed by every setting.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import tempfile
import time
import warnings
from importlib.metadata import version as pkg_version
from pathlib import Path

import numpy as np
import torch
from torch import nn

from models_store import rotate_psfs
from training.datasets import training_conditions
from training.datasets.bank import PSFBank

from .fixtures import Bench
from .machine_limits import onnx_flops
from .timing import throughput

ADAPTATION = [
    ("input (field angle rad, depth m negative, wavelength um[, focus m negative]): PSFNetLens's own inputs, "
    "with the wavelength in place of its focus channel (constant for a fixed-focus model)"),
    ("PSFNetLens(in_chan=3, psf_chan=1, model_name='mlp'): mono output at the model's kernel size; DeepLens's MLP "
    "answers flat [N, k*k], reshaped to [N, 1, k, k]"),
    ("predicts on the +y meridian as PSFNetLens does; kernels are turned to their azimuth with this project's "
    "rotate_psfs (the rotation our meridional models use)"),
    ("trained by train_psfnet's recipe (L1 loss, AdamW, DeepLens's cosine schedule with 1% warm-up, lr 5e-5) over "
    "our model's training conditions on the meridian (same seed and sampler, count, spp, kernel size; a PSF bank, "
    "reused when the model was trained from one), our batch size and steps (unless --psfnet-steps)"),
    "the default mlpconv architecture (ks 128 only) is timed untrained: training it is beyond a CPU budget",
    "PSFNetLens.points2input is not used: it unpacks sensor_size as (h, w), GeoLens stores (w, h)",
]
ARCH = "mlp"
LR = 5e-5  # PSFNetLens.train_psfnet's default
CONV_KS = 128  # PSFNet_MLPConv's only kernel size
MERIDIAN_DEG = 90.0


def features(bench: Bench, rows: np.ndarray, columns: list[str]) -> torch.Tensor:
    """Condition rows (named by ``columns``) -> PSFNetLens's network input, in its units."""
    col = {name: np.asarray(rows, dtype=np.float64)[:, i] for i, name in enumerate(columns)}
    lens = bench.manifest.lens
    x = [np.arctan(col["field"] * lens.half_diagonal_mm / lens.focal_length_mm), -col["depth"],
         col["wavelength"] / 1000.0]
    if "focus" in bench.manifest.condition_names:
        x.append(-col["focus"])
    return torch.as_tensor(np.stack(x, axis=1), dtype=torch.float32)


def _lens(bench: Bench):
    in_chan = 4 if "focus" in bench.manifest.condition_names else 3
    with contextlib.redirect_stdout(io.StringIO()):  # deeplens prints its device choice
        from deeplens import PSFNetLens

        lens = PSFNetLens(str(bench.tracer.lens_file), in_chan=in_chan, psf_chan=1, model_name=ARCH,
                          kernel_size=bench.kernel_size)
    lens.psfnet.to("cpu")
    return lens


def _net(lens, ks: int):
    def net(x: torch.Tensor) -> torch.Tensor:
        return lens.psfnet(x).reshape(-1, 1, ks, ks)  # DeepLens's MLP answers flat [N, k*k]

    return net


def budget(bench: Bench) -> dict:
    """What our model was trained on (from its manifest), unless the profile says otherwise."""
    t, p, cfg = bench.manifest.training, bench.profile, bench.cfg
    n = min(t.ray_traced_samples, p.psfnet_samples or t.ray_traced_samples)
    return {"samples": n, "spp": t.spp, "kernel_size": bench.kernel_size,
            "steps": p.psfnet_steps or cfg.train.steps, "batch_size": min(cfg.train.batch_size, n),
            "our_samples": t.ray_traced_samples, "our_steps": cfg.train.steps}


def training_samples(bench: Bench, b: dict, progress: bool) -> tuple[np.ndarray, np.ndarray, bool]:
    """(conditions, meridian PSFs, reused): our model's training conditions (same seed and sampler),
    moved to the +y meridian when the model has an azimuth condition, traced into a PSF bank."""
    cfg = bench.cfg
    cond = training_conditions(cfg)
    cond = cond[: b["samples"]]
    names = cfg.conditions.names()
    if "azimuth" in names:
        cond = cond.copy()
        cond[:, names.index("azimuth")] = MERIDIAN_DEG
    bank = PSFBank.load_or_build(bench.tracer, cond, ks=b["kernel_size"], spp=b["spp"], block=cfg.data.block,
                                 cache_dir=bench.cache / "banks", progress=progress)
    return cond, bank.psfs, bank.reused


def _key(*parts) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.tobytes() if isinstance(part, np.ndarray) else json.dumps(part).encode())
    return digest.hexdigest()[:20]


def train(bench: Bench, lens, b: dict, log=print) -> dict:
    """Fit (or load from the cache) ``lens.psfnet`` the way ``PSFNetLens.train_psfnet`` does."""
    from deeplens.geolens_pkg.optim import get_cosine_schedule_with_warmup
    from safetensors.torch import load_file, save_file

    cond, psfs, reused = training_samples(bench, b, progress=False)
    settings = {**{k: b[k] for k in ("samples", "spp", "kernel_size", "steps", "batch_size")},
                "seed": bench.cfg.seed, "arch": ARCH, "lr": LR, "deeplens": pkg_version("deeplens-core")}
    key = _key(settings, bench.manifest.lens.sha256, bench.manifest.lens.focus_m, cond)
    weights = bench.cache / "psfnet" / f"psfnet-{key}.safetensors"
    meta_path = weights.with_suffix(".json")
    if weights.is_file() and meta_path.is_file():
        lens.psfnet.load_state_dict(load_file(weights))
        return {**json.loads(meta_path.read_text()), "cached": True}

    torch.manual_seed(bench.cfg.seed)
    lens.psfnet.apply(lambda m: m.reset_parameters() if hasattr(m, "reset_parameters") else None)
    x, y = features(bench, cond, bench.cfg.conditions.names()), torch.from_numpy(psfs).unsqueeze(1)
    net, psfnet = _net(lens, b["kernel_size"]), lens.psfnet
    loss_fn = nn.L1Loss()
    optimizer = torch.optim.AdamW(psfnet.parameters(), lr=LR)
    scheduler = get_cosine_schedule_with_warmup(optimizer, num_warmup_steps=b["steps"] // 100,
                                                num_training_steps=b["steps"])
    generator = torch.Generator().manual_seed(bench.cfg.seed)
    order, at = torch.randperm(len(x), generator=generator), 0
    log(f"  training PSFNetLens ({ARCH}) for {b['steps']} steps on {len(x)} samples (cached afterwards)")
    started = time.perf_counter()
    psfnet.train()
    for _ in range(b["steps"]):
        if at + b["batch_size"] > len(x):  # a new epoch
            order, at = torch.randperm(len(x), generator=generator), 0
        idx = order[at:at + b["batch_size"]]
        at += b["batch_size"]
        loss = loss_fn(net(x[idx]), y[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
    psfnet.eval()
    meta = {**settings, "train_wall_s": round(time.perf_counter() - started, 2), "final_loss": loss.item(),
            "samples_from": "the model's own PSF bank" if reused else "traced again (same conditions, meridian)"}
    weights.parent.mkdir(parents=True, exist_ok=True)
    save_file(psfnet.state_dict(), weights)
    meta_path.write_text(json.dumps(meta, indent=2))
    return {**meta, "cached": False}


def graph_flops(module: nn.Module, example: torch.Tensor) -> int:
    """FLOPs per PSF counted the same way as our graphs: export to ONNX, count MatMul/Gemm/Conv."""
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        path = Path(tmp) / "psfnet.onnx"
        torch.onnx.export(module, (example,), str(path), input_names=["x"], output_names=["psf"],
                          dynamic_axes={"x": {0: "batch"}, "psf": {0: "batch"}}, dynamo=False)
        return onnx_flops(path)["flops_per_psf"]


def run(bench: Bench, log=print) -> list[dict]:
    p, k = bench.profile, bench.kernel_size
    torch.set_num_threads(bench.threads)
    lens = _lens(bench)
    b = budget(bench)
    training = train(bench, lens, b, log)
    net = _net(lens, k)

    def predict(rows: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            meridian = net(features(bench, rows, bench.columns))[:, 0].numpy()
        return rotate_psfs(meridian, bench.column("azimuth", rows).astype(np.float64), meridian_deg=MERIDIAN_DEG)

    accuracy = bench.score(predict(bench.conditions))
    flops = graph_flops(lens.psfnet.eval(), features(bench, bench.conditions[:2], bench.columns))
    common = {"kind": "psfnet", "ks": k, "accuracy_ks": k, "arch": ARCH, "flops_per_psf_graph": flops,
              "training": training, "budget": b}
    rows = []
    for batch in (1, p.batch):
        cond = np.resize(bench.conditions, (batch, bench.conditions.shape[1]))
        timing = throughput(lambda cond=cond: predict(cond), batch, repeats=p.repeats, min_time_s=p.min_run_s)
        rows.append({"method": f"DeepLens PSFNetLens ({ARCH}), batch {batch}", **common, **timing,
                     "accuracy": accuracy})
    rows += conv_rows(bench, lens)
    for row in rows:
        rel = row["accuracy"]["rel_l1_mean"] if row.get("accuracy") else float("nan")
        log(f"  {row['method']:40s} {row['psfs_per_s']:12.1f} PSFs/s, rel L1 {rel:.4f}")
    return rows


def conv_rows(bench: Bench, lens) -> list[dict]:
    """Throughput of PSFNetLens's default architecture (untrained: speed does not depend on weights),
    network only (its kernels would still need cropping to k and turning to their azimuth)."""
    p = bench.profile
    in_chan = 4 if "focus" in bench.manifest.condition_names else 3
    conv = lens.init_net(in_chan=in_chan, psf_chan=1, kernel_size=CONV_KS, model_name="mlpconv").eval()
    flops = graph_flops(conv, features(bench, bench.conditions[:2], bench.columns))
    rows = []
    for batch in sorted({1, p.psfnet_conv_batch}):
        x = features(bench, np.resize(bench.conditions, (batch, bench.conditions.shape[1])), bench.columns)

        def predict(x: torch.Tensor = x) -> np.ndarray:
            with torch.inference_mode():
                return conv(x).numpy()

        timing = throughput(predict, batch, repeats=max(2, p.repeats // 2), min_time_s=p.min_run_s)
        rows.append({"method": f"DeepLens PSFNetLens (mlpconv, ks {CONV_KS}, untrained), batch {batch}",
                     "kind": "psfnet", "ks": CONV_KS, "accuracy_ks": CONV_KS, "arch": "mlpconv",
                     "flops_per_psf_graph": flops, **timing, "accuracy": None,
                     "accuracy_note": "not trained: ~0.25 GFLOP/PSF is beyond a CPU benchmark's training budget"})
    return rows
