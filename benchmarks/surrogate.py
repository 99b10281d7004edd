"""Our model in-process: onnxruntime (batch 1 and batched, through every provider this machine has)
and, given or found the training run folder, torch eager for reference.

Each call makes PSFs at their azimuth, the unit of work the server does per query: ``OnnxModel.psf_at``
(the graph, then the kernel rotation of a meridional model or the mirror flips of an azimuth model),
and for torch ``training.predictors.predict_oriented``, the same orientation after the network.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from models_store import sha256_file
from models_store.engine import OnnxModel, choose_providers

from .fixtures import Bench
from .timing import throughput

GPU_BATCH = 4096  # the extra GPU figure


def _rows(bench: Bench, label: str, kind: str, predict, batches: list[int], extra: dict) -> list[dict]:
    """Accuracy of ``predict`` (held-out rows in bench.columns -> oriented PSFs) and its PSFs/s per batch."""
    p = bench.profile
    accuracy = bench.score(predict(bench.conditions))
    rows = []
    for batch in batches:
        cond = np.resize(bench.conditions, (batch, bench.conditions.shape[1]))
        timing = throughput(lambda cond=cond: predict(cond), batch, repeats=p.repeats, min_time_s=p.min_run_s)
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

        def predict(rows: np.ndarray, model: OnnxModel = model) -> np.ndarray:
            return model.psf_at(*bench.model_input(rows))

        extra = {"provider": name, "intra_op_threads": bench.threads}
        rows += _rows(bench, label, "ours_onnx", predict, batches, extra)
    for row in rows:
        log(f"  {row['method']:40s} {row['psfs_per_s']:12.1f} PSFs/s, rel L1 {row['accuracy']['rel_l1_mean']:.4f}")
    return rows


def find_run(bench: Bench) -> Path | None:
    """The run folder the version was published from: under the training config's run_dir, the
    ``NAME-*`` folder whose onnx/psf.onnx has the sha256 the manifest records."""
    m = bench.manifest
    graph = m.graphs["psf"].file
    for folder in sorted(Path(bench.cfg.run_dir).glob(f"{m.name}-*")):
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
    try:
        import torch

        from training.predictors import TorchPredictor, load_torch, predict_oriented
    except ImportError as exc:
        return [], f"torch is not installed ({exc})"
    try:
        predictor = TorchPredictor(load_torch(run_dir), name=str(run_dir))
    except FileNotFoundError as exc:
        return [], str(exc)
    torch.set_num_threads(bench.threads)

    def predict(rows: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return predict_oriented(predictor, rows)

    onnx = OnnxModel(bench.folder, bench.manifest, providers=["CPUExecutionProvider"], threads=bench.threads)
    parity = float(np.abs(predict(bench.conditions) - onnx.psf_at(*bench.model_input())).max()
                   / bench.reference.max())
    if parity > 1e-3:
        return [], f"{run_dir} is not the run the store's model came from (torch vs onnx differ by {parity:.1e})"
    rows = _rows(bench, "ours, torch eager CPU", "ours_torch", predict, [1, bench.profile.batch],
                 {"torch_threads": torch.get_num_threads(), "onnx_parity_vs_ref_peak": parity, "run_dir": str(run_dir)})
    for row in rows:
        log(f"  {row['method']:40s} {row['psfs_per_s']:12.1f} PSFs/s")
    return rows, None
