"""The per-run cache of a sync: typed keys, each declared once next to the module that owns it.

A key is a `CacheKey[T]` object, not a string: two modules share a cached value only by importing the
owner's key, and declaring a name another module already declared fails at import.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import Any, ClassVar, Generic, TypeVar

T = TypeVar("T")


class CacheKey(Generic[T]):
    """A named, typed slot of the run cache; `part(...)` names one instance of it (a side, a scope)."""

    _owners: ClassVar[dict[str, str]] = {}
    __slots__ = ("name",)

    def __init__(self, name: str, *, _owner: str | None = None) -> None:
        owner = _owner or sys._getframe(1).f_globals.get("__name__", "?")
        if CacheKey._owners.setdefault(name, owner) != owner:
            raise ValueError(
                f"run cache key {name!r} is declared by {CacheKey._owners[name]} and again by {owner}: "
                "import the owner's key instead of declaring the same name"
            )
        self.name = name

    def part(self, *parts: str) -> CacheKey[T]:
        """The slot of this key for one side / scope / kind (`SCOPES.part("target")`)."""
        key: CacheKey[T] = object.__new__(CacheKey)
        key.name = ":".join((self.name, *parts))
        return key

    def __repr__(self) -> str:
        return f"CacheKey({self.name!r})"


class RunCache:
    """Values computed once per run, even when many worker threads ask at once; cleared between runs."""

    def __init__(self) -> None:
        self._values: dict[str, Any] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def get(self, key: CacheKey[T], factory: Callable[[], T]) -> T:
        """The value held for `key`, computing `factory()` once when none is held."""
        name = key.name
        with self._guard:
            if name in self._values:
                return self._values[name]
            lock = self._locks.setdefault(name, threading.Lock())
        with lock:
            with self._guard:
                if name in self._values:
                    return self._values[name]
            value = factory()
            with self._guard:
                self._values[name] = value
            return value

    def peek(self, key: CacheKey[T]) -> T | None:
        """What is held for `key` this run, without computing it (None when nothing is held)."""
        with self._guard:
            return self._values.get(key.name)

    def invalidate(self, key: CacheKey[Any]) -> None:
        """Forget `key` (the target changed): the next `get` computes it afresh."""
        with self._guard:
            self._values.pop(key.name, None)

    def clear(self) -> None:
        with self._guard:
            self._values.clear()
            self._locks.clear()
