"""Opening the pair for a cutover (both sides, or the target alone when the source is down); its last sync's age."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from dbsync.config import Settings
from dbsync.context import SyncContext, check_auth, open_context, preflight, probe_workspace
from dbsync.errors import ConfigError, DbsyncError
from dbsync.profiles import workspace_host
from dbsync.registry import kinds
from dbsync.role import PRIMARY, PROMOTING, RoleRefused, marker_refusal, read_marker
from dbsync.roles import StoreRole
from dbsync.store import Store
from dbsync.workspace import connect


def open_cutover_context(
    settings: Settings, need_source: bool = True, force: bool = False, rollback: bool = False
) -> SyncContext:
    """Connect both sides, or only the target when the source is down (`--skip-source`).

    Without the source, its workspace id is the one the store was bound to, and its client is
    built with a one-second retry budget: nothing may wait minutes on a dead host. A source that
    answers is refused for `--skip-source` unless `force`: its jobs would keep running beside the
    new primary's. A store that did not promote the target is refused against a target whose role
    marker says it is a primary or being promoted (a lost store, or an old copy, would pause its jobs;
    `rollback`: would mark it a standby again).
    """
    if need_source:
        try:
            preflight("source", workspace_host("source", settings.source))
        except ConfigError as err:
            raise ConfigError(
                f"{err} If the source is down (the disaster case), run `dbsync cutover --skip-source`: it "
                "cuts over to the state of the last sync."
            ) from None
        ctx = open_context(settings, writer=False)
    else:
        if not force:
            _refuse_live_source(settings)
        ctx = _open_without_source(settings)
    try:
        _check_target_marker(ctx, rollback)
    except BaseException:
        ctx.store.close()
        raise
    return ctx


def _refuse_live_source(settings: Settings) -> None:
    """--skip-source is for a source that is down: one that answers would keep its jobs running."""
    url, answer = probe_workspace(workspace_host("source", settings.source), timeout=5.0)
    if isinstance(answer, httpx.HTTPError):
        return  # down, as --skip-source says
    if answer.status_code < 500:
        raise ConfigError(
            f"--skip-source, but the source workspace at {url} answers (HTTP {answer.status_code}): its jobs would "
            "keep running beside the new primary's. Run `dbsync cutover` without --skip-source (it pauses them), "
            "or add --force if the source is really unusable."
        )


def _check_target_marker(ctx: SyncContext, rollback: bool = False) -> None:
    """Only the store whose cutover promoted the target may go on with it (resume it, roll it back).

    Its marker is ours when it says promoting or primary for this pair and the store's role is past
    standby. Rows in the store's cutover record are not enough: a refused attempt leaves them with the
    role still standby, and a copy of such a store synced into the new primary and demoted it.
    """
    source_id = ctx.store.get_meta("source_workspace_id") or ""
    target_id = ctx.store.get_meta("target_workspace_id") or ""
    marker = read_marker(ctx.target)
    promoted = marker is not None and marker.get("role") in (PRIMARY, PROMOTING)
    if promoted and _names_pair(marker, source_id, target_id) and _promoting(ctx):
        return  # resuming or rolling back this store's own cutover
    if rollback and promoted:
        raise RoleRefused(
            f"the target workspace {target_id} is marked {marker.get('role')} since {marker.get('at', '?')} by a "
            f"cutover this store did not complete (its role is {ctx.store.role}): rolling back with it would "
            "mark the new primary a standby. Run `dbsync cutover --rollback` with the store of the cutover that "
            "promoted it (its `dbsync status` says `role: cutover-complete`); this one is an older copy or "
            "holds only an attempt that did not promote it"
        )
    refusal = marker_refusal(marker, source_id, target_id)
    if refusal:
        raise RoleRefused(refusal)


def _promoting(ctx: SyncContext) -> bool:
    """This store promoted the target: its role is past standby, or its own cutover began step 3, which marks the
    target promoting before it saves the store's role (a kill -9 between the two left the store standby, and the
    cutover that wrote the marker could then neither resume nor roll back). A refused attempt never reaches step 3.
    """
    step = ctx.store.cutover_steps().get("pause_source") or {}
    return ctx.store.role != StoreRole.STANDBY or step.get("state", "pending") not in ("pending", "skipped")


def _names_pair(marker: dict, source_id: str, target_id: str) -> bool:
    """The marker was written for this source → target pair (its peer is our source)."""
    peer, own = str(marker.get("peer_workspace_id") or ""), str(marker.get("workspace_id") or "")
    return peer == source_id and own in ("", target_id)


def _open_without_source(settings: Settings) -> SyncContext:
    preflight("target", workspace_host("target", settings.target))
    target = connect(
        "target",
        settings.target,
        retry_timeout_seconds=settings.retry_timeout_seconds,
        concurrency=settings.concurrency,
    )
    check_auth("target", target)  # a refused token is one line now, not an error per job mid-cutover
    with _quiet("databricks.sdk"):  # its host probe warns about the host we know is down
        source = connect(
            "source", settings.source, retry_timeout_seconds=1, http_timeout_seconds=5, concurrency=settings.concurrency
        )
    store = Store(settings.state_path)
    source_id = store.get_meta("source_workspace_id")
    if source_id is None:
        store.close()
        raise ConfigError(f"state store {settings.state_path} has never synced: there is nothing to cut over")
    try:
        store.bind_pair(source_id, target.workspace_id())
    except DbsyncError:
        store.close()
        raise
    return SyncContext.build(settings, source, target, store)


@contextmanager
def _quiet(name: str) -> Iterator[None]:
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def last_sync_age(ctx: SyncContext) -> float | None:
    """Seconds since the oldest of the enabled kinds' last successful cycles: what a skipped source loses."""
    times = [ctx.store.last_success(k.name) for k in kinds() if ctx.settings.kind(k.name).enabled]
    known = [t for t in times if t]
    return time.time() - min(known) if known else None
