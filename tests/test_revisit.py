"""Object ACLs are read by need, not every cycle: the due slice, the ACLs of objects just written, and every
object within `permissions.max_staleness`; the schedule survives a restart and a cutover still reads everything.

The Permissions API has no bulk read and no version (one GET per object): the ACL GETs on the source are
counted with the emulator's per-endpoint request counts.
"""

from __future__ import annotations

import io
import logging
from typing import Any

import pytest
from conftest import Pair, endpoint_count
from databricks.sdk.service import iam
from databricks.sdk.service.dashboards import Dashboard
from databricks.sdk.service.workspace import ImportFormat, Language
from freezegun import freeze_time
from prometheus_client import REGISTRY

from dbsync import metrics
from dbsync.cutover import Runbook, open_cutover_context
from dbsync.report import validate

ACL_GET = "GET /api/2.0/permissions/{type:path}/{id}"
KINDS = ["groups", "directories", "notebooks", "permissions"]
NOTEBOOKS = 24
CYCLE = 300.0  # the permissions kind's default interval
WINDOW = 1200.0  # permissions.max_staleness in these tests: four cycles
BY_NEED = {"kinds": {"permissions": {"max_staleness": WINDOW}}, "identities": {"create_users": True}}


def _object_id(pair: Pair, path: str) -> str:
    return str(pair.src.workspace.get_status(path).object_id)


def _grant(pair: Pair, path: str, level: iam.PermissionLevel) -> None:
    pair.src.permissions.set(
        "notebooks",
        _object_id(pair, path),
        access_control_list=[iam.AccessControlRequest(group_name="readers", permission_level=level)],
    )


def _seed(pair: Pair) -> list[str]:
    """A directory of notebooks, each shared with the `readers` group."""
    pair.src.groups.create(display_name="readers")
    pair.src.workspace.mkdirs("/Shared/acl")
    paths = [f"/Shared/acl/nb{i:02d}" for i in range(NOTEBOOKS)]
    for path in paths:
        _upload(pair, path, "print(1)\n")
        _grant(pair, path, iam.PermissionLevel.CAN_READ)
    return paths


def _upload(pair: Pair, path: str, body: str) -> None:
    pair.src.workspace.upload(
        path, io.BytesIO(body.encode()), format=ImportFormat.SOURCE, language=Language.PYTHON, overwrite=True
    )


def _acl_reads(pair: Pair, **overrides: Any) -> int:
    """One `sync --once` of the kinds (a new process each time): how many ACLs it read on the source."""
    pair.reset_stats()
    reports = pair.sync(only=KINDS, **{**BY_NEED, **overrides})
    assert reports["permissions"].errors == 0, reports["permissions"]
    return endpoint_count(pair.source, ACL_GET)


def _target_level(pair: Pair, path: str) -> str | None:
    target_id = str(pair.dst.workspace.get_status(path).object_id)
    acl = pair.dst.permissions.get("notebooks", target_id).access_control_list or []
    for entry in acl:
        if entry.group_name == "readers":
            return next(p.permission_level.value for p in entry.all_permissions or [] if not p.inherited)
    return None


def test_a_no_change_cycle_reads_only_the_due_slice_and_a_restart_keeps_the_schedule(pair: Pair) -> None:
    """The first sync reads every ACL; the next process, at once, reads none (the schedule is in the store)."""
    _seed(pair)
    with freeze_time("2026-12-05 00:00:00") as clock:
        every = _acl_reads(pair)  # the notebooks' ACLs and their directories'
        assert every >= NOTEBOOKS
        assert _acl_reads(pair) == 0  # a new process right after: nothing is due, nothing re-read
        slices = []
        for _ in range(int(WINDOW / CYCLE)):
            clock.tick(CYCLE)
            slices.append(_acl_reads(pair))
    assert all(0 < n < every / 2 for n in slices[:3]), slices  # a slice per cycle, not the whole kind
    assert sum(slices[:3]) == every, slices  # every ACL read again once within the window


def test_after_max_staleness_every_acl_has_been_read(pair: Pair) -> None:
    """No ACL goes unread longer than `max_staleness`: the oldest verification is within the window."""
    _seed(pair)
    with freeze_time("2026-12-05 00:00:00") as clock:
        _acl_reads(pair)
        start = clock.time_to_freeze.timestamp()
        for _ in range(int(WINDOW / CYCLE)):
            clock.tick(CYCLE)
            _acl_reads(pair)
        ctx = pair.context(**BY_NEED)
        oldest = ctx.store.oldest_verification("permissions")
        assert oldest is not None and oldest > start
        assert clock.time_to_freeze.timestamp() - oldest <= WINDOW


def test_an_object_edited_on_the_source_gets_its_acl_read_in_that_cycle(pair: Pair) -> None:
    """A notebook rewritten on the source has its ACL read in the same cycle: its new grant reaches the target."""
    paths = _seed(pair)
    with freeze_time("2026-12-05 00:00:00") as clock:
        _acl_reads(pair)
        clock.tick(1)
        _upload(pair, paths[5], "print(2)\n")
        _grant(pair, paths[5], iam.PermissionLevel.CAN_RUN)
        assert _acl_reads(pair) == 1  # that notebook's ACL, no other
        assert _target_level(pair, paths[5]) == "CAN_RUN"


def test_an_acl_not_read_yet_is_pending_and_a_cutover_final_sync_reads_it(pair: Pair) -> None:
    """Truth: an ACL edit a cycle has not read is `pending` in validate; cutover's final sync reads every ACL."""
    paths = _seed(pair)
    with freeze_time("2026-12-05 00:00:00") as clock:
        _acl_reads(pair)
        clock.tick(1)
        _grant(pair, paths[3], iam.PermissionLevel.CAN_EDIT)  # the ACL alone: the notebook is unchanged
        assert _acl_reads(pair) == 0  # not due yet
        report = validate(pair.context(**BY_NEED), KINDS)
        permissions = next(k for k in report.kinds if k.kind == "permissions")
        assert permissions.pending == 1 and not report.ready_for_cutover

        pair.reset_stats()
        ctx = open_cutover_context(pair.settings(**BY_NEED))
        try:
            Runbook(ctx).run()
        finally:
            ctx.store.close()
        assert endpoint_count(pair.source, ACL_GET) >= NOTEBOOKS  # the final sync read every ACL
        assert _target_level(pair, paths[3]) == "CAN_EDIT"


def test_max_staleness_zero_reads_every_acl_every_cycle(pair: Pair) -> None:
    """`max_staleness: 0` keeps the old sweep: every ACL read in every cycle."""
    _seed(pair)
    every_cycle = {"kinds": {"permissions": {"max_staleness": 0}}}
    every = _acl_reads(pair, **every_cycle)
    assert every >= NOTEBOOKS
    assert _acl_reads(pair, **every_cycle) == every


def test_staleness_is_exported_grows_between_cycles_and_stays_within_its_target(pair: Pair) -> None:
    """dbsync_staleness_seconds{kind}: the age of the oldest ACL not read since; never above max_staleness."""
    _seed(pair)
    staleness = metrics.STALENESS.labels("permissions")
    with freeze_time("2026-12-05 00:00:00") as clock:
        _acl_reads(pair)
        assert staleness._value.get() == 0  # every ACL was read just now
        assert REGISTRY.get_sample_value("dbsync_staleness_target_seconds", {"kind": "permissions"}) == WINDOW
        clock.tick(CYCLE - 1)
        assert REGISTRY.get_sample_value("dbsync_staleness_seconds", {"kind": "permissions"}) == CYCLE - 1
        seen = []
        for _ in range(8):
            clock.tick(CYCLE)
            _acl_reads(pair)
            seen.append(REGISTRY.get_sample_value("dbsync_staleness_seconds", {"kind": "permissions"}))
        every_cycle = REGISTRY.get_sample_value("dbsync_staleness_seconds", {"kind": "notebooks"})
    assert max(seen) <= WINDOW and max(seen) > CYCLE, seen  # a sweep spread over the window, within it
    assert every_cycle == 0  # a kind read in full every cycle is as old as its last cycle


def test_dashboards_are_read_by_need_by_default_and_in_full_with_max_staleness_0(pair: Pair) -> None:
    """The same schedule serves any kind without a version: dashboards by default (2,500 dashboards read every
    cycle cost a third of a 50 requests/s budget); `max_staleness: 0` reads every one every cycle again."""
    for name in ("a", "b", "c"):
        pair.src.lakeview.create(Dashboard(display_name=name, parent_path="/Shared"))
    dashboard_get = "GET /api/2.0/lakeview/dashboards/{id}"
    every_cycle = {"kinds": {"dashboards": {"max_staleness": 0}}}

    def reads(**settings: Any) -> int:
        pair.reset_stats()
        pair.sync(only=["dashboards"], **settings)
        return endpoint_count(pair.source, dashboard_get)

    with freeze_time("2026-12-05 00:00:00"):
        assert reads(**every_cycle) == 3 and reads(**every_cycle) == 3
        assert reads() == 3  # no schedule yet: all due
        assert reads() == 0  # the default: read again when due, within 30 minutes
    with freeze_time("2026-12-05 00:31:00"):
        assert reads() == 3


def test_acl_writes_find_the_target_object_by_the_drift_checks_baseline_not_a_lookup(pair: Pair) -> None:
    """A changed ACL goes on the target object whose id the drift check last saw: no get-status per ACL, no
    target tree walk (which at 1,000 directories was a thousand listings in every cycle writing 50+ ACLs)."""
    paths = _seed(pair)
    pair.sync(only=KINDS, **BY_NEED)
    pair.sync(only=KINDS, **BY_NEED)  # the drift baselines of the first sync's imports
    changed = paths[:6]  # under the edit-storm guard's ratio
    for path in changed:
        _grant(pair, path, iam.PermissionLevel.CAN_RUN)
    pair.reset_stats()
    reports = pair.sync(only=["permissions"], kinds={"permissions": {"max_staleness": 0}})
    assert reports["permissions"].updated == len(changed) and reports["permissions"].errors == 0
    assert endpoint_count(pair.target, "GET /api/2.0/workspace/get-status") == 0
    assert endpoint_count(pair.target, "GET /api/2.0/workspace/list") == 0
    assert all(_target_level(pair, path) == "CAN_RUN" for path in changed)


def test_the_daemon_reads_due_acls_for_its_time_slice_then_continues_after_the_kinds_waiting(pair: Pair) -> None:
    """A permissions cycle stops taking due ACLs at `time_slice_seconds` and the daemon queues its continuation
    behind the groups waiting for the worker: at 100,000 objects under a budget, one permissions cycle read ACLs
    for minutes while the 2-minute kinds (users, clusters, jobs) went 1,700 s stale behind it."""
    from dbsync.engine import Engine
    from dbsync.scheduler import Daemon

    _seed(pair)
    with freeze_time("2026-12-05 00:00:00", tick=True) as clock:  # real seconds pass: the slice is measured
        pair.sync(only=KINDS, **BY_NEED)
        clock.tick(WINDOW)  # every ACL due
        pair.source.set_faults(latency_ms=700, path_prefix="/api/2.0/permissions")
        pair.reset_stats()
        ctx = pair.context(time_slice_seconds=1, concurrency=1, **BY_NEED)  # 4 reads in flight at most
        engine = Engine(ctx, retry_now=False, time_slice=1)
        first = {r.kind: r for r in engine.cycle(KINDS)}["permissions"]
        read_first, acls = endpoint_count(pair.source, ACL_GET), ctx.store.live_count("permissions")
        assert engine.sliced == {"permissions"} and 0 < read_first < NOTEBOOKS + 1
        # The sweep stopped listing at its slice: the rest is still due, counted as not read (never as unchanged).
        assert first.listed < acls and first.not_due == acls - read_first
        assert ctx.store.oldest_verification("permissions") < clock.time_to_freeze.timestamp() - WINDOW / 2

        daemon = Daemon(ctx)
        daemon._run(("permissions",))  # the daemon's own cycle: sliced again, a continuation is queued
        assert any(job["id"].startswith("permissions:again:") for job in daemon.jobs())
        pair.source.set_faults(latency_ms=0)
        Engine(ctx, retry_now=False, time_slice=60).cycle(["permissions"])
        assert endpoint_count(pair.source, ACL_GET) == acls  # each once: a slice goes on where the last stopped


def test_the_daemons_sweep_reads_the_most_overdue_acls_first_and_each_once(pair: Pair) -> None:
    """A slice of the daemon's sweep reads the overdue ACLs most overdue first, then walks on in key order past
    them. In key order alone one that came due just after the walk went by waited a whole pass for it to come
    round, so each ACL was due a pass early: at 100,000 ACLs under a 50 requests/s budget the passes lengthened
    (424 to 2,220 s), asked more reads, and ACLs went 767 s past their max_staleness. Now an ACL is due two
    intervals early (2 x 60 s), whatever the pass."""
    from dbsync.engine import Engine

    _seed(pair)
    settings = {**BY_NEED, "kinds": {"permissions": {"max_staleness": WINDOW, "interval": 60}}}
    with freeze_time("2026-12-05 00:00:00", tick=True) as clock:
        pair.sync(only=KINDS, **settings)  # the first schedule spreads the revisits over the window, by key
        clock.tick(WINDOW)  # every ACL due, some longer than others
        ctx = pair.context(concurrency=1, **settings)  # one read at a time: read in the order listed
        due = {key: at for key, at, _ in _visits_by_key(ctx)}
        most_overdue_first = sorted(due, key=lambda key: due[key])
        assert most_overdue_first != sorted(due)  # the key order would read others first
        pair.source.set_faults(latency_ms=300, path_prefix="/api/2.0/permissions")
        pair.reset_stats()
        engine = Engine(ctx, retry_now=False, time_slice=1)
        engine.cycle(KINDS)  # the daemon's slice: a few reads, then the slice is used
        assert engine.sliced == {"permissions"}
        read = {key for key, at, verified in _visits_by_key(ctx) if at != due[key]}
        assert 0 < len(read) < len(due) / 2
        assert read == set(most_overdue_first[: len(read)]), (sorted(read), most_overdue_first)

        pair.source.set_faults()
        Engine(ctx, retry_now=False, time_slice=60).cycle(["permissions"])  # the next slice reads the rest
        assert endpoint_count(pair.source, ACL_GET) == len(due)  # each once: the walk skips those read first
    spans = [at - verified for _, at, verified in _visits_by_key(ctx)]
    assert all(span == WINDOW - 120 for span in spans), sorted(spans)  # two intervals early, not a pass


def test_the_walk_of_a_slice_reads_overdue_acls_beside_it_each_once(
    pair: Pair, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past its share of the slice, the sweep's walk still takes one overdue ACL (most overdue first) every few
    objects: the walk alone reads only the due ACLs it passes, a few hundred objects a second, and at 100,000 ACLs
    left ~5 of the 45 paced requests/s unused while 4,000 ACLs were overdue. Every ACL still comes once."""
    from dbsync.model import OVERDUE
    from dbsync.watchers import permissions

    monkeypatch.setattr(permissions, "OVERDUE_EVERY", 4)  # a few dozen ACLs here, not 100,000
    _seed(pair)
    with freeze_time("2026-12-05 00:00:00") as clock:
        pair.sync(only=KINDS, **BY_NEED)
        clock.tick(WINDOW)  # every ACL due
        ctx = pair.context(**BY_NEED)
        due = {key: at for key, at, _ in _visits_by_key(ctx)}
        ctx.time_slice = 1e-9  # the slice's share for the overdue alone is over at once: the walk takes them
        stubs = list(permissions.PermissionsWatcher().list(ctx, ctx.source))
    keys = [stub.key for stub in stubs]
    assert sorted(keys) == sorted(due)  # each once
    overdue = [stub.key for stub in stubs if stub.out_of_turn == OVERDUE]
    assert len(overdue) >= len(due) // (4 + 1)
    assert overdue == sorted(overdue, key=lambda key: due[key]), "most overdue first"
    assert keys[0] == overdue[0] and due[keys[0]] == min(due.values())  # the most overdue, beside the first object


def test_with_no_acl_overdue_the_walk_reads_those_due_soon_ahead_of_their_time(
    pair: Pair, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once no ACL is overdue, the walk takes those due within a sixteenth of their interval, soonest first, and
    they are read: a lead the other kinds' bursts of requests eat into before an ACL goes overdue (read just in
    time, each burst left ACLs past their max_staleness at 100,000 objects). An ACL that changed of late (a short
    interval, doubling) is not read ahead up its ladder."""
    from dbsync.engine import Engine
    from dbsync.model import OVERDUE
    from dbsync.watchers import permissions

    monkeypatch.setattr(permissions, "OVERDUE_EVERY", 1)
    _seed(pair)
    with freeze_time("2026-12-05 00:00:00"):
        pair.sync(only=KINDS, **BY_NEED)
        ctx = pair.context(**BY_NEED)
        keys = sorted(key for key, _, _ in _visits_by_key(ctx))
        now = ctx.store.db.execute("SELECT MAX(verified_at) FROM visits").fetchone()[0]
        due = {key: now + 5 + 10 * n for n, key in enumerate(reversed(keys))}  # the last key soonest
        changed = keys[-3]  # due in 25 s, but its interval is a cycle: read ahead 18.75 s at most
        with ctx.store._transaction():
            for key in keys:
                ctx.store.db.execute(
                    "UPDATE visits SET next_visit = ?, revisit_interval = ? WHERE kind = 'permissions' "
                    "AND source_key = ?",
                    [due[key], CYCLE if key == changed else WINDOW, key],
                )
        ahead = [key for key in sorted(keys, key=due.get) if due[key] <= now + WINDOW / 16 and key != changed]
        assert len(ahead) == 7 and all(due[key] > now for key in keys)  # none overdue; seven due within 75 s

        ctx.time_slice = 60
        stubs = list(permissions.PermissionsWatcher().list(ctx, ctx.source))
        assert [stub.key for stub in stubs if stub.out_of_turn == OVERDUE] == ahead  # soonest first
        assert sorted(stub.key for stub in stubs) == keys  # each once

        pair.reset_stats()
        Engine(ctx, retry_now=False, time_slice=60).cycle(["permissions"])
    assert endpoint_count(pair.source, ACL_GET) == len(ahead)  # read, not left as not due
    read = {key for key, at, _ in _visits_by_key(ctx) if at != due[key]}
    assert read == set(ahead)


def test_a_slice_spent_on_overdue_acls_keeps_where_the_sweep_goes_on(pair: Pair) -> None:
    """A slice whose time went on overdue ACLs before its walk moved leaves the walk's resume point as it was: the
    next slice's walk goes on from there, not from the start of the order (re-walking the same first objects)."""
    from dbsync.engine import Engine

    _seed(pair)
    with freeze_time("2026-12-05 00:00:00", tick=True) as clock:
        pair.sync(only=KINDS, **BY_NEED)
        clock.tick(WINDOW)  # every ACL due: more than a window of the listing is overdue
        ctx = pair.context(concurrency=1, **BY_NEED)
        resume = "notebooks:/Shared/acl/nb10"
        ctx.store.record_sweep_resume("permissions", resume)
        pair.source.set_faults(latency_ms=700, path_prefix="/api/2.0/permissions")
        engine = Engine(ctx, retry_now=False, time_slice=1)
        engine.cycle(["permissions"])  # a read or two of the most overdue, then the slice is used
        assert engine.sliced == {"permissions"}
        assert ctx.store.sweep_resume("permissions") == resume


def _visits_by_key(ctx: Any) -> list[tuple[str, float, float]]:
    """(key, next visit, last verified) of every ACL."""
    return ctx.store.db.execute(
        "SELECT source_key, next_visit, verified_at FROM visits WHERE kind = 'permissions'"
    ).fetchall()


def _visits(ctx: Any) -> list[tuple[float, float]]:
    """(next visit, last verified) of every ACL."""
    return ctx.store.db.execute("SELECT next_visit, verified_at FROM visits WHERE kind = 'permissions'").fetchall()


def test_a_sweep_goes_on_from_where_its_last_slice_stopped_round_to_it(pair: Pair) -> None:
    """A permissions cycle that stopped at its slice is followed by one that starts after the last ACL it looked at
    and comes round to it: starting at the beginning each time re-walked the same first objects (a store read each)
    and a slow sweep never reached the last keys. One that came round to where it began leaves the next there too:
    starting again at the beginning made a short round of the sweep (67 s against 300-490 s at 100,000 ACLs),
    taken as a pass, whose length is each ACL's margin."""
    from dbsync.engine import Engine
    from dbsync.watchers.permissions import PermissionsWatcher

    _seed(pair)
    pair.sync(only=KINDS, **BY_NEED)
    ctx = pair.context(**BY_NEED)

    def listing() -> list[str]:
        return [stub.key for stub in PermissionsWatcher().list(ctx, ctx.source)]

    keys = listing()
    assert len(keys) == len(set(keys)) > NOTEBOOKS
    ctx.store.record_sweep_resume("permissions", keys[10])
    assert listing() == keys[11:] + keys[:11]
    Engine(ctx, retry_now=False, time_slice=60).cycle(["permissions"])  # the daemon's turn, round to keys[10]
    assert ctx.store.sweep_resume("permissions") == keys[10]
    assert listing() == keys[11:] + keys[:11]
    ctx.store.record_sweep_resume("permissions", None)
    assert listing() == keys


def test_a_schedule_the_budget_cannot_keep_is_said_with_the_fix_and_its_need_is_exported(
    pair: Pair, caplog: pytest.LogCaptureFixture
) -> None:
    """At 100,000 objects the ACL sweep alone needs 32 of the 45 requests/s a 50/s budget paces: every object
    cannot stay within its max_staleness, whatever the order of the reads. The daemon says so at start, with the
    settings that would fit (each alone: the sweep's max_staleness, or the budget), instead of letting the
    staleness alert find it an hour later; either setting, taken, silences it."""
    import re

    from dbsync import revisit
    from dbsync.registry import kinds
    from dbsync.revisit import check_schedule_need

    caplog.set_level(logging.WARNING, logger=revisit.log.name)  # whatever level a CLI test left on the root
    _seed(pair)
    pair.sync(only=KINDS, **BY_NEED)
    selected = [k for k in kinds() if k.name in KINDS]

    def check(budget: float, max_staleness: float) -> tuple[dict, list[str]]:
        caplog.clear()
        source = {"host": pair.source.url, "token": pair.source.token, "max_requests_per_second": budget}
        ctx = pair.context(kinds={"permissions": {"max_staleness": max_staleness}}, source=source)
        try:
            needs = {need.kinds: need for need in check_schedule_need(ctx, selected)}
        finally:
            ctx.store.close()
        return needs, [r.getMessage() for r in caplog.records if "revisit schedule needs" in r.getMessage()]

    needs, said = check(1.0, 10)
    acls = needs[("permissions",)].reads
    assert acls >= NOTEBOOKS  # each notebook's ACL and its directory's
    # 1 request/s paces 0.9: the sweep's ~2.6 reads/s cannot be had.
    assert len(said) == 1 and f"permissions: {acls:,} reads within 10 s" in said[0], said
    need = REGISTRY.get_sample_value("dbsync_revisit_need_requests_per_second", {"kind": "permissions"})
    assert need == pytest.approx(acls / 10)
    fix = re.search(r"kinds\.permissions\.max_staleness to ([\d,]+) s or more, or source\.max_requests_per_second "
                    r"to ([\d,]+) or more", said[0])  # fmt: skip
    assert fix, said[0]
    max_staleness, budget = (int(group.replace(",", "")) for group in fix.groups())
    assert max_staleness > 10 and budget > 1
    assert check(1.0, max_staleness)[1] == []
    assert check(float(budget), 10)[1] == []
    assert check(1.0, max_staleness / 2)[1] != []  # not just any large number: half of it does not fit
