"""Name-based discovery: config says ``type: NAME``, a registry turns it into a class that builds itself.

An entry is declared without importing its implementation: a pydantic schema of its own config keys
(or none) and the dotted path of the class (``"training.networks.mlp_basis:MLPBasis"``). So checking a
config needs pydantic only, and torch is imported when a class is first built. A name that does not
resolve stops the run with the list of known names: silent name mismatches were the most common
pitfall of the framework this grew from.

Where entries are declared (torch-free modules, imported by :func:`_load_builtins`):
``training/networks/args.py``, ``training/models/args.py``, ``training/datasets/args.py``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

T = TypeVar("T", bound=type[BaseModel])


class UnknownNameError(KeyError):
    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


@dataclass(frozen=True)
class Entry:
    name: str
    impl: str  # "package.module:Class"
    args: type[BaseModel] | None


class Registry:
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Entry] = {}

    def add(self, name: str, impl: str, args: type[BaseModel] | None = None) -> None:
        """Declare ``name``: its class at ``impl`` ("module:Class") and the schema of its own keys."""
        if ":" not in impl:
            raise ValueError(f"{self.kind} {name!r}: impl {impl!r} must be 'package.module:Class'")
        entry = Entry(name, impl, args)
        if self._entries.get(name, entry) != entry:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._entries[name] = entry

    def register(self, name: str, *, impl: str) -> Callable[[T], T]:
        """Decorator on the entry's args schema: ``@NETWORKS.register("name", impl="module:Class")``."""

        def add(schema: T) -> T:
            self.add(name, impl, schema)
            return schema

        return add

    def remove(self, name: str) -> None:
        """Forget ``name`` (a plug-in that is unloaded; tests that register their own entries)."""
        self._entries.pop(name, None)

    def names(self) -> list[str]:
        _load_builtins()
        return sorted(self._entries)

    def entry(self, name: str) -> Entry:
        _load_builtins()
        if name not in self._entries:
            raise UnknownNameError(f"unknown {self.kind} type {name!r}; known: {', '.join(self.names())}")
        return self._entries[name]

    def args_schema(self, name: str) -> type[BaseModel] | None:
        return self.entry(name).args

    def get(self, name: str) -> Any:
        """The implementation class (imports its module, and so torch, on first use)."""
        module, _, attr = self.entry(name).impl.partition(":")
        return getattr(importlib.import_module(module), attr)

    def parse_args(self, name: str, values: dict[str, Any]) -> BaseModel | None:
        """``values`` checked against ``name``'s schema; the error names the key and the keys allowed."""
        schema = self.args_schema(name)
        if schema is None:
            if values:
                raise ValueError(f"{', '.join(values)}: unknown key for {self.kind} {name!r} (it takes none)")
            return None
        try:
            return schema.model_validate(values)
        except ValidationError as exc:
            err = exc.errors()[0]
            key = ".".join(str(p) for p in err["loc"])
            what = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
            got = "" if err["type"] == "extra_forbidden" else f" (got {err.get('input')!r})"
            raise ValueError(f"{key}: {what}{got} for {self.kind} {name!r} "
                             f"(its keys: {', '.join(schema.model_fields)})") from None


MODELS = Registry("model")
NETWORKS = Registry("network")
DATASETS = Registry("data")


def _load_builtins() -> None:
    # Importing the declaration modules runs their register calls; none of them imports torch.
    from .datasets import args as _datasets  # noqa: F401
    from .models import args as _models  # noqa: F401
    from .networks import args as _networks  # noqa: F401
