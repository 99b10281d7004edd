"""The outputs of one benchmark run: every figure with its conditions (JSON), a markdown table, a
speed-vs-accuracy plot, and the issue's targets stated as met or not (reported, never asserted)."""

from __future__ import annotations

import json
import math
import os
import platform
import sys
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

PACKAGES = ("numpy", "torch", "onnxruntime", "onnxruntime-gpu", "onnx", "deeplens-core", "fastapi", "uvicorn",
            "httpx", "psutil", "matplotlib")
TARGET_SPEEDUP = 1000.0


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine(threads: int, note: str | None) -> dict:
    cores = os.cpu_count() or 1
    load = os.getloadavg() if hasattr(os, "getloadavg") else (math.nan,) * 3
    busy = load[0] > 0.25 * cores
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            pass
    return {
        "cpu": _cpu_model(), "cores": cores, "platform": platform.platform(), "python": sys.version.split()[0],
        "threads": threads, "omp_num_threads_env": os.environ.get("OMP_NUM_THREADS"), "packages": versions,
        "load_average_at_start": [round(v, 2) for v in load], "busy_at_start": busy,
        "load_note": (f"BUSY: load average {load[0]:.2f} on {cores} cores before the run started; other processes "
                      f"shared the CPUs, so speeds are low and noisy" if busy else
                      f"load average {load[0]:.2f} on {cores} cores before the run started (quiet)"),
        "user_note": note,
    }


def all_rows(result: dict) -> list[dict]:
    rows = [*result.get("raytrace", []), *result.get("psfnet", []), *result.get("ours_inprocess", [])]
    http = result.get("http") or {}
    rows += [r for r in (http.get("get_psf"), http.get("post_psf_batch")) if r]
    return rows


def _fmt(value: float | None, spec: str = ".3g") -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return format(value, spec)


COLUMNS = ("method", "ks", "batch", "PSFs/s", "p50 / p99 ms", "rel L1 mean (p90)", "EE80 err %", "centroid px",
           "% of write-BW limit", "% of compute limit")


def _cells(r: dict) -> list[str]:
    if r.get("available") is False:  # a route this build lacks: say so instead of a number
        return [r["method"], "", "", r["note"]] + [""] * (len(COLUMNS) - 4)
    a, lim = r.get("accuracy"), r.get("limits", {})
    ks = str(r["ks"])
    if a and r.get("accuracy_ks") != r["ks"]:
        ks += f" (acc. at {r['accuracy_ks']})"

    def pct(key: str) -> str:
        return _fmt(100 * lim[key], ".2g") if key in lim else "–"

    return [
        r["method"], ks, str(r["batch"]), _fmt(r["psfs_per_s"], ",.1f"),
        f"{r['p50_ms']:.3f} / {r['p99_ms']:.3f}" if "p50_ms" in r else "",
        f"{a['rel_l1_mean']:.4f} ({a['rel_l1_p90']:.4f})" if a else "not trained",
        _fmt(a["ee80_pct_mean"], ".1f") if a else "–", _fmt(a["centroid_px_mean"], ".3f") if a else "–",
        pct("fraction_of_bandwidth_limit"), pct("fraction_of_compute_limit"),
    ]


def table(result: dict) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + " --- |" * len(COLUMNS)]
    lines += ["| " + " | ".join(_cells(r)) + " |" for r in all_rows(result)]
    return "\n".join(lines)


def _find(rows: list[dict], kind: str, **match) -> dict | None:
    for r in rows:
        if r.get("kind") == kind and all(r.get(k) == v for k, v in match.items()):
            return r
    return None


def targets(result: dict) -> list[dict]:
    rows, out = all_rows(result), []
    batch = result["benchmark"]["profile"]["batch"]
    ours = _find(result.get("ours_inprocess", []), "ours_onnx", provider="CPUExecutionProvider", batch=batch)
    rt = _find(result.get("raytrace", []), "raytrace", spp=8192)
    t1 = {"target": f"in-process batched (onnxruntime CPU, batch {batch}) >= {TARGET_SPEEDUP:g}x DeepLens ray "
                    "tracing at spp 8192, at a relative L1 no worse than that ray trace"}
    if ours and rt:
        speedup = ours["psfs_per_s"] / rt["psfs_per_s"]
        ours_l1, rt_l1 = ours["accuracy"]["rel_l1_mean"], rt["accuracy"]["rel_l1_mean"]
        t1.update(speedup=speedup, ours_rel_l1=ours_l1, raytrace_rel_l1=rt_l1, speed_met=speedup >= TARGET_SPEEDUP,
                  accuracy_met=ours_l1 <= rt_l1, met=speedup >= TARGET_SPEEDUP and ours_l1 <= rt_l1,
                  detail=f"{speedup:,.0f}x (ray trace at ks {rt['ks']}); rel L1 {ours_l1:.4f} vs {rt_l1:.4f}")
    else:
        t1.update(met=None, detail="not measured in this profile (needs the spp 8192 ray-trace and batched rows)")
    out.append(t1)

    post = (result.get("http") or {}).get("post_psf_batch") or {}
    t2 = {"target": "HTTP POST /psf/batch throughput >= 0.5x in-process batched"}
    if post.get("available") and ours:
        ratio = post["psfs_per_s"] / ours["psfs_per_s"]
        t2.update(ratio=ratio, met=ratio >= 0.5, detail=f"{ratio:.2f}x")
    else:
        t2.update(met=None, detail=post.get("note", "not measured"))
    out.append(t2)

    get = (result.get("http") or {}).get("get_psf")
    t3 = {"target": "single GET /psf p50 <= 1.5 ms"}
    if get:
        t3.update(met=get["p50_ms"] <= 1.5, detail=f"p50 {get['p50_ms']:.3f} ms")
    else:
        t3.update(met=None, detail="not measured")
    out.append(t3)

    gpu = _find(rows, "ours_onnx", provider="CUDAExecutionProvider", batch=4096)
    out.append({"target": "GPU (CUDA EP): the same table, with PSFs/s at batch 4096", "met": None,
                "detail": f"{gpu['psfs_per_s']:,.0f} PSFs/s at batch 4096" if gpu else "no GPU on this machine"})
    return out


def _verdict(t: dict) -> str:
    return {True: "MET", False: "NOT MET", None: "n/a"}[t["met"]]


def markdown(result: dict) -> str:
    b, m, mach = result["benchmark"], result["model"], result["machine"]
    lines = [(f"# PSF benchmark: {m['name']}@{m['version']} (ks {m['kernel_size']}), "
             f"profile `{b['profile']['name']}`"), ""]
    if b["profile"].get("label"):
        lines += [f"**{b['profile']['label']}**", ""]
    lines += [
        (f"- machine: {mach['cpu']}, {mach['cores']} cores, {mach['threads']} thread(s) per method; "
         f"{mach['load_note']}" + (f"; note: {mach['user_note']}" if mach.get("user_note") else "")),
        (f"- held-out conditions: {result['reference']['points']} (field x depth x wavelength grid "
         f"{result['reference']['grid_field_depth_wavelength']}); accuracy against a converged ray trace of "
         f"{result['reference']['rays_per_point']:,} rays per point at the model's ks {m['kernel_size']}; "
         f"ray-trace throughput rows at ks {b['profile']['raytrace_ks']}"),
        (f"- time to train our model: {m['time_to_train_s']:.0f} s ({m['training']['ray_traced_samples']} "
         f"ray-traced samples at spp {m['training']['spp']}, {m['training']['steps']} steps)"),
    ]
    trained = next((r for r in result.get("psfnet", []) if r.get("accuracy")), None)
    if trained:
        t, bud = trained["training"], trained["budget"]
        lines.append(f"- PSFNetLens ({t['arch']}) trained on {bud['samples']} ray-traced samples at spp {bud['spp']} "
                     f"(ours: {bud['our_samples']}), {bud['steps']} steps (ours: {bud['our_steps']}), lr {t['lr']:g}: "
                     f"{t['train_wall_s']:.0f} s" + (" (weights from the cache)" if t["cached"] else ""))
    mem = (result.get("http") or {}).get("server", {}).get("memory")
    if mem:
        lines.append(f"- server resident memory with one model loaded: {mem['after_load']['rss_mib']} MiB after "
                     f"load, peak {mem['after_benchmark']['peak_rss_mib']} MiB after the HTTP runs")
    lim = result.get("limits", {})
    if "memory" in lim:
        lines.append(f"- limits here: memory bandwidth {lim['memory']['bytes_per_s'] / 1e9:.1f} GB/s (numpy copy), "
                     f"float32 matmul {lim['matmul']['flops_per_s'] / 1e9:.1f} GFLOP/s; our psf.onnx costs "
                     f"{lim['flops']['psf.onnx']['flops_per_psf']:,} FLOPs per PSF "
                     f"(decoder {lim['flops']['decoder.onnx']['flops_per_psf']:,})")
    lines += ["", table(result), "", "## Targets (reported, not asserted)", ""]
    lines += [f"- {_verdict(t)}: {t['target']} — {t['detail']}" for t in result.get("targets", [])]
    notes = result.get("notes", []) + [f"PSFNetLens adaptation: {a}" for a in result.get("psfnet_adaptation", [])]
    if notes:
        lines += ["", "## Notes", "", *[f"- {n}" for n in notes]]
    errors = result.get("errors", {})
    if errors:
        lines += ["", "## Sections that failed", "", *[f"- {k}: {v}" for k, v in errors.items()]]
    return "\n".join(lines) + "\n"


KINDS = {"raytrace": ("DeepLens ray trace", "tab:red", "o"), "psfnet": ("DeepLens PSFNetLens", "tab:orange", "s"),
         "ours_onnx": ("ours, onnxruntime", "tab:blue", "D"), "ours_torch": ("ours, torch eager", "tab:cyan", "v"),
         "ours_http": ("ours over HTTP", "tab:green", "^")}


def _tag(r: dict) -> str:
    if r["kind"] == "raytrace":
        return f"spp {r['spp']}"
    if r["kind"] == "ours_http":
        return "GET" if r["batch"] == 1 else f"POST {r['batch']}"
    provider = r.get("provider", "CPUExecutionProvider").removesuffix("ExecutionProvider")
    return f"b{r['batch']}" + ("" if provider == "CPU" else f" {provider}")


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    seen = set()
    for i, r in enumerate(all_rows(result)):
        if not r.get("accuracy") or not r.get("psfs_per_s"):
            continue
        label, colour, marker = KINDS.get(r["kind"], (r["kind"], "k", "o"))
        x, y = r["psfs_per_s"], r["accuracy"]["rel_l1_mean"]
        ax.scatter(x, y, color=colour, marker=marker, zorder=3, label=None if label in seen else label)
        seen.add(label)
        ax.annotate(_tag(r), (x, y), fontsize=7, xytext=(4, 4 if i % 2 else -9), textcoords="offset points")
    m, b = result["model"], result["benchmark"]
    ax.set_xscale("log")
    ax.set_yscale("log")  # errors span 0.01 (converged) to > 1 (an unfitted surrogate)
    ax.set_xlabel("PSFs per second (log)")
    ax.set_ylabel(f"relative L1 vs converged ray trace (mean, ks {m['kernel_size']}, log)")
    title = f"{m['name']}@{m['version']}: speed vs accuracy ({b['profile']['name']} profile"
    title += ", BUSY machine)" if result["machine"]["busy_at_start"] else ")"
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write(result: dict, out: Path) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "benchmark.json", "markdown": out / "benchmark.md", "plot": out / "speed_vs_accuracy.png"}
    result["benchmark"]["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
    if hasattr(os, "getloadavg"):  # includes this run's own work
        result["machine"]["load_average_at_end"] = [round(v, 2) for v in os.getloadavg()]
    paths["json"].write_text(json.dumps(result, indent=2, default=float))
    paths["markdown"].write_text(markdown(result))
    plot(result, paths["plot"])
    return paths
