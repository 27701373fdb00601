"""Audit-log hints end to end: an ACL change the source's `system.access.audit` records is read in the next cycle,
not when its revisit comes; a lagging table only delays it, a missing one only leaves it to the schedule.

The source emulator records its own writes in that table (tests/test_emulator_audit.py); dbsync reads it on the
source SQL warehouse (`metastore.source_warehouse_id`).
"""

from __future__ import annotations

import threading
import time
from typing import Any

from conftest import Pair, endpoint_count
from databricks.sdk.service import iam
from databricks.sdk.service.dashboards import Dashboard
from freezegun import freeze_time
from test_revisit import ACL_GET, KINDS, _grant, _seed, _target_level

from dbsync.hints import UNAVAILABLE
from dbsync.registry import kind_names
from dbsync.scheduler import Daemon

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
        said = [e for e in ctx.store.events(outcome="skipped") if e["action"] == "hints"]
        assert len(said) == 1 and "TABLE_OR_VIEW_NOT_FOUND" in said[0]["message"], said
        assert ctx.store.get_meta(UNAVAILABLE) is not None
        clock.tick(HOUR)
        assert _acl_reads(pair, settings) > 0
        assert _target_level(pair, paths[2]) == "CAN_MANAGE"


def test_the_daemon_reads_a_hint_while_a_cycle_runs_and_moves_the_hinted_kind_to_now(pair: Pair) -> None:
    """`dbsync serve`: the audit log is read on a thread of its own, while a cycle holds the worker (a 60 s slice
    of ACL reads): the permissions job (interval 300 s) is moved to now without waiting for that cycle to end."""
    paths = _seed(pair)
    with freeze_time("2026-12-05 00:00:00") as clock:
        settings = _settings(pair)
        pair.sync(only=KINDS, **settings)
        clock.tick(1)
        _grant(pair, paths[4], iam.PermissionLevel.CAN_EDIT)
        clock.tick(20)
    # Real time from here: the hints thread's clock is not frozen (freezegun leaves threads alone).
    ctx = pair.context(**settings, kinds={k: {"enabled": k in KINDS} for k in kind_names()})
    daemon = Daemon(ctx)
    daemon.schedule()
    assert daemon.scheduler.get_job("audit-hints").executor == "hints"
    assert daemon.scheduler.get_job("permissions").next_run_time.timestamp() >= time.time() + 290
    with daemon._cycle_lock:  # a cycle in flight
        reader = threading.Thread(target=daemon.poll_hints)
        reader.start()
        reader.join(timeout=30)
        assert not reader.is_alive(), "the hints read waited for the cycle"
    assert daemon.scheduler.get_job("permissions").next_run_time.timestamp() <= time.time()


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
