"""Server settings: one pydantic-settings object, read from ``PSF_*`` environment variables.

Routes get it through :func:`get_settings` (a cached dependency) so tests can override it with
``app.dependency_overrides[get_settings]``; ``create_app(settings)`` does exactly that.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from models_store import default_store_root

LogLevel = Literal["critical", "error", "warning", "info", "debug"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PSF_", extra="forbid")

    store: Path = Field(default_factory=default_store_root, description="model store folder")
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    log_level: LogLevel = "info"
    default_model: str | None = Field(
        default=None, description="model answering queries that name none (default: first alphabetically)"
    )
    api_key: SecretStr | None = Field(
        default=None, description="when set, every route except /healthz and /readyz needs header X-API-Key"
    )
    prefer_gpu: bool = Field(default=True, description="use the CUDA provider when a GPU is really present")
    threads: int | None = Field(default=None, ge=1, description="onnxruntime intra-op threads per graph")


@lru_cache
def get_settings() -> Settings:
    return Settings()
