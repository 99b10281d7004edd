"""``PSFClient(protocol="v2")``: the client's methods over the Open Inference Protocol (KServe v2).

It speaks to any v2 server holding a ``python -m models_store export-triton`` repository (NVIDIA
Triton, KServe) or to this project's own server, which answers v2 as well. The graphs there take
``condition [N, C]`` in the model's frame, so the client does what the PSF server does around them:
the model's manifest (the ``psf_surrogate_manifest`` parameter of ``GET /v2/models/<name>-psf/config``)
validates and resolves each query with :func:`models_store.resolve_conditions`, and the kernels come
back oriented to their azimuths with :func:`models_store.conditions.orient_psfs`. The same query
therefore gives the same kernel over either protocol. Requests and answers use the binary tensor
extension. ``interpolate`` and ``models`` are not offered over v2. Like every backend, its methods
are plans (``clients._plan``), so the blocking and the async client both speak it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

import httpx
import numpy as np

from models_store.wire import V2_HEADER_LENGTH as HEADER_LENGTH
from models_store.wire import V2_MANIFEST_PARAMETER as MANIFEST_PARAMETER
from models_store.wire import DType

from ._api import ImageGeometry, Latent, Query, Version
from ._arrays import PSFArray, PSFMeta, with_meta
from ._exceptions import InvalidRequestError, NotFoundError, PSFError
from ._http import Call
from ._plan import Plan

# how long the manifest of "the latest version" is trusted before asking again (hot reloads move it)
LATEST_TTL_S = 5.0


def _infer_body(inputs: dict[str, np.ndarray], outputs: list[str]) -> tuple[bytes, dict[str, str]]:
    tensors = [np.ascontiguousarray(a, dtype="<f4") for a in inputs.values()]
    header = json.dumps({
        "inputs": [{"name": n, "shape": list(a.shape), "datatype": "FP32", "parameters": {"binary_data_size": a.nbytes}}
                   for n, a in zip(inputs, tensors, strict=True)],
        "outputs": [{"name": n, "parameters": {"binary_data": True}} for n in outputs],
    }).encode()
    return header + b"".join(a.tobytes() for a in tensors), {
        "Content-Type": "application/octet-stream", HEADER_LENGTH: str(len(header))}


def _infer_answer(response: httpx.Response) -> tuple[int, dict[str, np.ndarray]]:
    """(model version, outputs by name) of a v2 infer answer, binary or JSON."""
    length = response.headers.get(HEADER_LENGTH)
    body = response.content
    header, offset = (body[:int(length)], int(length)) if length else (body, 0)
    try:
        data = json.loads(header)
        outputs = {}
        for out in data["outputs"]:
            size = (out.get("parameters") or {}).get("binary_data_size")
            if size is not None:
                flat = np.frombuffer(body[offset:offset + size], dtype="<f4")
                offset += size
            else:
                flat = np.asarray(out["data"], dtype=np.float32)
            outputs[out["name"]] = flat.reshape(out["shape"]).astype(np.float32, copy=False)
        return int(data["model_version"]), outputs
    except (KeyError, TypeError, ValueError) as exc:
        raise PSFError(f"the v2 infer answer could not be read: {exc}", status_code=response.status_code) from exc


class V2:
    """The client's methods as v2 requests; ``model`` is the default model name."""

    def __init__(self, *, model: str | None = None) -> None:
        self.default_model = model
        self._manifests: dict[tuple[str, int | None], tuple[float, Any]] = {}
        self.max_batch: dict[str, int] = {}  # each model's max_batch_size, from its config

    # -- the manifest of a version, from its config ---------------------------------------------
    def manifest(self, model: str | None, version: Any) -> Plan[Any]:
        from models_store import Manifest  # light: pydantic + numpy

        name = model or self.default_model
        if name is None:
            raise InvalidRequestError("model is required with protocol='v2': pass model= to the call or to "
                                      "PSFClient(..., model=NAME)")
        number = self._version(version)
        key = (name, number)
        cached = self._manifests.get(key)
        if cached is not None and (number is not None or time.monotonic() - cached[0] < LATEST_TTL_S):
            return cached[1]
        path = f"/v2/models/{quote(name + '-psf', safe='')}" + (f"/versions/{number}" if number else "") + "/config"
        config = yield Call("GET", path, lambda r: r.json())
        try:
            manifest = Manifest.model_validate_json(config["parameters"][MANIFEST_PARAMETER]["string_value"])
        except (KeyError, TypeError, ValueError) as exc:
            raise PSFError(f"{name}-psf's config carries no usable {MANIFEST_PARAMETER} parameter ({exc}); "
                           "serve a repository written by python -m models_store export-triton") from exc
        self._manifests[key] = (time.monotonic(), manifest)
        self.max_batch[name] = int(config.get("max_batch_size") or 0) or 1024
        self._manifests.setdefault((name, manifest.version), (time.monotonic(), manifest))
        return manifest

    @staticmethod
    def _version(version: Any) -> int | None:
        if version is None or str(version) == "latest":
            return None
        if not str(version).isdigit():
            raise InvalidRequestError(f"version={version!r} is not allowed with protocol='v2': give a version "
                                      "number or leave it out (v2 servers know no aliases)")
        return int(version)

    @staticmethod
    def infer_call(manifest: Any, role: str, inputs: dict[str, np.ndarray]) -> Call:
        outputs = manifest.graphs[role].outputs
        body, headers = _infer_body(inputs, outputs)
        path = f"/v2/models/{quote(manifest.name + '-' + role, safe='')}/versions/{manifest.version}/infer"
        return Call("POST", path, lambda r: [_infer_answer(r)[1][n] for n in outputs], content=body,
                    headers=headers)

    # -- the methods (clients._methods.Backend) -------------------------------------------------
    def probe(self, which: str) -> Plan[bool]:
        """``health`` (/v2/health/live) or ``ready`` (/v2/health/ready): answered now, False on any error."""
        try:
            return (yield Call("GET", f"/v2/health/{'live' if which == 'health' else which}", lambda r: True,
                               retry=False))
        except PSFError:
            return False

    def model(self, name: str, version: Version) -> Plan[dict[str, Any]]:
        return (yield from self.manifest(name, version)).model_dump(mode="json")

    def geometry(self, q: Query) -> Plan[ImageGeometry]:
        from models_store import image_geometry

        manifest = yield from self.manifest(q.model, q.version)
        query = {k: v for k, v in q.conditions.items() if v is not None}
        return ImageGeometry.of(self._checked(lambda: image_geometry(manifest, **query)))

    def distortion(self, nx: int, ny: int, physical: dict[str, Any], model: str | None,
                   version: Version) -> Plan[ImageGeometry]:
        from models_store import distortion_grid

        manifest = yield from self.manifest(model, version)
        query = {k: v for k, v in physical.items() if v is not None}
        return ImageGeometry.of(self._checked(lambda: distortion_grid(manifest, nx, ny, **query)))

    def models(self) -> Plan[list[dict[str, Any]]]:
        raise _psf_api_only("models")

    def interpolate(self, start: Mapping[str, Any], end: Mapping[str, Any], steps: int, method: str,
                    model: str | None, version: Version) -> Plan[PSFArray]:
        raise _psf_api_only("interpolate")

    def psf(self, q: Query, dtype: DType) -> Plan[PSFArray]:
        manifest, meta = yield from self._target(q.model, q.version)
        return with_meta((yield from self._kernels(manifest, q.conditions))[0], meta, dtype)

    def psf_batch(self, q: Query, dtype: DType) -> Plan[PSFArray]:
        manifest, meta = yield from self._target(q.model, q.version)
        return with_meta((yield from self._kernels(manifest, q.conditions)), meta, dtype)

    def psf_grid(self, nx: int, ny: int, physical: dict[str, Any], model: str | None, version: Version,
                 dtype: DType) -> Plan[PSFArray]:
        from models_store.conditions import sensor_grid

        manifest, meta = yield from self._target(model, version)
        x, y = self._checked(lambda: sensor_grid(nx, ny))
        psfs = yield from self._kernels(manifest, {**physical, "x": x, "y": y})
        return with_meta(psfs.reshape(ny, nx, *psfs.shape[1:]), meta, dtype)

    def latent(self, q: Query) -> Plan[Latent]:
        manifest, meta = yield from self._target(q.model, q.version)
        condition, _ = self._checked(lambda: self._resolve(manifest, q.conditions))
        mu, logvar = yield self.infer_call(manifest, "prior", {"condition": condition})
        return Latent(with_meta(mu, meta), with_meta(logvar, meta))

    def decode(self, z: Any, q: Query) -> Plan[PSFArray]:
        manifest, meta = yield from self._target(q.model, q.version)
        condition, azimuth = self._checked(lambda: self._resolve(manifest, q.conditions))
        z = np.atleast_2d(np.asarray(z, dtype=np.float32))
        n = max(len(z), len(condition))
        if len(z) not in (1, n) or len(condition) not in (1, n):
            raise InvalidRequestError(f"z has {len(z)} rows: must have 1 or {n} like the condition columns")
        condition, azimuth = np.broadcast_to(condition, (n, condition.shape[1])), np.broadcast_to(azimuth, (n,))
        inputs = {"z": np.broadcast_to(z, (n, z.shape[1])), "condition": condition}
        psfs = (yield self.infer_call(manifest, "decoder", inputs))[0]
        return with_meta(self._orient(manifest, psfs, azimuth), meta)

    # -- helpers ----------------------------------------------------------------------------------
    def _target(self, model: str | None, version: Version) -> Plan[tuple[Any, PSFMeta]]:
        manifest = yield from self.manifest(model, version)
        return manifest, PSFMeta(model=manifest.name, version=manifest.version, kernel_size=manifest.kernel_size,
                                 pixel_pitch_um=manifest.lens.pixel_pitch_um)

    def _kernels(self, manifest: Any, conditions: dict[str, Any]) -> Plan[np.ndarray]:
        """PSFs of a query through the PSF graph, oriented to their azimuths, split over the server's limit."""
        condition, azimuth = self._checked(lambda: self._resolve(manifest, conditions))
        step = self.max_batch.get(manifest.name, 1024)
        parts = []
        for i in range(0, len(condition), step):
            parts.append((yield self.infer_call(manifest, "psf", {"condition": condition[i:i + step]}))[0])
        return self._orient(manifest, np.concatenate(parts), azimuth)

    @staticmethod
    def _resolve(manifest: Any, query: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        from models_store import resolve_conditions

        return resolve_conditions(manifest, **{k: v for k, v in query.items() if v is not None})

    @staticmethod
    def _orient(manifest: Any, psfs: np.ndarray, azimuth: np.ndarray) -> np.ndarray:
        from models_store.conditions import orient_psfs

        return orient_psfs(manifest.symmetry, psfs, azimuth)

    @staticmethod
    def _checked(call: Callable[[], Any]) -> Any:
        """The PSF server's 422 for a query it would refuse, raised here before anything is sent."""
        from models_store import GeometryUnavailable

        try:
            return call()
        except GeometryUnavailable as exc:
            raise NotFoundError(str(exc), status_code=404) from exc
        except ValueError as exc:  # ConditionError
            raise InvalidRequestError(str(exc), status_code=422) from exc


def _psf_api_only(method: str) -> PSFError:
    return PSFError(f"{method} is not offered over protocol='v2'; use the PSF server's own API")
