"""python -m benchmarks [--quick] [--out DIR] [--store DIR --model NAME] [--run RUN_DIR]

Speed and accuracy of the PSF surrogate beside DeepLens ray tracing and DeepLens's PSFNetLens, in one
run on this machine. Writes DIR/benchmark.json (every figure and its conditions), DIR/benchmark.md
(the table, also printed) and DIR/speed_vs_accuracy.png. Exit status 1 when a section failed.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
import traceback
from pathlib import Path


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="smoke check in under 3 minutes (labelled as such)")
    size.add_argument("--smoke", action="store_true", help="the test suite's tiny setting (figures mean nothing)")
    parser.add_argument("--out", type=Path, default=Path("bench_out"), help="output folder (default bench_out)")
    parser.add_argument("--store", type=Path, default=None, help="model store (default: $PSF_STORE or ./store)")
    parser.add_argument("--model", default=None, help="model name (default: the first in the store)")
    parser.add_argument("--version", default=None, help="version or alias (default: latest)")
    parser.add_argument("--run", type=Path, default=None,
                        help="the model's training run folder, for the torch eager rows (default: looked for "
                             "under the run_dir of its training config; skipped when not found)")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for every method (default: $OMP_NUM_THREADS, else all cores)")
    parser.add_argument("--cache", type=Path, default=Path(".cache"),
                        help="where references and PSFNet weights are cached (default .cache)")
    parser.add_argument("--psfnet-steps", type=int, default=None,
                        help="optimiser steps for PSFNetLens (default: as many as our model took; weights cached)")
    parser.add_argument("--note", default=None, help="free text recorded with the machine (e.g. 'shared CI runner')")
    args = parser.parse_args(argv)
    args.threads = args.threads or int(os.environ.get("OMP_NUM_THREADS") or 0) or os.cpu_count() or 1
    return args


def main(argv: list[str] | None = None) -> int:
    started = time.perf_counter()
    args = parse(argv)
    # BLAS and OpenMP read these once, when numpy / torch are first imported: set them before that
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)

    from . import http_api, machine_limits, psfnet, raytrace, report, surrogate
    from .fixtures import BenchError, load
    from .profiles import FULL, QUICK, SMOKE

    profile = QUICK if args.quick else SMOKE if args.smoke else FULL
    if args.psfnet_steps:
        profile = dataclasses.replace(profile, psfnet_steps=args.psfnet_steps)
    mach = report.machine(args.threads, args.note)
    print(f"benchmark profile {profile.name}, {args.threads} thread(s); {mach['load_note']}")
    if profile.label:
        print(profile.label)
    try:
        bench = load(args.store, args.model, args.version, profile, threads=args.threads, cache=args.cache,
                     progress=sys.stderr.isatty())
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    m = bench.manifest
    print(f"model {m.name}@{m.version} (ks {m.kernel_size}); {len(bench.conditions)} held-out conditions, reference "
          f"{profile.reference_rays:,} rays/point ({bench.reference_info['seconds_incl_cache']} s incl. cache)")
    result: dict = {
        "benchmark": {"command": "python -m benchmarks " + " ".join(sys.argv[1:] if argv is None else argv),
                      "profile": profile.to_dict()},
        "machine": mach,
        "model": bench.model_summary(),
        "reference": bench.reference_info,
        "notes": [
            (f"accuracy of every method is measured against a reference on a {bench.window} px window that holds the "
            f"whole PSF: kernels ({m.kernel_size} px) are zero-padded to it, so energy they leave out counts as error, "
            f"and ray tracing is scored on the window itself; the ray-trace throughput rows use ks "
            f"{profile.raytrace_ks}; their psfs_per_s_at_accuracy_ks in the JSON is the speed of the accuracy pass"),
            ("every method makes PSFs at the held-out points' azimuths (one per field and wavelength, as in the "
            "model's evaluation card): ray tracing traces there, the surrogates turn their kernels there (rotation "
            "or mirror flips, as the server does) inside the timed call"),
        ],
        "errors": {},
    }

    def section(name: str, fn):
        print(f"[{name}]")
        start = time.perf_counter()
        try:
            return fn()
        except Exception as exc:  # noqa: BLE001 - one broken section must not hide the others' figures
            traceback.print_exc()
            result["errors"][name] = f"{type(exc).__name__}: {exc}"
            return None
        finally:
            result["benchmark"].setdefault("section_seconds", {})[name] = round(time.perf_counter() - start, 1)

    lim = section("limits", lambda: machine_limits.measure(profile.bandwidth_mib, profile.matmul_n, profile.repeats))
    if lim:
        lim["flops"] = {f"{g}.onnx": machine_limits.onnx_flops(bench.folder / m.graphs[g].file)
                        for g in ("psf", "decoder")}
        result["limits"] = lim
    result["raytrace"] = section("raytrace", lambda: raytrace.run(bench)) or []
    result["psfnet"] = section("psfnet", lambda: psfnet.run(bench)) or []
    result["psfnet_adaptation"] = psfnet.ADAPTATION
    result["ours_inprocess"] = section("ours in-process", lambda: surrogate.onnx_rows(bench)) or []
    torch_rows = section("ours torch eager", lambda: surrogate.torch_rows(bench, args.run))
    if torch_rows:
        result["ours_inprocess"] += torch_rows[0]
        if torch_rows[1]:
            result["notes"].append(f"torch eager skipped: {torch_rows[1]}")
            print(f"  skipped: {torch_rows[1]}")
    result["http"] = section("http", lambda: http_api.run(bench))

    if lim:
        machine_limits.annotate(report.all_rows(result), lim)
    result["targets"] = report.targets(result)
    result["benchmark"]["duration_s"] = round(time.perf_counter() - started, 1)
    paths = report.write(result, args.out)
    print()
    print(paths["markdown"].read_text())
    print(f"wrote {', '.join(str(p) for p in paths.values())} in {result['benchmark']['duration_s']:.0f} s")
    return 1 if result["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
