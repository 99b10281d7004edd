"""python -m benchmarks.decoders [--cases cooke,phone,doublet,synthetic128] [--seconds S] [--out DIR]

The decoder networks side by side, in one run, at each shipped lens's auto kernel size (Cooke triplet
32 px, phone asphere 64 px, achromatic doublet 80 px) and a synthetic 128 px case: every candidate is
the project's CVAE with that ``network.type``, fitted for the same CPU time on the same samples
(with the training objective of training/loop.py), then scored against ray-traced references on a
window ks/8 wider on each side (whole-PSF relative L1: energy outside the kernel counts), exported to the
four ONNX graphs and timed in onnxruntime at batch 256. Prints the table and writes DIR/decoders.json.

Candidates are run in turn within each case, so load on a shared machine moves them together; the
JSON records steps done, the load average before and after each fit, and every timing run.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path


def candidates() -> list[str]:
    """Every registered network; each runs at its own defaults (training/networks/args.py), conv_transpose
    with its start from the kernel size."""
    from training.registry import NETWORKS

    return NETWORKS.names()

BATCH = 256  # onnxruntime batch of the throughput figure
TRAIN_BATCH = 64


def conv_transpose_start(ks: int) -> int:
    """The smallest feature map side >= 3 that doubles up to ``ks`` (4 for 32/64/128, 5 for 80)."""
    start = ks
    while start % 2 == 0 and start // 2 >= 3:
        start //= 2
    return start


def candidate_config(config: str, name: str, ks: int):
    """The lens config at kernel ``ks`` with its network section replaced (not merged) by the candidate's."""
    from training.config import NetworkConfig, load_config

    keys: dict[str, int] = {}
    if name == "conv_transpose":
        keys["start"] = conv_transpose_start(ks)
    cfg = load_config(config, [f"data.kernel_size={ks}"])
    return cfg.model_copy(update={"network": NetworkConfig.model_validate({"type": name, **keys})})


def fit(model, data, cfg, seconds: float, seed: int) -> dict:
    """Fit ``model`` on data's training samples for ``seconds`` of this process's CPU time (on a shared
    machine wall time would hand a candidate whatever the neighbours left): AdamW at cfg's lr, a short
    warm-up, then cosine decay over the budget (so every candidate ends its schedule)."""
    import torch

    from training.loop import partner_conditions, total_loss

    psfs = torch.from_numpy(data.train_psfs)
    conds = torch.from_numpy(data.train_conditions.astype("float32"))
    generator = torch.Generator().manual_seed(seed)
    o = cfg.optim
    optimizer = torch.optim.AdamW(model.parameters(), lr=o.lr, betas=o.betas, eps=o.eps, weight_decay=o.weight_decay)
    model.train()
    steps, warmup, floor = 0, 50, 0.05
    started, cpu_started = time.perf_counter(), time.process_time()
    while (used := time.process_time() - cpu_started) < seconds:
        progress = used / seconds
        scale = min(1.0, (steps + 1) / warmup) * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress)))
        for group in optimizer.param_groups:
            group["lr"] = o.lr * scale
        idx = torch.randint(len(psfs), (TRAIN_BATCH,), generator=generator)
        cond = conds[idx]
        loss = total_loss(model(psfs[idx], cond, partner_conditions(cond, cfg, generator)), cfg.loss)
        optimizer.zero_grad()
        loss.backward()
        if o.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), o.grad_clip)
        optimizer.step()
        steps += 1
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    model.eval()
    return {"train_cpu_s": round(cpu, 1), "train_wall_s": round(wall, 1), "steps": steps,
            "cpu_s_per_step": round(cpu / steps, 4),
            "final_loss": round(loss.item(), 5)}


def whole_psf_error(pred, data) -> dict:
    import numpy as np

    from training.psf_metrics import embed, rel_l1

    err = rel_l1(embed(pred, data.test_reference.shape[-1]), data.test_reference)
    return {"rel_l1_mean": round(float(err.mean()), 4), "rel_l1_p90": round(float(np.percentile(err, 90)), 4)}


def onnx_speed(model, cfg, threads: int, repeats: int) -> dict:
    import numpy as np
    import onnxruntime as ort

    from training.export import check_parity, export_onnx, psf_tolerance, random_conditions

    from .machine_limits import onnx_flops
    from .timing import throughput

    # parity is recorded, not enforced: a candidate that would miss the export's tolerance is still compared
    with tempfile.TemporaryDirectory() as tmp:
        specs = export_onnx(model, Path(tmp), cfg.export.opset)
        report = check_parity(model, Path(tmp), specs, cfg, enforce=False)
        parity = max(v for k, v in report.items() if k.endswith(".psf"))
        graph = Path(tmp) / specs["psf"].file
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        session = ort.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])
        cond = random_conditions(cfg, BATCH, np.random.default_rng(0))
        timing = throughput(lambda: session.run(["psf"], {"condition": cond}), BATCH, repeats=repeats, min_time_s=0.3)
        try:
            flops = onnx_flops(graph)["flops_per_psf"]
        except (KeyError, TypeError, ValueError):  # a shape the counter cannot read
            flops = None
        size = sum((Path(tmp) / s.file).stat().st_size for s in specs.values())
    return {"onnx_psfs_per_s": round(timing["psfs_per_s"], 1), "onnx_runs_psfs_per_s": timing["runs_psfs_per_s"],
            "psf_onnx_flops_per_psf": flops, "onnx_bytes_four_graphs": size, "onnx_parity": parity,
            "onnx_parity_within_export_tol": parity <= psf_tolerance(cfg, None)}


def run_case(case_name: str, args, log=print) -> dict:
    import numpy as np
    import torch
    from accelerate.utils import set_seed

    from training.fit import build_model

    from .decoder_data import CASES, SYNTHETIC_CONFIG, load

    case = CASES[case_name]
    data = load(case, samples=args.samples, spp=args.spp, held_out=args.held_out,
                reference_spp=args.reference_spp, cache=args.cache, log=log)
    ks = case.kernel_size
    out = {"case": case_name, "kernel_size": ks, "data": data.info, "candidates": []}
    if case.config is not None:  # DeepLens at the training spp against the same references: the data's noise
        from training.raytrace import LensTracer

        tracer = LensTracer.for_run(data.cfg, seed=7)
        trace = tracer.psf_conditions(data.test_conditions, ks=data.test_reference.shape[-1], spp=args.spp)
        out["raytrace_at_training_spp"] = whole_psf_error(trace, data)
    clipped = data.test_reference.sum(axis=(1, 2)) - np.asarray(
        [r[(r.shape[0] - ks) // 2:(r.shape[0] + ks) // 2, (r.shape[1] - ks) // 2:(r.shape[1] + ks) // 2].sum()
         for r in data.test_reference])
    out["energy_outside_kernel_max"] = round(float(clipped.max()), 4)
    for name in args.candidates:
        cfg = candidate_config(case.config or SYNTHETIC_CONFIG, name, ks)
        set_seed(cfg.seed)
        model = build_model(cfg)
        load_before = os.getloadavg()[0]
        row = {"network": name, "network_args": cfg.network.options(),
               "params_total": sum(p.numel() for p in model.parameters()),
               "params_decoder": sum(p.numel() for p in model.decoder.parameters())}
        torch.set_num_threads(args.fit_threads)
        row.update(fit(model, data, cfg, args.seconds, cfg.seed))
        torch.set_num_threads(args.threads)
        row["loadavg_1min_before_after"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
        with torch.no_grad():
            pred = model.predict(torch.from_numpy(data.test_conditions.astype("float32"))).numpy()
        assert pred.shape[1:] == (ks, ks) and (pred >= 0).all(), "the contract: k x k, non-negative"
        row["unit_sum_max_dev"] = float(np.abs(pred.sum(axis=(1, 2)) - 1).max())
        row.update(whole_psf_error(pred, data))
        row.update(onnx_speed(model, cfg, args.threads, args.repeats))
        log(f"  {case_name:12s} {name:15s} relL1 {row['rel_l1_mean']:.4f} (p90 {row['rel_l1_p90']:.4f})  "
            f"{row['onnx_psfs_per_s']:10.0f} PSFs/s  {row['params_decoder']:>9,d} decoder params  "
            f"{row['steps']} steps in {row['train_cpu_s']} CPU s ({row['train_wall_s']} s wall)")
        out["candidates"].append(row)
    best = min(out["candidates"], key=lambda r: r["rel_l1_mean"])
    out["lowest_error"] = best["network"]
    return out


def table(results: list[dict]) -> str:
    lines = [("| case (ks) | network | whole-PSF rel. L1 mean / p90 | onnxruntime PSFs/s (batch 256) | decoder params "
              "(total) | steps in the fit (CPU ms/step) | psf.onnx MFLOP/PSF |"),
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for case in results:
        for r in case["candidates"]:
            flops = f"{r['psf_onnx_flops_per_psf'] / 1e6:.1f}" if r["psf_onnx_flops_per_psf"] else "n/a"
            mark = "**" if r["network"] == case["lowest_error"] else ""
            lines.append(f"| {case['case']} ({case['kernel_size']}) | {r['network']} | "
                         f"{mark}{r['rel_l1_mean']:.3f}{mark} / {r['rel_l1_p90']:.3f} | "
                         f"{r['onnx_psfs_per_s']:,.0f} | {r['params_decoder']:,} "
                         f"({r['params_total']:,}) | {r['steps']} ({r['cpu_s_per_step'] * 1000:.0f}) | {flops} |")
        if "raytrace_at_training_spp" in case:
            rt = case["raytrace_at_training_spp"]
            lines.append(f"| {case['case']} ({case['kernel_size']}) | DeepLens at the training spp "
                         f"({case['data']['spp']}) | {rt['rel_l1_mean']:.3f} / {rt['rel_l1_p90']:.3f} | | | | |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.decoders", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", default="cooke,phone,doublet,synthetic128")
    parser.add_argument("--candidates", default=",".join(candidates()))
    parser.add_argument("--seconds", type=float, default=45.0, help="CPU seconds of fit per candidate (default 45)")
    parser.add_argument("--fit-threads", type=int, default=1, help="torch threads while fitting (default 1)")
    parser.add_argument("--samples", type=int, default=256, help="training PSFs per case (default 256)")
    parser.add_argument("--spp", type=int, default=4096, help="rays per training PSF (default 4096)")
    parser.add_argument("--held-out", type=int, default=24, help="reference points per case (default 24)")
    parser.add_argument("--reference-spp", type=int, default=32768, help="rays per reference PSF (default 32768)")
    parser.add_argument("--threads", type=int, default=2, help="onnxruntime (and ray-tracing) threads (default 2)")
    parser.add_argument("--repeats", type=int, default=5, help="timed onnxruntime runs (median reported)")
    parser.add_argument("--cache", type=Path, default=Path(".cache/banks"), help="where the traced banks are kept")
    parser.add_argument("--out", type=Path, default=Path("bench_out"))
    args = parser.parse_args(argv)
    args.candidates = args.candidates.split(",")
    unknown = sorted(set(args.candidates) - set(candidates()))
    if unknown:
        parser.error(f"--candidates: unknown {', '.join(unknown)}; allowed: {', '.join(candidates())}")
    import torch

    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    report = {"command": "python -m benchmarks.decoders " + " ".join(sys.argv[1:] if argv is None else argv),
              "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
              "cpu_count": os.cpu_count(), "cases": []}
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "decoders.json"
    for name in args.cases.split(","):  # written after every case: a long run that stops keeps what it measured
        report["cases"].append(run_case(name, args))
        report["duration_s"] = round(time.perf_counter() - started, 1)
        path.write_text(json.dumps(report, indent=2))
    results = report["cases"]
    (args.out / "decoders.md").write_text(table(results) + "\n")
    print(table(results))
    print(f"wrote {path} in {report['duration_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
