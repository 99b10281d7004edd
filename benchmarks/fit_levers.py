"""python -m benchmarks.fit_levers [--lenses cooke,phone,doublet] [--runs RUN_DIR ...] [--out DIR]

(Also ``python -m benchmarks.time_to_accuracy --levers ...``, its former home, which writes
DIR/time_to_accuracy.json as it used to.) Levers of a fit's wall time, measured on this machine in one run,
per shipped lens:

- ``trace``: DeepLens PSFs/s at the lens's auto kernel and rays per PSF, by chunk size (samples traced
  in one call, ``data.block``), by torch threads, and at a quarter / four times the rays (how far the
  cost follows the ray count, which decides "fewer samples at more rays" against "more at fewer");
- ``train``: optimiser steps/s of the shipped CVAE (mlp_basis) at the lens's kernel, batch 128 and 256,
  by torch threads;
- ``samples_vs_spp`` (Cooke triplet): the same ray budget as 128 x 8192, 256 x 4096 and 512 x 2048
  rays, each fitted for the same time and scored on the same whole-PSF references (benchmarks/decoders.py);
- ``breakdown``: trace / train / evaluate of finished quick-start runs (``--runs``), read from their
  logs, and the research config's time projected from the rates above.

Prints a summary and writes DIR/fit_levers.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from types import SimpleNamespace

MAX_RAYS_PER_CALL = 2**23  # rays of one DeepLens call; beyond it the intermediate tensors take GBs
RESEARCH = {"samples": 24576, "steps": 12000, "batch": 256}  # configs/default.yml, achromat.yml, phone.yml


def _rate(tracer, rows, ks: int, spp: int) -> float:
    start = time.perf_counter()
    tracer.psf_conditions(rows, ks=ks, spp=spp)
    return round(len(rows) / (time.perf_counter() - start), 3)


def trace_levers(case, blocks: list[int], threads: list[int], log=print) -> dict:
    import numpy as np
    import torch

    from training.config import load_config
    from training.datasets import sample_conditions
    from training.raytrace import LensTracer

    cfg = load_config(case.config)
    tracer = LensTracer.for_run(cfg, seed=3)
    ks, spp = case.kernel_size, case.auto_spp

    def rows(n: int) -> np.ndarray:  # one wavelength, so one DeepLens call
        return sample_conditions(cfg, n, np.random.default_rng(5), block=n)

    tracer.psf_conditions(rows(4), ks=ks, spp=spp)  # warm-up
    out: dict = {"kernel_size": ks, "spp": spp, "by_block": {}, "by_threads": {}, "by_spp": {}}
    top = max(threads)
    torch.set_num_threads(top)
    for block in blocks:
        if block * spp <= MAX_RAYS_PER_CALL:
            out["by_block"][block] = _rate(tracer, rows(block), ks, spp)
    best = max(out["by_block"], key=out["by_block"].get)
    out["best_block"] = best
    for n in threads:
        torch.set_num_threads(n)
        out["by_threads"][n] = _rate(tracer, rows(best), ks, spp)
    torch.set_num_threads(top)
    small = min(out["by_block"])
    for factor in (0.25, 1.0, 4.0):
        rays = int(spp * factor)
        if small * rays <= MAX_RAYS_PER_CALL:
            out["by_spp"][rays] = _rate(tracer, rows(small), ks, rays)
    out["by_spp_block"] = small
    log(f"  trace {case.name}: by block {out['by_block']} PSFs/s; by threads {out['by_threads']}; "
        f"by spp (block {small}) {out['by_spp']}")
    return out


def train_levers(case, threads: list[int], seconds: float, log=print) -> dict:
    import numpy as np
    import torch
    from accelerate.utils import set_seed

    from training.config import load_config
    from training.fit import build_model
    from training.loop import partner_conditions, total_loss

    cfg = load_config(case.config, [f"data.kernel_size={case.kernel_size}"])
    out: dict = {}
    for batch in (128, 256):
        for n in threads:
            torch.set_num_threads(n)
            set_seed(0)
            model = build_model(cfg).train()
            optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
            generator = torch.Generator().manual_seed(0)
            psf = torch.softmax(torch.randn(batch, case.kernel_size**2, generator=generator), 1)
            psf = psf.reshape(batch, case.kernel_size, case.kernel_size)
            cols = cfg.conditions.columns()
            cond = torch.tensor(np.stack([np.random.default_rng(0).uniform(lo, hi, batch) for _, lo, hi in cols], 1),
                                dtype=torch.float32)
            steps, start, cpu = 0, time.perf_counter(), time.process_time()
            while time.perf_counter() - start < seconds or steps < 3:
                loss = total_loss(model(psf, cond, partner_conditions(cond, cfg, generator)), cfg.loss)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                steps += 1
            out[f"batch{batch}_threads{n}"] = round((time.perf_counter() - start) / steps, 4)
            out[f"batch{batch}_threads{n}_cpu"] = round((time.process_time() - cpu) / steps, 4)
    log(f"  train {case.name}: s/step (wall; _cpu: CPU) {out}")
    return out


def samples_vs_spp(args, log=print) -> list[dict]:
    import torch
    from accelerate.utils import set_seed

    from training.config import load_config
    from training.fit import build_model

    from .decoder_data import CASES, load
    from .decoders import fit, whole_psf_error

    case = CASES["cooke"]
    rows = []
    for samples, spp in ((128, 8192), (256, 4096), (512, 2048)):
        started = time.perf_counter()
        data = load(case, samples=samples, spp=spp, held_out=24, reference_spp=32768, cache=args.cache, log=log)
        trace_s = time.perf_counter() - started
        cfg = load_config(case.config, [f"data.kernel_size={case.kernel_size}"])
        set_seed(cfg.seed)
        model = build_model(cfg)
        torch.set_num_threads(1)  # as the decoder comparison fits: a CPU-time budget on one thread
        row = {"samples": samples, "spp": spp, "rays": samples * spp, "trace_s_incl_cache": round(trace_s, 1),
               **fit(model, data, cfg, args.seconds, cfg.seed)}
        with torch.no_grad():
            row.update(whole_psf_error(model.predict(torch.from_numpy(data.test_conditions.astype("float32"))).numpy(),
                                       data))
        log(f"  {samples} x {spp} rays: relL1 {row['rel_l1_mean']:.4f} after {row['steps']} steps")
        rows.append(row)
    return rows


def breakdown(run_dir: Path) -> dict:
    """trace / train / evaluate of a finished online-data run: the first logged interval holds the
    tracing (every sample is traced in the first epoch), later intervals are training only."""
    from omegaconf import OmegaConf

    log = [json.loads(line) for line in (run_dir / "train_log.jsonl").read_text().splitlines()]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    config = OmegaConf.to_container(OmegaConf.load(run_dir / "config.yaml"))
    (s1, e1), (s2, e2) = (log[0]["step"], log[0]["elapsed_s"]), (log[1]["step"], log[1]["elapsed_s"])
    per_step = (e2 - e1) / (s2 - s1)
    train_s = per_step * log[-1]["step"]
    loop_s = log[-1]["elapsed_s"]
    return {"run": run_dir.name, "kernel_size": config["data"]["kernel_size"], "spp": config["data"]["spp"],
            "samples": metrics["ray_traced_samples"], "threads": config["train"]["threads"],
            "trace_s_est": round(loop_s - train_s, 0), "train_s_est": round(train_s, 0),
            "s_per_step": round(per_step, 3),
            "before_loop_and_after_s": round(metrics["train_wall_s"] - loop_s, 0),
            "rel_l1_mean": round(metrics["rel_l1_mean"], 4)}


def project(trace: dict, train: dict) -> dict:
    """The research config's data + training time at the measured rates (evaluation not included)."""
    rate = max(trace["by_block"].values())
    trace_s = RESEARCH["samples"] / rate
    train_s = RESEARCH["steps"] * train["batch256_threads2"] if "batch256_threads2" in train else None
    return {"trace_min": round(trace_s / 60, 1), "train_min": round(train_s / 60, 1) if train_s else None,
            "total_min": round((trace_s + (train_s or 0)) / 60, 1), "at_block": trace["best_block"], **RESEARCH}


def main(argv: list[str] | None = None, *, prog: str = "python -m benchmarks.fit_levers",
         filename: str = "fit_levers.json") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lenses", default="cooke,phone,doublet")
    parser.add_argument("--blocks", default="16,64,128", help="chunk sizes tried (default 16,64,128)")
    parser.add_argument("--threads", default="1,2", help="torch threads tried (default 1,2)")
    parser.add_argument("--train-seconds", type=float, default=8.0, help="timed training per setting")
    parser.add_argument("--seconds", type=float, default=45.0, help="CPU seconds of fit per samples-vs-spp setting")
    parser.add_argument("--skip", default="", help="sections to skip: trace,train,samples_vs_spp")
    parser.add_argument("--runs", type=Path, nargs="*", default=[], help="finished quick-start run folders")
    parser.add_argument("--cache", type=Path, default=Path(".cache/banks"))
    parser.add_argument("--out", type=Path, default=Path("bench_out"))
    args = parser.parse_args(argv)
    from .decoder_data import CASES

    blocks, threads = [int(b) for b in args.blocks.split(",")], [int(t) for t in args.threads.split(",")]
    skip = set(filter(None, args.skip.split(",")))
    started = time.perf_counter()
    command = f"{prog} " + " ".join(sys.argv[1:] if argv is None else argv)
    report: dict = {"command": command,
                    "cpu_count": os.cpu_count(), "loadavg_start": os.getloadavg(), "lenses": {}}
    for name in args.lenses.split(","):
        case = CASES[name]
        entry = report["lenses"][name] = {}
        if "trace" not in skip:
            entry["trace"] = trace_levers(case, blocks, threads)
        if "train" not in skip:
            entry["train"] = train_levers(case, threads, args.train_seconds)
        if "trace" in entry and "train" in entry:
            entry["research_projection"] = project(entry["trace"], entry["train"])
            print(f"  {name}: research config projected {entry['research_projection']}")
    if "samples_vs_spp" not in skip:
        report["samples_vs_spp"] = samples_vs_spp(SimpleNamespace(cache=args.cache, seconds=args.seconds))
    report["breakdown"] = [breakdown(run) for run in args.runs]
    for row in report["breakdown"]:
        print(f"  breakdown {row}")
    report["loadavg_end"] = os.getloadavg()
    report["duration_s"] = round(time.perf_counter() - started, 1)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / filename
    path.write_text(json.dumps(report, indent=2))
    print(f"wrote {path} in {report['duration_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
