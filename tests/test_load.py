"""The load benchmark's short run (locust, 200 users, a few seconds, loopback): correctness only."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import run_cli


def test_the_short_load_run_answers_every_request_correctly(trained_store: Path, tmp_path: Path) -> None:
    proc = run_cli("-m", "benchmarks.load", "--store", str(trained_store), "--quick", "--seconds", "8",
                   "--out", str(tmp_path), timeout=120)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    result = json.loads((tmp_path / "load.json").read_text())
    mix = result["mix"]
    assert set(mix["routes"]) == {"GET /psf", "POST /psf/batch", "GET /psf/grid", "POST /interpolate"}
    for name, route in mix["routes"].items():
        assert set(route["statuses"]) <= {"200", "503"}, (name, route["statuses"])  # no other error
        assert route["statuses"].get("200", 0) > 0, (name, route["statuses"])
        assert route["invalid"] == 0, name  # every 200 is a valid PSF array of the route's shape
        assert route["503_without_retry_after"] == 0, name
    assert mix["requests"] >= 500
    assert "[QUICK]" in proc.stdout
