"""A scripted HTTP server on a real loopback socket, for what the real PSF server will not do on cue
(answer 503 a few times, drop a connection, stall past a timeout, refuse a batch with 413)."""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

import numpy as np


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    body: Any
    headers: dict[str, str]


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False  # close the connection without answering
    delay: float = 0.0  # seconds to stall before answering


def npy_reply(array: np.ndarray, *, model: str = "fake", version: int = 3, pitch: float = 12.0) -> Reply:
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(array, dtype=np.float32))
    return Reply(200, buffer.getvalue(), {"Content-Type": "application/x-npy", "X-Model": model,
                                          "X-Model-Version": str(version), "X-Kernel-Size": str(array.shape[-1]),
                                          "X-Pixel-Pitch-Um": repr(pitch)})


def json_reply(status: int, data: Any, **headers: str) -> Reply:
    return Reply(status, json.dumps(data).encode(), {"Content-Type": "application/json", **headers})


class ScriptedServer:
    """``handler(seen, index) -> Reply`` answers request number ``index``; ``seen`` lists every request."""

    def __init__(self, handler: Callable[[Seen, int], Reply]) -> None:
        self.handler, self.seen, self._lock = handler, [], threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def _answer(self) -> None:
                url = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                seen = Seen(self.command, url.path, {k: v[-1] for k, v in parse_qs(url.query).items()},
                            json.loads(raw) if raw else None, dict(self.headers))
                with owner._lock:
                    owner.seen.append(seen)
                    index = len(owner.seen) - 1
                reply = owner.handler(seen, index)
                time.sleep(reply.delay)
                if reply.drop:
                    self.close_connection = True
                    return
                self.send_response(reply.status)
                for name, value in {"Content-Length": str(len(reply.body)), **reply.headers}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(reply.body)

            do_GET = do_POST = _answer

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
