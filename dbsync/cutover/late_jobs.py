"""Source jobs the final sync did not carry: created, or edited, on the source after step 1, replicated in step 3.

Step 3 pauses every unpaused source job and step 4 unpauses its copy. A job created after the final sync
had no copy, so after a cutover it ran nowhere (the report alone said "missing on the target"), and a job
whose schedule was edited since ran on the new primary on its old schedule. Once step 3 has paused the
source jobs (no new run starts there), the source's jobs are listed again (one listing, tasks included)
and each whose copy is missing or differs is written as a sync writes it: through the jobs replicator,
paused, recorded in the store (the copy's id is what step 4 reads) and kept in the version history. Step
4 then unpauses the copies of the jobs step 3 paused, like the others. A job that cannot be written (it
waits on a cluster made after the final sync) fails the step, naming it: left so, it would run nowhere
(`--force` goes on, the summary naming it).

Not only the jobs step 3 paused: a job already paused on the source (or without a trigger) that was edited after
step 1 kept its old settings on the new primary, and whoever unpaused it there later ran its old tasks on its old
schedule while the cutover said it was done; one created paused after step 1 had no copy at all. Those are written
the same way, with their ACL, and stay paused (step 4 unpauses only what step 3 paused); the step's summary counts
them and the report names them (LATE_PAUSED_NOTE). A job that is unpaused on the source but was not paused by this
step (made after its first listing) is not one of them: it still runs on the source.

Each one's ACL is written too, by the permissions kind as a sync writes it (one GET of the source's ACL a job). A
sync writes a job's ACL once the job exists, and no sync runs into the new primary: a late job kept the owner its
creation gave it on the target, dbsync's own principal (often a workspace admin). A job without `run_as` runs as its
owner, so a job an ordinary user made on the source ran, unpaused, as dbsync's principal on the new primary, and
those who managed it on the source could not. A late job whose ACL cannot be written, or whose owner the target
lacks, fails the step the same way, and its copy stays paused (with `--force` too: `held`, step 4 leaves it).

These writes are fenced like the final sync's, for the store's own cutover: only while its role is
cutover-in-progress and the target's marker says it is being promoted for this pair.

No late job is written with the jobs kind disabled: the target's jobs are then the DR team's, and this step wrote a
copy of every paused and trigger-less source job into the new primary (before those, copies of the jobs it paused,
which step 4 unpaused: duplicates of the DR team's jobs running). Nor a job `dbsync restore --pin` pinned: its
restored copy is the user's explicit choice, which this step overwrote with the source's version (a sync leaves that
pending); it is left as restored and named in the summary. A late job's pinned ACL is left the same way.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from databricks.sdk.errors import DatabricksError

from dbsync import apply, planner
from dbsync.context import SyncContext
from dbsync.cutover.common import (
    JOBS,
    JOBS_DISABLED,
    SOURCE_ROW,
    TARGET_ROW,
    Pause,
    Rows,
    one_line,
    step_detail,
    step_state,
)
from dbsync.errors import Blocked, DbsyncError
from dbsync.mapping import acl_waiting_ref
from dbsync.model import WAITING_ON, Applied, Prior, Resource, Upsert
from dbsync.registry import Kind, kind
from dbsync.role import WriteFence, promotion_refusal, read_marker
from dbsync.roles import StoreRole
from dbsync.update_guard import PINNED

if TYPE_CHECKING:
    from dbsync.cutover.runbook import Runbook

PERMISSIONS = "permissions"  # the kind that writes a job's ACL
OWNER = "IS_OWNER"
HELD = "late_jobs_held"  # step 3's detail: the late jobs whose copy step 4 must leave paused (their ACL is not copied)
HELD_NOTE = "paused (held: its ACL is not copied)"  # what the record and the report say of such a job's copy
LATE_PAUSED = "late_jobs_paused"  # step 3's detail: the late jobs written that were not unpaused on the source
LATE_PAUSED_NOTE = "replicated in step 3 (changed after the final sync); not unpaused, as on the source"  # report's
# A late job's store row until its ACL is written too: in error, so a run again writes the job and its ACL again.
ACL_TO_COPY = "replicated after the final sync; its ACL (its owner: whom it runs as without run_as) is not written yet"


class AclNotCopied(DbsyncError):
    """A late job's copy is on the target, paused, but its ACL is not the source's: it must not be unpaused."""


@dataclass
class Late:
    """What step 3 did with the late jobs: for its summary and detail, and step 4's."""

    written: int = 0
    failures: list[str] = field(default_factory=list)  # not written, each named with why: they run nowhere
    held: list[str] = field(default_factory=list)  # source keys of those written whose ACL is not (HELD)
    partial: list[str] = field(default_factory=list)  # written `partial`, each with what was left out
    paused: dict[str, str] = field(default_factory=dict)  # source key → name of those written that stay paused
    pinned: dict[str, str] = field(default_factory=dict)  # source key → name of those a `restore --pin` keeps
    disabled: bool = False  # the jobs kind is off: no late job is dbsync's to write


def replicate(book: Runbook) -> Late:
    """The source jobs whose copy is missing or older than the source, written to the target with their ACL: those
    step 3 paused, and those paused on the source already (or without a trigger), which stay paused.

    A job waiting on another late job (a job running a job) is tried again after the others, as long as a pass
    writes something. Those written `partial` are named (the summary said "replicated" alone of a copy without its
    run_as user while `status` said partial). None when the jobs kind is disabled; a pinned one is left as restored.
    """
    if not book.jobs_enabled():
        return Late(disabled=True)  # not even listed: nothing of the kind is dbsync's to write
    ctx, jobs = book.ctx, kind(JOBS)
    selection = ctx.settings.kind(JOBS)
    paused = {key: row for key, row in book.job_rows(SOURCE_ROW).items() if row["state"] == "paused"}
    pinned = ctx.versions.pinned_keys([JOBS])
    late = Late()
    ctx.new_run()  # the final sync's cached listings (the source's clusters) are older than these jobs
    todo: list[tuple[Resource, Prior | None]] = []
    try:
        for stub in jobs.watcher.list(ctx, ctx.source):
            if stub.key in paused:
                # Recorded with the pause state it had before this cutover, as the final sync recorded the others.
                stub.source_meta = {**stub.source_meta, "pause": paused[stub.key]["detail"]["prior"]}
            elif not planner.selected(selection, stub.key) or "UNPAUSED" in stub.source_meta["pause"].values():
                # Excluded by kinds.jobs; or unpaused on the source though this step did not pause it (made after
                # its first listing): it still runs there, and is left as before.
                continue
            prior = ctx.store.prior(JOBS, stub.key)
            if planner.decide(stub, prior) is None:
                continue  # its copy is the source's job
            if (JOBS, stub.key) in pinned:
                late.pinned[stub.key] = stub.name
                message = f"{JOBS} {stub.key}: changed on the source after the final sync, left as restored: {PINNED}"
                ctx.event(JOBS, stub.key, "update", "pending", message)
                continue
            todo.append((stub, prior))
    except DbsyncError as err:
        return Late(failures=[f"cannot list the source's jobs again: {one_line(err)}"])
    failures: dict[str, str] = {}
    with _promotion_fenced(book):
        while todo:
            waiting, before = [], late.written
            for stub, prior in todo:
                try:
                    wrote = _write(book, jobs, stub, prior, stays_paused=stub.key not in paused)
                except Blocked as err:
                    failures[stub.key] = f"job {stub.key} ({stub.name}): {one_line(err)}"
                    waiting.append((stub, prior))
                    continue
                except AclNotCopied as err:
                    failures[stub.key] = f"job {stub.key} ({stub.name}): {one_line(err)}"
                    late.held.append(stub.key)
                    _record_repaused(book, stub.key, held=True)
                    continue
                except (DbsyncError, DatabricksError, OSError) as err:
                    failures[stub.key] = f"job {stub.key} ({stub.name}): {one_line(err)}"
                    continue
                failures.pop(stub.key, None)
                late.written += wrote is not None
                if wrote is not None and stub.key not in paused:
                    late.paused[stub.key] = stub.name
                if wrote is not None and wrote.status == "partial":
                    late.partial.append(f"job {stub.key} ({stub.name}): {wrote.note}")
            todo = waiting if late.written > before else []
    late.failures = list(failures.values())
    return late


def _write(book: Runbook, jobs: Kind, stub: Resource, prior: Prior | None, stays_paused: bool) -> Applied | None:
    """One job written to the target and recorded, as the engine writes and records it; None: nothing to write.
    `stays_paused`: a job this step did not pause (paused on the source already, or without a trigger)."""
    ctx = book.ctx
    resource = jobs.watcher.fetch(ctx, ctx.source, stub)  # refuses a job whose cluster is gone from the source
    change = planner.decide(resource, prior)
    if change is None:
        return None
    book.writer.pacers["target"].wait()
    applied = jobs.replicator.apply(ctx, change)
    acls = None if applied.pending else _acl_kind(ctx, resource.key)
    _record_repaused(book, resource.key, held=False, target_key=applied.target_key)
    if acls is not None:
        # In error until its ACL is written too (a kill -9 between the two leaves it so): a run again writes both.
        apply.record_ahead(ctx, jobs, resource, prior, applied, ACL_TO_COPY)
        try:
            _write_acl(book, acls, resource.key)
        except (DbsyncError, DatabricksError, OSError) as err:
            raise AclNotCopied(f"replicated, left paused: its ACL is not: {one_line(err)}") from None
    why = "created" if change.action == "create" else "changed"
    how = "replicated, not unpaused (as on the source)" if stays_paused else "replicated after it was paused"
    message = f"{JOBS} {resource.key}: {why} on the source after the final sync, {how}"
    # In the store's word, as the engine's events (Applied.status): synced, or partial with the note saying what not.
    note = f" ({applied.note})" if applied.note else ""
    with apply.window(ctx, jobs) as records:
        apply.record_applied(ctx, records, jobs, resource, prior, change.action, applied, event=message + note)
    if applied.pending:  # on the target with a step still to do (recorded: no second create): not runnable yet
        raise DbsyncError(applied.pending)
    return applied


def _record_repaused(book: Runbook, job_key: str, held: bool, target_key: str | None = None) -> None:
    """The record of a copy this step unpaused as its source job was paused, then wrote again, paused (an edited
    late job: the replicator writes every trigger PAUSED): `paused`, as it is, until step 4 unpauses it again.

    Held (its ACL not copied) it says so: step 4 leaves it paused, and the record and the report said `unpaused`
    of a job that never ran on the new primary."""
    if target_key is None:
        prior = book.ctx.store.prior(JOBS, job_key)
        target_key = prior.target_key if prior else None
    row = book.rows.get(TARGET_ROW + str(target_key))
    if row is None:
        return  # not unpaused by this cutover (a job created after the final sync has no copy to unpause yet)
    detail = {k: v for k, v in row["detail"].items() if k != "held"}
    book.record(TARGET_ROW + str(target_key), "paused", {**detail, "held": HELD_NOTE} if held else detail)


def _acl_kind(ctx: SyncContext, job_key: str) -> Kind | None:
    """The permissions kind when a sync would write this job's ACL (the kind enabled, the ACL selected); else None."""
    settings = ctx.settings.kind(PERMISSIONS)
    return kind(PERMISSIONS) if settings.enabled and planner.selected(settings, f"{JOBS}:{job_key}") else None


def _write_acl(book: Runbook, acls: Kind, job_key: str) -> None:
    """The late job's ACL written as the permissions kind writes it in a sync (principals mapped, one the target
    lacks left out and noted, what dbsync adds recorded), after one GET of the source's; nothing written when its
    copy's ACL is the source's already (an edited job whose ACL did not change) and not waiting for its owner.

    AclNotCopied when the target lacks the source's owner: the copy keeps the one its creation gave it, dbsync's.
    Nothing written when `dbsync restore --pin` pinned the ACL: the restored one (its owner too) is the user's."""
    ctx = book.ctx
    job = ctx.store.prior(JOBS, job_key)
    assert job is not None  # just recorded, with its copy's id
    stub = acls.watcher.object_acl(JOBS, job)
    if (PERMISSIONS, stub.key) in ctx.versions.pinned_keys([PERMISSIONS]):
        ctx.event(PERMISSIONS, stub.key, "update", "pending", f"{PERMISSIONS} {stub.key}: left as restored: {PINNED}")
        return
    resource = acls.watcher.fetch(ctx, ctx.source, stub)
    owner = _owner(resource)
    prior = ctx.store.prior(PERMISSIONS, resource.key)
    change = planner.decide(resource, prior)
    if change is None and prior is not None and owner in (prior.source_meta.get(WAITING_ON) or []):
        change = Upsert(resource, prior)  # written without its owner before (a run again): the target may have it now
    if change is not None:
        book.writer.pacers["target"].wait()
        applied = acls.replicator.apply(ctx, change)
        with apply.window(ctx, acls) as records:
            apply.record_applied(ctx, records, acls, resource, prior, change.action, applied)
        if owner in applied.waiting_on:
            principal = owner.split(":", 1)[1]
            raise AclNotCopied(
                f"its owner {principal} does not exist on the target (the copy would be owned by dbsync's principal, "
                f"and run as it without run_as): add {principal} there"
            )


def _owner(acl: Resource) -> str | None:
    """The owner (IS_OWNER) of a fetched ACL as the principal the replicator waits for when the target lacks it."""
    for entry in acl.payload["access_control_list"]:
        if entry["permission_level"] == OWNER:
            field, principal = next((f, p) for f, p in entry.items() if f != "permission_level")
            return acl_waiting_ref(field, principal)
    return None


def held(book: Runbook, todo: list[Pause]) -> tuple[list[Pause], int]:
    """Step 4's unpauses but those of the late jobs whose ACL step 3 did not write (`--force` went on past them):
    unpaused, such a job would run as dbsync's principal. Returns (the unpauses, how many were left out)."""
    keys = held_keys(book.rows)
    kept = [pause for pause in todo if pause.detail.get("source_key") not in keys]
    return kept, len(todo) - len(kept)


def held_keys(rows: Rows) -> set[str]:
    """The source keys of the late jobs a finished step 3 held (their ACL not copied): step 4 leaves their copies
    paused. None before step 3 is done: a step 3 run again decides anew (their owner may be on the target now)."""
    if step_state(rows, "pause_source") != "done":
        return set()
    return set(step_detail(rows, "pause_source").get(HELD) or [])


def held_reasons(rows: Rows) -> list[str]:
    """Each held late job named with why, as step 3's failures name it: for the plan, which must not count it among
    step 4's unpauses (a dry-run after a `--force`d step 3 did, of a job step 4 leaves paused)."""
    failures = step_detail(rows, "pause_source").get("late_jobs_failed") or []
    return [
        next((f for f in failures if f.startswith(f"job {key} (")), f"job {key}: {HELD_NOTE}")
        for key in sorted(held_keys(rows))
    ]


def late_paused_keys(rows: Rows) -> set[str]:
    """The source keys of the late jobs step 3 wrote that stay paused (paused on the source): the report names them."""
    return set(step_detail(rows, "pause_source").get(LATE_PAUSED) or [])


def summary(late: Late) -> str:
    """The step summary's part: the late jobs written (those written `partial` named, in the store's word, and those
    that stay paused as on the source, and those a pin kept as restored), and those not (a --force run goes on without
    them). With the jobs kind disabled, that none is."""
    if late.disabled:
        return f"no late job replicated: {JOBS_DISABLED}, the target's jobs are not dbsync's"
    text = f"{late.written} late job(s) replicated (created or edited on the source after the final sync)"
    if late.partial:
        text += f", {len(late.partial)} of them partial, e.g. {late.partial[0]}"
    if late.paused:
        key, name = next(iter(late.paused.items()))
        text += f", {len(late.paused)} of them paused on the source (or without a trigger): their copies stay paused"
        text += f", e.g. job {key} ({name})"
    if late.pinned:
        key, name = next(iter(late.pinned.items()))
        text += f", {len(late.pinned)} pinned by `dbsync restore --pin` left as restored, e.g. job {key} ({name})"
    if late.failures:
        text += (
            f", {len(late.failures)} not, e.g. {late.failures[0]}: they run nowhere (one paused on the source "
            "keeps its old settings, or has no copy, on the new primary)"
        )
    return text


def failure_summary(failures: list[str]) -> str:
    """The step's summary when late jobs could not be written: each would run nowhere after the cutover, or (paused
    on the source) keep its old settings on the new primary."""
    return (
        f"{len(failures)} job(s) created or edited on the source after the final sync not replicated, e.g. "
        f"{failures[0]}: paused on the source, they would run nowhere (one paused there before the cutover would keep "
        "its old settings, or have no copy, on the new primary). Fix that and run `dbsync cutover` again, or "
        "run `dbsync cutover --rollback` and then `dbsync cutover` (its final sync replicates what they use; "
        "`--force` cuts over without them)"
    )


@contextmanager
def _promotion_fenced(book: Runbook) -> Iterator[None]:
    """Every target write of the block refused unless this store's cutover still promotes the target: the store's
    role cutover-in-progress, the target's marker promoting for this pair (read again every MARKER_TTL_SECONDS)."""
    store, target = book.store, book.ctx.target
    source_id = store.get_meta("source_workspace_id") or ""
    target_id = store.get_meta("target_workspace_id") or ""

    def marker_check() -> str | None:
        try:
            return promotion_refusal(read_marker(target), source_id, target_id)
        except DbsyncError as err:
            return f"{one_line(err)}; nothing is written to a target whose role is unknown"

    def store_flags() -> tuple[str, str | None]:
        return store.writer_flags()[0], None  # the cutover holds the store: a handover is never asked of it

    fence = WriteFence(store_flags, marker_check, writes_as=StoreRole.CUTOVER_IN_PROGRESS)
    previous, target.fence = target.fence, fence
    try:
        yield
    finally:
        target.fence = previous
