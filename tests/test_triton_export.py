"""python -m models_store export-triton: a Triton model repository checked with Triton's own schema."""

from __future__ import annotations

import onnx
import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from models_store import GRAPH_ROLES, Manifest, Store, sha256_file
from models_store.triton import MANIFEST_PARAMETER

from .conftest import run_cli

_ONNX_TYPES = {onnx.TensorProto.FLOAT: model_config_pb2.TYPE_FP32}


def parse_config(path) -> model_config_pb2.ModelConfig:
    return text_format.Parse(path.read_text(), model_config_pb2.ModelConfig())


def graph_io(path) -> tuple[list[tuple[str, int, list[int]]], list[tuple[str, int, list[int]]]]:
    """(name, Triton data type, dims after the batch axis) of a graph's inputs and outputs, read with onnx."""
    graph = onnx.shape_inference.infer_shapes(onnx.load(str(path))).graph

    def dims(value) -> tuple[str, int, list[int]]:
        shape = value.type.tensor_type.shape.dim
        assert shape[0].dim_param, f"{value.name}: the first axis must be the dynamic batch axis"
        return value.name, _ONNX_TYPES[value.type.tensor_type.elem_type], [d.dim_value or -1 for d in shape[1:]]
    return [dims(v) for v in graph.input], [dims(v) for v in graph.output]


@pytest.fixture(scope="module")
def repository(trained_store, tmp_path_factory):
    out = tmp_path_factory.mktemp("triton") / "models"
    proc = run_cli("-m", "models_store", "--store", str(trained_store), "export-triton", "ci@1", "--out", str(out),
                   "--max-batch", "2048")
    assert proc.returncode == 0, proc.stderr
    return out


def test_every_graph_is_a_triton_model_matching_its_onnx_graph(repository, trained_store):
    store = Store(trained_store)
    manifest = store.manifest("ci", 1)
    assert sorted(p.name for p in repository.iterdir()) == sorted(f"ci-{role}" for role in GRAPH_ROLES)
    for role in GRAPH_ROLES:
        folder = repository / f"ci-{role}"
        model_file = folder / "1" / "model.onnx"
        assert sha256_file(model_file) == manifest.files[manifest.graphs[role].file]
        config = parse_config(folder / "config.pbtxt")
        assert config.name == f"ci-{role}" and config.platform == "onnxruntime_onnx"
        assert config.max_batch_size == 2048
        assert list(config.version_policy.specific.versions) == [1]
        inputs, outputs = graph_io(model_file)
        assert [(t.name, t.data_type, list(t.dims)) for t in config.input] == inputs
        assert [(t.name, t.data_type, list(t.dims)) for t in config.output] == outputs
        assert [t.name for t in config.input] == manifest.graphs[role].inputs
        batching = config.dynamic_batching
        assert batching.max_queue_delay_microseconds > 0
        assert batching.default_queue_policy.max_queue_size > 0
        assert batching.default_queue_policy.timeout_action == model_config_pb2.ModelQueuePolicy.REJECT
        shipped = Manifest.model_validate_json(config.parameters[MANIFEST_PARAMETER].string_value)
        assert shipped == manifest


def test_psf_graph_dims_are_the_kernel_and_the_condition_columns(repository, trained_store):
    config = parse_config(repository / "ci-psf" / "config.pbtxt")
    manifest = Store(trained_store).manifest("ci")
    assert list(config.input[0].dims) == [len(manifest.conditions)]
    assert list(config.output[0].dims) == [manifest.kernel_size, manifest.kernel_size]


def test_bad_references_and_limits_are_named(trained_store, tmp_path):
    proc = run_cli("-m", "models_store", "--store", str(trained_store), "export-triton", "nope", "--out", str(tmp_path))
    assert proc.returncode == 2 and "nope" in proc.stderr
    proc = run_cli("-m", "models_store", "--store", str(trained_store), "export-triton", "ci", "--out", str(tmp_path),
                   "--max-batch", "0")
    assert proc.returncode == 2 and "--max-batch=0 is not allowed: must be at least 1" in proc.stderr
