"""``python -m serving`` as a child process on a free loopback port.

For tests, benchmarks and scripts that need the real server (its own process, event loop and
thread pool) rather than an in-process app. Standard library only, so it adds no dependency.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """``python -m serving --store STORE [extra args]`` on 127.0.0.1:<free port>; call ``stop()`` when done.

    Its output goes to ``log_path`` (default: beside the store), a file rather than a pipe: a pipe nobody
    reads fills up with access-log lines and blocks the server.
    """

    def __init__(self, store: str | os.PathLike[str], *extra: str, env: dict[str, str] | None = None,
                 log_path: str | os.PathLike[str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = Path(log_path) if log_path else Path(store).parent / f"server-{self.port}.log"
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "serving", "--store", str(store), "--host", "127.0.0.1", "--port", str(self.port),
             *extra],
            cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT, text=True, env={**os.environ, **(env or {})},
        )

    def output(self) -> str:
        self.log.flush()
        return self.log_path.read_text()

    def wait(self, path: str = "/healthz", timeout: float = 60) -> float:
        """Block until ``path`` answers below 500 (``/readyz``: a model is loaded); returns the seconds waited."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.output()}")
            try:
                with urllib.request.urlopen(self.url + path, timeout=1):
                    return time.monotonic() - started
            except urllib.error.HTTPError as exc:
                if exc.code < 500:
                    return time.monotonic() - started
            except (urllib.error.URLError, OSError):
                pass  # not listening yet
            time.sleep(0.1)
        raise TimeoutError(f"server on {self.url} did not answer {path} within {timeout}s:\n{self.output()}")

    def stop(self) -> str:
        """Terminate (kill after 15 s) and return everything the server wrote."""
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        return self.log_path.read_text()
