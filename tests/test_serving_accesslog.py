"""The access log: one line per request (fast path, routes and refusals alike), written by a thread,
all of it by shutdown; no header (no API key) and no forged line."""

from __future__ import annotations

import io
import re
from pathlib import Path

from fastapi.testclient import TestClient

from serving.accesslog import AccessLog
from serving.app import create_app
from serving.settings import Settings

GOOD = {"field": 0.5, "depth": 10.0, "wavelength": 550.0}
LINE = re.compile(r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z \S+ "(GET|POST) .+ HTTP/1\.1" (\d{3}) [\d.]+ms$')


def test_one_line_per_request_and_never_the_key(trained_store: Path, capsys) -> None:
    settings = Settings(store=trained_store, api_key="s3cret-key", access_log=True)
    headers = {"X-API-Key": "s3cret-key"}
    with TestClient(create_app(settings)) as client:
        assert client.get("/psf", params={**GOOD, "format": "npy"}, headers=headers).status_code == 200  # fast path
        assert client.get("/psf", params={**GOOD, "depth": 1e9}, headers=headers).status_code == 422
        assert client.post("/psf/batch", json=GOOD, headers=headers).status_code == 200
        assert client.get("/models", headers={"X-API-Key": "s3cret-kex"}).status_code == 401
        # a path that decodes to a quote and a newline, trying to write a line of its own
        assert client.get("/psf%22%0A2026-01-01T00:00:00.000Z%20forged%20%22GET").status_code == 401
    lines = capsys.readouterr().out.splitlines()
    ours = [line for line in lines if LINE.match(line)]
    assert [LINE.match(line).group(2) for line in ours] == ["200", "422", "200", "401", "401"], lines
    assert "/psf?field=0.5" in ours[0] and "forged" in ours[-1] and '\\"\\n' in ours[-1]
    assert not any(line.startswith("2026-01-01") for line in lines)
    assert not any("s3cret" in line for line in lines)


def test_a_stalled_output_drops_lines_counted_instead_of_growing() -> None:
    async def app(scope, receive, send) -> None:
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    import asyncio

    out = io.StringIO()
    log = AccessLog(app, out, max_pending=3)
    scope = {"type": "http", "method": "GET", "path": "/x", "query_string": b"", "http_version": "1.1",
             "client": ("127.0.0.1", 1), "headers": []}

    async def five() -> None:
        for _ in range(5):
            await log(scope, None, lambda message: asyncio.sleep(0))

    asyncio.run(five())
    log.flush()
    text = out.getvalue().splitlines()
    assert len(text) == 4 and text[-1].startswith("access log: 2 lines dropped")
