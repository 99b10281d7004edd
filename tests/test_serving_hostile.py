"""Hostile input, case by case, against the real server: each gets a clear 4xx naming what was wrong
(never a 5xx), and the server keeps answering."""

from __future__ import annotations

import json
import socket

import httpx
import pytest

G = {"field": 0.5, "depth": 10.0, "wavelength": 550.0}
GRID = {"nx": 2, "ny": 2, "depth": 10.0, "wavelength": 550.0}
JSON = {"content-type": "application/json"}


def psf_end(kernel: object) -> dict:
    return {"start": {**G, "psf": kernel}, "end": G, "steps": 2}


# id: (method, path, request keyword arguments, status, words the detail must hold)
CASES = {
    "nan": ("GET", "/psf", {"params": {**G, "depth": "nan"}}, 422, ["depth=nan"]),
    "inf": ("GET", "/psf", {"params": {**G, "depth": "inf"}}, 422, ["depth=inf", "[2, 100]"]),
    "-inf": ("GET", "/psf", {"params": {**G, "wavelength": "-inf"}}, 422, ["wavelength=-inf"]),
    "1e400 (inf as text)": ("GET", "/psf", {"params": {**G, "depth": "1e400"}}, 422, ["depth=inf"]),
    "hex 0x10": ("GET", "/psf", {"params": {**G, "field": "0x10"}}, 422, ["field='0x10'", "number"]),
    "a parameter twice": ("GET", "/psf?field=0.1&field=0.2&depth=10&wavelength=550", {}, 422, ["field", "once"]),
    "null in a body": ("POST", "/psf/batch", {"json": {**G, "depth": None}}, 422, ["depth", "null"]),
    "true as a number": ("POST", "/psf/batch", {"json": {**G, "field": True}}, 422, ["field", "true or false"]),
    "traversal model name": ("GET", "/psf", {"params": {**G, "model": "../../etc/passwd"}}, 422, ["model", "letters"]),
    "traversal alias": ("GET", "/psf", {"params": {**G, "version": "../1"}}, 422, ["alias '../1'"]),
    "a digit that is not ASCII": ("GET", "/psf", {"params": {**G, "version": "\u00b2"}}, 422, ["alias '\u00b2'"]),
    "empty model name": ("POST", "/psf/batch", {"json": {**G, "model": ""}}, 422, ["model name ''"]),
    "traversal in a path": ("GET", "/models/..%2F..%2Fetc", {}, 404, ["Not Found"]),
    "huge grid": ("GET", "/psf/grid", {"params": {**GRID, "nx": 10**9, "ny": 10**9}}, 413, ["PSF_MAX_GRID"]),
    "negative grid": ("GET", "/psf/grid", {"params": {**GRID, "nx": -5}}, 422, ["nx=-5"]),
    "huge batch": ("POST", "/psf/batch", {"json": {**G, "field": [0.5] * 5000}}, 413, ["PSF_MAX_BATCH"]),
    "huge steps": ("POST", "/interpolate", {"json": {"start": G, "end": G, "steps": 10**9}}, 413, ["PSF_MAX_STEPS"]),
    "one step": ("POST", "/interpolate", {"json": {"start": G, "end": G, "steps": 1}}, 422, ["steps=1"]),
    "huge body": ("POST", "/psf/batch", {"content": b"[" + b"0," * (9 << 20) + b"0]", "headers": JSON}, 413,
                  ["PSF_MAX_BODY_MB"]),
    "malformed JSON": ("POST", "/psf/batch", {"content": b'{"field": [0.5,', "headers": JSON}, 422,
                       ["not valid JSON", "character 15"]),
    "a list as the body": ("POST", "/psf/batch", {"json": [1, 2]}, 422, ["body"]),
    "bytes that are not text": ("POST", "/psf/batch", {"content": b"\xff\xfe\x00", "headers": JSON}, 400, ["body"]),
    "ragged columns": ("POST", "/psf/batch", {"json": {**G, "field": [0.1, 0.2], "depth": [3.0, 4.0, 5.0]}}, 422,
                       ["like the other columns"]),
    "nested column": ("POST", "/psf/batch", {"json": {**G, "field": [[0.1]]}}, 422, ["field"]),
    "PSF of the wrong shape": ("POST", "/interpolate", {"json": psf_end([[1.0] * 3] * 3)}, 422, ["shape=(3, 3)"]),
    "ragged PSF": ("POST", "/interpolate", {"json": psf_end([[1.0, 2.0], [3.0]])}, 422, ["start.psf"]),
    "PSF of zeros": ("POST", "/interpolate", {"json": psf_end([[0.0] * 16] * 16)}, 422, ["positive sum"]),
    "negative PSF": ("POST", "/interpolate", {"json": psf_end([[-1.0] * 16] * 16)}, 422, ["non-negative"]),
    "PSF whose sum overflows": ("POST", "/interpolate", {"json": psf_end([[1e308] * 16] * 16)}, 422, ["positive sum"]),
    "latent far out": ("POST", "/decode", {"json": {**G, "z": [[1e30] * 4]}}, 422, ["z=", "+-1000"]),
    "latent of the wrong width": ("POST", "/decode", {"json": {**G, "z": [[0.0] * 5]}}, 422, ["z shape=(1, 5)"]),
    "misspelt parameter": ("GET", "/psf", {"params": {**G, "azimtuh": 30}}, 422, ["azimtuh", "unknown"]),
}


@pytest.mark.parametrize("method, path, kwargs, status, words", CASES.values(), ids=CASES.keys())
def test_hostile_input_is_a_clear_refusal(http: httpx.Client, method: str, path: str, kwargs: dict, status: int,
                                          words: list[str]) -> None:
    response = http.request(method, path, **kwargs)
    assert response.status_code == status, response.text[:500]
    detail = response.json()["detail"]
    for word in words:
        assert word in detail, detail
    assert http.get("/healthz").status_code == 200


@pytest.mark.parametrize("raw, status", [
    (b"GET /psf?" + b"a=1&" * 50000 + b" HTTP/1.1\r\nHost: t\r\n\r\n", 431),  # a 200 KB request line: over
    # PSF_MAX_HEADER_KB
    (b"NOT HTTP AT ALL\r\n\r\n", 400),
    (b"GET /psf HTTP/1.1\r\nHost: t\r\nContent-Length: -1\r\n\r\n", 400),
], ids=["huge request line", "garbage", "negative length"])
def test_broken_http_is_refused_by_the_server(server_url: str, http: httpx.Client, raw: bytes, status: int) -> None:
    port = int(server_url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(raw)
        head = sock.recv(200)
    assert head.startswith(f"HTTP/1.1 {status}".encode()), head
    assert http.get("/healthz").status_code == 200


def test_every_refusal_body_is_the_documented_shape(http: httpx.Client) -> None:
    response = http.get("/psf", params={**G, "depth": "nan"})
    body = response.json()
    assert set(body) == {"detail", "errors"} and json.dumps(body)
    assert all({"loc", "msg"} <= set(error) for error in body["errors"])
