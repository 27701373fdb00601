"""When an object of a kind read by need is read again: pure schedule arithmetic, no I/O.

The web-crawler refresh policy: revisit each object in proportion to its observed change rate, never later
than the kind's `max_staleness`. An object is read again next cycle after a change, and from its first change
on the mean gap between its changes is known (a moving average; the first gap is the time it was watched
before it changed) and it is read every gap ÷ READS_PER_CHANGE (at least one cycle): an object that changes
every few minutes is read every cycle for as long as it keeps changing, and slows down as the time since its
last change outgrows that gap. An object never seen to change doubles its interval while unchanged. The first schedule of an object
spreads the sweep over the window (a phase from its key), so a kind is read a slice per cycle, not all at once.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

# Reads per expected change: at 48 the chance that an object changed since it was last read is about 2 %, and a
# directory edited every ~8 minutes is still listed every 30 s cycle after a 24-minute quiet spell.
# Doubling alone (the policy before) read a directory edited every 5 minutes 1, 2, 4 minutes after its last
# change: edits waited minutes in the directories that change the most.
READS_PER_CHANGE = 48.0


@dataclass(frozen=True)
class Visit:
    """What the schedule knows of an object: its interval, when it last changed, the mean gap between changes."""

    interval: float | None = None  # None: never read (after a read, always set)
    changed_at: float | None = None  # the last change seen (the first read until one is)
    change_gap: float | None = None


def after_read(previous: Visit, changed: bool, now: float, cycle: float, max_staleness: float) -> Visit:
    """The schedule of an object read now (`changed`: its content differed from what was last seen)."""
    gap, changed_at = previous.change_gap, previous.changed_at
    if previous.interval is None:
        changed_at = now  # a first read sees the object, not a change of it: it is watched from now
    elif changed:
        if changed_at is not None:  # the first change's gap is the time it was watched: one change in that time
            seen = now - changed_at
            gap = seen if gap is None else (gap + seen) / 2
        changed_at = now
    return Visit(next_interval(previous, changed, now, cycle, max_staleness, gap), changed_at, gap)


def next_interval(
    previous: Visit, changed: bool, now: float, cycle: float, max_staleness: float, gap: float | None
) -> float:
    """The object's new revisit interval: one cycle after a change, by its change rate when known, capped."""
    if previous.interval is None:
        return max_staleness  # first read: cold until it is seen to change
    if changed:
        return min(cycle, max_staleness)
    if gap is not None and previous.changed_at is not None:
        expected = max(gap, now - previous.changed_at)  # a quiet spell longer than the gap: it cooled down
        return min(max_staleness, max(cycle, expected / READS_PER_CHANGE))
    return min(max_staleness, max(cycle, previous.interval * 2))


def next_visit(now: float, key: str, interval: float, cycle: float, first: bool) -> float:
    """When the object is due: one cycle early, so the cycle that reads it comes within the interval.

    An interval of one cycle is due half a cycle from now: the next cycle reads it. (Due a whole cycle from `now`,
    a cycle that started a few milliseconds early, as the daemon's do, found it not due: it waited a cycle more.)
    """
    span = max(cycle / 2, interval - cycle)
    if first:
        return now + max(cycle, span * _phase(key))  # the first sweep spread over the window
    return now + span


def _phase(key: str) -> float:
    """A stable fraction in (0, 1] from the key: the same object keeps its place in the window."""
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    return (int.from_bytes(digest, "little") % 1000 + 1) / 1000
