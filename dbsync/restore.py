"""`dbsync restore`: put kept versions back on the target, one version or everything as of a time.

A plan first (what would be written, deleted, or is already as it was); applied through the kinds' own
replicators, so references are remapped, jobs land paused on a standby, ACLs are restored as their own kind and
only what dbsync created is ever deleted. Every write is recorded in the store and the version history like a
sync's. `pin` keeps the restored copies: later cycles report the source's differences as `pending` instead of
copying them over the restore, until `dbsync restore --unpin`.
"""

from __future__ import annotations

import fnmatch
import time
from collections.abc import Iterable
from dataclasses import dataclass

from dbsync.context import SyncContext
from dbsync.errors import ConfigError, Kept, StoreError, one_line
from dbsync.model import Delete, Resource, Upsert
from dbsync.registry import kind, kind_names, kinds
from dbsync.roles import replication_refusal
from dbsync.store import Store
from dbsync.store.versions import Version, Versions
from dbsync.update_guard import keep_deletion, keep_version


@dataclass(slots=True)  # a plan holds one per object kept: 227,726 at 100,000 objects
class RestoreStep:
    """One object of a restore plan: `write` a kept version, `delete` what did not exist then, or `unchanged`."""

    kind: str
    key: str
    action: str
    version: Version | None = None
    outcome: str | None = None  # after apply: restored | deleted | kept | error
    message: str | None = None


def plan_version(ctx: SyncContext, version: Version) -> list[RestoreStep]:
    """The plan that writes one chosen version back."""
    if version.deleted:
        raise ConfigError(f"version {version.id} records the deletion of {version.kind} {version.key}: pick another")
    return [_step(ctx, version.kind, version.key, version)]


def plan_as_of(
    ctx: SyncContext, versions: Versions, at: float, kinds: Iterable[str] | None = None, path: str | None = None
) -> list[RestoreStep]:
    """Every kept object as it was at `at` (epoch seconds), optionally only some kinds and keys matching `path`.

    Objects that did not exist then and are on the target now are deleted; objects whose current copy is the
    one they had then are left `unchanged`. Upserts come in dependency order, deletes in reverse.
    """
    steps = []
    for then, latest in versions.as_of(at, kinds):
        if path and not (fnmatch.fnmatchcase(latest.key, path) or fnmatch.fnmatchcase(latest.target_key or "", path)):
            continue
        steps.append(_step(ctx, latest.kind, latest.key, then))
    order = {name: i for i, name in enumerate(kind_names())}
    upserts = sorted((s for s in steps if s.action != "delete"), key=lambda s: (order.get(s.kind, 0), s.key))
    deletes = sorted((s for s in steps if s.action == "delete"), key=lambda s: (-order.get(s.kind, 0), s.key))
    return upserts + deletes


def _step(ctx: SyncContext, kind_name: str, key: str, then: Version | None) -> RestoreStep:
    prior = ctx.store.prior(kind_name, key)
    if then is None or then.deleted:
        if prior is not None and prior.target_key:
            return RestoreStep(kind_name, key, "delete", then)
        return RestoreStep(kind_name, key, "unchanged")
    same = prior is not None and prior.target_key and prior.fingerprint == then.fingerprint
    if same and prior is not None and prior.copy_status == "synced":
        return RestoreStep(kind_name, key, "unchanged")  # no version held: the plan only counts these
    return RestoreStep(kind_name, key, "write", then)


def apply_restore(ctx: SyncContext, steps: list[RestoreStep], pin: bool = False) -> list[RestoreStep]:
    """Write the plan to the target; each step's outcome is set (one failure never stops the others)."""
    refusal = replication_refusal(ctx.store.role)
    if refusal:
        raise StoreError(refusal)
    for step in steps:
        if step.action == "unchanged":
            continue
        try:
            step.outcome, step.message = _write(ctx, step) if step.action == "write" else _delete(ctx, step)
        except Exception as err:  # one bad object never stops the restore
            step.outcome, step.message = "error", one_line(err)
            ctx.event(
                step.kind, step.key, "restore", "error", f"{step.kind} {step.key}: restore failed: {step.message}"
            )
            continue
        if pin and step.outcome in ("restored", "deleted"):
            version = step.version if step.action == "write" else None
            ctx.versions.pin(step.kind, step.key, version.fingerprint if version else None)
    return steps


def _write(ctx: SyncContext, step: RestoreStep) -> tuple[str, str | None]:
    assert step.version is not None
    kept = kind(step.kind)
    payload, body = ctx.versions.content(step.version)
    prior = ctx.store.prior(step.kind, step.key)
    meta = dict(prior.source_meta) if prior else {}
    # No version hint: the next cycle fetches the source and compares it with what was restored.
    resource = kept.watcher.restored(
        ctx, Resource(step.kind, step.key, step.version.name or "", None, payload, body, meta)
    )
    applied = kept.replicator.apply(ctx, Upsert(resource, prior))
    ctx.store.record_applied(resource, applied)
    keep_version(ctx, kept, resource, applied.target_key, "restore")
    when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(step.version.at))
    ctx.event(
        step.kind, step.key, "restore", "restored", f"{step.kind} {step.key}: version {step.version.id} of {when}"
    )
    return "restored", applied.note


def _delete(ctx: SyncContext, step: RestoreStep) -> tuple[str, str | None]:
    kept = kind(step.kind)
    prior = ctx.store.prior(step.kind, step.key)
    if prior is None or not prior.target_key:
        return "unchanged", None
    if (prior.origin or kept.replicator.unrecorded_origin) == "adopted":
        return "kept", f"{prior.target_key} is kept: dbsync adopted it, it never deletes what it did not create"
    try:
        kept.replicator.delete(ctx, Delete(prior))
    except Kept as err:
        return "kept", str(err)
    ctx.store.record_deleted(step.kind, step.key)
    keep_deletion(ctx, kept, step.key, prior.target_key)
    ctx.event(step.kind, step.key, "restore", "deleted", f"{step.kind} {step.key}: did not exist at the restore time")
    return "deleted", None


def version_actors(store: Store, found: list[Version]) -> dict[int, str | None]:
    """Who made each version's change: the latest audit row (kept by the audit-log hints) naming the object after
    the object's version before and up to this one; None when no row says so (the owner is never a guess)."""
    acl_kind = next((k.name for k in kinds() if k.declaration.writes_acls), None)
    actors: dict[int, str | None] = {}
    previous: dict[tuple[str, str], float] = {}
    events: dict[tuple[str, str], list[tuple[float, str]]] = {}
    for version in sorted(found, key=lambda v: v.id):
        name = (version.kind, version.key)
        if name not in events:
            acl = version.kind == acl_kind
            events[name] = store.actor_events(_audit_names(store, version, acl), acl)
        after = previous.get(name)
        inside = [email for at, email in events[name] if (after is None or at > after) and at <= version.at]
        actors[version.id] = inside[-1] if inside else None
        previous[name] = version.at
    return actors


def _audit_names(store: Store, version: Version, acl: bool) -> list[str]:
    """How the audit log names the object: its key (a path, a job id); an ACL by its object's key and id."""
    if not acl:
        return [version.key]
    prior = store.prior(version.kind, version.key)
    object_id = prior.source_meta.get("object_id") if prior else None
    return [version.key.partition(":")[2]] + ([str(object_id)] if object_id else [])
