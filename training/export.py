"""Export the four ONNX graphs of a trained CVAE and check onnxruntime against torch.

All graphs take physical units (the normalisation is inside them) and have a dynamic batch axis.
A graph whose onnxruntime output differs from torch by more than ``tol`` x the PSF peak is refused.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from models_store import GraphSpec

from .config import RunConfig
from .models.cvae import CVAE, PSFGraph


class ExportError(RuntimeError):
    """ONNX export or the onnxruntime-vs-torch parity check failed; nothing is published."""


def _graphs(model: CVAE, ks: int, latent: int, n: int = 2):
    mid = [0.5 * (lo + hi) for _, lo, hi in model.args.conditions]
    cond = torch.tensor([mid] * n, dtype=torch.float32)
    psf = torch.full((n, ks, ks), 1.0 / ks**2)
    z = torch.zeros((n, latent))
    return {
        "psf": (PSFGraph(model), (cond,), ["condition"], ["psf"]),
        "prior": (model.prior, (cond,), ["condition"], ["mu", "logvar"]),
        "decoder": (model.decoder, (z, cond), ["z", "condition"], ["psf"]),
        "encoder": (model.encoder, (psf, cond), ["psf", "condition"], ["mu", "logvar"]),
    }


def export_onnx(model: CVAE, out_dir: Path, opset: int) -> dict[str, GraphSpec]:
    model = model.eval().cpu()
    specs: dict[str, GraphSpec] = {}
    args = model.args
    for role, (module, example, inputs, outputs) in _graphs(model, args.kernel_size, args.latent_size).items():
        path = out_dir / f"{role}.onnx"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the exporter's deprecation chatter is not actionable here
            torch.onnx.export(
                module, example, str(path), input_names=inputs, output_names=outputs, opset_version=opset,
                dynamic_axes={name: {0: "batch"} for name in inputs + outputs}, dynamo=False,
            )
        specs[role] = GraphSpec(file=path.name, inputs=inputs, outputs=outputs)
    return specs


def random_conditions(cfg: RunConfig, n: int, rng: np.random.Generator) -> np.ndarray:
    return np.stack([rng.uniform(lo, hi, n) for _, lo, hi in cfg.conditions.columns()], axis=1).astype(np.float32)


@torch.no_grad()
def check_parity(model: CVAE, out_dir: Path, specs: dict[str, GraphSpec], cfg: RunConfig) -> dict[str, float]:
    """Max |onnxruntime - torch| for every graph output, relative to the largest PSF value."""
    model = model.eval().cpu()
    rng = np.random.default_rng(cfg.seed + 7)
    cond = random_conditions(cfg, cfg.export.parity_samples, rng)
    ct = torch.from_numpy(cond)
    mu, logvar = model.prior(ct)
    psf = model.decoder(mu, ct)
    z = mu + torch.from_numpy(rng.standard_normal(mu.shape).astype(np.float32))
    expected = {
        "psf": ({"condition": cond}, [psf]),
        "prior": ({"condition": cond}, [mu, logvar]),
        "decoder": ({"z": z.numpy(), "condition": cond}, [model.decoder(z, ct)]),
        "encoder": ({"psf": psf.numpy(), "condition": cond}, list(model.encoder(psf, ct))),
    }
    peak = float(psf.max())
    report: dict[str, float] = {}
    for role, (feed, outs) in expected.items():
        session = ort.InferenceSession(str(out_dir / specs[role].file), providers=["CPUExecutionProvider"])
        got = session.run(specs[role].outputs, feed)
        for name, g, e in zip(specs[role].outputs, got, outs, strict=True):
            e = e.numpy()
            # PSF outputs are judged against the PSF peak (the contract); latents against their own scale.
            scale = peak if name == "psf" else max(1.0, float(np.abs(e).max()))
            diff = float(np.abs(g - e).max()) / scale
            report[f"{role}.{name}"] = diff
            if not np.isfinite(diff) or diff > cfg.export.parity_tol:
                raise ExportError(
                    f"{role}.onnx output {name!r}: onnxruntime differs from torch by {diff:.2e} of the "
                    f"reference scale (allowed {cfg.export.parity_tol:.0e}); refusing to publish"
                )
    return report
