"""Export the four ONNX graphs of a trained CVAE and check onnxruntime against torch.

All graphs take physical units (the normalisation is inside them) and have a dynamic batch axis.
PSF outputs are compared as the evaluation compares PSFs, in relative L1, and a graph is refused when
onnxruntime differs from torch by more than ``export.parity_rel_l1`` of the model's own error against
ray tracing: float32 rounding far below what a user could see passes, a broken graph does not. Latent
outputs are compared to ``export.parity_tol`` of their scale.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from models_store import GraphSpec

from .config import RunConfig
from .models.base import SurrogateModel


class ExportError(RuntimeError):
    """ONNX export or the onnxruntime-vs-torch parity check failed; nothing is published."""


def export_onnx(model: SurrogateModel, out_dir: Path, opset: int) -> dict[str, GraphSpec]:
    model = model.eval().cpu()
    specs: dict[str, GraphSpec] = {}
    for role, (module, example, inputs, outputs) in model.export_graphs().items():
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


MIN_MODEL_ERROR = 0.01  # the PSF tolerance never falls below parity_rel_l1 x this (e.g. 1e-4 relative L1)


def psf_tolerance(cfg: RunConfig, model_error: float | None) -> float:
    """Largest allowed relative L1 between onnxruntime's and torch's PSFs for a model whose whole-PSF
    relative L1 against ray tracing is ``model_error`` (None before it is measured)."""
    return cfg.export.parity_rel_l1 * max(model_error or 0.0, MIN_MODEL_ERROR)


@torch.no_grad()
def check_parity(model: SurrogateModel, out_dir: Path, specs: dict[str, GraphSpec], cfg: RunConfig,
                 model_error: float | None = None, enforce: bool = True) -> dict[str, float]:
    """For every graph output: the largest relative L1 between onnxruntime's and torch's PSFs, or for
    latents the largest |difference| relative to their scale. ``model_error`` is the model's whole-PSF
    relative L1 (the evaluation card's), which sets the PSF tolerance (:func:`psf_tolerance`); with
    ``enforce`` False the figures are only reported (benchmarks compare candidates that would fail)."""
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
    psf_tol = psf_tolerance(cfg, model_error)
    report: dict[str, float] = {}
    for role, (feed, outs) in expected.items():
        session = ort.InferenceSession(str(out_dir / specs[role].file), providers=["CPUExecutionProvider"])
        got = session.run(specs[role].outputs, feed)
        for name, g, e in zip(specs[role].outputs, got, outs, strict=True):
            e = e.numpy()
            if name == "psf":  # judged as the evaluation judges PSFs, against the model's own error
                diff = float((np.abs(g.astype(np.float64) - e).sum(axis=(-2, -1)) / e.sum(axis=(-2, -1))).max())
                tol, what = psf_tol, (f"relative L1 (allowed {psf_tol:.1e} = export.parity_rel_l1 "
                                      f"{cfg.export.parity_rel_l1} x the model's error {model_error or 0.0:.4f}, "
                                      f"at least {MIN_MODEL_ERROR})")
            else:
                diff = float(np.abs(g - e).max()) / max(1.0, float(np.abs(e).max()))
                tol = cfg.export.parity_tol
                what = f"of its scale (allowed export.parity_tol {tol:.0e})"
            report[f"{role}.{name}"] = diff
            if enforce and (not np.isfinite(diff) or diff > tol):
                raise ExportError(f"{role}.onnx output {name!r}: onnxruntime differs from torch by {diff:.2e} {what}; "
                                  "refusing to publish")
    return report
