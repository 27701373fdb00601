"""The workspace tree is listed by need: each directory has a revisit schedule in the store, a cycle lists only the
due directories (the root and new ones always), and the rest of the tree is taken as last seen, never as deleted.

One `workspace/list` per directory is the only way to read the tree (Workspace API reference: GET
/api/2.0/workspace/list lists one directory, not recursive); the list calls on the source are counted with the
emulator's per-endpoint request counts.
"""

from __future__ import annotations

import io
from typing import Any

from conftest import Pair, endpoint_count
from databricks.sdk.errors import NotFound
from databricks.sdk.service.workspace import ExportFormat, ImportFormat, Language
from freezegun import freeze_time

from dbsync.engine import Engine
from dbsync.report import validate
from dbsync.scheduler import Daemon
from dbsync.store import Store

LIST = "GET /api/2.0/workspace/list"
EXPORT = "GET /api/2.0/workspace/export"
KINDS = ["directories", "notebooks", "files"]
DIRS = 10
PER_DIR = 3
CYCLE = 60.0  # the workspace kinds' interval
WINDOW = 600.0  # their max_staleness in these tests: ten cycles
BY_NEED = {"kinds": {k: {"max_staleness": WINDOW} for k in KINDS}}


def _dir(i: int) -> str:
    return f"/Shared/d{i:02d}"


def _upload(pair: Pair, path: str, body: str) -> None:
    pair.src.workspace.upload(
        path, io.BytesIO(body.encode()), format=ImportFormat.SOURCE, language=Language.PYTHON, overwrite=True
    )


def _seed(pair: Pair) -> None:
    for i in range(DIRS):
        pair.src.workspace.mkdirs(_dir(i))
        for n in range(PER_DIR):
            _upload(pair, f"{_dir(i)}/nb{n}", "print(1)\n")


def _sync(pair: Pair, **overrides: Any) -> int:
    """One `sync --once` of the workspace kinds (a new process each time): how many directories it listed."""
    pair.reset_stats()
    reports = pair.sync(only=KINDS, **{**BY_NEED, **overrides})
    assert all(r.errors == 0 for r in reports.values()), reports
    return endpoint_count(pair.source, LIST)


def _target_body(pair: Pair, path: str) -> str | None:
    try:
        text = pair.dst.workspace.download(path, format=ExportFormat.SOURCE).read().decode()
    except NotFound:
        return None
    return text.removeprefix("# Databricks notebook source\n").strip()


def test_a_no_change_cycle_lists_only_the_root_and_a_restart_keeps_the_schedule(pair: Pair) -> None:
    """The first sync lists every directory; the next process, at once, lists the root only and exports nothing."""
    _seed(pair)
    with freeze_time("2026-12-05 00:00:00") as clock:
        every = _sync(pair)
        assert every >= DIRS + 2  # the root, /Shared and its directories (and the built-in folders)
        clock.tick(1)
        assert _sync(pair) == 1  # a new process: the schedule is in the store; only the root is listed
        assert endpoint_count(pair.source, EXPORT) == 0


def test_each_directory_is_listed_within_max_staleness_a_slice_per_cycle(pair: Pair) -> None:
    """A cold directory is listed again within `max_staleness`, the sweep spread over the window."""
    _seed(pair)
    with freeze_time("2026-12-05 00:00:00") as clock:
        every = _sync(pair)
        _upload(pair, f"{_dir(7)}/nb1", "print('cold')\n")
        slices = []
        for _ in range(int(WINDOW / CYCLE)):
            clock.tick(CYCLE)
            slices.append(_sync(pair) - 1)  # besides the root
        assert _target_body(pair, f"{_dir(7)}/nb1") == "print('cold')"
        assert sum(slices) >= every - 1, slices  # every directory listed again within the window
        assert max(slices) < every / 2, slices  # a slice per cycle, not the whole tree at once
        ctx = pair.context(**BY_NEED)
        oldest = ctx.store.oldest_verification("notebooks")
        assert oldest is not None and clock.time_to_freeze.timestamp() - oldest <= WINDOW


def test_an_edit_in_a_hot_directory_is_replicated_next_cycle_a_cold_one_waits(pair: Pair) -> None:
    """A directory whose listing just changed is listed next cycle; an unchanged one only when its visit comes."""
    _seed(pair)
    with freeze_time("2026-12-05 00:00:00") as clock:
        _sync(pair)
        clock.tick(WINDOW)
        _upload(pair, f"{_dir(3)}/nb0", "print(2)\n")
        _sync(pair)  # everything due: d03 is seen changed, the others unchanged
        assert _target_body(pair, f"{_dir(3)}/nb0") == "print(2)"

        clock.tick(CYCLE)
        _upload(pair, f"{_dir(3)}/nb0", "print(3)\n")  # hot
        _upload(pair, f"{_dir(6)}/nb0", "print(3)\n")  # cold
        listed = _sync(pair)
        assert listed == 2, listed  # the root and d03
        assert _target_body(pair, f"{_dir(3)}/nb0") == "print(3)"
        assert _target_body(pair, f"{_dir(6)}/nb0") == "print(1)"  # not listed yet: not claimed either


def test_a_directory_that_keeps_changing_is_listed_every_cycle_while_it_does(pair: Pair) -> None:
    """Seen changing every few minutes, a directory is listed every cycle, not 1, 2, 4 minutes after its last change.

    Doubling the interval of an unchanged directory (the policy before) listed it at +1, +3 minutes after a
    change, so an edit 2 minutes later waited 1 more; its change rate says it will change again soon.
    """
    _seed(pair)
    with freeze_time("2026-12-05 00:00:00") as clock:
        _sync(pair)
        clock.tick(WINDOW)
        _upload(pair, f"{_dir(3)}/nb0", "print('a')\n")
        _sync(pair)  # the whole tree is due: d03 seen changed once (its change rate is not known yet)
        for minute in range(3):  # its next change, 2 minutes later, seen at 3: the gap between changes is known
            clock.tick(CYCLE)
            if minute == 1:
                _upload(pair, f"{_dir(3)}/nb0", "print('b')\n")
            _sync(pair)
        listed = []
        for minute in range(3):
            clock.tick(CYCLE)
            if minute == 2:
                _upload(pair, f"{_dir(3)}/nb0", "print('c')\n")
            listed.append(_sync(pair))
        assert listed == [2, 2, 2], listed  # the root and d03 each cycle; the cold directories are not due
        assert _target_body(pair, f"{_dir(3)}/nb0") == "print('c')"


def test_two_edits_found_by_one_listing_are_two_changes_and_their_directory_is_listed_every_cycle(pair: Pair) -> None:
    """A cold directory edited twice, five minutes apart, before its listing came: the listing dates both edits by
    their notebooks' modification times, so its change rate is known at once and its next edit is listed next cycle.

    Counted as one change (the policy before), it stayed on the one-change rule like a directory edited once, listed
    every sixth of its quiet spell: 100 s and more ten minutes on (RPO run 9: p99 104-133 s for such edits).
    """
    with freeze_time("2026-12-05 00:00:00") as clock:  # the emulator's modification times on the same clock
        _seed(pair)
        _sync(pair)
        clock.tick(WINDOW)
        _sync(pair)  # every directory listed unchanged: cold, due a window on
        clock.tick(10.0)
        _upload(pair, f"{_dir(3)}/nb0", "print('a')\n")
        clock.tick(300.0)
        _upload(pair, f"{_dir(3)}/nb1", "print('a')\n")
        _upload(pair, f"{_dir(5)}/nb0", "print('a')\n")  # edited once, at the same time as d03's second edit
        clock.tick(WINDOW)
        _sync(pair)  # both listed: d03 shows two changes 300 s apart, d05 one
        listed = []
        for _ in range(15):
            clock.tick(CYCLE)
            listed.append(_sync(pair))
        assert min(listed) >= 2, listed  # the root and d03 every cycle for the quarter of an hour
        assert _interval(pair, _dir(3)) == CYCLE
        assert _interval(pair, _dir(5)) > CYCLE  # a single change: slowing down with its quiet spell
        _upload(pair, f"{_dir(3)}/nb2", "print('b')\n")
        clock.tick(CYCLE)
        _sync(pair)
        assert _target_body(pair, f"{_dir(3)}/nb2") == "print('b')"


def test_min_revisit_lets_the_tree_run_often_without_listing_a_busy_directory_every_cycle(pair: Pair) -> None:
    """With cycles every 20 s and `min_revisit: 60`, a directory that keeps changing is due two thirds of that after
    each listing (40 s), so listed every other cycle, not every 20 s: running the kinds often makes hinted and newly
    due directories quick, and a busy one still costs a listing per `min_revisit`, not one per cycle."""
    _seed(pair)
    fast = {"kinds": {k: {"max_staleness": WINDOW, "interval": 20.0, "min_revisit": CYCLE} for k in KINDS}}
    with freeze_time("2026-12-05 00:00:00") as clock:
        everything = _sync(pair, **fast)
        clock.tick(WINDOW)
        listed = []
        for step in range(9):  # d03 changes before every cycle
            _upload(pair, f"{_dir(3)}/nb0", f"print({step})\n")
            listed.append(_sync(pair, **fast))
            clock.tick(20.0)
        assert listed[0] == everything, listed  # everything was due after the window
        assert listed[1:] == [1, 2, 1, 2, 1, 2, 1, 2], listed  # the root each cycle, d03 every other
        assert _target_body(pair, f"{_dir(3)}/nb0") == "print(8)"
        plain = {"kinds": {k: {"max_staleness": WINDOW, "interval": 20.0} for k in KINDS}}
        clock.tick(20.0)  # the listing due under min_revisit comes
        for step in range(3):
            _upload(pair, f"{_dir(3)}/nb0", f"print({step})\n")
            assert _sync(pair, **plain) == 2  # without it: the busy directory every cycle
            clock.tick(20.0)


def test_the_drift_check_lists_on_the_target_only_what_the_source_listed_and_finds_drift_when_it_does(
    pair: Pair,
) -> None:
    """Listed by need, the drift check reads the target directories the source listed this cycle (not the whole
    target tree every cycle); a hand edit on the target elsewhere is found when its directory comes due."""
    _seed(pair)
    edited = f"{_dir(2)}/nb1"
    with freeze_time("2026-12-05 00:00:00") as clock:
        _sync(pair)
        clock.tick(1)
        _sync(pair)  # the drift baselines of the first sync's imports
        pair.dst.workspace.upload(
            edited,
            io.BytesIO(b"print('by hand')\n"),
            format=ImportFormat.SOURCE,
            language=Language.PYTHON,
            overwrite=True,
        )
        clock.tick(1)
        pair.reset_stats()
        reports = pair.sync(only=KINDS, **BY_NEED)
        assert endpoint_count(pair.target, LIST) == 1  # the root only, as on the source
        assert reports["notebooks"].drifted == 0  # not listed this cycle: its baseline stands, no false "deleted"
        clock.tick(WINDOW)
        reports = pair.sync(only=KINDS, **BY_NEED)
        assert reports["notebooks"].drifted == 1  # d02 due: the hand edit is found
        ctx = pair.context(**BY_NEED)
        assert ctx.store.prior("notebooks", edited).status == "drifted"


def test_a_notebook_deleted_in_a_directory_not_listed_is_deleted_only_once_it_is_listed(pair: Pair) -> None:
    """Entries of a directory not listed this cycle are as last seen: deletion is decided from a real listing."""
    _seed(pair)
    gone = f"{_dir(5)}/nb2"
    with freeze_time("2026-12-05 00:00:00") as clock:
        _sync(pair)
        clock.tick(1)
        pair.src.workspace.delete(gone)
        reports = pair.sync(only=KINDS, **BY_NEED)
        assert reports["notebooks"].deleted == 0
        assert _target_body(pair, gone) == "print(1)"
        ctx = pair.context(**BY_NEED)
        prior = ctx.store.prior("notebooks", gone)
        assert prior is not None and prior.status == "synced"

        clock.tick(WINDOW)
        reports = pair.sync(only=KINDS, **BY_NEED)
        assert reports["notebooks"].deleted == 1
        assert _target_body(pair, gone) is None


def test_an_audit_log_hint_makes_the_directory_due_at_once(pair: Pair) -> None:
    """importNotebook names the path: its directory is listed in the next cycle, not when its visit comes."""
    _seed(pair)
    with freeze_time("2026-12-05 00:00:00") as clock:  # the warehouse starts on the emulator's (frozen) clock
        warehouse = pair.src.warehouses.create(name="audit", cluster_size="2X-Small", auto_stop_mins=0).response.id
        hinted = {"metastore": {"source_warehouse_id": warehouse}, "audit_hints": {"interval": 10}}
        _sync(pair, **hinted)  # the first read of the audit log sets its checkpoint
        clock.tick(CYCLE / 4)  # no directory's first revisit comes before one cycle
        _upload(pair, f"{_dir(4)}/nb1", "print('hinted')\n")
        clock.tick(CYCLE / 4)
        assert _sync(pair, **hinted) == 2  # the root and d04
        assert _target_body(pair, f"{_dir(4)}/nb1") == "print('hinted')"


def test_with_audit_hints_working_a_changing_directory_is_not_polled_every_cycle_its_changes_are_announced(
    pair: Pair,
) -> None:
    """The audit log names every edit within its delivery delay: polling a hot directory every cycle by its change
    rate only spent the budget the hinted reads then waited for (the RPO benchmark: 8 of 9 requests/s paced)."""
    _seed(pair)
    with freeze_time("2026-12-05 00:00:00") as clock:
        warehouse = pair.src.warehouses.create(name="audit", cluster_size="2X-Small", auto_stop_mins=0).response.id
        hinted = {"metastore": {"source_warehouse_id": warehouse}, "audit_hints": {"interval": 10}}
        _sync(pair, **hinted)
        clock.tick(WINDOW)
        _sync(pair, **hinted)
        for body in ("a", "b", "c"):  # changing every two cycles: by its rate it would be listed every cycle
            clock.tick(CYCLE)
            _upload(pair, f"{_dir(3)}/nb0", f"print('{body}')\n")
            clock.tick(CYCLE)
            assert _sync(pair, **hinted) == 2  # named by the audit log: listed at once
            assert _target_body(pair, f"{_dir(3)}/nb0") == f"print('{body}')"
        intervals = []
        for _ in range(3):
            clock.tick(CYCLE)
            _sync(pair, **hinted)
            intervals.append(_interval(pair, _dir(3)))
        # Doubling (without hints, its rate would keep it at one cycle: the test above); the audit log says when.
        assert intervals[-1] >= 4 * CYCLE, intervals


def _interval(pair: Pair, directory: str) -> float:
    """The directory's revisit interval in the store's schedule."""
    store = Store(pair.state_path)
    try:
        return store._row(
            "SELECT revisit_interval FROM visits WHERE kind = 'workspace_tree' AND source_key = ?", [directory]
        )[0]
    finally:
        store.close()


def test_validate_lists_everything_and_an_unlisted_edit_is_pending(pair: Pair) -> None:
    """Truth: an edit in a directory the daemon has not listed yet is `pending` in validate, never synced."""
    _seed(pair)
    with freeze_time("2026-12-05 00:00:00") as clock:
        every = _sync(pair)
        clock.tick(1)
        _upload(pair, f"{_dir(8)}/nb0", "print('unseen')\n")
        assert _sync(pair) == 1
        pair.reset_stats()
        report = validate(pair.context(**BY_NEED), KINDS)
        assert endpoint_count(pair.source, LIST) >= every
        notebooks = next(k for k in report.kinds if k.kind == "notebooks")
        assert notebooks.pending == 1 and not report.ready_for_cutover
        ctx = pair.context(**BY_NEED)
        assert ctx.store.oldest_verification("notebooks") == clock.time_to_freeze.timestamp() - 1


def test_max_staleness_zero_lists_the_whole_tree_every_cycle(pair: Pair) -> None:
    """`max_staleness: 0` keeps the full listing each cycle."""
    _seed(pair)
    every_cycle = {"kinds": {k: {"max_staleness": 0} for k in KINDS}}
    every = _sync(pair, **every_cycle)
    assert _sync(pair, **every_cycle) == every


def test_how_long_the_trees_cycles_took_of_late_sets_how_early_a_directory_is_due(pair: Pair) -> None:
    """The tree's kinds run one after another: a directory is due early by their longest recent cycles added up
    (freshness.next_visit), so the slowest cycle still lands a cold edit within `max_staleness`."""
    store = Store(pair.state_path)
    try:
        with freeze_time("2026-12-05 00:00:00") as clock:
            for kind, seconds in (("directories", 40.0), ("notebooks", 22.0), ("directories", 10.0), ("jobs", 300.0)):
                cycle = store.start_cycle(kind)
                clock.tick(seconds)
                store.finish_cycle(cycle, {}, "ok")
            store.start_cycle("notebooks")  # running: not counted
            now = clock.time_to_freeze.timestamp()
            assert store.longest_cycles(KINDS, now - 3600) == 62.0  # 40 + 22: jobs are not the tree's
            clock.tick(7200)
            assert store.longest_cycles(KINDS, now + 3600) == 0.0  # an hour later, none of late
            for at in (now, now + CYCLE):  # a first listing, then one unchanged (the first's phase spreads the sweep)
                store.record_listings(
                    "workspace_tree", {"/Shared/d00": (False, "x", ())}, [], at, CYCLE, WINDOW, lead=62.0
                )
                store.record_listings("workspace_tree", {"/Shared/d01": (False, "x", ())}, [], at, CYCLE, WINDOW)
            schedule = store.listing_schedule("workspace_tree")
    finally:
        store.close()
    # Due a margin before the window ends: the next cycle starts up to max(interval, 62 s) late and takes 62 s.
    assert schedule["/Shared/d00"][0] == now + CYCLE + WINDOW - (max(CYCLE, 62.0) + 62.0)
    assert schedule["/Shared/d01"][0] == now + CYCLE + WINDOW - 2 * CYCLE  # no cycle of late: two cycles


def _sliced_cycle(pair: Pair, **overrides: Any) -> set[str]:
    """One daemon cycle of the workspace kinds with a 1 s time slice, one listing at a time at 4 requests/s (a
    walk of the 10 due directories takes ~3 s): the kinds that stopped at the slice (the daemon runs them again)."""
    source = {"host": pair.source.url, "token": pair.source.token, "max_requests_per_second": 4}
    ctx = pair.context(**{**BY_NEED, "concurrency": 1, "source": source, **overrides})
    try:
        engine = Engine(ctx, time_slice=1.0)
        reports = engine.cycle(KINDS)
    finally:
        ctx.store.close()
    assert all(r.errors == 0 for r in reports), reports
    return engine.sliced


def _by_due_time(pair: Pair) -> list[str]:
    store = Store(pair.state_path)
    try:
        schedule = store.listing_schedule("workspace_tree")
    finally:
        store.close()
    return sorted((path for path in schedule if path.startswith("/Shared/d")), key=lambda path: schedule[path][0])


def test_a_cycle_lists_the_most_overdue_directories_for_its_time_slice_and_the_daemon_runs_it_again(
    pair: Pair,
) -> None:
    """A change found in a listing is exported within the slice, not after a walk of every due directory; the
    directories left due are listed by the next cycles, and none is skipped for good."""
    _seed(pair)
    with freeze_time("2026-12-05 00:00:00", tick=True) as clock:
        _sync(pair)
        order = _by_due_time(pair)
        first, last = order[0], order[-1]
        clock.tick(WINDOW)  # every directory due
        _upload(pair, f"{first}/nb0", "print('first')\n")
        _upload(pair, f"{last}/nb0", "print('last')\n")
        assert _sliced_cycle(pair)  # the daemon runs the tree kinds again
        assert _target_body(pair, f"{first}/nb0") == "print('first')"  # the most overdue: listed in the slice
        assert _target_body(pair, f"{last}/nb0") == "print(1)"  # due still: the next cycle's
        for _ in range(8):
            if not _sliced_cycle(pair):
                break
        assert _target_body(pair, f"{last}/nb0") == "print('last')"
        assert pair.sync(only=KINDS, **BY_NEED)  # a cycle with nothing due left: only the root is listed
        pair.reset_stats()
        assert _sync(pair) == 1

        clock.tick(WINDOW)  # due again: the daemon's own cycle is cut at its slice and queues its continuation
        source = {"host": pair.source.url, "token": pair.source.token, "max_requests_per_second": 4}
        ctx = pair.context(**{**BY_NEED, "concurrency": 1, "source": source, "time_slice_seconds": 1})
        daemon = Daemon(ctx)
        (group,) = [group for group in daemon.groups if set(group) & set(KINDS)]
        daemon._run(group)
        assert any(job["id"].startswith(f"{'+'.join(group)}:again:") for job in daemon.jobs())


def test_a_hinted_directory_is_listed_first_whatever_else_is_due(pair: Pair) -> None:
    """The audit log names the least overdue directory's edit: the slice lists it before the others due."""
    _seed(pair)
    with freeze_time("2026-12-05 00:00:00", tick=True) as clock:
        warehouse = pair.src.warehouses.create(name="audit", cluster_size="2X-Small", auto_stop_mins=0).response.id
        hinted = {"metastore": {"source_warehouse_id": warehouse}, "audit_hints": {"interval": 10}}
        _sync(pair, **hinted)
        last = _by_due_time(pair)[-1]
        clock.tick(WINDOW)
        _upload(pair, f"{last}/nb0", "print('hinted')\n")
        clock.tick(1)
        assert _sliced_cycle(pair, **hinted)
        assert _target_body(pair, f"{last}/nb0") == "print('hinted')"
