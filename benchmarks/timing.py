"""Throughput and latency measurement: warm up, then the median of repeated timed runs."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import numpy as np


def throughput(fn: Callable[[], object], items_per_call: int, *, repeats: int, min_time_s: float = 0.0,
               warmup: int = 1) -> dict:
    """PSFs/s of ``fn`` (which makes ``items_per_call`` PSFs), as the median over ``repeats`` runs.

    A run calls ``fn`` until at least ``min_time_s`` has passed (at least once), so fast calls are
    timed over many iterations and the timer's resolution does not matter.
    """
    assert repeats >= 1 and items_per_call >= 1, "need at least one run and one item per call"
    for _ in range(warmup):
        fn()
    rates, per_call = [], []
    for _ in range(repeats):
        calls, start = 0, time.perf_counter()
        while True:
            fn()
            calls += 1
            elapsed = time.perf_counter() - start
            if elapsed >= min_time_s:
                break
        rates.append(calls * items_per_call / elapsed)
        per_call.append(elapsed / calls)
    return {
        "psfs_per_s": statistics.median(rates),
        "best_psfs_per_s": max(rates),
        "s_per_call": statistics.median(per_call),
        "runs_psfs_per_s": [round(r, 3) for r in rates],
        "batch": items_per_call,
        "repeats": repeats,
        "warmup_calls": warmup,
        "min_run_s": min_time_s,
    }


def latency(fn: Callable[[int], object], n: int, *, warmup: int = 10) -> dict:
    """Per-call latency of ``fn(i)`` over ``n`` sequential calls: p50, p99, mean (milliseconds)."""
    for i in range(warmup):
        fn(i)
    times = np.empty(n)
    for i in range(n):
        start = time.perf_counter()
        fn(i)
        times[i] = time.perf_counter() - start
    return {
        "requests": n,
        "p50_ms": float(np.percentile(times, 50) * 1e3),
        "p99_ms": float(np.percentile(times, 99) * 1e3),
        "mean_ms": float(times.mean() * 1e3),
        "psfs_per_s": float(1.0 / times.mean()),
        "warmup_calls": warmup,
    }
