"""Our model in-process: onnxruntime (psf.onnx, batch 1 and batched) and, given the run folder,
torch eager for reference. Times ``psf_from_condition`` on the +y meridian (no kernel rotation), the
same work as every other row."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from models_store import sha256_file
from models_store.runtime import OnnxModel, choose_providers

from .setup import Bench
from .timing import throughput

GPU_BATCH = 4096  # the extra GPU figure


def _tiled(bench: Bench, batch: int) -> np.ndarray:
    return np.ascontiguousarray(np.resize(bench.conditions, (batch, 3)), dtype=np.float32)


def _rows(bench: Bench, label: str, kind: str, predict, batches: list[int], extra: dict) -> list[dict]:
    p = bench.profile
    accuracy = bench.score(predict(bench.conditions.astype(np.float32)))
    rows = []
    for batch in batches:
        cond = _tiled(bench, batch)
        timing = throughput(lambda: predict(cond), batch, repeats=p.repeats, min_time_s=p.min_run_s)
        rows.append({"method": f"{label}, batch {batch}", "kind": kind, "ks": bench.kernel_size, **timing,
                     "accuracy_ks": bench.kernel_size, "accuracy": accuracy, **extra})
    return rows


def onnx_rows(bench: Bench, log=print) -> list[dict]:
    rows = []
    for provider in choose_providers(prefer_gpu=True):  # a GPU's providers first, the CPU always
        name = provider if isinstance(provider, str) else provider[0]  # (name, options) pairs exist too
        model = OnnxModel(bench.folder, bench.manifest, providers=[provider], threads=bench.threads)
        on_gpu = name != "CPUExecutionProvider"
        batches = [1, bench.profile.batch] + ([GPU_BATCH] if on_gpu else [])
        label = "ours, onnxruntime " + name.removesuffix("ExecutionProvider").replace("Tensorrt", "TensorRT")
        rows += _rows(bench, label, "ours_onnx", model.psf_from_condition, batches,
                      {"provider": name, "intra_op_threads": bench.threads})
    for row in rows:
        log(f"  {row['method']:40s} {row['psfs_per_s']:12.1f} PSFs/s, rel L1 {row['accuracy']['rel_l1_mean']:.4f}")
    return rows


def find_run(bench: Bench) -> Path | None:
    """The run folder the version was published from: under the training config's run_dir, the
    ``NAME-*`` folder whose onnx/psf.onnx has the sha256 the manifest records."""
    m = bench.manifest
    graph, runs = m.graphs["psf"].file, Path(m.training.config.get("run_dir") or "runs")
    for folder in sorted(runs.glob(f"{m.name}-*")):
        candidate = folder / "onnx" / graph
        if candidate.is_file() and sha256_file(candidate) == m.files[graph]:
            return folder
    return None


def torch_rows(bench: Bench, run_dir: Path | None, log=print) -> tuple[list[dict], str | None]:
    """Torch eager rows, or ([], why they were skipped). Without ``run_dir`` the run is looked for."""
    run_dir = run_dir or find_run(bench)
    if run_dir is None:
        return [], ("no --run folder given and none found under the training config's run_dir "
                    "(torch eager needs the run's model.safetensors + model_args.json)")
    log(f"  run folder {run_dir}")
    weights, args_file = Path(run_dir) / "model.safetensors", Path(run_dir) / "model_args.json"
    if not (weights.is_file() and args_file.is_file()):
        return [], f"{run_dir} lacks model.safetensors or model_args.json"
    try:
        import torch
        from safetensors.torch import load_file

        from training.model import CVAE, CVAEArgs
    except ImportError as exc:
        return [], f"torch is not installed ({exc})"
    args = CVAEArgs(**json.loads(args_file.read_text()))
    if args.kernel_size != bench.kernel_size:
        return [], f"{run_dir} holds a ks {args.kernel_size} model, the store's is ks {bench.kernel_size}"
    torch.set_num_threads(bench.threads)
    model = CVAE(args)
    model.load_state_dict(load_file(weights))
    model.eval()

    def predict(cond: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return model.predict(torch.from_numpy(cond)).numpy()

    onnx = OnnxModel(bench.folder, bench.manifest, providers=["CPUExecutionProvider"], threads=bench.threads)
    cond = bench.conditions.astype(np.float32)
    parity = float(np.abs(predict(cond) - onnx.psf_from_condition(cond)).max() / bench.reference.max())
    if parity > 1e-3:
        return [], f"{run_dir} is not the run the store's model came from (torch vs onnx differ by {parity:.1e})"
    rows = _rows(bench, "ours, torch eager CPU", "ours_torch", predict, [1, bench.profile.batch],
                 {"torch_threads": torch.get_num_threads(), "onnx_parity_vs_ref_peak": parity, "run_dir": str(run_dir)})
    for row in rows:
        log(f"  {row['method']:40s} {row['psfs_per_s']:12.1f} PSFs/s")
    return rows, None
