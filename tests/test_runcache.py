"""The per-run cache: typed keys declared once, values computed once per run."""

from __future__ import annotations

import threading

import pytest

from dbsync.runcache import CacheKey, RunCache

LISTING: CacheKey[list[str]] = CacheKey("test-runcache:listing")


def test_a_name_declared_by_two_modules_fails_at_import() -> None:
    """Two modules can no longer share a cached value by typing the same string: the second declaration names both."""
    with pytest.raises(ValueError, match=r"'test-runcache:listing' is declared by (tests\.)?test_runcache and again"):
        CacheKey("test-runcache:listing", _owner="dbsync.some_other_module")


def test_each_part_is_its_own_slot_computed_once_even_under_threads() -> None:
    """One listing per side per run, however many workers ask at once; invalidating one side keeps the other."""
    cache, calls = RunCache(), []

    def listing(side: str) -> list[str]:
        calls.append(side)
        return [side]

    threads = [
        threading.Thread(target=cache.get, args=(LISTING.part(side), lambda side=side: listing(side)))
        for side in ("source", "target") * 8
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert sorted(calls) == ["source", "target"]
    cache.invalidate(LISTING.part("target"))
    assert cache.peek(LISTING.part("target")) is None and cache.peek(LISTING.part("source")) == ["source"]
    cache.clear()
    assert cache.peek(LISTING.part("source")) is None
