"""What issue 21's tail fix rests on: one computation per question asked at once, the diagnostics
the load benchmark reads, answers unchanged by how they are batched or rotated, the event loop."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import numpy as np
import pytest

from models_store.conditions import rotate_psfs
from models_store.engine import OnnxModel
from serving.batcher import Batcher
from serving.cache import AnswerCache
from serving.inflight import RequestsInFlight
from serving.metrics import Metrics
from serving.settings import Settings
from tests.conftest import load_npy, metric

QUERY = {"field": 0.41, "azimuth": 33.0, "x": None, "y": None, "depth": 6.5, "wavelength": 512.0, "focus": None}


def _answer(model: OnnxModel, batcher: Batcher) -> Callable[[], Awaitable[np.ndarray]]:
    async def compute() -> np.ndarray:
        return (await batcher.psf_query(model, QUERY))[0]
    return compute


@pytest.mark.parametrize("cache_mb", [16, 0])
def test_a_question_asked_ten_times_at_once_is_computed_once_with_the_cache_on(trained_store: Path,
                                                                               cache_mb: int) -> None:
    model = OnnxModel.from_store(trained_store, "ci")

    async def run() -> tuple[list[np.ndarray], float]:
        metrics = Metrics()
        batcher = Batcher(metrics, RequestsInFlight(), enabled=False)  # every computation its own call
        cache = AnswerCache(cache_mb << 20, metrics)
        key = ("psf", model.name, model.version, *QUERY.values())
        answers = await asyncio.gather(*(cache.compute(key, _answer(model, batcher)) for _ in range(10)))
        await batcher.close()
        return answers, _count(metrics)

    answers, computations = asyncio.run(run())
    expected = model.psf(**{k: v for k, v in QUERY.items() if v is not None})[0]
    for answer in answers:
        np.testing.assert_array_equal(answer, expected)
    assert computations == (1 if cache_mb else 10)


def _count(metrics: Metrics) -> float:
    return next(s.value for s in metrics.compute.collect()[0].samples if s.name.endswith("_count"))


def test_an_error_reaches_every_asker_and_is_not_kept(trained_store: Path) -> None:
    model = OnnxModel.from_store(trained_store, "ci")
    bad = {**QUERY, "depth": 1e6}

    async def run() -> list[object]:
        metrics = Metrics()
        batcher, cache = Batcher(metrics, RequestsInFlight(), enabled=False), AnswerCache(1 << 20, metrics)

        async def compute() -> np.ndarray:
            return (await batcher.psf_query(model, bad))[0]
        results = await asyncio.gather(*(cache.compute("k", compute) for _ in range(3)), return_exceptions=True)
        assert len(cache) == 0 and cache.get("k") is None
        await batcher.close()
        return results

    results = asyncio.run(run())
    assert all(type(r).__name__ == "ConditionError" and "depth" in str(r) for r in results), results


def test_rotating_a_batch_gives_each_row_the_bits_it_gets_alone() -> None:
    rng = np.random.default_rng(3)
    for k in (16, 64, 192):  # 192 px: many chunks of one row each
        psfs = rng.random((9, k, k), dtype=np.float32)
        azimuth = rng.uniform(0, 360, 9)
        together = rotate_psfs(psfs, azimuth)
        alone = np.concatenate([rotate_psfs(psfs[i:i + 1], azimuth[i:i + 1]) for i in range(9)])
        assert np.array_equal(together.view(np.uint32), alone.view(np.uint32)), k


def test_the_server_reports_loop_lag_gc_pauses_and_computations(http: httpx.Client) -> None:
    first = load_npy(http.get("/psf", params={"field": 0.37, "depth": 4.5, "wavelength": 480.0, "format": "npy"}))
    assert first.shape[0] == first.shape[1]
    text = http.get("/metrics").text
    assert metric(text, "psf_event_loop_lag_seconds_count") > 0  # the watcher wakes about 100 times a second
    assert "psf_gc_pause_seconds_bucket" in text
    assert metric(text, "psf_compute_seconds_count") >= 1


def test_the_event_loop_is_asyncio_by_default() -> None:
    assert Settings().loop == "asyncio"  # uvloop left sockets unread for seconds under load (README, Load)


def test_answers_are_kept_from_their_second_asking_and_a_sweep_keeps_none() -> None:
    async def main() -> tuple[list[int], int, int]:
        cache, computed = AnswerCache(1 << 20), []

        def compute(i: int):
            async def answer() -> np.ndarray:
                computed.append(i)
                return np.full((4, 4), float(i), np.float32)
            return answer

        held = []
        for _ in range(3):  # the same question three times: computed twice, then from the cache
            if cache.get("again") is None:
                await cache.compute("again", compute(-1))
            held.append(len(cache))
        for i in range(500):  # a sweep of questions asked once: nothing kept, the kept answer stays
            await cache.compute(("sweep", i), compute(i))
        kept_after_sweep = len(cache)
        everything = AnswerCache(1 << 20, admit_after=1)
        await everything.compute("once", compute(0))
        return held, kept_after_sweep, len(everything)

    held, kept_after_sweep, admit_all = asyncio.run(main())
    assert held == [0, 1, 1] and kept_after_sweep == 1 and admit_all == 1
