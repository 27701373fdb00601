"""When an object of a kind read by need is read again: pure schedule arithmetic, no I/O.

The web-crawler refresh policy: an object is read again next cycle after a change, less often while it stays the
same, never later than the kind's `max_staleness`. The first schedule of an object spreads the sweep over the
window (a phase from its key), so a kind is read a slice per cycle, not all at once.

How much less often depends on what is read:

- **Containers** (a directory of the workspace tree, whose listing changes when any of its objects does) are
  read by their observed change rate: once two changes have been seen (in two listings, or in one by its entries'
  modification times), the mean gap between changes is known (a moving average) and the container is read every
  gap ÷ CONTAINER_READS_PER_CHANGE, at least one cycle, slowing
  down as the time since its last change outgrows that gap: by the gap a change now would make (the mean of the
  two), not by the spell itself. Changes at random times leave spells of four gaps between 2 % of them; read
  by the spell, a directory edited every 500 s was listed every 83 s after such a spell, and p99 of its edits
  was over a minute. A directory edited every few minutes is listed every
  cycle for as long as it keeps changing; doubling alone listed it 1, 2, 4 minutes after its last change, so
  edits there waited minutes. After a single change its gap is unknown, and the quiet spell since that change
  stands in for it, read ONCE_CHANGED_READS_PER_SPELL times: every cycle at first, then every sixth of the spell,
  up to `max_staleness`. Taking the time it had been watched before as its first gap made every directory touched
  once in the RPO benchmark's 45 minutes (hot or not) look hot for hours, and their listings alone filled the 10
  requests/s budget; doubling (as an ACL does) listed a hot directory 4 and 8 minutes apart between its first and
  second change, and its second edit waited that long (p99 494 s).
- **Single objects** (an ACL, a dashboard) double their interval while unchanged. Their changes are rare events,
  and reads per change times changes per second is the cost: the RPO benchmark's 0.25 ACL edits a second at 24 reads
  each would be 6 reads a second, most of a 10 requests/s budget; doubling costs about log2(max_staleness ÷
  cycle) reads a change.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

# Reads per expected change of a container: at 24 the chance it changed since it was last read is about 4 %.
CONTAINER_READS_PER_CHANGE = 24.0
# Reads per quiet spell of a container seen to change once: the spell is its best guess of a gap, a weak one (cold
# directories change once too), so fewer reads than a known rate earns. At a 30 s cycle and a 600 s
# `max_staleness`, ~24 listings of the directory in the hour after its change, against ~5 doubling.
ONCE_CHANGED_READS_PER_SPELL = 6.0
# The cycles whose length sets how early an object is due (next_visit's `lead`), seconds back.
LEAD_WINDOW = 3600.0


@dataclass(frozen=True)
class Visit:
    """What the schedule knows of an object: its interval, when it last changed, the mean gap between changes."""

    interval: float | None = None  # None: never read (after a read, always set)
    changed_at: float | None = None  # the last change seen (None until one is)
    change_gap: float | None = None


def after_read(
    previous: Visit,
    changed: bool,
    now: float,
    cycle: float,
    max_staleness: float,
    by_rate: bool = False,
    times: Sequence[float] = (),
) -> Visit:
    """The schedule of an object read now (`changed`: its content differed from what was last seen).

    `by_rate`: a container, read by its change rate; otherwise its interval doubles while unchanged. `times`: when
    the changes the read found were made, oldest first, a cycle apart at least (a listing shows its entries'
    modification times; empty: one change, time unknown). Several changes found in one read are as many changes:
    counted as one, a hot directory whose first two edits were found by one listing stayed on the one-change rule,
    read every sixth of its quiet spell, and its next edit waited 100 s and more (RPO run 9, p99 104-133 s).
    """
    gap, changed_at = previous.change_gap, previous.changed_at
    if changed and previous.interval is not None:  # a first read sees the object, not a change of it
        count = max(1, len(times))
        if changed_at is not None:  # the time since the change seen before: its rate is known from the second on
            each = (now - changed_at) / count
            for _ in range(count):
                gap = each if gap is None else (gap + each) / 2
        elif count > 1:  # the first changes seen, several at once: their spacing is the first gap
            gap = (times[-1] - times[0]) / (count - 1)
        changed_at = now
    return Visit(next_interval(previous, changed, now, cycle, max_staleness, by_rate), changed_at, gap)


def next_interval(
    previous: Visit, changed: bool, now: float, cycle: float, max_staleness: float, by_rate: bool = False
) -> float:
    """The object's new revisit interval: one cycle after a change, by its change rate (a container), capped."""
    if previous.interval is None:
        return max_staleness  # first read: cold until it is seen to change
    if changed:
        return min(cycle, max_staleness)
    if by_rate and previous.changed_at is not None:
        spell = now - previous.changed_at  # a quiet spell longer than the gap: it cooled down
        if previous.change_gap is not None:  # slower as the spell outgrows the gap: the gap a change now would make
            gap = max(previous.change_gap, (previous.change_gap + spell) / 2)
            return min(max_staleness, max(cycle, gap / CONTAINER_READS_PER_CHANGE))
        return min(max_staleness, max(cycle, spell / ONCE_CHANGED_READS_PER_SPELL))  # seen to change once
    return min(max_staleness, max(cycle, previous.interval * 2))


def next_visit(now: float, key: str, interval: float, cycle: float, first: bool, lead: float = 0.0) -> float:
    """When the object is due: early enough that the cycle that reads it comes within the interval.

    The margin (at most a third of the interval) is what can pass between "due" and "on the target": the cycle
    running when it comes due did not take it, the next starts up to a period later (the interval, or the running
    cycle's length when cycles run back to back) and may read it at the end of its walk. `lead` is how long the
    kind's recent cycles took at the longest (0: unknown); the margin is at least two cycles. With two cycles
    alone, cold directories' edits landed up to 639 s after them against a 600 s `max_staleness` while tree
    cycles took up to 62 s. An interval of one cycle is due half a cycle from now: the next cycle reads it (due a
    whole cycle from `now`, a cycle that started a few milliseconds early, as the daemon's do, found it not due and
    it waited a cycle more).

    The ACL sweep in slices reads the overdue first (watchers/permissions.py): its `lead` is 0, two cycles.
    """
    span = max(cycle / 2, interval - margin(interval, cycle, lead))
    if first:
        return now + max(cycle, span * _phase(key))  # the first sweep spread over the window
    return now + span


def margin(interval: float, cycle: float, lead: float = 0.0) -> float:
    """How long before its interval ends an object is due (next_visit): at least two cycles, at most a third."""
    return min(max(2 * cycle, max(cycle, lead) + lead), interval / 3)


def _phase(key: str) -> float:
    """A stable fraction in (0, 1] from the key: the same object keeps its place in the window."""
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    return (int.from_bytes(digest, "little") % 1000 + 1) / 1000
