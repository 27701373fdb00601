"""Audit-log hints end to end: an ACL change the source's `system.access.audit` records is read in the next cycle,
not when its revisit comes; a lagging table only delays it, a missing one only leaves it to the schedule.

The source emulator records its own writes in that table (tests/test_emulator_audit.py); dbsync reads it on the
source SQL warehouse (`metastore.source_warehouse_id`).
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from typing import Any

from conftest import Pair, endpoint_count
from databricks.sdk.service import iam
from databricks.sdk.service.dashboards import Dashboard
from databricks.sdk.service.workspace import AclPermission
from freezegun import freeze_time
from test_revisit import ACL_GET, KINDS, _grant, _seed, _target_level

from dbsync.hints import UNAVAILABLE
from dbsync.model import AGAIN, AHEAD
from dbsync.registry import kind_names
from dbsync.scheduler import Daemon
from dbsync.store import Store
from dbsync.watchers import permissions

HOUR = 3600.0  # permissions' default max_staleness: nothing is due again within these tests unless hinted


def _settings(pair: Pair, **extra: Any) -> dict[str, Any]:
    created = pair.src.warehouses.create(name="audit", cluster_size="2X-Small", auto_stop_mins=0).response.id
    return {
        "metastore": {"source_warehouse_id": created},
        "audit_hints": {"interval": 10},
        "identities": {"create_users": True},
        **extra,
    }


def _acl_reads(pair: Pair, settings: dict[str, Any]) -> int:
    pair.reset_stats()
    reports = pair.sync(only=KINDS, **settings)
    assert reports["permissions"].errors == 0, reports["permissions"]
    return endpoint_count(pair.source, ACL_GET)


def test_an_acl_change_in_the_audit_log_is_read_in_the_next_cycle(pair: Pair) -> None:
    """The ACL alone changed (no version anywhere): the audit row makes that one ACL due at once."""
    paths = _seed(pair)
    with freeze_time("2026-12-05 00:00:00") as clock:
        settings = _settings(pair)
        pair.sync(only=KINDS, **settings)  # the first read sets the checkpoint: older events are the sweep's
        clock.tick(1)
        _grant(pair, paths[3], iam.PermissionLevel.CAN_EDIT)
        clock.tick(20)
        assert _acl_reads(pair, settings) == 1  # that ACL, hinted; nothing else is due
        assert _target_level(pair, paths[3]) == "CAN_EDIT"
        clock.tick(20)
        assert _acl_reads(pair, settings) == 0  # the checkpoint moved: the same row is not read twice


def test_a_lagging_audit_table_only_delays_the_hint(pair: Pair) -> None:
    """With a 60 s delivery delay the change is read once its row shows, never missed and never wrong."""
    paths = _seed(pair)
    pair.source.workspace.audit_delay_seconds = 60
    with freeze_time("2026-12-05 00:00:00") as clock:
        settings = _settings(pair)
        pair.sync(only=KINDS, **settings)
        clock.tick(1)
        _grant(pair, paths[7], iam.PermissionLevel.CAN_RUN)
        clock.tick(30)
        assert _acl_reads(pair, settings) == 0  # not delivered yet
        assert _target_level(pair, paths[7]) == "CAN_READ"
        clock.tick(40)
        assert _acl_reads(pair, settings) == 1
        assert _target_level(pair, paths[7]) == "CAN_RUN"


def test_a_missing_audit_table_leaves_the_change_to_the_schedule(pair: Pair) -> None:
    """No system table: one event says why, the cycle has no error, and the ACL is read by max_staleness."""
    paths = _seed(pair)
    pair.source.workspace.audit_table = False
    with freeze_time("2026-12-05 00:00:00") as clock:
        settings = _settings(pair)
        pair.sync(only=KINDS, **settings)
        clock.tick(1)
        _grant(pair, paths[2], iam.PermissionLevel.CAN_MANAGE)
        clock.tick(20)
        assert _acl_reads(pair, settings) == 0
        clock.tick(20)
        _acl_reads(pair, settings)
        ctx = pair.context(**settings)
        said = [e for e in ctx.store.events(outcome="unavailable") if e["action"] == "hints"]
        assert len(said) == 1 and "TABLE_OR_VIEW_NOT_FOUND" in said[0]["message"], said
        assert ctx.store.get_meta(UNAVAILABLE) is not None
        clock.tick(HOUR)
        assert _acl_reads(pair, settings) > 0
        assert _target_level(pair, paths[2]) == "CAN_MANAGE"


def _daemon_after_a_grant(pair: Pair, notebook: int) -> tuple[Daemon, str]:
    """A scheduled (not started) daemon over a replicated pair whose source has since granted CAN_EDIT on one
    notebook; (the daemon, that notebook's path). Real time from here: the hints thread's clock is not frozen."""
    paths = _seed(pair)
    with freeze_time("2026-12-05 00:00:00") as clock:
        settings = _settings(pair)
        pair.sync(only=KINDS, **settings)
        clock.tick(1)
        _grant(pair, paths[notebook], iam.PermissionLevel.CAN_EDIT)
        clock.tick(20)
    daemon = Daemon(pair.context(**settings, kinds={k: {"enabled": k in KINDS} for k in kind_names()}))
    daemon.schedule()
    return daemon, paths[notebook]


def test_the_daemon_reads_a_hint_while_a_cycle_runs_and_moves_the_hinted_kind_to_now(pair: Pair) -> None:
    """`dbsync serve`: the audit log is read on a thread of its own, while a cycle holds the worker (a 60 s slice
    of ACL reads): the permissions job (interval 300 s) is moved to now without waiting for that cycle to end."""
    daemon, _ = _daemon_after_a_grant(pair, 4)
    assert daemon.scheduler.get_job("audit-hints").executor == "hints"
    assert daemon.scheduler.get_job("permissions").next_run_time.timestamp() >= time.time() + 290
    with daemon._cycle_lock:  # a cycle in flight
        reader = threading.Thread(target=daemon.poll_hints)
        reader.start()
        reader.join(timeout=30)
        assert not reader.is_alive(), "the hints read waited for the cycle"
    assert daemon.scheduler.get_job("permissions").next_run_time.timestamp() <= time.time()


def test_the_acl_sweep_runs_beside_a_cycle_in_flight_and_hand_over_waits_for_it(pair: Pair) -> None:
    """Permissions run on a worker of their own: a hinted ACL reaches the target while the tree's cycle holds the
    first worker (on one worker the two kept it ~100 % busy and a hint waited for both); a hand-over to a cutover
    still waits for the sweep in flight before it lets the store go."""
    daemon, granted = _daemon_after_a_grant(pair, 3)
    executors = {job.id: job.executor for job in daemon.scheduler.get_jobs() if job.id != "audit-hints"}
    assert executors.pop("permissions") == "sweeps"
    assert executors.pop("directories+notebooks") == "tree"  # the workspace tree has a worker of its own too
    assert set(executors.values()) == {"default"}, executors
    daemon.poll_hints()  # marks the ACL due
    with daemon._cycle_lock:  # the tree's cycle in flight on the first worker
        sweep = threading.Thread(target=daemon.run_group, args=[("permissions",)])
        sweep.start()
        sweep.join(timeout=60)
        assert not sweep.is_alive(), "the ACL sweep waited for the other worker's cycle"
    assert _target_level(pair, granted) == "CAN_EDIT"
    with daemon.workers["sweeps"].lock, daemon._quiet(0.2) as quiet:  # a sweep in flight
        assert not quiet
    with daemon._quiet(5) as quiet:
        assert quiet


def test_the_kinds_listed_whole_are_not_held_behind_a_tree_cycle_in_flight(pair: Pair) -> None:
    """The workspace tree runs on a worker of its own: at 100,000 objects a tree cycle took ~200 s under a budget,
    and the kinds listed whole every few minutes waited behind it (669-1,128 s stale against 120-300 s)."""
    daemon, _ = _daemon_after_a_grant(pair, 3)
    before = daemon.ctx.store.last_success("groups") or 0.0
    with daemon.workers["tree"].lock:  # a tree cycle in flight
        cycle = threading.Thread(target=daemon.run_group, args=[("groups",)])
        cycle.start()
        cycle.join(timeout=60)
        assert not cycle.is_alive(), "the groups cycle waited for the tree's"
    assert (daemon.ctx.store.last_success("groups") or 0.0) > before
    with daemon.workers["tree"].lock, daemon._quiet(0.2) as quiet:  # hand-over waits for the tree too
        assert not quiet


def test_a_dashboard_read_by_need_is_read_when_the_audit_log_names_it(pair: Pair) -> None:
    """A kind read by need (dashboards with a max_staleness) gets its hinted object read at once, not the others."""
    ids = [pair.src.lakeview.create(Dashboard(display_name=n, parent_path="/Shared")).dashboard_id for n in "abc"]
    dashboard_get = "GET /api/2.0/lakeview/dashboards/{id}"
    with freeze_time("2026-12-05 00:00:00") as clock:
        settings = _settings(pair, kinds={"dashboards": {"max_staleness": HOUR}})
        pair.sync(only=["dashboards"], **settings)
        clock.tick(1)
        pair.src.lakeview.update(ids[1] or "", Dashboard(display_name="b2"))
        clock.tick(20)
        pair.reset_stats()
        pair.sync(only=["dashboards"], **settings)
        assert endpoint_count(pair.source, dashboard_get) == 1
        assert {d.display_name for d in pair.dst.lakeview.list()} == {"a", "b2", "c"}


def test_a_secret_scope_acl_change_in_the_audit_log_is_read_in_the_next_cycle(pair: Pair) -> None:
    """Scope ACLs are read by need (an hour by default): the putAcl row names the scope, whose ACLs are read in the
    next cycle; the other scopes' are not read."""
    for scope in ("app", "other", "third"):
        pair.src.secrets.create_scope(scope)
    acl_list = "GET /api/2.0/secrets/acls/list"
    with freeze_time("2026-12-05 00:00:00") as clock:
        settings = _settings(pair)
        pair.sync(only=["secret_scopes"], **settings)
        clock.tick(1)
        pair.src.secrets.put_acl("app", "users", AclPermission.WRITE)
        clock.tick(20)
        pair.reset_stats()
        pair.sync(only=["secret_scopes"], **settings)
        assert endpoint_count(pair.source, acl_list) == 1
        assert {a.principal: a.permission for a in pair.dst.secrets.list_acls("app")}["users"] == AclPermission.WRITE


def test_the_daemon_reads_the_audit_log_on_its_own_clock(pair: Pair) -> None:
    """`dbsync serve` schedules a hints job every `audit_hints.interval`: no kind's cycle has to run first."""
    paths = _seed(pair)
    with freeze_time("2026-12-05 00:00:00") as clock:
        settings = _settings(pair)
        pair.sync(only=KINDS, **settings)
        clock.tick(1)
        _grant(pair, paths[6], iam.PermissionLevel.CAN_RUN)
        clock.tick(20)
        ctx = pair.context(**settings, kinds={k: {"enabled": k in KINDS} for k in kind_names()})
        daemon = Daemon(ctx)
        daemon.schedule()
        assert daemon.scheduler.get_job("audit-hints") is not None
        daemon.poll_hints()
        assert daemon.scheduler.get_job("permissions").next_run_time.timestamp() <= time.time()
        daemon.run_group(("permissions",))
        assert _target_level(pair, paths[6]) == "CAN_RUN"


def test_a_sweep_reads_the_acls_a_hint_named_first_and_those_named_meanwhile_at_its_next_look(
    pair: Pair, monkeypatch: Any
) -> None:
    """The permissions sweep walks the objects in key order; an ACL the audit log named is read first, one named
    while the sweep runs at the sweep's next look (not when it reaches the key: up to a whole time slice later),
    and so is one named after the sweep passed it (it waited for the next cycle: ACL-only edits took p99 163 s
    to reach the standby with hints, goal 120 s). One named again after its read is read again; one whose read is
    not recorded yet is not yielded twice (its mark is older than the read)."""
    paths = _seed(pair)
    settings = _settings(pair)
    pair.sync(only=KINDS, **settings)
    ctx = pair.context(**settings)
    acl = [f"notebooks:{path}" for path in paths]
    monkeypatch.setattr(permissions, "NAMED_EVERY", 4)
    with freeze_time(dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)) as clock:  # after the first sync's reads
        ctx.store.hint_visits("permissions", [acl[20]])
        listing = permissions.PermissionsWatcher().list(ctx, ctx.source)
        first = next(listing)
        assert (first.key, first.out_of_turn) == (acl[20], AHEAD)
        in_turn = [next(listing) for _ in range(3)]
        assert acl[20] not in {s.key for s in in_turn} and {s.out_of_turn for s in in_turn} == {None}
        passed = in_turn[-1].key
        clock.tick(1)
        ctx.store.hint_visits("permissions", [acl[16], passed])  # one ahead of the sweep, one it just passed
        look = [next(listing) for _ in range(3)]
        assert sorted((s.key, s.out_of_turn) for s in look if s.out_of_turn) == sorted(
            [(acl[16], AHEAD), (passed, AGAIN)]
        )
        clock.tick(1)  # the engine records acl[20]'s read; then the audit log names it again
        ctx.store.record_visits("permissions", [(acl[20], False, ())], time.time(), 60, 3600)
        clock.tick(1)
        ctx.store.hint_visits("permissions", [acl[20]])
        rest = list(listing)
    again = [(s.key, s.out_of_turn) for s in rest if s.out_of_turn]
    assert again == [(acl[20], AGAIN)], again  # acl[16]'s and the passed one's reads are in flight: not twice
    in_turn_keys = [s.key for s in in_turn + look + rest if s.out_of_turn is None]
    assert len(in_turn_keys) == len(set(in_turn_keys))  # each in its turn once
    assert set(acl) - set(in_turn_keys) == {acl[16], acl[20]}  # those read ahead are skipped in their turn


def test_a_sweep_looks_for_named_acls_every_few_seconds_however_few_objects_it_listed(
    pair: Pair, monkeypatch: Any
) -> None:
    """A look every NAMED_EVERY objects listed came ~20 s apart when most of them were due: each is a read that
    gives way to every other request, and the listing waits for the reads in flight. Hinted ACL edits reached
    the standby in p99 160 s (goal 120 s). The sweep looks after NAMED_LOOK_SECONDS too."""
    paths = _seed(pair)
    settings = _settings(pair)
    pair.sync(only=KINDS, **settings)
    ctx = pair.context(**settings)
    named = f"notebooks:{paths[20]}"
    monkeypatch.setattr(permissions, "NAMED_EVERY", 1000)  # more objects than the sweep lists: only time counts
    with freeze_time(dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)) as clock:
        listing = permissions.PermissionsWatcher().list(ctx, ctx.source)
        assert [next(listing).out_of_turn for _ in range(2)] == [None, None]  # it looked first: nothing named
        ctx.store.hint_visits("permissions", [named])
        assert next(listing).out_of_turn is None  # the last look was under NAMED_LOOK_SECONDS ago
        clock.tick(permissions.NAMED_LOOK_SECONDS)
        stub = next(listing)
    assert (stub.key, stub.out_of_turn) == (named, AHEAD)


def test_a_group_named_while_its_cycle_runs_runs_again_once_it_ends_not_an_interval_later(pair: Pair) -> None:
    """APScheduler skips a job whose run is still going: a hint moving the permissions job to now during its cycle
    was dropped, and an ACL named after the sweep passed it waited for the next interval. It is queued once."""
    ctx = pair.context(**_settings(pair), kinds={k: {"enabled": k in KINDS} for k in kind_names()})
    daemon = Daemon(ctx)
    daemon.schedule()
    with daemon._cycle_of(("permissions",)):  # its cycle runs
        daemon._run_soon({"permissions"}, ())
        daemon._run_soon({"permissions"}, ())  # the next hint before it ran again: still one
    again = [job for job in daemon.scheduler.get_jobs() if job.id.startswith("permissions:again:")]
    assert len(again) == 1 and again[0].executor == "sweeps"
    daemon._run_soon({"permissions"}, ())  # not running: its interval job moves to now
    assert daemon.scheduler.get_job("permissions").next_run_time.timestamp() <= time.time()


def test_an_acl_named_while_the_sweep_reads_is_not_queued_behind_the_sweeps_reads(pair: Pair, monkeypatch: Any) -> None:
    """The sweep keeps 4 x concurrency reads in flight, each giving way to every other request of the budget; a
    named ACL submitted to the same pool waited for those ahead of it. It has threads of its own: from its naming
    to the standby takes the drain the listing is in (two reads here) and its own read, not the queue's four."""
    from dbsync.engine import Engine

    paths = _seed(pair)
    by_need = {"identities": {"create_users": True}}  # permissions read by need (their default max_staleness)
    pair.sync(only=KINDS, **by_need)
    monkeypatch.setattr(permissions, "NAMED_LOOK_SECONDS", 0.0)  # a look at every object: only the queue is left
    latency = 1.0
    ctx = pair.context(concurrency=4, updates={"guard": False}, **by_need)  # written as read: only reads timed
    named = paths[-1]  # the last in the sweep's order: its turn comes after the 16 reads first in flight
    _grant(pair, named, iam.PermissionLevel.CAN_EDIT)
    pair.source.set_faults(latency_ms=latency * 1000, path_prefix="/api/2.0/permissions/")
    sweep = threading.Thread(target=lambda: Engine(ctx, read_hints=False, full_sweep=True).cycle(["permissions"]))
    try:
        sweep.start()
        time.sleep(latency)  # the first 16 reads in flight, four at a time
        ctx.store.hint_visits("permissions", [f"notebooks:{named}"])  # as the daemon's hints thread does
        hinted = time.monotonic()
        while _target_level(pair, named) != "CAN_EDIT" and time.monotonic() - hinted < 30:
            time.sleep(0.05)
        took = time.monotonic() - hinted
    finally:
        sweep.join(timeout=60)
        pair.source.set_faults()
    # Here: the listing waits out its drain (~1 read), then one read. Behind the sweep's queue: ~4 reads.
    assert took < 3 * latency, took


def test_a_sliced_sweep_ends_its_slice_once_it_holds_an_update_so_the_update_is_written_then(pair: Pair) -> None:
    """An update the edit-storm guard holds is written when its cycle ends, and a sweep's cycle is a 60 s slice:
    an ACL edit (named by the audit log, or found in turn) waited for the rest of it. The sweep ends its slice once
    it holds one; what it did not reach is the next slice's (the daemon runs one at once)."""
    from dbsync.engine import Engine

    paths = _seed(pair)
    by_need = {"identities": {"create_users": True}}
    pair.sync(only=KINDS, **by_need)
    ctx = pair.context(concurrency=4, **by_need)
    with ctx.store._transaction():  # an hour later: every ACL due again
        ctx.store.db.execute("UPDATE visits SET next_visit = 0 WHERE kind = 'permissions'")
    due = ctx.store.live_count("permissions")
    _grant(pair, paths[0], iam.PermissionLevel.CAN_EDIT)  # early in the sweep's order
    engine = Engine(ctx, read_hints=False, time_slice=600)
    (report,) = engine.cycle(["permissions"])
    assert _target_level(pair, paths[0]) == "CAN_EDIT"
    assert report.updated == 1 and report.fetched < due, (report, due)  # ended early
    assert "permissions" in engine.sliced  # the rest comes next, at once
    (rest,) = Engine(ctx, read_hints=False, time_slice=600).cycle(["permissions"])
    assert rest.fetched == due - report.fetched and rest.updated == 0


def test_a_look_for_named_acls_reads_the_named_not_every_acl_of_the_store(tmp_path: Any) -> None:
    """The sweep looks for named ACLs every 64 objects or 2 s, under the store lock. Ordered by key in SQL, SQLite
    walked every visit of the kind to skip a sort: 37 ms a look at 100,000 ACLs, the recording threads waiting.
    Counted in SQLite's own steps (a progress handler every 100 VM instructions), not in seconds."""
    store = Store(tmp_path / "state.db")
    keys = [f"notebooks:/Shared/n{i:05d}" for i in range(20_000)]
    with store.batch():
        store.db.conn.executemany(
            "INSERT INTO visits (kind, source_key, verified_at, next_visit, revisit_interval) "
            "VALUES ('permissions', ?, 1.0, 5000.0, 3600.0)",
            [[key] for key in keys],
        )
    store.hint_visits("permissions", [keys[15_000], keys[7], keys[900]])
    steps = 0

    def step() -> int:
        nonlocal steps
        steps += 1
        return 0

    store.db.conn.set_progress_handler(step, 100)
    named = store.named_visits("permissions")
    store.db.conn.set_progress_handler(None, 100)
    assert named == [(keys[7], 1.0), (keys[900], 1.0), (keys[15_000], 1.0)]  # in key order, for the sweep's rank
    assert steps < 20, steps  # the three rows, sought by the due index (every row of the kind: 1,200)
