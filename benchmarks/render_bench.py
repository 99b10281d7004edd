"""Rendering at big kernels: time and peak memory of a 2400 x 1800 RGB image through a 16 x 12 PSF grid.

    python -m benchmarks.render_bench [--ks 128 256] [--size 2400 1800] [--backend numpy torch] [--out bench_out]
        [--clients-root DIR]

Each case runs in its own process (so its peak resident memory, the kernel's ``ru_maxrss``, is its
own): kernels of ``ks`` px (random, unit sum) blurred over the image by ``clients.blur``, and the
resampling of 64 px kernels onto pixels 0.27x as large (as when a 2400 x 1800 image is rendered with
PSFs sampled at a coarser sensor pitch: 64 px become ~249 px) by ``clients.resample_kernels``.
``--clients-root`` runs another checkout's ``clients`` (e.g. main's, for a before/after). Writes
``render_bench.json`` to ``--out``. Target (issue 14): <= 6 GiB peak at 128 px.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GRID = (12, 16)
TARGET_GIB = 6.0

CHILD = """
import json, resource, sys, time
import numpy as np
from clients import blur, resample_kernels
case, ks, backend = sys.argv[1], int(sys.argv[2]), sys.argv[3]
rng = np.random.default_rng(0)
grid = rng.random((*GRID, 3, ks, ks), dtype=np.float32)
grid /= grid.sum(axis=(-2, -1), keepdims=True)
image = rng.random(SHAPE, dtype=np.float32) if case == "blur" else None
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
start = time.perf_counter()
out = blur(image, grid, backend=backend) if case == "blur" else resample_kernels(grid, 0.27)
seconds = time.perf_counter() - start
print(json.dumps({"case": case, "ks": ks, "backend": backend, "seconds": seconds, "out_shape": list(out.shape),
                  "rss_before_gib": before / 2**30,
                  "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 2**30}))
"""


def run_case(case: str, ks: int, backend: str, clients_root: Path, shape: tuple[int, int, int]) -> dict:
    code = f"SHAPE, GRID = {shape}, {GRID}\n" + CHILD
    env = {**os.environ, "PYTHONPATH": str(clients_root)}
    proc = subprocess.run([sys.executable, "-c", code, case, str(ks), backend], capture_output=True, text=True,
                          env=env, cwd=clients_root, timeout=1800, check=False)
    if proc.returncode != 0:
        return {"case": case, "ks": ks, "backend": backend, "error": proc.stderr.strip().splitlines()[-1]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.render_bench", description=__doc__.split("\n")[0])
    parser.add_argument("--ks", type=int, nargs="+", default=[128, 256])
    parser.add_argument("--backend", nargs="+", default=["numpy", "torch"])
    parser.add_argument("--resample", action=argparse.BooleanOptionalAction, default=True,
                        help="also time resample_kernels of 64 px kernels at factor 0.27 (numpy)")
    parser.add_argument("--size", type=int, nargs=2, default=[2400, 1800], metavar=("W", "H"))
    parser.add_argument("--clients-root", type=Path, default=ROOT)
    parser.add_argument("--out", type=Path, default=Path("bench_out"))
    args = parser.parse_args(argv)
    shape = (args.size[1], args.size[0], 3)
    rows = [run_case("blur", ks, b, args.clients_root, shape) for ks in args.ks for b in args.backend]
    if args.resample:
        rows.append(run_case("resample", 64, "numpy", args.clients_root, shape))
    print(f"{'case':<9} {'ks':>4} {'backend':<7} {'seconds':>8} {'peak RSS GiB':>13}  out")
    for r in rows:
        if "error" in r:
            print(f"{r['case']:<9} {r['ks']:>4} {r['backend']:<7} failed: {r['error']}")
        else:
            print(f"{r['case']:<9} {r['ks']:>4} {r['backend']:<7} {r['seconds']:>8.1f} {r['peak_rss_gib']:>13.2f}  "
                  f"{r['out_shape']}")
    print(f"target: <= {TARGET_GIB} GiB peak for 2400 x 1800 RGB through {GRID[1]} x {GRID[0]} kernels "
          f"of 128 px")
    args.out.mkdir(parents=True, exist_ok=True)
    result = {"command": "python -m benchmarks.render_bench " + " ".join(sys.argv[1:] if argv is None else argv),
              "clients_root": str(args.clients_root), "image": list(shape), "grid_ny_nx": list(GRID),
              "cpu_count": os.cpu_count(), "load_average": os.getloadavg(), "rows": rows}
    (args.out / "render_bench.json").write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out / 'render_bench.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
