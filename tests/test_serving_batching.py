"""Micro-batching and the bounded queue, on a server of their own (long batch window, small queue)."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
import pytest

from models_store.engine import OnnxModel
from tests.conftest import ServerProcess, load_npy, metric, ready_server, requests_in_flight, wait_until

QUEUE = 8
SETTINGS = {  # a 300 ms window makes merging certain; the limits must fit under the queue
    "PSF_MICROBATCH_DELAY_MS": "300", "PSF_MAX_QUEUE": str(QUEUE), "PSF_MAX_BATCH": str(QUEUE),
    "PSF_MAX_GRID": str(QUEUE), "PSF_MAX_STEPS": str(QUEUE), "PSF_CACHE_MB": "0", "PSF_RETRY_AFTER_S": "2",
}


@pytest.fixture(scope="module")
def batching_server(trained_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    log = tmp_path_factory.mktemp("batching") / "server.log"
    with ready_server(trained_store, env=SETTINGS, log_path=log) as server:
        yield server


def query(i: int) -> dict:
    return {"field": round(0.05 * (i % 20), 2), "azimuth": 10.0 * i, "depth": 3.0 + i, "wavelength": 500.0 + i}


@contextmanager
def request_in_flight(server: ServerProcess) -> Iterator[None]:
    """A POST whose body arrives only at the end of the block: while it is in flight the batcher
    expects more queries and holds every batch open for its whole window (no race on arrival)."""
    body = json.dumps({"field": 0.5, "depth": 10.0, "wavelength": 550.0}).encode()
    head = (f"POST /psf/batch HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(head + body[:5])
        wait_until("the server takes it in", lambda: requests_in_flight(server.url) >= 1)
        yield
        sock.sendall(body[5:])
        assert sock.recv(64).startswith(b"HTTP/1.1 200"), "the held request failed"


def burst(url: str, n: int) -> list[httpx.Response]:
    """n single-PSF GETs released together, each on its own connection."""
    start = threading.Barrier(n)

    def one(i: int) -> httpx.Response:
        with httpx.Client(base_url=url, timeout=30.0) as client:
            start.wait()
            return client.get("/psf", params={**query(i), "format": "npy"})

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(one, range(n)))


def test_concurrent_queries_share_a_call_and_each_gets_its_own_answer(
        batching_server: ServerProcess, local_model: OnnxModel) -> None:
    with request_in_flight(batching_server):
        responses = burst(batching_server.url, QUEUE)
    for i, response in enumerate(responses):
        np.testing.assert_array_equal(load_npy(response), local_model.psf(**query(i))[0], err_msg=f"caller {i}")
    text = httpx.get(batching_server.url + "/metrics").text
    calls, psfs = metric(text, "psf_batch_size_count"), metric(text, "psf_batch_size_sum")
    assert psfs == QUEUE + 1 and calls < QUEUE, f"{QUEUE} queries took {calls:g} onnxruntime calls"
    assert metric(text, "psf_batch_requests_sum") / metric(text, "psf_batch_requests_count") > 1


def test_a_full_queue_answers_503_with_retry_after(batching_server: ServerProcess, local_model: OnnxModel) -> None:
    with request_in_flight(batching_server):
        responses = burst(batching_server.url, 3 * QUEUE)
    refused = [r for r in responses if r.status_code == 503]
    answered = [(i, r) for i, r in enumerate(responses) if r.status_code == 200]
    assert len(refused) + len(answered) == len(responses), [r.status_code for r in responses]
    assert refused and answered
    assert all(r.headers["retry-after"] == "2" and "PSF_MAX_QUEUE" in r.json()["detail"] for r in refused)
    for i, response in answered:
        np.testing.assert_array_equal(load_npy(response), local_model.psf(**query(i))[0])
    text = httpx.get(batching_server.url + "/metrics").text
    assert metric(text, "psf_overload_rejections_total") == len(refused)
    assert metric(text, "psf_queue_depth") == 0  # everything admitted was answered
    # and the server recovers at once
    assert httpx.get(batching_server.url + "/psf", params=query(0)).status_code == 200


def test_an_invalid_query_in_a_merged_batch_gets_its_own_error(
        batching_server: ServerProcess, local_model: OnnxModel) -> None:
    """Queries merged into one batch are validated together; one bad query must not fail the rest."""
    bad = 3
    start = threading.Barrier(QUEUE - 1)

    def one(i: int) -> httpx.Response:
        params = {**query(i), "format": "npy"}
        if i == bad:
            params["depth"] = 1e6  # far beyond any trained range
        with httpx.Client(base_url=batching_server.url, timeout=30.0) as client:
            start.wait()
            return client.get("/psf", params=params)

    text = httpx.get(batching_server.url + "/metrics").text
    merged_before = metric(text, "psf_batch_requests_sum") - metric(text, "psf_batch_requests_count")
    with request_in_flight(batching_server), ThreadPoolExecutor(QUEUE - 1) as pool:
        responses = list(pool.map(one, range(QUEUE - 1)))
    assert responses[bad].status_code == 422
    assert "depth" in responses[bad].json()["detail"] and "1000000" in responses[bad].json()["detail"]
    for i, response in enumerate(responses):
        if i != bad:
            assert response.status_code == 200, response.text
            np.testing.assert_array_equal(load_npy(response), local_model.psf(**query(i))[0], err_msg=f"caller {i}")
    text = httpx.get(batching_server.url + "/metrics").text
    merged = metric(text, "psf_batch_requests_sum") - metric(text, "psf_batch_requests_count") - merged_before
    assert merged > 0, "the burst was not merged, so the test proved nothing"
