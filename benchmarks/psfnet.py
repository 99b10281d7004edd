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
  on (same seed, count, ray count and kernel size, ray traced again), our batch size and, unless
  ``--psfnet-steps`` says otherwise, our number of optimiser steps (DeepLens's default is 100k).
  Tried on configs/quickstart.yml (ks 32, 4096 samples, 3000 steps): lr 5e-5 / 1e-4 / 3e-4 gave held-out
  relative L1 1.36 / 1.37 / 1.38; from 3e-4 up (also with inputs normalised to [-1, 1]) the sigmoid output
  saturates into one disk whatever the input. On configs/ci.yml (ks 16, 512 samples, 3000 steps) 3e-4
  reached 0.33 and 5e-5 0.47: the MLP learns small kernels, and needs far more steps for larger ones.
- Not used: ``PSFNetLens.points2input`` unpacks ``sensor_size`` as (h, w) where GeoLens stores (w, h),
  so its field angle is off by the sensor's aspect ratio on the y meridian; we compute the angle
  ourselves.

Trained weights and the traced samples are cached under CACHE/psfnet, keyed by every setting.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import tempfile
import time
from importlib.metadata import version as pkg_version
from pathlib import Path

import numpy as np
import torch
from torch import nn

from training.config import ConditionsConfig
from training.data import RayTracedPSFs, sample_conditions

from .limits import onnx_flops
from .setup import Bench
from .timing import throughput

ADAPTATION = [
    "input (field angle rad, depth m negative, wavelength um): PSFNetLens's own first two inputs; the third, "
    "focus distance, is constant for our fixed-focus models and carries the wavelength instead",
    "PSFNetLens(in_chan=3, psf_chan=1, model_name='mlp'): mono output at the model's kernel size; DeepLens's MLP "
    "answers flat [N, k*k], reshaped to [N, 1, k, k]",
    "trained by train_psfnet's recipe (L1 loss, AdamW, DeepLens's cosine schedule with 1% warm-up, lr 5e-5) over "
    "our model's training conditions ray traced again (same seed, count, spp, kernel size), our batch size and "
    "steps (unless --psfnet-steps)",
    "the default mlpconv architecture (ks 128 only) is timed untrained: training it is beyond a CPU budget",
    "PSFNetLens.points2input is not used: it unpacks sensor_size as (h, w), GeoLens stores (w, h)",
]
ARCH = "mlp"
LR = 5e-5  # PSFNetLens.train_psfnet's default
CONV_KS = 128  # PSFNet_MLPConv's only kernel size


def _lens(bench: Bench):
    with contextlib.redirect_stdout(io.StringIO()):  # deeplens prints its device choice
        from deeplens import PSFNetLens

        lens = PSFNetLens(str(bench.tracer.lens_file), in_chan=3, psf_chan=1, model_name=ARCH,
                          kernel_size=bench.kernel_size)
    lens.psfnet.to("cpu")
    return lens


def network_input(bench: Bench, conditions: np.ndarray) -> torch.Tensor:
    """(field, depth m, wavelength nm) -> PSFNetLens's (field angle rad, depth m (negative), wavelength um)."""
    c = np.asarray(conditions, dtype=np.float64)
    lens = bench.manifest.lens
    fov = np.arctan(c[:, 0] * lens.half_diagonal_mm / lens.focal_length_mm)
    return torch.as_tensor(np.stack([fov, -c[:, 1], c[:, 2] / 1000.0], axis=1), dtype=torch.float32)


def _key(*parts) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.tobytes() if isinstance(part, np.ndarray) else json.dumps(part).encode())
    return digest.hexdigest()[:20]


def budget(bench: Bench) -> dict:
    """What our model was trained on (from its manifest), unless the profile says otherwise."""
    t, p = bench.manifest.training, bench.profile
    cfg = t.config
    n = min(t.ray_traced_samples, p.psfnet_samples or t.ray_traced_samples)
    steps = p.psfnet_steps or cfg["train"]["steps"]
    return {"samples": n, "spp": t.spp, "kernel_size": bench.kernel_size, "steps": steps,
            "batch_size": min(cfg["train"]["batch_size"], n), "seed": cfg["seed"], "block": cfg["data"]["block"],
            "our_samples": t.ray_traced_samples, "our_steps": cfg["train"]["steps"],
            "conditions": cfg["conditions"], "train_samples": cfg["data"]["train_samples"]}


def training_samples(bench: Bench, b: dict, log=print) -> tuple[np.ndarray, np.ndarray]:
    """Our model's training conditions (same seed and sampler), ray traced at its spp and kernel size."""
    ranges = ConditionsConfig.model_validate(b["conditions"])
    cond = sample_conditions(ranges, b["train_samples"], np.random.default_rng(b["seed"]), b["block"])[:b["samples"]]
    key = _key(bench.manifest.lens.sha256, bench.manifest.lens.focus_m, b["kernel_size"], b["spp"], cond)
    path = bench.cache / "psfnet" / f"samples-{key}.npz"
    if path.is_file():
        with np.load(path) as data:
            return cond, data["psf"]
    log(f"  ray tracing {len(cond)} PSFNet training samples at spp {b['spp']} (cached afterwards)")
    data = RayTracedPSFs(bench.tracer, cond, ks=b["kernel_size"], spp=b["spp"], block=b["block"], desc="psfnet samples")
    data.trace_all()
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path.with_suffix(".tmp.npz"), psf=data.psfs, conditions=cond)
    path.with_suffix(".tmp.npz").replace(path)
    return cond, data.psfs


def _predict(lens, ks: int):
    def net(x: torch.Tensor) -> torch.Tensor:
        return lens.psfnet(x).reshape(-1, 1, ks, ks)  # DeepLens's MLP answers flat [N, k*k]

    return net


def train(bench: Bench, lens, b: dict, log=print) -> dict:
    """Fit (or load from the cache) ``lens.psfnet`` the way ``PSFNetLens.train_psfnet`` does."""
    from deeplens.geolens_pkg.optim import get_cosine_schedule_with_warmup
    from safetensors.torch import load_file, save_file

    cond, psfs = training_samples(bench, b, log)
    settings = {k: b[k] for k in ("samples", "spp", "kernel_size", "steps", "batch_size", "seed")}
    settings.update(arch=ARCH, lr=LR, deeplens=pkg_version("deeplens-core"))
    key = _key(settings, bench.manifest.lens.sha256, bench.manifest.lens.focus_m, cond)
    weights = bench.cache / "psfnet" / f"psfnet-{key}.safetensors"
    meta_path = weights.with_suffix(".json")
    if weights.is_file() and meta_path.is_file():
        lens.psfnet.load_state_dict(load_file(weights))
        return {**json.loads(meta_path.read_text()), "cached": True}

    torch.manual_seed(b["seed"])
    lens.psfnet.apply(lambda m: m.reset_parameters() if hasattr(m, "reset_parameters") else None)
    x, y = network_input(bench, cond), torch.from_numpy(psfs).unsqueeze(1)
    net, psfnet = _predict(lens, b["kernel_size"]), lens.psfnet
    loss_fn = nn.L1Loss()
    optimizer = torch.optim.AdamW(psfnet.parameters(), lr=LR)
    scheduler = get_cosine_schedule_with_warmup(optimizer, num_warmup_steps=b["steps"] // 100,
                                                num_training_steps=b["steps"])
    generator = torch.Generator().manual_seed(b["seed"])
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
            "trace_note": "training samples ray traced again at our model's conditions (same seed), not reused"}
    weights.parent.mkdir(parents=True, exist_ok=True)
    save_file(psfnet.state_dict(), weights)
    meta_path.write_text(json.dumps(meta, indent=2))
    return {**meta, "cached": False}


def graph_flops(module: nn.Module, example: torch.Tensor) -> int:
    """FLOPs per PSF counted the same way as our graphs: export to ONNX, count MatMul/Gemm/Conv."""
    import warnings

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
    net = _predict(lens, k)

    def predict(cond: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return net(network_input(bench, cond))[:, 0].numpy()

    accuracy = bench.score(predict(bench.conditions))
    flops = graph_flops(lens.psfnet.eval(), network_input(bench, bench.conditions[:2]))
    common = {"kind": "psfnet", "ks": k, "accuracy_ks": k, "arch": ARCH, "flops_per_psf_graph": flops,
              "training": training, "budget": {key: b[key] for key in ("samples", "spp", "steps", "batch_size",
                                                                       "our_samples", "our_steps")}}
    rows = []
    for batch in (1, p.batch):
        cond = np.resize(bench.conditions, (batch, 3))
        timing = throughput(lambda: predict(cond), batch, repeats=p.repeats, min_time_s=p.min_run_s)
        rows.append({"method": f"DeepLens PSFNetLens ({ARCH}), batch {batch}", **common, **timing,
                     "accuracy": accuracy})
    rows += conv_rows(bench, lens)
    for row in rows:
        rel = row["accuracy"]["rel_l1_mean"] if row.get("accuracy") else float("nan")
        log(f"  {row['method']:40s} {row['psfs_per_s']:12.1f} PSFs/s, rel L1 {rel:.4f}")
    return rows


def conv_rows(bench: Bench, lens) -> list[dict]:
    """Throughput of PSFNetLens's default architecture (untrained: speed does not depend on weights)."""
    p = bench.profile
    conv = lens.init_net(in_chan=3, psf_chan=1, kernel_size=CONV_KS, model_name="mlpconv").eval()
    flops = graph_flops(conv, network_input(bench, bench.conditions[:2]))
    rows = []
    for batch in sorted({1, p.psfnet_conv_batch}):
        x = network_input(bench, np.resize(bench.conditions, (batch, 3)))

        def predict() -> np.ndarray:
            with torch.inference_mode():
                return conv(x).numpy()

        timing = throughput(predict, batch, repeats=max(2, p.repeats // 2), min_time_s=p.min_run_s)
        rows.append({"method": f"DeepLens PSFNetLens (mlpconv, ks {CONV_KS}, untrained), batch {batch}",
                     "kind": "psfnet", "ks": CONV_KS, "accuracy_ks": CONV_KS, "arch": "mlpconv",
                     "flops_per_psf_graph": flops, **timing, "accuracy": None,
                     "accuracy_note": "not trained: ~0.25 GFLOP/PSF is beyond a CPU benchmark's training budget"})
    return rows
