"""Per-run key collections that stay small at 100,000 objects.

A run keeps, per kind, the set of keys its listing saw (for the delete plan and for the permissions
kind), and on the target the object id of every workspace path (for ACLs). As Python sets and dicts of
strings these cost 100-200 bytes per key and tens of MB per run; here they are sorted arrays of 128-bit
digests, 16 bytes per key (24 with an object id). Two different keys share a digest with a chance of
about 1e-29 at 100,000 keys: far below anything else the run relies on (sha256 fingerprints).
"""

from __future__ import annotations

import hashlib
from array import array
from bisect import bisect_left
from collections.abc import Iterable


def _digest(key: str) -> tuple[int, int]:
    raw = hashlib.blake2b(key.encode(), digest_size=16).digest()
    return int.from_bytes(raw[:8], "little", signed=True), int.from_bytes(raw[8:], "little", signed=True)


class _Sorted:
    """Digests (two int64 columns), appended in any order, sorted on first lookup."""

    def __init__(self) -> None:
        self._high, self._low = array("q"), array("q")
        self._sorted = True

    def _append(self, key: str) -> None:
        high, low = _digest(key)
        self._high.append(high)
        self._low.append(low)
        self._sorted = False

    def freeze(self) -> None:
        """Sort now: done before other threads read it (a lookup sorts too, but only one thread may)."""
        if not self._sorted:
            # By the high half alone (_find scans the rare equal ones): a C key, not a lambda and a tuple per key.
            order = sorted(range(len(self._high)), key=self._high.__getitem__)
            self._high = array("q", (self._high[i] for i in order))
            self._low = array("q", (self._low[i] for i in order))
            self._reorder(order)
            self._sorted = True

    def _reorder(self, order: list[int]) -> None:
        """Put any column a subclass keeps beside the digests in the same order."""

    def _find(self, key: str) -> int | None:
        """Index of `key`, or None."""
        self.freeze()
        high, low = _digest(key)
        i = bisect_left(self._high, high)
        while i < len(self._high) and self._high[i] == high:
            if self._low[i] == low:
                return i
            i += 1
        return None

    def __len__(self) -> int:
        return len(self._high)


class KeySet(_Sorted):
    """The keys a listing saw: `add` while listing, then `in` (one thread: the engine's)."""

    def __init__(self, keys: Iterable[str] = ()) -> None:
        super().__init__()
        for key in keys:
            self.add(key)

    def add(self, key: str) -> None:
        self._append(key)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self._find(key) is not None


class IdIndex(_Sorted):
    """{key: integer id} (a workspace path and its object id), built once, then read with `get`."""

    def __init__(self, items: Iterable[tuple[str, int]] = ()) -> None:
        super().__init__()
        self._values = array("q")
        for key, value in items:
            self._append(key)
            self._values.append(value)
        self.freeze()  # sorted before any worker thread reads it

    def _reorder(self, order: list[int]) -> None:
        self._values = array("q", (self._values[i] for i in order))

    def get(self, key: str) -> int | None:
        i = self._find(key)
        return None if i is None else self._values[i]
