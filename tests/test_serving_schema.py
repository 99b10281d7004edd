"""schemathesis against the real server: the OpenAPI document and the server agree, with and without
an API key; every check on, a fixed seed, a budget of several hundred generated requests."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import ready_server

SEED = 20261202
MIN_CASES = 300
_POSITIVE_REASONS = {
    # positive_data_acceptance sends requests the schema allows and wants them answered. Where a rule
    # spans several parameters, JSON Schema (and OpenAPI query parameters) cannot state it, so the
    # check cannot tell a valid request from an invalid one; the descriptions state the rule.
    "/psf": "field, or x and y, is a rule across query parameters, which OpenAPI cannot state",
    "/psf/batch": "columns must have equal lengths (or one value), which JSON Schema cannot state",
    "/latent": "columns must have equal lengths (or one value), which JSON Schema cannot state",
    "/geometry": "columns must have equal lengths (or one value), which JSON Schema cannot state",
    "/decode": "columns and z must have equal lengths (or one row), which JSON Schema cannot state",
    "/interpolate": "a measured psf needs a finite positive sum, which JSON Schema cannot state",
}
# A v2 inference request must carry the tensors of the graph the path names (their names, shapes and
# equal rows): the body's schema cannot depend on the path, so it states what every graph takes.
_V2_INFER = ("/v2/models/{name}/infer", "/v2/models/{name}/versions/{version}/infer")
# Sizes are checked before values (the cheaper refusal first), and the limits on a product (nx * ny)
# or on a body's bytes cannot be stated in JSON Schema: a 413 naming the limit is the answer the
# README promises, so these checks may see one; every other status they refuse still fails them.
_WITH_413 = {
    "positive_data_acceptance": ["2xx", "3xx", "401", "403", "404", "409", "413", "429", "5xx"],
    "negative_data_rejection": ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428",
                                "429", "5xx"],
}
_SIZED = ("/psf/grid", "/distortion", "/psf/batch", "/latent", "/geometry", "/decode", "/interpolate")


def _toml_list(values: list[str]) -> str:
    return "[" + ", ".join(f'"{v}"' for v in values) + "]"


def _config(tmp_path: Path) -> Path:
    lines = ["[checks]", "enabled = true  # every check", ""]
    for path in _SIZED:
        lines += ["[[operations]]", f'include-path = "{path}"']
        if path in _POSITIVE_REASONS:
            lines += [f"# {_POSITIVE_REASONS[path]}", "checks.positive_data_acceptance.enabled = false"]
        for check, statuses in _WITH_413.items():
            if not (check == "positive_data_acceptance" and path in _POSITIVE_REASONS):
                lines.append(f"checks.{check}.expected-statuses = {_toml_list(statuses)}")
        lines.append("")
    lines += ["[[operations]]", 'include-path = "/psf"', f"# {_POSITIVE_REASONS['/psf']}",
              "checks.positive_data_acceptance.enabled = false", ""]
    for path in _V2_INFER:
        lines += ["[[operations]]", f'include-path = "{path}"', "# the graph's tensors depend on the path",
                  "checks.positive_data_acceptance.enabled = false", ""]
    config = tmp_path / "schemathesis.toml"
    config.write_text("\n".join(lines))
    return config


def run_schemathesis(url: str, tmp_path: Path, *headers: str) -> str:
    schema = tmp_path / "openapi.json"  # fetched once, with the key when the server wants one
    response = httpx.get(url + "/openapi.json", headers=dict(h.split(": ", 1) for h in headers))
    assert response.status_code == 200, response.text
    schema.write_bytes(response.content)
    st = Path(sys.executable).with_name("st")
    args = [str(st), "--no-color", "--config-file", str(_config(tmp_path)), "run", str(schema), "--url", url,
            "--seed", str(SEED), "--max-examples", "25", "--workers", "2", "--suppress-health-check", "all"]
    for header in headers:
        args += ["--header", header]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=240, cwd=tmp_path)
    out = proc.stdout + proc.stderr
    cases = re.search(r"(\d+) generated", out)
    assert cases is not None, out[-3000:]
    assert int(cases.group(1)) >= MIN_CASES, out[-3000:]
    assert proc.returncode == 0, out[-8000:]
    return out


def test_the_document_and_the_server_agree_without_a_key(trained_store: Path, tmp_path: Path) -> None:
    with ready_server(trained_store, env={"PSF_ACCESS_LOG": "false"}) as server:
        doc = httpx.get(server.url + "/openapi.json").json()
        assert "securitySchemes" not in doc["components"]
        run_schemathesis(server.url, tmp_path)


def test_the_document_and_the_server_agree_with_keys(trained_store: Path, tmp_path: Path) -> None:
    env = {"PSF_ACCESS_LOG": "false", "PSF_API_KEY": "old-key-1,new-key-2"}
    with ready_server(trained_store, env=env) as server:
        assert httpx.get(server.url + "/openapi.json").status_code == 401
        doc = httpx.get(server.url + "/openapi.json", headers={"X-API-Key": "new-key-2"}).json()
        assert doc["components"]["securitySchemes"]["APIKeyHeader"]["name"] == "X-API-Key"
        assert "security" not in doc["paths"]["/healthz"]["get"]
        assert doc["paths"]["/psf"]["get"]["security"] and "401" in doc["paths"]["/psf"]["get"]["responses"]
        run_schemathesis(server.url, tmp_path, "X-API-Key: old-key-1")


@pytest.mark.parametrize("path", ["/psf", "/psf/grid"])
def test_the_document_states_the_served_models_ranges(server_url: str, path: str, local_model) -> None:
    doc = httpx.get(server_url + "/openapi.json").json()
    params = {p["name"]: p for p in doc["paths"][path]["get"]["parameters"]}
    for condition in local_model.manifest.conditions:
        if condition.name in params:
            schema = params[condition.name]["schema"]
            assert (schema["minimum"], schema["maximum"]) == (condition.min, condition.max)
    assert params["depth"]["required"] and params["wavelength"]["required"]
    assert "focus" not in params  # the ci model has no focus condition
    assert doc["paths"][path]["get"]["responses"]["422"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ValidationErrorBody"}
