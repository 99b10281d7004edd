"""Security: the API key on every route (docs and metrics included), several keys for rotation, CORS
off unless configured, and the body limit applied before a body is read."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from serving.app import create_app
from serving.settings import Settings
from tests.conftest import ServerProcess, ready_server

GOOD = {"field": 0.5, "depth": 10.0, "wavelength": 550.0}
DOCS = ("/docs", "/redoc", "/openapi.json")


def in_process(store: Path, **settings: object) -> TestClient:
    return TestClient(create_app(Settings(store=store, **settings)))


def test_docs_openapi_and_metrics_want_the_key_and_any_listed_key_works(
        trained_store: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG), in_process(trained_store, api_key="old-key, new-key") as client:
        for path in (*DOCS, "/metrics", "/models", "/no-such-route"):
            response = client.get(path)
            assert response.status_code == 401, path
            assert "missing" in response.json()["detail"]
            assert client.get(path, headers={"X-API-Key": "new-ke"}).status_code == 401, path
        for key in ("old-key", "new-key"):  # rotation: both are accepted while the clients move
            assert client.get("/openapi.json", headers={"X-API-Key": key}).status_code == 200
            assert client.get("/psf", params=GOOD, headers={"X-API-Key": key}).status_code == 200
        assert client.get("/healthz").status_code == 200 and client.get("/readyz").status_code == 200
    assert "old-key" not in caplog.text and "new-key" not in caplog.text


def test_docs_can_be_published_openly_on_purpose(trained_store: Path) -> None:
    with in_process(trained_store, api_key="k", docs_public=True) as client:
        for path in DOCS:
            assert client.get(path).status_code == 200, path
        assert client.get("/psf", params=GOOD).status_code == 401
        assert client.get("/metrics").status_code == 401


def test_a_blank_key_is_refused_at_start(trained_store: Path) -> None:
    with pytest.raises(ValueError, match="a key is empty"):
        Settings(store=trained_store, api_key="good,")


def test_cors_is_off_unless_origins_are_configured(trained_store: Path) -> None:
    preflight = {"Origin": "https://viewer.example", "Access-Control-Request-Method": "GET",
                 "Access-Control-Request-Headers": "x-api-key"}
    with in_process(trained_store) as client:
        answer = client.get("/psf", params=GOOD, headers={"Origin": "https://viewer.example"})
        assert answer.status_code == 200 and "access-control-allow-origin" not in answer.headers
        assert "access-control-allow-origin" not in client.options("/psf", headers=preflight).headers
    with in_process(trained_store, api_key="k", cors_origins="https://viewer.example") as client:
        # the preflight carries no key and is answered; the request itself still needs the key
        assert client.options("/psf", headers=preflight).headers["access-control-allow-origin"] == \
            "https://viewer.example"
        answer = client.get("/psf", params=GOOD, headers={"Origin": "https://viewer.example", "X-API-Key": "k"})
        assert answer.status_code == 200
        assert answer.headers["access-control-allow-origin"] == "https://viewer.example"
        assert "X-Model-Version" in answer.headers["access-control-expose-headers"]
        other = client.get("/psf", params=GOOD, headers={"Origin": "https://evil.example", "X-API-Key": "k"})
        assert "access-control-allow-origin" not in other.headers


# -- the body limit, over a real socket -------------------------------------------------------------
LIMIT = 4096  # PSF_MAX_BODY_MB below, in bytes


@pytest.fixture(scope="module")
def small_body_server(trained_store: Path) -> Iterator[ServerProcess]:
    with ready_server(trained_store, env={"PSF_MAX_BODY_MB": str(LIMIT / 2**20), "PSF_ACCESS_LOG": "false"}) as srv:
        yield srv


def _status(sock: socket.socket) -> int:
    data = b""
    while b"\r\n" not in data:
        chunk = sock.recv(4096)
        assert chunk, f"closed without an answer: {data!r}"
        data += chunk
    return int(data.split(b" ", 2)[1])


def test_an_announced_oversized_body_is_refused_before_it_is_sent(small_body_server: ServerProcess) -> None:
    head = (b"POST /psf/batch HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1073741824\r\n\r\n")  # 1 GiB announced, not one byte of it sent
    with socket.create_connection(("127.0.0.1", small_body_server.port), timeout=10) as sock:
        sock.sendall(head)
        assert _status(sock) == 413


def test_a_streamed_body_is_cut_off_at_the_limit(small_body_server: ServerProcess) -> None:
    chunk = b"[" + b"0.5," * 255 + b"0.5]"  # ~1 KiB of a JSON list, sent as HTTP chunks
    head = (b"POST /psf/batch HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n")
    sent = 0
    with socket.create_connection(("127.0.0.1", small_body_server.port), timeout=10) as sock:
        sock.sendall(head)
        sock.setblocking(False)
        status = None
        for _ in range(1000):  # up to ~1 MiB, far more than the limit: a server reading it all would wait
            try:
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += len(chunk)
            except (BlockingIOError, BrokenPipeError, ConnectionResetError):
                pass
            time.sleep(0.002)
            try:
                data = sock.recv(4096)
            except BlockingIOError:
                continue
            status = int(data.split(b" ", 2)[1])
            break
    assert status == 413
    assert sent <= 3 * LIMIT, f"the server read {sent} bytes before refusing a body over {LIMIT}"
