"""Change hints from the source's audit log (`system.access.audit`): the objects its new rows name are read at once.

Read on `metastore.source_warehouse_id`, at most once per `audit_hints.interval`, from a checkpoint kept in the
store (the newest `event_time` read). An ACL change (changeJobAcl, changeWorkspaceAcl ...) or a write to an object
(importNotebook, jobs update, updateDashboard ...) makes that object's ACL due now, and the object itself when
its kind is read by need; the kinds named are returned so the daemon runs them soon. Best effort: a missing
table, no permission, a failing warehouse or a lagging table only make dbsync slower, never wrong. The revisit
schedule and the listings stay the safety net (a row delivered after a newer one was read is left to them).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import posixpath
import time
from collections.abc import Iterable

from databricks.sdk.errors import DatabricksError

from dbsync.context import SyncContext
from dbsync.errors import DbsyncError, one_line
from dbsync.registry import acl_watchers, kinds
from dbsync.sql import Row, literal, runner

log = logging.getLogger("dbsync.hints")
CHECKPOINT = "audit_hints_checkpoint"  # meta: the newest event_time read
READ_AT = "audit_hints_read_at"  # meta: when the table was last read (epoch seconds)
UNAVAILABLE = "audit_hints_unavailable"  # meta: why the last read failed (one event per new reason)
ROW_LIMIT = 10_000
# Audit actions that change an object's ACL, and the Permissions API request type of the object (the audit log
# reference); workspace objects share changeWorkspaceAcl with aclChangeResourceName "<type>/<id>".
_ACL_ACTIONS = {
    "changeJobAcl": "jobs",
    "changeClusterAcl": "clusters",
    "changeInstancePoolAcl": "instance-pools",
    "changeClusterPolicyAcl": "cluster-policies",
}
# request_params keys that name the object an event is about.
_ID_PARAMS = (
    "resourceId",
    "job_id",
    "cluster_id",
    "instance_pool_id",
    "policy_id",
    "path",
    "notebookId",
    "dashboard_id",
    "scope",  # a secret scope's ACL or secrets (putAcl, deleteAcl, putSecret): its ACLs are read by need
)
_SERVICES = ("notebook", "workspace", "jobs", "clusters", "instancePools", "clusterPolicies", "secrets", "dashboards")


def enabled(ctx: SyncContext) -> bool:
    """Hints are read when they are on and a source warehouse is configured to read them with."""
    return ctx.settings.audit_hints.enabled and bool(ctx.settings.metastore.source_warehouse_id)


def active(ctx: SyncContext) -> bool:
    """Hints are on and the last read of the audit log worked: a change is announced within its delivery delay.

    The workspace tree is then revisited by doubling alone, not polled by each directory's change rate: the
    polling cost most of a 10 requests/s budget (the RPO benchmark), and the hinted reads queued behind it.
    A table that stops answering turns the polling back on at the next cycle.
    """
    return enabled(ctx) and ctx.store.get_meta(UNAVAILABLE) is None


def read(ctx: SyncContext, now: float | None = None) -> set[str]:
    """Read the audit rows since the checkpoint and make the objects they name due now; the kinds they name.

    Never raises for a table that cannot be read: the failure is recorded once as an event and nothing is hinted.
    """
    if not enabled(ctx):
        return set()
    now = time.time() if now is None else now
    store = ctx.store
    read_at = store.get_meta(READ_AT)
    if read_at is not None and now - float(read_at) < ctx.settings.audit_hints.interval:
        return set()
    store.set_meta(READ_AT, repr(now))
    checkpoint = store.get_meta(CHECKPOINT)
    if checkpoint is None:
        store.set_meta(CHECKPOINT, timestamp(now))  # what happened before the first read is the sweep's
        return set()
    try:
        rows = runner(ctx, ctx.source).query(_query(store.get_meta("source_workspace_id"), checkpoint))
    except (DbsyncError, DatabricksError, OSError) as err:
        _unavailable(ctx, one_line(err))
        return set()
    if store.get_meta(UNAVAILABLE) is not None:
        store.delete_meta(UNAVAILABLE)
    if not rows:
        return set()
    try:
        named = _apply(ctx, rows)
        _remember_actors(ctx, rows, now)
    except (KeyError, TypeError, ValueError) as err:  # a row shaped otherwise than documented: skipped, not fatal
        _unavailable(ctx, f"unexpected audit row: {one_line(err)}")
        named = set()
    store.set_meta(CHECKPOINT, max(str(r.get("event_time") or checkpoint) for r in rows))
    return named


def timestamp(moment: float) -> str:
    """Epoch seconds as the audit table's UTC timestamp text (milliseconds)."""
    at = dt.datetime.fromtimestamp(moment, dt.UTC)
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def _query(workspace_id: str | None, checkpoint: str) -> str:
    services = ", ".join(literal(s) for s in _SERVICES)
    where = [
        f"event_date >= CAST({literal(checkpoint[:10])} AS DATE)",  # the table is partitioned by date
        f"event_time > CAST({literal(checkpoint)} AS TIMESTAMP)",
        f"service_name IN ({services})",
    ]
    if workspace_id:
        where.insert(0, f"workspace_id = {literal(workspace_id)}")
    return (
        "SELECT event_time, service_name, action_name, request_params, user_identity FROM system.access.audit "
        f"WHERE {' AND '.join(where)} ORDER BY event_time LIMIT {ROW_LIMIT}"
    )


def _unavailable(ctx: SyncContext, why: str) -> None:
    """One event per new reason: a table that stays unreadable does not fill the event log."""
    if ctx.store.get_meta(UNAVAILABLE) == why:
        return
    ctx.store.set_meta(UNAVAILABLE, why)
    ctx.event(
        None,
        None,
        "hints",
        "unavailable",  # not `skipped`: that is a store status, an object not written on purpose
        f"audit-log hints unavailable, objects are read on their schedule only: {why}. Grant SELECT on "
        "system.access.audit to dbsync's principal (or set audit_hints.enabled: false)",
    )


def _apply(ctx: SyncContext, rows: list[Row]) -> set[str]:
    """Make the ACLs the rows name due now; the kinds named (the ACL kind, and the kinds holding the objects)."""
    acl_kind = next((k.name for k in kinds() if k.declaration.writes_acls), None)
    named: set[str] = set()
    ids: set[str] = set()
    for row in rows:
        acl_type, row_ids = _named(row)
        ids.update(row_ids)
        if acl_kind is None:
            continue
        owners = [k for k, w in acl_watchers().items() if acl_type is None or w.acl_type == acl_type]
        keys = _acl_keys(ctx, acl_kind, owners, row_ids)
        if keys and ctx.store.hint_visits(acl_kind, keys):
            named.add(acl_kind)
    holders = ctx.store.kinds_holding(sorted(ids))
    for kind in holders:  # the objects themselves, for a kind read by need (dashboards with a max_staleness)
        ctx.store.hint_visits(kind, sorted(ids))
    named |= holders
    named |= _hint_containers(ctx, sorted(ids))
    if named:
        log.info("audit-log hints: %d row(s) name %s", len(rows), ", ".join(sorted(named)))
    return named


def due_now(ctx: SyncContext, kind: str, keys: list[str]) -> None:
    """Objects dbsync itself just wrote on the source (`restore --to source`): read at the next cycle, as an audit
    row naming them would make them, not when their revisit comes (an ACL could wait an hour)."""
    ctx.store.hint_visits(kind, keys)
    _hint_containers(ctx, keys)


def _hint_containers(ctx: SyncContext, ids: list[str]) -> set[str]:
    """Containers of a listing read by need are read at once: a named path's directory (the workspace tree), a
    named id itself (a dashboard, whose schedules are listed per dashboard); the kinds sharing that listing."""
    parents = {posixpath.dirname(i.rstrip("/")) or "/" for i in ids if i.startswith("/")}
    containers = sorted(parents | {i for i in ids if not i.startswith("/")})
    named: set[str] = set()
    for listing in {k.declaration.shared_listing for k in kinds() if k.declaration.shared_listing}:
        if containers and ctx.store.hint_visits(listing, containers):
            named |= {k.name for k in kinds() if k.declaration.shared_listing == listing}
    return named


def _named(row: Row) -> tuple[str | None, list[str]]:
    """(Permissions API type when the row is an ACL change, the ids and paths it names)."""
    try:
        params = json.loads(row.get("request_params") or "{}")
    except ValueError:
        return None, []
    if not isinstance(params, dict):
        return None, []
    ids = [str(params[p]) for p in _ID_PARAMS if params.get(p) not in (None, "")]
    action = row.get("action_name") or ""
    if action == "changeWorkspaceAcl":
        request_type, _, object_id = str(params.get("aclChangeResourceName") or "").partition("/")
        return (request_type or None), [object_id] if object_id else []
    return _ACL_ACTIONS.get(action), ids


def _acl_keys(ctx: SyncContext, acl_kind: str, owners: Iterable[str], ids: list[str]) -> list[str]:
    """The ACL rows (`<kind>:<key>`) of the objects named by key or by their workspace object id."""
    keys = [f"{owner}:{object_id}" for owner in owners for object_id in ids]
    for object_id in ids:
        if object_id.isdigit():
            keys += ctx.store.keys_with_object_id(acl_kind, int(object_id))
    return keys


def _remember_actors(ctx: SyncContext, rows: list[Row], now: float) -> None:
    """Keep who made each change (`user_identity.email`) for `dbsync history`; a row without an email names no one."""
    entries = []
    for row in rows:
        email, at = _email(row.get("user_identity")), _epoch(row.get("event_time"))
        if email is None or at is None:
            continue
        acl_type, ids = _named(row)
        entries += [(object_id, acl_type is not None, at, email) for object_id in ids]
    ctx.store.remember_actors(entries, now - ctx.settings.history.keep_days * 86400)


def _email(identity: object) -> str | None:
    """user_identity is a STRUCT<email, subject_name>: JSON text through the statement API, or a mapping."""
    if isinstance(identity, str):
        try:
            identity = json.loads(identity)
        except ValueError:
            return None
    email = identity.get("email") if isinstance(identity, dict) else None
    return str(email) if email else None


def _epoch(event_time: object) -> float | None:
    """The row's event_time (`2026-12-05T09:00:00.000Z`) as epoch seconds, None when it is not a timestamp."""
    try:
        moment = dt.datetime.fromisoformat(str(event_time))
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)).timestamp()
