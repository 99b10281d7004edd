"""Operations as HTTP requests and answers as arrays: the part the sync and async clients share.

Nothing here does I/O; :func:`to_call` turns an :class:`Op` into a :class:`Call` (method, path, query,
JSON body, how to read the answer), and the clients send it with their own httpx client.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import numpy as np

from ._api import Latent, Op
from ._arrays import PSFMeta, load_npy, with_meta
from ._exceptions import PSFError

DEFAULT_BASE_URL = "http://127.0.0.1:8000"
DEFAULT_TIMEOUT = 10.0
DEFAULT_RETRIES = 3
# Keep-alive connections per client: enough for an AsyncPSFClient gathering many calls at once.
DEFAULT_LIMITS = httpx.Limits(max_connections=32, max_keepalive_connections=16)
_NPY = {"format": "npy"}


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


def _param(value: Any) -> str:
    # numbers go out in full precision (repr round-trips), anything else as typed, for the server to judge
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return repr(float(value))
    return str(value)


def _query(args: Mapping[str, Any], **extra: str) -> dict[str, str]:
    return {**{k: _param(v) for k, v in args.items() if v is not None}, **extra}


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


def kernels(ndim: int, what: str) -> Callable[[httpx.Response], np.ndarray]:
    def parse(response: httpx.Response) -> np.ndarray:
        array = load_npy(response.content, ndim=ndim, what=what, status_code=response.status_code,
                         content_type=response.headers.get("content-type"))
        return with_meta(array, PSFMeta.from_headers(response.headers))
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


def _json(response: httpx.Response) -> Any:
    return response.json()


def to_call(op: Op) -> Call:
    args = op.args
    if op.name == "psf":
        return Call("GET", "/psf", kernels(2, "[k, k] PSF"), params=_query(args, **_NPY))
    if op.name == "psf_batch":
        return Call("POST", "/psf/batch", kernels(3, "[N, k, k] PSFs"), params=_NPY, json=_body(args))
    if op.name == "psf_grid":
        return Call("GET", "/psf/grid", kernels(4, "[ny, nx, k, k] PSF grid"), params=_query(args, **_NPY))
    if op.name == "interpolate":
        body = {**_body({k: v for k, v in args.items() if k not in ("start", "end")}),
                "start": _endpoint(args["start"]), "end": _endpoint(args["end"])}
        return Call("POST", "/interpolate", kernels(3, "[steps, k, k] PSFs"), params=_NPY, json=body)
    if op.name == "latent":
        return Call("POST", "/latent", _latent, json=_body(args))
    if op.name == "decode":
        return Call("POST", "/decode", kernels(3, "[N, k, k] PSFs"), params=_NPY,
                    json=_body({**args, "z": np.atleast_2d(np.asarray(args["z"], dtype=np.float64))}))
    if op.name == "models":
        return Call("GET", "/models", _json)
    if op.name == "model":
        return Call("GET", f"/models/{quote(args['name'], safe='')}", _json,
                    params=_query({"version": args.get("version")}))
    if op.name in ("health", "ready"):
        return Call("GET", f"/{op.name}z", lambda response: True)
    raise ValueError(f"unknown operation {op.name!r}")
