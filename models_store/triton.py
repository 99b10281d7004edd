"""The Open Inference Protocol (KServe v2) view of a model version, and its Triton model repository.

Each graph of a version is one v2 model named ``<name>-<role>`` (``ci-psf``, ``ci-decoder``,
``ci-prior``, ``ci-encoder``) whose tensors are the graph's own: ``condition`` is ``[N, C]`` in
physical units, in the manifest's column order, and PSFs come back in the model's frame (the +y
meridian for rotational models, the first quadrant for mirror models). The azimuth is *not* folded
in the graphs: a caller wanting another azimuth orients the kernels itself, as
``models_store.conditions.orient_psfs`` does (``PSFClient(protocol="v2")`` does it for you). To make
that possible anywhere, every model's config carries the version's manifest as the parameter
``psf_surrogate_manifest`` (JSON), which Triton hands out at ``GET /v2/models/<model>/config``.

:func:`model_config` is that config as Triton's JSON (the ``ModelConfig`` protobuf's JSON mapping);
the project's own server answers with it, and :func:`to_pbtxt` writes it as ``config.pbtxt``.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from .manifest import GRAPH_ROLES, Manifest
from .store import Store
from .wire import V2_MANIFEST_PARAMETER as MANIFEST_PARAMETER

PLATFORM = "onnxruntime_onnx"
DEFAULT_MAX_BATCH = 4096
DEFAULT_QUEUE_DELAY_US = 2000
DEFAULT_MAX_QUEUE = 16384
DEFAULT_QUEUE_TIMEOUT_US = 10_000_000
# onnxruntime's element types -> (Triton config data_type, v2 protocol datatype)
_DTYPES = {"tensor(float)": ("TYPE_FP32", "FP32"), "tensor(float16)": ("TYPE_FP16", "FP16"),
           "tensor(double)": ("TYPE_FP64", "FP64"), "tensor(int64)": ("TYPE_INT64", "INT64"),
           "tensor(int32)": ("TYPE_INT32", "INT32")}
# config fields whose values are protobuf enum names (written bare in config.pbtxt)
_ENUM_FIELDS = {"data_type", "kind", "timeout_action"}


def v2_name(model: str, role: str) -> str:
    return f"{model}-{role}"


def split_v2_name(name: str) -> tuple[str, str] | None:
    """``ci-psf`` -> (``ci``, ``psf``); None when the name ends in no graph role."""
    model, sep, role = name.rpartition("-")
    return (model, role) if sep and model and role in GRAPH_ROLES else None


def tensor_specs(session: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(inputs, outputs) of an onnxruntime session: name, v2 datatype and shape with -1 for the batch
    axis and any other dynamic axis."""
    def spec(arg: Any) -> dict[str, Any]:
        if arg.type not in _DTYPES:
            raise ValueError(f"tensor {arg.name!r} has type {arg.type}; the v2 view supports {sorted(_DTYPES)}")
        shape = [d if isinstance(d, int) and d > 0 else -1 for d in arg.shape]
        return {"name": arg.name, "datatype": _DTYPES[arg.type][1], "shape": shape}
    return [spec(a) for a in session.get_inputs()], [spec(a) for a in session.get_outputs()]


def model_config(manifest: Manifest, role: str, session: Any, *, max_batch_size: int = DEFAULT_MAX_BATCH,
                 max_queue_delay_us: int = DEFAULT_QUEUE_DELAY_US, max_queue_size: int = DEFAULT_MAX_QUEUE,
                 queue_timeout_us: int = DEFAULT_QUEUE_TIMEOUT_US) -> dict[str, Any]:
    """Triton's model configuration (JSON form) of one graph of one version."""
    config_type = {v2: cfg for cfg, v2 in _DTYPES.values()}
    inputs, outputs = tensor_specs(session)

    def io(specs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for s in specs:
            if s["shape"][:1] != [-1]:
                raise ValueError(f"{role} tensor {s['name']!r} has no batch axis (shape {s['shape']})")
        return [{"name": s["name"], "data_type": config_type[s["datatype"]], "dims": s["shape"][1:]} for s in specs]

    return {
        "name": v2_name(manifest.name, role),
        "platform": PLATFORM,
        "backend": "onnxruntime",
        "version_policy": {"specific": {"versions": [manifest.version]}},
        "max_batch_size": max_batch_size,
        "input": io(inputs),
        "output": io(outputs),
        "dynamic_batching": {
            "max_queue_delay_microseconds": max_queue_delay_us,
            "default_queue_policy": {"timeout_action": "REJECT", "default_timeout_microseconds": queue_timeout_us,
                                     "allow_timeout_override": True, "max_queue_size": max_queue_size},
        },
        "instance_group": [{"kind": "KIND_AUTO", "count": 1}],
        "parameters": {MANIFEST_PARAMETER: {"string_value": manifest.model_dump_json()}},
    }


def _pbtxt_string(text: str) -> str:
    # protobuf text format: printable ASCII as is (quote and backslash escaped), every other byte of
    # the UTF-8 text as an octal escape
    out = []
    for byte in text.encode("utf-8"):
        char = chr(byte)
        out.append("\\" + char if char in '"\\' else char if 32 <= byte < 127 else f"\\{byte:03o}")
    return '"' + "".join(out) + '"'


def _pbtxt_value(key: str, value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if key in _ENUM_FIELDS:
        return str(value)
    return _pbtxt_string(str(value))


def to_pbtxt(config: dict[str, Any], indent: str = "") -> str:
    """A config in JSON form -> protobuf text format (config.pbtxt)."""
    lines = []
    for key, value in config.items():
        if key == "parameters":  # a protobuf map: one entry block per key
            for name, param in value.items():
                lines.append(f"{indent}parameters {{\n{indent}  key: {_pbtxt_string(name)}\n"
                             f"{indent}  value {{\n{to_pbtxt(param, indent + '    ')}{indent}  }}\n{indent}}}")
        elif isinstance(value, dict):
            lines.append(f"{indent}{key} {{\n{to_pbtxt(value, indent + '  ')}{indent}}}")
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            lines.extend(f"{indent}{key} {{\n{to_pbtxt(v, indent + '  ')}{indent}}}" for v in value)
        elif isinstance(value, list):
            lines.append(f"{indent}{key}: [{', '.join(_pbtxt_value(key, v) for v in value)}]")
        else:
            lines.append(f"{indent}{key}: {_pbtxt_value(key, value)}")
    return "".join(line + "\n" for line in lines)


def export_triton(store: Store, name: str, version: int | str | None, out: Path, *,
                  max_batch_size: int = DEFAULT_MAX_BATCH) -> list[Path]:
    """Write ``out/<name>-<role>/<version>/model.onnx`` and ``config.pbtxt`` for every graph of a
    stored version (files checked against their sha256 first). Returns the model folders."""
    import onnxruntime as ort  # only this command and the runtime need it

    manifest = store.manifest(name, version, verify=True)
    source = store.version_dir(name, manifest.version)
    folders = []
    for role in GRAPH_ROLES:
        graph = manifest.graphs[role]
        folder = Path(out) / v2_name(manifest.name, role)
        (folder / str(manifest.version)).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / graph.file, folder / str(manifest.version) / "model.onnx")
        session = ort.InferenceSession(str(source / graph.file), providers=["CPUExecutionProvider"])
        config = model_config(manifest, role, session, max_batch_size=max_batch_size)
        (folder / "config.pbtxt").write_text(to_pbtxt(config))
        folders.append(folder)
    return folders
