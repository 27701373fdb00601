"""The revisit policy's cost and reach (dbsync/freshness.py), simulated cycle by cycle: what changes cost in reads of
a single object (an ACL) and of a container (a directory), under the budgets the benchmarks use."""

from __future__ import annotations

from itertools import pairwise

from dbsync.freshness import Visit, after_read, next_interval, next_visit

CYCLE = 60.0
CAP = 3600.0


def _reads(changes: list[float], by_rate: bool, hours: float = 1.0) -> list[float]:
    """Cycle by cycle from a first read at 0 until `hours` after the last change (the object changes at `changes`;
    a read sees whether it changed since the one before): the times it is read."""
    visit = after_read(Visit(), False, 0.0, CYCLE, CAP, by_rate)
    due, now, reads, pending = next_visit(0.0, "k", visit.interval or CAP, CYCLE, first=True), 0.0, [], list(changes)
    while now < changes[-1] + hours * 3600:
        now += CYCLE
        if due > now:
            continue
        changed = bool(pending) and pending[0] <= now
        while pending and pending[0] <= now:
            pending.pop(0)
        visit = after_read(visit, changed, now, CYCLE, CAP, by_rate)
        due = next_visit(now, "k", visit.interval or CAP, CYCLE, first=False)
        reads.append(now)
    return reads


def test_a_single_acl_that_changed_costs_a_handful_of_reads_not_one_a_cycle() -> None:
    """0.25 ACL edits a second (the RPO benchmark) at one read a cycle for the next hour would be ~15 reads a
    second, over the whole 10 requests/s budget: an ACL backs off, doubling, after its change."""
    reads = _reads([1.0], by_rate=False)
    after = [t for t in reads if t > reads[0]]  # the first read after the change sees it
    assert len(after) <= 7, after


def test_a_directory_that_changed_once_is_listed_every_cycle_at_first_then_in_step_with_its_quiet_spell() -> None:
    """One change says little about a directory's rate: its quiet spell since stands in for its gap, read a sixth
    as often as a known rate. Taking the time watched before as its first gap made every directory touched once look
    hot for hours (their listings filled a 10 requests/s budget); doubling listed a hot one minutes apart."""
    reads = _reads([1.0], by_rate=True)
    after = [t for t in reads if t > reads[0]]  # the first read after the change sees it
    gaps = [b - a for a, b in pairwise([reads[0], *after])]
    assert gaps[:5] == [CYCLE] * 5  # a hot directory's next edit is seen within a cycle for the first minutes
    assert len(after) <= 25  # not one a cycle for the hour (60): ~4 doubling
    assert gaps[-1] >= 4 * CYCLE  # cooling down


def test_a_directory_changing_again_minutes_after_its_first_change_is_seen_within_two_cycles() -> None:
    """The edit a learning directory waited for: between its first and second change, doubling listed it 8 minutes
    apart (the RPO benchmark's hot directories, changing every ~8 minutes: p99 494 s)."""
    second = 1000.0  # the first change is seen at 540 s (its place in the sweep): doubling saw this at 1,260 s
    reads = _reads([1.0, second], by_rate=True)
    seen = min(t for t in reads if t >= second)
    assert seen - second <= 2 * CYCLE, reads


def test_a_directory_seen_changing_every_5_minutes_is_listed_every_cycle_then_less_as_it_cools() -> None:
    """Its listing covers every notebook in it: 24 reads per expected change once its rate is known (two changes
    seen), so every cycle while it keeps changing, and less often once its quiet spell outgrows its gap."""
    changes = [float(t) for t in range(300, 9001, 300)]  # every 5 minutes for 2.5 hours
    reads = _reads(changes, by_rate=True, hours=2.0)
    learnt = [t for t in reads if 6000 <= t <= 9000]
    assert learnt == [6000 + CYCLE * i for i in range(51)], learnt  # every cycle
    cooled = [b - a for a, b in pairwise(t for t in reads if t > 9000 + 5400)]  # 90 minutes after its last change
    assert min(cooled) > CYCLE and len(cooled) <= 1800 / CYCLE / 2, cooled  # listed every other cycle at most


def test_a_cold_directory_is_due_early_enough_that_a_late_slow_cycle_still_lands_its_edit_within_max_staleness() -> (
    None
):
    """After it comes due, the cycle running then does not take it, the next starts up to a period later (its
    interval, or the running cycle's length when cycles run back to back) and may read it last in its walk. With a
    margin of two 30 s cycles and tree cycles of up to 62 s, the RPO benchmark's cold edits landed up to 639 s
    after them against a 600 s `max_staleness`; the store's longest recent cycles are the lead now."""
    cycle, cap, longest = 30.0, 600.0, 62.0
    worst = max(cycle, longest) + longest  # from due to read, at worst
    due = next_visit(0.0, "d", cap, cycle, first=False, lead=longest)
    assert due + worst <= cap, due
    assert next_visit(0.0, "d", cap, cycle, first=False) + worst > cap  # two cycles alone: too late
    assert next_visit(0.0, "d", cap, cycle, first=False, lead=5.0) == next_visit(0.0, "d", cap, cycle, first=False)
    assert due >= cap * 2 / 3  # never more than a third of the interval early: cold listings stay cheap


def test_a_hot_directory_after_a_long_quiet_spell_is_still_listed_within_a_minute() -> None:
    """Edits at random times leave quiet spells of four mean gaps between 2 % of them: a directory edited every
    500 s on average is still listed every 45-60 s after one (p99 of its edits within 60 s), and slows down only
    as the spell goes on (it cooled)."""
    hot = Visit(interval=45.0, changed_at=0.0, change_gap=500.0)
    assert next_interval(hot, False, 2000.0, 45.0, 600.0, by_rate=True) <= 60.0
    assert next_interval(hot, False, 20000.0, 45.0, 600.0, by_rate=True) >= 400.0
