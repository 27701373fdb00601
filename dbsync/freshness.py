"""When an object of a kind read by need is read again: pure schedule arithmetic, no I/O.

The web-crawler refresh policy: an object whose content just changed is read again next cycle, an unchanged
one after twice its last interval, never later than the kind's `max_staleness`. The first schedule of an object
spreads the sweep over the window (a phase from its key), so a kind is read a slice per cycle, not all at once.
"""

from __future__ import annotations

import hashlib


def next_interval(previous: float | None, changed: bool, cycle: float, max_staleness: float) -> float:
    """The object's new revisit interval: one cycle after a change, doubling while unchanged, capped."""
    if previous is None:
        return max_staleness  # first read: cold until it is seen to change
    if changed:
        return min(cycle, max_staleness)
    return min(max_staleness, max(cycle, previous * 2))


def next_visit(now: float, key: str, interval: float, cycle: float, first: bool) -> float:
    """When the object is due: one cycle early, so the cycle that reads it comes within the interval."""
    span = max(cycle, interval - cycle)
    if first:
        return now + max(cycle, span * _phase(key))  # the first sweep spread over the window
    return now + span


def _phase(key: str) -> float:
    """A stable fraction in (0, 1] from the key: the same object keeps its place in the window."""
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    return (int.from_bytes(digest, "little") % 1000 + 1) / 1000
