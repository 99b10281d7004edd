"""Requests of the PSF API and how their answers are read: the part every HTTP client shares.

Nothing here does I/O. Each function returns a :class:`Call` (method, path, query, JSON body, how to
read the answer) for one route; :class:`PSFClient` and :class:`AsyncPSFClient` send it with their own
httpx client (see ``_base.HTTPSource``, which also maps error answers to exceptions). The wire
protocol's names and encodings come from ``models_store.wire``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import numpy as np

from models_store.wire import DEFAULT_DTYPE, DType

from ._api import ImageGeometry, Latent, Query, Version
from ._arrays import PSFMeta, load_npy, with_meta
from ._exceptions import PSFError

DEFAULT_BASE_URL = "http://127.0.0.1:8000"
DEFAULT_TIMEOUT = 10.0
DEFAULT_RETRIES = 3
# Keep-alive connections per client: enough for an AsyncPSFClient gathering many calls at once.
DEFAULT_LIMITS = httpx.Limits(max_connections=32, max_keepalive_connections=16)


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    parse: Callable[[httpx.Response], Any]
    params: dict[str, str] | None = None
    json: Any = None
    content: bytes | None = None  # a raw body (v2 binary tensors) instead of JSON
    headers: dict[str, str] | None = None
    # Every route of the PSF server is a pure function of its input (POST is used only because
    # batches do not fit in a URL), so repeating any request is safe. See _retry.py.
    idempotent: bool = True
    retry: bool = True  # False: sent once, whatever happens (health probes answer now)


def _param(value: Any) -> str:
    # numbers go out in full precision (repr round-trips), anything else as typed, for the server to judge
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return repr(float(value))
    return str(value)


def _query(args: Mapping[str, Any], **extra: str) -> dict[str, str]:
    return {**{k: _param(v) for k, v in args.items() if v is not None}, **extra}


def _npy(dtype: DType) -> dict[str, str]:
    # dtype goes out only when it is not the default, so float32 requests stay as they always were
    return {"format": "npy"} if dtype == DEFAULT_DTYPE else {"format": "npy", "dtype": dtype}


def _reference(model: str | None, version: Version) -> dict[str, Any]:
    return {"model": model, "version": version}


def _jsonable(value: Any) -> Any:
    """Numbers, arrays and lists as JSON numbers; model versions as text ('3' or 'prod')."""
    if value is None or isinstance(value, (str, bool)):
        return value
    array = np.asarray(value)
    if array.dtype.kind in "iuf":
        return array.astype(np.float64).tolist()
    return value


def _body(args: Mapping[str, Any]) -> dict[str, Any]:
    body = {k: _jsonable(v) for k, v in args.items() if v is not None and k != "version"}
    if args.get("version") is not None:
        body["version"] = str(args["version"])
    return body


def _endpoint(point: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _jsonable(v) for k, v in point.items() if v is not None}


def kernels(ndim: int, what: str, dtype: DType = DEFAULT_DTYPE) -> Callable[[httpx.Response], np.ndarray]:
    def parse(response: httpx.Response) -> np.ndarray:
        array = load_npy(response.content, ndim=ndim, what=what, dtype=dtype, status_code=response.status_code,
                         content_type=response.headers.get("content-type"))
        return with_meta(array, PSFMeta.from_headers(response.headers), dtype)
    return parse


def _latent(response: httpx.Response) -> Latent:
    data = response.json()
    try:
        meta = PSFMeta(model=str(data["model"]), version=int(data["version"]))
        mu, logvar = (np.atleast_2d(np.asarray(data[key], dtype=np.float32)) for key in ("mu", "logvar"))
        return Latent(with_meta(mu, meta), with_meta(logvar, meta))
    except (KeyError, TypeError, ValueError) as exc:
        raise PSFError(f"the server's /latent answer lacks model, version, mu or logvar: {exc}",
                       status_code=response.status_code) from exc


def _geometry(response: httpx.Response) -> ImageGeometry:
    try:
        return ImageGeometry.of(response.json())
    except (KeyError, TypeError, ValueError) as exc:
        raise PSFError(f"the server's geometry answer lacks a value: {exc}", status_code=response.status_code) from exc


def _json(response: httpx.Response) -> Any:
    return response.json()


def _true(response: httpx.Response) -> bool:
    return True


# -- one function per route ----------------------------------------------------------------------
def psf_call(q: Query, dtype: DType) -> Call:
    params = _query({**q.conditions, **_reference(q.model, q.version)}, **_npy(dtype))
    return Call("GET", "/psf", kernels(2, "[k, k] PSF", dtype), params=params)


def batch_call(q: Query, dtype: DType) -> Call:
    body = _body({**q.conditions, **_reference(q.model, q.version)})
    return Call("POST", "/psf/batch", kernels(3, "[N, k, k] PSFs", dtype), params=_npy(dtype), json=body)


def grid_call(nx: int, ny: int, physical: Mapping[str, Any], model: str | None, version: Version,
              dtype: DType) -> Call:
    params = _query({"nx": int(nx), "ny": int(ny), **physical, **_reference(model, version)}, **_npy(dtype))
    return Call("GET", "/psf/grid", kernels(4, "[ny, nx, k, k] PSF grid", dtype), params=params)


def interpolate_call(start: Mapping[str, Any], end: Mapping[str, Any], steps: int, method: str,
                     model: str | None, version: Version) -> Call:
    body = {**_body({"steps": int(steps), "method": method, **_reference(model, version)}),
            "start": _endpoint(start), "end": _endpoint(end)}
    return Call("POST", "/interpolate", kernels(3, "[steps, k, k] PSFs"), params=_npy(DEFAULT_DTYPE), json=body)


def latent_call(q: Query) -> Call:
    return Call("POST", "/latent", _latent, json=_body({**q.conditions, **_reference(q.model, q.version)}))


def decode_call(z: Any, q: Query) -> Call:
    body = _body({"z": np.atleast_2d(np.asarray(z, dtype=np.float64)), **q.conditions,
                  **_reference(q.model, q.version)})
    return Call("POST", "/decode", kernels(3, "[N, k, k] PSFs"), params=_npy(DEFAULT_DTYPE), json=body)


def geometry_call(q: Query) -> Call:
    return Call("POST", "/geometry", _geometry, json=_body({**q.conditions, **_reference(q.model, q.version)}))


def distortion_call(nx: int, ny: int, physical: Mapping[str, Any], model: str | None, version: Version) -> Call:
    return Call("GET", "/distortion", _geometry,
                params=_query({"nx": int(nx), "ny": int(ny), **physical, **_reference(model, version)}))


def models_call() -> Call:
    return Call("GET", "/models", _json)


def model_call(name: str, version: Version) -> Call:
    return Call("GET", f"/models/{quote(name, safe='')}", _json, params=_query({"version": version}))


def probe_call(probe: str) -> Call:
    """``health`` (/healthz) or ``ready`` (/readyz)."""
    return Call("GET", f"/{probe}z", _true, retry=False)
