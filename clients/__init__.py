"""Python client of the PSF server, its in-process twin, and rendering with PSF grids.

``from clients import PSFClient`` (HTTP, blocking), ``AsyncPSFClient`` (HTTP, asyncio) and ``LocalPSFModel``
(the ONNX files in this process) share one method table (``clients._methods``): ``psf``, ``psf_batch``,
``psf_grid``, ``interpolate``, ``latent``, ``decode``, ``geometry``, ``distortion``, ``models``, ``model``,
``health``, ``ready``. Their PSFs are :class:`PSFArray` s (numpy arrays with ``.meta``), float32 or, when
asked with ``dtype="float16"``, float16. :class:`PSFSource` is the blocking table (``PSFClient``,
``LocalPSFModel``), for type hints; ``render`` blurs an image with a source's PSF grids.
"""

from ._api import ImageGeometry, Latent
from ._arrays import PSFArray, PSFMeta
from ._async_client import AsyncPSFClient
from ._client import PSFClient
from ._exceptions import (
    InvalidRequestError,
    NotFoundError,
    OverloadedError,
    PayloadTooLargeError,
    PSFError,
    RequestTimeoutError,
    ServerError,
    TransportError,
    UnauthorizedError,
)
from ._grid import grid_positions
from ._http import DEFAULT_BASE_URL, DEFAULT_RETRIES, DEFAULT_TIMEOUT
from ._local import LocalPSFModel
from ._methods import AsyncPSFSource, PSFSource
from ._render import (
    DEFAULT_GRID,
    DEFAULT_RGB_NM,
    blur,
    depth_layers,
    fetch_psf_grid,
    linear_to_srgb,
    render,
    resample_kernels,
    srgb_to_linear,
)

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_GRID",
    "DEFAULT_RETRIES",
    "DEFAULT_RGB_NM",
    "DEFAULT_TIMEOUT",
    "AsyncPSFClient",
    "AsyncPSFSource",
    "ImageGeometry",
    "InvalidRequestError",
    "Latent",
    "LocalPSFModel",
    "NotFoundError",
    "OverloadedError",
    "PSFArray",
    "PSFClient",
    "PSFError",
    "PSFMeta",
    "PSFSource",
    "PayloadTooLargeError",
    "RequestTimeoutError",
    "ServerError",
    "TransportError",
    "UnauthorizedError",
    "blur",
    "depth_layers",
    "fetch_psf_grid",
    "grid_positions",
    "linear_to_srgb",
    "render",
    "resample_kernels",
    "srgb_to_linear",
]
