"""Name-based discovery: config says ``type: NAME``, a registry turns it into a class.

Adding a network is one new file under training/networks/ with ``@NETWORKS.register("name")``.
A name that does not resolve stops the run with the list of known names: silent name mismatches
were the most common pitfall of the framework this grew from.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel

T = TypeVar("T")


class UnknownNameError(KeyError):
    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class Registry:
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Any] = {}
        self._args: dict[str, type[BaseModel] | None] = {}

    def register(self, name: str, *, args: type[BaseModel] | None = None) -> Callable[[T], T]:
        """Decorator; ``args`` is the pydantic schema of the entry's own config keys, if any."""

        def add(obj: T) -> T:
            if name in self._entries and self._entries[name] is not obj:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = obj
            self._args[name] = args
            return obj

        return add

    def names(self) -> list[str]:
        return sorted(self._entries)

    def get(self, name: str) -> Any:
        _load_builtins()
        if name not in self._entries:
            raise UnknownNameError(f"unknown {self.kind} type {name!r}; known: {', '.join(self.names())}")
        return self._entries[name]

    def args_schema(self, name: str) -> type[BaseModel] | None:
        self.get(name)
        return self._args[name]


MODELS = Registry("model")
NETWORKS = Registry("network")
DATASETS = Registry("data")


def _load_builtins() -> None:
    # Importing the packages runs their @register decorators.
    from . import datasets, models, networks  # noqa: F401
