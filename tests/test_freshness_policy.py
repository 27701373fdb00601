"""The revisit policy's cost and reach (dbsync/freshness.py), simulated cycle by cycle: what one change costs in
reads of a single object (an ACL) and of a container (a directory), under the budgets the benchmarks use."""

from __future__ import annotations

from itertools import pairwise

from dbsync.freshness import Visit, after_read, next_visit

CYCLE = 60.0
CAP = 3600.0


def _reads_after_one_change(by_rate: bool, hours: float = 1.0) -> list[float]:
    """Cycle by cycle for `hours` after an object watched 1,000 s changes once: the times it is read."""
    visit = after_read(Visit(), False, 0.0, CYCLE, CAP, by_rate)
    visit = after_read(visit, True, 1000.0, CYCLE, CAP, by_rate)
    due, reads = next_visit(1000.0, "k", visit.interval or CAP, CYCLE, first=False), []
    now = 1000.0
    while now < 1000.0 + hours * 3600:
        now += CYCLE
        if due <= now:
            reads.append(now - 1000.0)
            visit = after_read(visit, False, now, CYCLE, CAP, by_rate)
            due = next_visit(now, "k", visit.interval or CAP, CYCLE, first=False)
    return reads


def test_a_single_acl_that_changed_once_costs_a_handful_of_reads_not_one_a_cycle() -> None:
    """0.25 ACL edits a second (the RPO benchmark) at one read a cycle for the next hour would be ~15 reads a
    second, over the whole 10 requests/s budget: an ACL backs off, doubling, after its change."""
    reads = _reads_after_one_change(by_rate=False)
    assert reads[0] == CYCLE  # read again next cycle: a change is often followed by another
    assert len(reads) <= 7, reads


def test_a_directory_that_changed_is_listed_every_cycle_while_its_change_rate_says_it_may_change_again() -> None:
    """Watched 1,000 s before its change, a directory is listed every cycle until its quiet spell outgrows that gap
    (24 reads a change), then less often: its listing covers every notebook in it."""
    reads = _reads_after_one_change(by_rate=True)
    assert reads[:20] == [CYCLE * (i + 1) for i in range(20)]
    gaps = [b - a for a, b in pairwise(reads)]
    assert gaps[-1] > CYCLE and len(reads) < 3600 / CYCLE  # it cooled down within the hour
