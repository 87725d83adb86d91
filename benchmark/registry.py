"""One small generic registry, instantiated once per plugin kind next to its base class.

Each kind (methods, datasets, sources, feature extractors) has its own ``Registry`` whose
``contract`` says what an entry must be. Duplicate names are refused at import time, and an
unknown name raises a :class:`BenchmarkError` that lists the valid ones.

A registry whose entries live in plugin modules outside the harness (the methods package, the
source loaders) names those modules as ``plugins`` and imports them the first time it is
consulted: the harness depends on the contract, never on a plugin's code, so no harness module
imports a plugin and the import graph has no cycle.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from benchmark.errors import BenchmarkError

T = TypeVar("T")


class Registry(Generic[T]):
    """A name -> object table for one plugin kind.

    Args:
        kind: what the entries are, used in error messages ("method", "dataset", ...).
        contract: the rule every entry follows; shown by ``run_benchmark.py list``.
        plugins: modules that register entries, imported on the first lookup.
    """

    def __init__(self, kind: str, contract: str = "", plugins: tuple[str, ...] = ()):
        self.kind = kind
        self.contract = contract
        self._entries: dict[str, T] = {}
        self._plugins = tuple(plugins)

    def _load_plugins(self) -> None:
        plugins, self._plugins = self._plugins, ()  # once, and not again while they register
        for module in plugins:
            importlib.import_module(module)

    def register(self, name: str | None = None) -> Callable[[T], T]:
        """Decorator: ``@METHODS.register("my-method")``; the name defaults to ``obj.name``."""

        def add(obj: T) -> T:
            key = name or getattr(obj, "name", None)
            if not key:
                raise ValueError(f"{obj!r} has no name to register under")
            if key in self._entries:
                raise ValueError(f"{self.kind} {key!r} is registered twice")
            self._entries[key] = obj
            return obj

        return add

    def get(self, name: str) -> T:
        self._load_plugins()
        try:
            return self._entries[name]
        except KeyError:
            valid = ", ".join(sorted(self._entries)) or "(none)"
            nearest = difflib.get_close_matches(str(name).strip(), list(self._entries), n=3, cutoff=0.6)
            hint = f"did you mean {', '.join(map(repr, nearest))}? " if nearest else ""
            raise BenchmarkError(f"unknown {self.kind} {name!r}; {hint}valid {self.kind}s: {valid}") from None

    def names(self) -> list[str]:
        self._load_plugins()
        return sorted(self._entries)

    def values(self) -> list[T]:
        """The entries in the order they were registered."""
        self._load_plugins()
        return list(self._entries.values())

    def __contains__(self, name: object) -> bool:
        self._load_plugins()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        self._load_plugins()
        return len(self._entries)
