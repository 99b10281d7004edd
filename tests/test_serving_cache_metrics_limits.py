"""Operations: the answer cache, /metrics, the API key on every route, the request-size limit."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from models_store.engine import OnnxModel
from serving.app import create_app
from serving.settings import Settings
from tests.conftest import load_npy, metric

GOOD = {"field": 0.5, "depth": 10.0, "wavelength": 550.0}


def test_a_repeated_grid_is_answered_from_the_cache(http: httpx.Client) -> None:
    params = {"nx": 5, "ny": 1, "depth": 7.25, "wavelength": 555.5}  # asked by no other test
    texts, answers = [http.get("/metrics").text], []
    for _ in range(3):
        answers.append(load_npy(http.get("/psf/grid", params=params)))
        texts.append(http.get("/metrics").text)
    assert all(np.array_equal(answers[0], a) for a in answers[1:])
    hits = [metric(t, "psf_cache_lookups_total", result="hit") for t in texts]
    misses = [metric(t, "psf_cache_lookups_total", result="miss") for t in texts]
    steps = [(misses[i + 1] - misses[i], hits[i + 1] - hits[i]) for i in range(3)]
    # first ask: computed and remembered; second: computed again and kept (PSF_CACHE_ADMIT_AFTER=2); third: kept
    assert steps == [(1, 0), (1, 0), (0, 1)]


def test_metrics_expose_the_named_series(http: httpx.Client, local_model: OnnxModel) -> None:
    assert http.get("/psf", params=GOOD).status_code == 200
    assert http.get("/psf", params={**GOOD, "depth": 1000}).status_code == 422
    response = http.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert metric(text, "psf_http_requests_total", route="/psf", method="GET", status="200") >= 1
    assert metric(text, "psf_http_requests_total", route="/psf", method="GET", status="422") >= 1
    assert metric(text, "psf_http_request_duration_seconds_count", route="/psf", status="200") >= 1
    assert metric(text, "psf_batch_size_count") >= 1 and metric(text, "psf_batch_size_sum") >= 1
    assert metric(text, "psf_batch_requests_count") >= 1
    version = str(local_model.version)
    assert metric(text, "psf_model_loaded", model="ci", version=version) == 1
    assert metric(text, "psf_model_alias_version", model="ci", alias="latest") == local_model.version
    for name in ("psf_queue_depth", "psf_http_requests_in_flight", "psf_overload_rejections_total",
                 "psf_cache_lookups_total"):
        assert f"# TYPE {name} " in text, name


ROUTES = [  # (method, path, request keyword arguments)
    ("GET", "/psf", {"params": GOOD}),
    ("GET", "/psf/grid", {"params": {"nx": 2, "ny": 2, "depth": 10.0, "wavelength": 550.0}}),
    ("POST", "/psf/batch", {"json": GOOD}),
    ("POST", "/latent", {"json": GOOD}),
    ("POST", "/decode", {"json": {**GOOD, "z": [[0.0, 0.0, 0.0, 0.0]]}}),
    ("POST", "/interpolate", {"json": {"start": GOOD, "end": GOOD, "steps": 2}}),
    ("GET", "/models", {}),
    ("GET", "/metrics", {}),
]


def test_api_key_guards_every_route_and_is_never_logged(trained_store: Path,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    key = "s3cret-key-value"
    with caplog.at_level(logging.DEBUG), TestClient(create_app(Settings(store=trained_store, api_key=key))) as client:
        for method, path, kwargs in ROUTES:
            assert client.request(method, path, **kwargs).status_code == 401, path
            wrong = client.request(method, path, headers={"X-API-Key": key[:-1]}, **kwargs)
            assert wrong.status_code == 401 and "wrong" in wrong.json()["detail"], path
            right = client.request(method, path, headers={"X-API-Key": key}, **kwargs)
            assert right.status_code == 200, (path, right.text)
        assert client.get("/healthz").status_code == 200 and client.get("/readyz").status_code == 200
    assert key not in caplog.text and key[:-1] not in caplog.text


def test_request_bodies_over_the_limit_are_413(trained_store: Path) -> None:
    settings = Settings(store=trained_store, max_body_mb=1 / 1024)  # 1 KiB
    body = b'{"field": [' + b",".join([b"0.5"] * 400) + b'], "depth": 10, "wavelength": 550}'
    with TestClient(create_app(settings)) as client:
        sized = client.post("/psf/batch", content=body, headers={"content-type": "application/json"})
        assert sized.status_code == 413 and "1024 bytes" in sized.json()["detail"]
        assert "PSF_MAX_BODY_MB" in sized.json()["detail"]
        streamed = client.post("/psf/batch", content=iter([body[:600], body[600:]]),
                               headers={"content-type": "application/json"})
        assert streamed.status_code == 413 and "1024 bytes" in streamed.json()["detail"]
        small = client.post("/psf/batch", json=GOOD)
        assert small.status_code == 200
