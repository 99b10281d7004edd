"""Server settings: one pydantic-settings object, read from ``PSF_*`` environment variables.

``create_app(settings)`` keeps the object on the app and routes read it from there
(``deps.Server``); without an argument it is :func:`get_settings`, read once from the
environment. README.md ("Serving settings") lists every variable.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from models_store import default_store_root
from models_store.wire import Limits

LogLevel = Literal["critical", "error", "warning", "info", "debug"]
MiB = 1 << 20


def _default_threads() -> int:
    # leave a core to the event loop that parses requests and writes responses
    return max(1, (os.cpu_count() or 2) // 2)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PSF_", extra="forbid")

    # -- where and what -------------------------------------------------------------------------
    store: Path = Field(default_factory=default_store_root, description="model store folder")
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    workers: int = Field(default=1, ge=1, description="uvicorn worker processes (python -m serving only)")
    log_level: LogLevel = "info"
    access_log: bool = Field(default=True, description="write one line per request to stdout (serving/"
                             "accesslog.py: queued, and written by a thread in batches)")
    default_model: str | None = Field(
        default=None, description="model answering queries that name none (default: first alphabetically)"
    )
    api_key: SecretStr | None = Field(
        default=None, description="one key, or several separated by commas (to rotate: add the new key, move "
        "the clients, drop the old one); when set, every route but /healthz and /readyz needs header X-API-Key")
    docs_public: bool = Field(default=False, description="with an API key set, still answer /docs, /redoc and "
                              "/openapi.json without one (on purpose: the API's description is then public)")
    cors_origins: str = Field(default="", description="origins a browser may call from, separated by commas "
                              "('*' for any); empty = CORS off (no Access-Control-* headers)")
    loop: Literal["asyncio", "uvloop"] = Field(
        default="asyncio", description="the event loop: asyncio's own reads every ready connection in turn; uvloop "
        "left some unread for up to 2 s while cached answers kept it busy (README.md, \"Load\")")
    # -- engine -----------------------------------------------------------------------------------
    prefer_gpu: bool = Field(default=True, description="use the CUDA provider when a GPU is really present")
    tensorrt: bool = Field(default=True, description="put the TensorRT provider before CUDA when it is installed")
    threads: int = Field(default_factory=_default_threads, ge=1,
                         description="onnxruntime intra-op threads per graph (default: half the cores)")
    compute_threads: int = Field(default=4, ge=1, description="threads running onnxruntime calls side by side")
    fast_path: bool = Field(default=True, description="answer plain GET /psf queries below FastAPI's "
                            "layers (same answers, less time per request; see serving/fastpath.py)")
    microbatch: bool = Field(default=True, description="merge concurrent PSF queries into one onnxruntime call")
    microbatch_max: int = Field(default=512, ge=1, description="most PSFs merged into one call")
    microbatch_delay_ms: float = Field(
        default=2.0, ge=0, description="longest wait for more queries to merge, only while other requests "
        "are on their way (an idle server answers at once)")
    cache_mb: float = Field(default=256.0, ge=0, description="LRU cache of answers for repeated queries [MiB]; 0 = off")
    cache_admit_after: int = Field(default=2, ge=1, le=2, description="an answer is kept from the time its query "
                                   "is asked this often: 2 (the default) keeps queries asked once from churning "
                                   "the cache, 1 keeps every answer")
    reload_interval_s: float = Field(default=2.0, ge=0, description="how often the store is checked for new "
                                     "versions and moved aliases [s]; 0 = never (load at start only)")
    # -- limits -----------------------------------------------------------------------------------
    max_batch: int = Field(default=4096, ge=1, description="most conditions in one /psf/batch, /latent or /decode")
    max_grid: int = Field(default=4096, ge=1, description="most grid cells (nx * ny) in one /psf/grid")
    max_steps: int = Field(default=256, ge=2, description="most steps of one /interpolate path")
    max_body_mb: float = Field(default=16.0, gt=0, description="largest request body [MiB] (413 above)")
    max_header_kb: float = Field(default=16.0, gt=0, description="largest request line plus headers [KiB] "
                                 "(431 above; serving/protocol.py)")
    max_queue: int = Field(default=16384, ge=1, description="PSFs admitted and not yet answered; "
                           "beyond it requests get 503 with Retry-After")
    retry_after_s: int = Field(default=1, ge=0, description="Retry-After of a 503 when overloaded [s]")
    graceful_timeout_s: float = Field(default=30.0, ge=0, description="how long shutdown waits for in-flight requests")

    @model_validator(mode="after")
    def _queue_holds_the_largest_request(self) -> Settings:
        largest = max(self.max_batch, self.max_grid, self.max_steps)
        if self.max_queue < largest:
            raise ValueError(f"max_queue={self.max_queue} is not allowed: must be >= {largest}, the largest "
                             "request the other limits admit (max_batch, max_grid, max_steps)")
        return self

    @model_validator(mode="after")
    def _keys_are_not_blank(self) -> Settings:
        if self.api_key is not None and not all(self.api_keys):
            raise ValueError("api_key is not allowed: a key is empty (give one key, or several separated by "
                             "commas, none blank)")
        return self

    @property
    def api_keys(self) -> tuple[str, ...]:
        """The accepted keys (empty: no key needed)."""
        if self.api_key is None:
            return ()
        return tuple(key.strip() for key in self.api_key.get_secret_value().split(","))

    @property
    def cors_origin_list(self) -> list[str]:
        return [origin.strip() for origin in self.cors_origins.split(",") if origin.strip()]

    @property
    def max_body_bytes(self) -> int:
        return int(self.max_body_mb * MiB)

    @property
    def max_header_bytes(self) -> int:
        return int(self.max_header_kb * 1024)

    @property
    def limits(self) -> Limits:
        """The request sizes this server accepts, as the wire protocol announces them."""
        return Limits(max_batch=self.max_batch, max_grid=self.max_grid, max_steps=self.max_steps,
                      max_body_bytes=self.max_body_bytes)

    @property
    def cache_bytes(self) -> int:
        return int(self.cache_mb * MiB)


@lru_cache
def get_settings() -> Settings:
    return Settings()
