"""python -m benchmarks.replicas_bench --store DIR [--model NAME] [--workers N]: ``--workers N`` against
N independent server processes under the same load.

One server with N uvicorn workers shares one port (the kernel spreads connections over the
workers); N independent servers (as replicas behind a load balancer would be) get the clients split
evenly over their ports. Each process gets PSF_THREADS=1. Rounds of each are taken in turn and the
medians reported; figures go to stdout and to ``--out`` (JSON).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from models_store import Store

from .serving_bench import concurrent, random_conditions, start_server, stop_server


async def load(ports: list[int], columns: dict[str, list[float]], clients: int, seconds: float) -> dict[str, float]:
    """``clients`` keep-alive clients split evenly over ``ports``, for ``seconds``."""
    share = [clients // len(ports) + (i < clients % len(ports)) for i in range(len(ports))]
    parts = await asyncio.gather(*(concurrent(p, columns, c, seconds) for p, c in zip(ports, share, strict=True)))
    return {"requests_per_s": sum(p["requests_per_s"] for p in parts), "errors": sum(p["errors"] for p in parts)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.replicas_bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", required=True)
    parser.add_argument("--model", default=None)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=4.0, help="length of one round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default="bench_out/replicas.json")
    args = parser.parse_args(argv)
    if args.workers < 1 or args.clients < args.workers:
        parser.error(f"--workers={args.workers} --clients={args.clients} is not allowed: need 1 <= workers <= clients")
    store = Store(args.store)
    name = args.model or store.models()[0]
    columns = random_conditions(store.manifest(name), 4096, np.random.default_rng(0))
    env = {"PSF_THREADS": "1", "PSF_CACHE_MB": "0", "PSF_DEFAULT_MODEL": name}
    logs = Path(tempfile.mkdtemp(prefix="replicas-bench-"))
    results: dict[str, list[dict[str, float]]] = {"workers": [], "independent": []}
    for r in range(args.rounds):
        for kind in ("workers", "independent"):  # in turn, so drifts of a shared machine hit both
            if kind == "workers":
                procs = [start_server(store.root, {**env, "PSF_WORKERS": str(args.workers)}, logs / f"w{r}.log")]
            else:
                procs = [start_server(store.root, env, logs / f"i{r}-{i}.log") for i in range(args.workers)]
            try:
                ports = [port for _, port in procs]
                asyncio.run(load(ports, columns, args.clients, 1.0))  # warm-up
                results[kind].append(asyncio.run(load(ports, columns, args.clients, args.seconds)))
            finally:
                for proc, _ in procs:
                    stop_server(proc)
    summary: dict[str, Any] = {
        "model": name, "workers": args.workers, "clients": args.clients, "seconds": args.seconds,
        "rounds": args.rounds, "cpu": platform.processor() or platform.machine(),
        "runs": results,
        **{f"{k}_requests_per_s_median": statistics.median(x["requests_per_s"] for x in v) for k, v in results.items()},
        "errors": sum(x["errors"] for v in results.values() for x in v),
    }
    summary["workers_vs_independent"] = (summary["workers_requests_per_s_median"]
                                         / summary["independent_requests_per_s_median"])
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2))
    print(f"{name}: --workers {args.workers}: {summary['workers_requests_per_s_median']:,.0f} req/s; "
          f"{args.workers} independent processes: {summary['independent_requests_per_s_median']:,.0f} req/s "
          f"(ratio {summary['workers_vs_independent']:.2f}, {summary['errors']} errors, {args.clients} clients, "
          f"median of {args.rounds} rounds) -> {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
