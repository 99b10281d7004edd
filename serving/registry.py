"""Which model versions the server can answer with, loaded once and cached.

At startup the version ``latest`` names is loaded for every model in the store; when it fails its
sha256 check or onnxruntime refuses it, the reason is logged and the newest older version that loads
serves instead, so one bad publish does not take a model offline. Other versions and aliases load on
first use. Versions are immutable, so a loaded (or failed) version is never looked at again.
"""

from __future__ import annotations

import logging
import threading

from models_store import Store, StoreError, check_name
from models_store import NotFoundError as StoreNotFound
from models_store.runtime import OnnxModel, choose_providers

log = logging.getLogger(__name__)


class ModelNotFound(LookupError):
    """Unknown model, version or alias (HTTP 404); the message lists what exists."""


class InvalidReference(ValueError):
    """A model name or alias that can never exist in a store (HTTP 422)."""

    def __init__(self, parameter: str, message: str) -> None:
        self.parameter = parameter
        super().__init__(message)


class ModelUnavailable(RuntimeError):
    """The store holds it but it cannot be served: no models, or files that fail to load (HTTP 503)."""


class Registry:
    def __init__(self, store: Store, *, default_model: str | None = None, prefer_gpu: bool = True,
                 threads: int | None = None) -> None:
        self.store = store
        self.default_model = default_model
        self.providers = choose_providers(prefer_gpu)
        self.threads = threads
        self._models: dict[tuple[str, int], OnnxModel] = {}
        self._broken: dict[tuple[str, int], str] = {}
        self._lock = threading.Lock()  # requests run in a thread pool; load each version only once

    # -- startup -------------------------------------------------------------------------------
    def load_all(self) -> dict[str, int]:
        """Load the served version of every model; returns {name: version} of what loaded."""
        for name in self.store.models():
            try:
                latest = self.store.resolve(name)
            except StoreError as exc:  # e.g. removed while we looked: one model must not stop the server
                log.error("model %s: %s", name, exc)
                continue
            candidates = [latest] + [v for v in reversed(self.store.versions(name)) if v < latest]
            for version in candidates:
                try:
                    self._load(name, version)
                    break
                except ModelUnavailable:
                    continue  # reason already logged
            else:
                log.error("model %s: no version could be loaded; it is not served", name)
        served = self.served()
        log.info("serving %s from %s with %s", served or "nothing", self.store.root, self.providers)
        return served

    def served(self) -> dict[str, int]:
        """{name: loaded version a query naming no version gets} — what /readyz and /models report."""
        loaded = self._loaded()
        out: dict[str, int] = {}
        for name in sorted({n for n, _ in loaded}):
            mine = [v for n, v in loaded if n == name]
            try:
                latest = self.store.resolve(name)
            except StoreError:
                latest = max(mine)
            # latest itself once loaded, else the fallback get() uses (an older one that loaded)
            out[name] = max([v for v in mine if v <= latest] or mine)
        return out

    def _loaded(self) -> list[tuple[str, int]]:
        with self._lock:  # a copy: another request may be adding a version
            return sorted(self._models)

    @property
    def ready(self) -> bool:
        return bool(self._models)

    # -- lookups -------------------------------------------------------------------------------
    def model_name(self, name: str | None) -> str:
        """The model a query means: the one named, else the configured default, else the first."""
        name = name or self.default_model
        known = self.store.models()
        if name is None:
            if not known:
                raise ModelUnavailable(f"the store {self.store.root} holds no models")
            return known[0]
        try:
            check_name("model name", name)
        except ValueError as exc:
            raise InvalidReference("model", str(exc)) from None
        if name not in known:
            raise ModelNotFound(f"model {name!r} is not in the store (models: {', '.join(known) or 'none'})")
        return name

    def version_number(self, name: str, version: str | int | None) -> int:
        try:
            return self.store.resolve(name, version)
        except StoreNotFound as exc:
            raise ModelNotFound(str(exc)) from None
        except ValueError as exc:  # an alias spelled so it can never exist
            raise InvalidReference("version", str(exc)) from None

    def get(self, name: str | None = None, version: str | int | None = None) -> OnnxModel:
        """The loaded model for a query; version None means ``latest``, or the newest that loads."""
        name = self.model_name(name)
        number = self.version_number(name, version)
        try:
            return self._load(name, number)
        except ModelUnavailable:
            fallback = [v for (n, v) in self._loaded() if n == name and v < number]
            if version is not None or not fallback:
                raise
            return self._models[(name, max(fallback))]

    def _load(self, name: str, version: int) -> OnnxModel:
        key = (name, version)
        model = self._models.get(key)  # the common case, without waiting behind another version's load
        if model is not None:
            return model
        with self._lock:
            if key in self._models:
                return self._models[key]
            if key in self._broken:
                raise ModelUnavailable(f"{name}@{version} cannot be served: {self._broken[key]}")
            try:
                model = OnnxModel.from_store(self.store, name, version, providers=self.providers,
                                             threads=self.threads)
            except Exception as exc:  # integrity or onnxruntime failure: a bad file must not stop the server
                reason = f"{type(exc).__name__}: {exc}"
                self._broken[key] = reason
                log.warning("skipping %s@%s: %s", name, version, reason)
                raise ModelUnavailable(f"{name}@{version} cannot be served: {reason}") from exc
            self._models[key] = model
            log.info("loaded %s@%s", name, version)
            return model
