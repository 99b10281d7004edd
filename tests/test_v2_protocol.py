"""The server's Open Inference Protocol v2, driven by Triton's own HTTP client (tritonclient.http)."""

from __future__ import annotations

import httpx
import numpy as np
import pytest
import tritonclient.http as triton
from google.protobuf import json_format, text_format
from tritonclient.grpc import model_config_pb2
from tritonclient.utils import InferenceServerException

from models_store import Manifest
from models_store.triton import MANIFEST_PARAMETER

from .conftest import metric, ready_server, run_cli

CONDITIONS = np.array([[0.0, 10.0, 550.0], [0.5, 3.0, 480.0], [0.95, 60.0, 640.0]], dtype=np.float32)


@pytest.fixture(scope="module")
def client(server_url):
    c = triton.InferenceServerClient(server_url.removeprefix("http://"), connection_timeout=10, network_timeout=30)
    yield c
    c.close()


def infer(client, name: str, inputs: dict[str, np.ndarray], binary: bool = True, outputs: list[str] | None = None,
          **kwargs):
    tensors = []
    for key, arr in inputs.items():
        tensor = triton.InferInput(key, list(arr.shape), "FP32")
        tensor.set_data_from_numpy(arr, binary_data=binary)
        tensors.append(tensor)
    # no outputs named: tritonclient asks for all of them as binary tensors
    requested = None if binary else [triton.InferRequestedOutput(n, binary_data=False) for n in outputs]
    return client.infer(name, tensors, outputs=requested, **kwargs)


def test_health_and_metadata_describe_the_graphs(client, local_model):
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("ci-psf") and not client.is_model_ready("nope-psf")
    assert "binary_tensor_data" in client.get_server_metadata()["extensions"]
    meta = client.get_model_metadata("ci-psf")
    assert meta["versions"] == ["1"]
    assert meta["inputs"] == [{"name": "condition", "datatype": "FP32", "shape": [-1, 3]}]
    assert meta["outputs"] == [{"name": "psf", "datatype": "FP32", "shape": [-1, 16, 16]}]
    assert [t["name"] for t in client.get_model_metadata("ci-decoder")["inputs"]] == ["z", "condition"]


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_psf_infer_gives_the_graph_output_bit_for_bit(client, local_model, binary):
    result = infer(client, "ci-psf", {"condition": CONDITIONS}, binary=binary, outputs=["psf"])
    assert np.array_equal(result.as_numpy("psf"), local_model.psf_from_condition(CONDITIONS))
    assert result.get_response()["model_version"] == "1"


def test_prior_decoder_and_encoder_graphs_answer_like_onnxruntime(client, local_model):
    mu, logvar = local_model.prior(CONDITIONS)
    prior = infer(client, "ci-prior", {"condition": CONDITIONS})
    assert np.array_equal(prior.as_numpy("mu"), mu) and np.array_equal(prior.as_numpy("logvar"), logvar)
    decoded = infer(client, "ci-decoder", {"z": mu, "condition": CONDITIONS}, binary=False, outputs=["psf"],
                    model_version="1")
    assert np.array_equal(decoded.as_numpy("psf"), local_model.decode_condition(mu, CONDITIONS))
    psfs = local_model.psf_from_condition(CONDITIONS)
    encoded = infer(client, "ci-encoder", {"psf": psfs, "condition": CONDITIONS})
    assert np.array_equal(encoded.as_numpy("mu"), local_model.encode(psfs, CONDITIONS)[0])


def test_bad_requests_name_the_tensor_the_value_and_what_is_allowed(client):
    bad = CONDITIONS.copy()
    bad[1, 1] = 500.0
    with pytest.raises(InferenceServerException, match=r"condition\[:, 1\] \(depth\) \(item 1\)=500.0 is not "
                       r"allowed: must be a finite number in \[2, 100\] m") as err:
        infer(client, "ci-psf", {"condition": bad})
    assert err.value.status() == "400"
    with pytest.raises(InferenceServerException, match=r"condition shape=\[3, 2\] is not allowed: must be "):
        infer(client, "ci-psf", {"condition": CONDITIONS[:, :2]})
    with pytest.raises(InferenceServerException, match="input 'z' is missing"):
        infer(client, "ci-decoder", {"condition": CONDITIONS})
    with pytest.raises(InferenceServerException, match="ci-nope"):
        client.get_model_metadata("ci-nope")
    with pytest.raises(InferenceServerException, match="no version 7"):
        infer(client, "ci-psf", {"condition": CONDITIONS}, model_version="7")


@pytest.mark.parametrize("method, path, headers, status, words", [
    ("GET", "/v2/models/ci-psf/versions/latest", {}, 400, ["version='latest'", "numbers"]),
    ("GET", "/v2/models/ci-psf/versions/%C2%B2/ready", {}, 400, ["version='\u00b2'"]),
    ("POST", "/v2/models/ci-psf/infer", {"Inference-Header-Content-Length": b"\xb2"}, 400,
     ["Inference-Header-Content-Length='\u00b2'"]),
    ("GET", "/v2/models/ci", {}, 404, ["<model>-<graph>"]),
    ("GET", "/v2/models/_ci-psf/config", {}, 400, ["'_ci'"]),
], ids=["alias", "non-ASCII digit", "non-ASCII header length", "no graph", "impossible model name"])
def test_refusals_are_v2_error_bodies(server_url, method, path, headers, status, words):
    response = httpx.request(method, server_url + path, headers=headers, content=b"{}" if method == "POST" else None)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    for word in words:
        assert word in error, error


def test_the_openapi_document_states_v2_names_versions_and_error_bodies(server_url):
    doc = httpx.get(server_url + "/openapi.json").json()
    refused = {"$ref": "#/components/schemas/V2ErrorBody"}
    assert doc["components"]["schemas"]["V2ErrorBody"]["required"] == ["error"]
    for path in [p for p in doc["paths"] if p.startswith("/v2/models/")]:
        for operation in doc["paths"][path].values():
            params = {p["name"]: p["schema"] for p in operation["parameters"]}
            assert params["name"]["pattern"] == r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}-(psf|prior|decoder|encoder)$"
            assert params.get("version", {"pattern": "^[0-9]+$"})["pattern"] == "^[0-9]+$"
            assert ("version" in params) == ("{version}" in path)  # a path parameter, never a query one
            assert operation["responses"]["404"]["content"]["application/json"]["schema"] == refused
            assert "422" not in operation["responses"]
    infer_op = doc["paths"]["/v2/models/{name}/infer"]["post"]
    body = infer_op["requestBody"]["content"]["application/json"]
    assert body["schema"] == {"$ref": "#/components/schemas/InferRequest"}
    name = next(p["example"] for p in infer_op["parameters"] if p["name"] == "name")
    answer = httpx.post(f"{server_url}/v2/models/{name}/infer", json=body["example"])  # the examples are served
    assert answer.status_code == 200, answer.text
    assert answer.json()["outputs"][0]["shape"] == [1, 16, 16]


def test_served_config_is_the_exported_config_pbtxt(client, trained_store, tmp_path):
    served = client.get_model_config("ci-psf")
    parsed = json_format.ParseDict(served, model_config_pb2.ModelConfig())  # Triton's schema, unknown keys refused
    proc = run_cli("-m", "models_store", "--store", str(trained_store), "export-triton", "ci", "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    exported = text_format.Parse((tmp_path / "ci-psf" / "config.pbtxt").read_text(), model_config_pb2.ModelConfig())
    assert parsed == exported
    assert Manifest.model_validate_json(parsed.parameters[MANIFEST_PARAMETER].string_value).name == "ci"


def test_infer_goes_through_the_engine_metrics_and_limits(trained_store):
    with ready_server(trained_store, env={"PSF_API_KEY": "s3cret", "PSF_MAX_BATCH": "2"}) as srv:
        url = srv.url.removeprefix("http://")
        with triton.InferenceServerClient(url) as anonymous:
            assert anonymous.is_server_ready()  # health needs no key, like /readyz
            with pytest.raises(InferenceServerException, match="API key missing"):
                infer(anonymous, "ci-psf", {"condition": CONDITIONS[:1]})
        with triton.InferenceServerClient(url) as keyed:
            headers = {"X-API-Key": "s3cret"}  # tritonclient adds its own entries to the dict it is given: copies
            with pytest.raises(InferenceServerException, match=r"batch rows=3 is over this server's limit of 2"):
                infer(keyed, "ci-psf", {"condition": CONDITIONS}, headers=dict(headers))
            infer(keyed, "ci-psf", {"condition": CONDITIONS[:2]}, headers=dict(headers))
            text = httpx.get(srv.url + "/metrics", headers=headers).text
    route = "/v2/models/{name}/infer"
    assert metric(text, "psf_http_requests_total", route=route, status="200") == 1
    assert metric(text, "psf_http_requests_total", route=route, status="413") == 1
    # the key is checked before routing, so a refused request is counted as unauthorized, not per route
    assert metric(text, "psf_http_requests_total", route="unauthorized", status="401") == 1
    assert metric(text, "psf_batch_size_count") >= 1  # the PSF graph ran through the micro-batcher
