"""Which model versions the server answers with: a snapshot of the store, refreshed by polling.

:meth:`Registry.refresh` lists the store (model names, versions, alias files: a few directory reads)
and, when something changed, loads the version every alias names (``latest`` is the newest version
unless a ``latest`` ref says otherwise) *before* switching to it. A version whose files fail their
sha256 or that onnxruntime refuses is logged and remembered as broken; its alias keeps serving the
version it served before (at startup: the newest older version that loads), so one bad publish does
not take a model offline. Requests only read the snapshot: no file system access per request, and a
request that already holds a model finishes on it while the snapshot moves on.

Explicit version numbers load on first use. Versions are immutable, so a loaded (or broken) version
is never looked at again.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

from models_store import DEFAULT_ALIAS, Store, StoreError, check_name
from models_store.engine import OnnxModel, Provider, choose_providers, provider_names

from .metrics import Metrics

log = logging.getLogger(__name__)
# a query for something the snapshot lacks re-lists the store, at most this often
_MISS_REFRESH_S = 0.5


class ModelNotFound(LookupError):
    """Unknown model, version or alias (HTTP 404); the message lists what exists."""


class InvalidReference(ValueError):
    """A model name or alias that can never exist in a store (HTTP 422)."""

    def __init__(self, parameter: str, message: str) -> None:
        self.parameter = parameter
        super().__init__(message)


class _NeedsBlocking(Exception):
    """Answering needs the file system, which a non-blocking lookup must not touch."""


class ModelUnavailable(RuntimeError):
    """The store holds it but it cannot be served: no models, or files that fail to load (HTTP 503)."""


@dataclass(frozen=True)
class Snapshot:
    """What the store held at the last look, and which loaded version each alias is served from."""

    versions: dict[str, tuple[int, ...]] = field(default_factory=dict)
    aliases: dict[str, dict[str, int]] = field(default_factory=dict)  # as the ref files say
    served: dict[tuple[str, str], int] = field(default_factory=dict)  # (name, alias) -> loaded version


class Registry:
    def __init__(self, store: Store, *, default_model: str | None = None, prefer_gpu: bool = True,
                 tensorrt: bool = True, threads: int | None = None, metrics: Metrics | None = None) -> None:
        self.store = store
        self.default_model = default_model
        self.providers: list[Provider] = choose_providers(prefer_gpu, tensorrt=tensorrt)
        self.threads = threads
        self.metrics = metrics
        self.snapshot = Snapshot()
        self._models: dict[tuple[str, int], OnnxModel] = {}
        self._broken: dict[tuple[str, int], str] = {}
        self._load_lock = threading.Lock()  # load each version once
        self._refresh_lock = threading.Lock()
        self._last_refresh = 0.0
        self._listing_error: str | None = None  # why the last look at the store failed

    @property
    def provider_names(self) -> list[str]:
        return provider_names(self.providers)

    # -- refresh --------------------------------------------------------------------------------
    def _listing(self) -> tuple[dict[str, tuple[int, ...]], dict[str, dict[str, int]]]:
        versions: dict[str, tuple[int, ...]] = {}
        aliases: dict[str, dict[str, int]] = {}
        for name in self.store.models():
            try:
                versions[name] = tuple(self.store.versions(name))
                aliases[name] = self.store.aliases(name)
            except (OSError, StoreError) as exc:  # removed while we looked: one model must not stop the server
                log.error("model %s: %s", name, exc)
        return versions, aliases

    def refresh(self) -> bool:
        """Look at the store; load and switch to what changed. Returns True when the snapshot moved."""
        with self._refresh_lock:
            self._last_refresh = time.monotonic()
            try:
                versions, aliases = self._listing()
            except OSError as exc:  # unreadable store: keep serving what was loaded, and say why
                if self._listing_error is None:
                    log.error("cannot read the store %s: %s", self.store.root, exc)
                self._listing_error = f"{type(exc).__name__}: {exc}"
                return False
            self._listing_error = None
            old = self.snapshot
            if versions == old.versions and aliases == old.aliases:
                return False
            served: dict[tuple[str, str], int] = {}
            for name, numbers in versions.items():
                if not numbers:
                    continue
                targets = {DEFAULT_ALIAS: numbers[-1], **aliases.get(name, {})}
                for alias, target in sorted(targets.items()):
                    chosen = self._serve_alias(name, alias, target, old.served.get((name, alias)), numbers)
                    if chosen is not None:
                        served[(name, alias)] = chosen
            self.snapshot = Snapshot(versions, aliases, served)
            self._report(old)
            return True

    def _serve_alias(self, name: str, alias: str, target: int, before: int | None,
                     numbers: tuple[int, ...]) -> int | None:
        if target not in numbers:
            log.error("model %s: alias %s names version %s, which is not in the store", name, alias, target)
            return before
        if self._try_load(name, target):
            return target
        if before is not None:
            log.warning("model %s: %s keeps serving version %s (version %s was refused)", name, alias, before, target)
            return before
        if alias == DEFAULT_ALIAS:  # at startup: the newest older version that loads
            for older in sorted((v for v in numbers if v < target), reverse=True):
                if self._try_load(name, older):
                    log.warning("model %s: serving version %s (latest, %s, was refused)", name, older, target)
                    return older
            log.error("model %s: no version could be loaded; it is not served", name)
        return None

    def _try_load(self, name: str, version: int) -> bool:
        try:
            self._load(name, version)
            return True
        except ModelUnavailable:
            return False  # reason already logged

    def _report(self, old: Snapshot) -> None:
        new = self.snapshot
        changed = {key: v for key, v in new.served.items() if old.served.get(key) != v}
        for (name, alias), version in sorted(changed.items()):
            log.info("model %s: %s -> version %s", name, alias, version)
        if self.metrics is not None:
            for (name, alias), version in new.served.items():
                self.metrics.alias.labels(name, alias).set(version)
        if not old.versions:
            log.info("serving %s from %s with %s", self.served() or "nothing", self.store.root, self.provider_names)

    def why_not_ready(self) -> str:
        """What a caller (and /readyz) is told while no model is served."""
        root = self.store.root
        if self._listing_error is not None:
            return f"the store {root} cannot be read: {self._listing_error}"
        if not root.exists():
            return f"the store {root} does not exist: publish a model there (python -m training.fit CONFIG --store DIR)"
        if not root.is_dir():
            return f"the store {root} is not a folder"
        if not self.snapshot.versions:
            return f"the store {root} holds no models yet: publish one (python -m training.fit CONFIG --store DIR)"
        reasons = "; ".join(f"{name}@{version}: {why}" for (name, version), why in sorted(self._broken.items()))
        return f"no model in the store {root} could be loaded ({reasons or 'no version loads'})"

    def refresh_on_miss(self) -> bool:
        """A query named something the snapshot lacks: look again, unless we just did."""
        if time.monotonic() - self._last_refresh < _MISS_REFRESH_S:
            return False
        return self.refresh()

    # -- what is served ---------------------------------------------------------------------------
    def served(self) -> dict[str, int]:
        """{name: version a query naming no version gets} — what /readyz and /models report."""
        return {name: v for (name, alias), v in sorted(self.snapshot.served.items()) if alias == DEFAULT_ALIAS}

    @property
    def ready(self) -> bool:
        return bool(self.served())

    def loaded(self) -> list[tuple[str, int]]:
        return sorted(self._models)

    # -- lookups: no file system access unless the snapshot lacks the name --------------------
    def _miss(self, block: bool) -> bool:
        """The snapshot lacks what a query names: may it look again? (never without ``block``)"""
        if not block:
            raise _NeedsBlocking
        return self.refresh_on_miss()

    def model_name(self, name: str | None, *, block: bool = True) -> str:
        """The model a query means: the one named, else the configured default, else the first."""
        if name is None:  # an empty name is not "the default": it is refused below
            name = self.default_model
        if name is None:
            if not self.snapshot.versions:
                self._miss(block)
            known = sorted(self.snapshot.versions)
            if not known:
                raise ModelUnavailable(self.why_not_ready())
            return known[0]
        try:
            check_name("model name", name)
        except ValueError as exc:
            raise InvalidReference("model", str(exc)) from None
        if name not in self.snapshot.versions:
            self._miss(block)
        if name not in self.snapshot.versions:
            known = ", ".join(sorted(self.snapshot.versions)) or "none"
            raise ModelNotFound(f"model {name!r} is not in the store (models: {known})")
        return name

    def version_number(self, name: str, version: str | int | None, *, block: bool = True) -> int:
        """A version number or alias of a known model -> the version number a query is answered with."""
        alias = DEFAULT_ALIAS if version is None else str(version)
        if alias.isascii() and alias.isdigit():  # str.isdigit alone also takes '²', which int() refuses
            number = int(alias)
            if number not in self.snapshot.versions.get(name, ()):
                self._miss(block)
            if number not in self.snapshot.versions.get(name, ()):
                raise ModelNotFound(f"model {name!r} has no version {number} "
                                    f"(versions: {list(self.snapshot.versions.get(name, ()))})")
            return number
        try:
            check_name("alias", alias)
        except ValueError as exc:  # an alias spelled so it can never exist
            raise InvalidReference("version", str(exc)) from None
        if (name, alias) not in self.snapshot.served:
            self._miss(block)
        snap = self.snapshot
        if (name, alias) in snap.served:
            return snap.served[(name, alias)]
        known = snap.aliases.get(name, {})
        if alias in known or alias == DEFAULT_ALIAS:
            target = known.get(alias) or max(snap.versions.get(name) or (0,))
            reason = self._broken.get((name, target), "it did not load")
            raise ModelUnavailable(f"{name}@{alias} (version {target}) cannot be served: {reason}")
        raise ModelNotFound(f"model {name!r} has no alias {alias!r} (aliases: {sorted(known) or 'none'}, "
                            f"versions: {list(snap.versions.get(name, ()))})")

    def get(self, name: str | None = None, version: str | int | None = None, *,
            block: bool = True) -> OnnxModel | None:
        """The loaded model for a query; version None means ``latest`` (or what serves in its place).

        ``block=False`` (for the event loop) never touches the file system: it returns None where a
        version must be loaded or the store listed again; call again with ``block=True`` in a thread.
        """
        try:
            name = self.model_name(name, block=block)
            number = self.version_number(name, version, block=block)
        except _NeedsBlocking:
            return None
        model = self._models.get((name, number))
        if model is None and block:
            model = self._load(name, number)
        return model

    def _load(self, name: str, version: int) -> OnnxModel:
        key = (name, version)
        model = self._models.get(key)  # the common case, without waiting behind another version's load
        if model is not None:
            return model
        with self._load_lock:
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
                log.warning("refusing %s@%s: %s", name, version, reason)
                if self.metrics is not None:
                    self.metrics.refused.labels(name, str(version)).inc()
                raise ModelUnavailable(f"{name}@{version} cannot be served: {reason}") from exc
            self._models[key] = model
            log.info("loaded %s@%s", name, version)
            if self.metrics is not None:
                self.metrics.loaded.labels(name, str(version)).set(1)
            return model
