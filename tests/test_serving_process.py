"""The server process: graceful shutdown drains in-flight requests; several workers share the work."""

from __future__ import annotations

import io
import json
import signal
import socket
import time
from pathlib import Path

import httpx
import numpy as np

from models_store.engine import OnnxModel
from tests.conftest import ServerProcess, load_npy, metric, requests_in_flight, wait_until

BODY = {"field": [0.1, 0.4, 0.9], "azimuth": [0.0, 45.0, 200.0], "depth": 10.0, "wavelength": 550.0}


def read_response(sock: socket.socket) -> tuple[int, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed before a response: {data!r}"
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    lines = head.decode().split("\r\n")
    length = next(int(line.split(":")[1]) for line in lines if line.lower().startswith("content-length"))
    while len(body) < length:
        body += sock.recv(65536)
    return int(lines[0].split()[1]), body


def test_shutdown_finishes_the_request_in_flight(trained_store: Path, local_model: OnnxModel) -> None:
    server = ServerProcess(trained_store)
    server.wait("/readyz")
    body = json.dumps(BODY).encode()
    head = (f"POST /psf/batch HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(head + body[:10])  # the request has begun; its body is still coming
        wait_until("the server is answering the request", lambda: requests_in_flight(server.url) >= 1)
        server.proc.send_signal(signal.SIGTERM)
        wait_until("the server begins to drain", lambda: "Waiting for connections to close" in server.output())
        assert server.proc.poll() is None, "the server quit with a request in flight"
        sock.sendall(body[10:])
        status, payload = read_response(sock)
    assert status == 200, payload
    np.testing.assert_array_equal(np.load(io.BytesIO(payload)), local_model.psf(**BODY))
    # uvicorn re-raises the signal once drained, so the exit status is that of SIGTERM
    assert server.proc.wait(timeout=30) in (0, -signal.SIGTERM)
    log = server.stop()
    assert "Finished server process" in log


def test_two_workers_answer_alike_and_report_metrics_together(trained_store: Path, local_model: OnnxModel) -> None:
    server = ServerProcess(trained_store, "--workers", "2", env={"PSF_ACCESS_LOG": "false"})
    try:
        server.wait("/readyz")
        expected = local_model.psf(**BODY)
        for _ in range(12):  # a new connection each time, so both workers get some
            np.testing.assert_array_equal(load_npy(httpx.post(server.url + "/psf/batch", json=BODY)), expected)
        deadline = time.monotonic() + 10
        while True:  # the workers started at their own pace; wait until both have answered something
            text = httpx.get(server.url + "/metrics").text
            if metric(text, "psf_http_requests_total", route="/psf/batch", status="200") == 12:
                break
            assert time.monotonic() < deadline, text[-2000:]
            time.sleep(0.2)
        assert metric(text, "psf_model_loaded", model="ci", version=str(local_model.version)) == 1
    finally:
        log = server.stop()
    assert log.count("Application startup complete") == 2, log[-3000:]
