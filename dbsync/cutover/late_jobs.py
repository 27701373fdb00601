"""Source jobs the final sync did not carry: created, or edited, on the source after step 1, replicated in step 3.

Step 3 pauses every unpaused source job and step 4 unpauses its copy. A job created after the final sync
had no copy, so after a cutover it ran nowhere (the report alone said "missing on the target"), and a job
whose schedule was edited since ran on the new primary on its old schedule. Once step 3 has paused the
source jobs (no new run starts there), the jobs it paused are listed again (one listing, tasks included)
and each whose copy is missing or differs is written as a sync writes it: through the jobs replicator,
paused, recorded in the store (the copy's id is what step 4 reads) and kept in the version history. Step
4 then unpauses those copies like the others. A job that cannot be written (it waits on a cluster made
after the final sync) fails the step, naming it: left so, it would run nowhere (`--force` goes on, the
summary naming it). Their ACLs are not copied here: the permissions kind reads an ACL in a sync, and
none runs into the new primary.

These writes are fenced like the final sync's, for the store's own cutover: only while its role is
cutover-in-progress and the target's marker says it is being promoted for this pair.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from databricks.sdk.errors import DatabricksError

from dbsync import metrics, planner
from dbsync.cutover.common import JOBS, SOURCE_ROW, one_line
from dbsync.errors import Blocked, DbsyncError
from dbsync.model import Applied, Prior, Resource
from dbsync.registry import Kind, kind
from dbsync.role import MARKER_PATH, MARKER_TTL_SECONDS, PROMOTING, read_marker
from dbsync.roles import StoreRole
from dbsync.update_guard import keep_version

if TYPE_CHECKING:
    from dbsync.cutover.runbook import Runbook


def replicate(book: Runbook) -> tuple[int, list[str], list[str]]:
    """The jobs step 3 paused whose copy is missing or older than the source, written to the target.

    Returns (jobs written, failures, those written `partial`, each with what was left out). A job waiting on another
    late job (a job running a job) is tried again after the others, as long as a pass writes something.
    """
    paused = {key: row for key, row in book.job_rows(SOURCE_ROW).items() if row["state"] == "paused"}
    if not paused:
        return 0, [], []
    ctx, jobs = book.ctx, kind(JOBS)
    ctx.new_run()  # the final sync's cached listings (the source's clusters) are older than these jobs
    todo: list[tuple[Resource, Prior | None]] = []
    try:
        for stub in jobs.watcher.list(ctx, ctx.source):
            if stub.key not in paused:
                continue
            prior = ctx.store.prior(JOBS, stub.key)
            if planner.decide(stub, prior) is None:
                continue  # its copy is the source's job
            # Recorded with the pause state it had before this cutover, as the final sync recorded the others.
            stub.source_meta = {**stub.source_meta, "pause": paused[stub.key]["detail"]["prior"]}
            todo.append((stub, prior))
    except DbsyncError as err:
        return 0, [f"cannot list the source's jobs again: {one_line(err)}"], []
    written, failures, partial = 0, {}, []
    with _promotion_fenced(book):
        while todo:
            waiting, before = [], written
            for stub, prior in todo:
                try:
                    wrote = _write(book, jobs, stub, prior)
                except Blocked as err:
                    failures[stub.key] = f"job {stub.key} ({stub.name}): {one_line(err)}"
                    waiting.append((stub, prior))
                    continue
                except (DbsyncError, DatabricksError, OSError) as err:
                    failures[stub.key] = f"job {stub.key} ({stub.name}): {one_line(err)}"
                    continue
                failures.pop(stub.key, None)
                written += wrote is not None
                if wrote is not None and wrote.status == "partial":
                    partial.append(f"job {stub.key} ({stub.name}): {wrote.note}")
            todo = waiting if written > before else []
    return written, list(failures.values()), partial


def _write(book: Runbook, jobs: Kind, stub: Resource, prior: Prior | None) -> Applied | None:
    """One job written to the target and recorded, as the engine writes and records it; None: nothing to write."""
    ctx = book.ctx
    resource = jobs.watcher.fetch(ctx, ctx.source, stub)  # refuses a job whose cluster is gone from the source
    change = planner.decide(resource, prior)
    if change is None:
        return None
    book.writer.pacers["target"].wait()
    applied = jobs.replicator.apply(ctx, change)
    ctx.store.record_applied(resource, applied)
    if applied.target_key != resource.key:
        ctx.idmap.remember(JOBS, resource.key, applied.target_key)
    if applied.pending:  # on the target with a step still to do (recorded: no second create): not runnable yet
        raise DbsyncError(applied.pending)
    metrics.CHANGES_APPLIED.labels(JOBS, change.action).inc()
    keep_version(ctx, jobs, resource, applied.target_key, change.action)
    why = "created" if change.action == "create" else "changed"
    message = f"{JOBS} {resource.key}: {why} on the source after the final sync, replicated after it was paused"
    # In the store's word, as the engine's events (Applied.status): synced, or partial with the note saying what not.
    note = f" ({applied.note})" if applied.note else ""
    ctx.event(JOBS, resource.key, change.action, applied.status, message + note)
    return applied


def summary(written: int, failures: list[str], partial: list[str]) -> str:
    """The step summary's part: the late jobs written (those written `partial` named, in the store's word: the
    summary said "replicated" alone of a copy without its run_as user while `status` said partial), and those not
    (a --force run goes on without them)."""
    text = f"{written} late job(s) replicated (created or edited on the source after the final sync)"
    if partial:
        text += f", {len(partial)} of them partial, e.g. {partial[0]}"
    if failures:
        text += f", {len(failures)} not, e.g. {failures[0]}: they run nowhere"
    return text


def failure_summary(failures: list[str]) -> str:
    """The step's summary when late jobs could not be written: each would run nowhere after the cutover."""
    return (
        f"{len(failures)} job(s) created or edited on the source after the final sync not replicated, e.g. "
        f"{failures[0]}: paused on the source, they would run nowhere. Fix that and run `dbsync cutover` again, or "
        "run `dbsync cutover --rollback` and then `dbsync cutover` (its final sync replicates what they use; "
        "`--force` cuts over without them)"
    )


@contextmanager
def _promotion_fenced(book: Runbook) -> Iterator[None]:
    """Every target write of the block refused unless this store's cutover still promotes the target."""
    target = book.ctx.target
    previous, target.fence = target.fence, _PromotionFence(book)
    try:
        yield
    finally:
        target.fence = previous


class _PromotionFence:
    """A write fence (dbsync/role.py) for the cutover's own replication: its store's role is cutover-in-progress
    and the target's marker says promoting for this pair (read again every MARKER_TTL_SECONDS of writing)."""

    def __init__(self, book: Runbook) -> None:
        self.book = book
        self.marker: tuple[float, str | None] | None = None

    def refusal(self) -> str | None:
        role, _ = self.book.store.writer_flags()
        if role != StoreRole.CUTOVER_IN_PROGRESS:
            return f"the store's role is {role}, not {StoreRole.CUTOVER_IN_PROGRESS}: no more writes to the target"
        now = time.monotonic()
        if self.marker is None or now - self.marker[0] >= MARKER_TTL_SECONDS:
            self.marker = (now, self._marker_refusal())
        return self.marker[1]

    def _marker_refusal(self) -> str | None:
        store, target = self.book.store, self.book.ctx.target
        source_id = store.get_meta("source_workspace_id") or ""
        target_id = store.get_meta("target_workspace_id") or ""
        try:
            marker = read_marker(target) or {}
        except DbsyncError as err:
            return f"{one_line(err)}; nothing is written to a target whose role is unknown"
        own = str(marker.get("workspace_id") or "")
        peer = str(marker.get("peer_workspace_id") or "")
        if marker.get("role") == PROMOTING and peer == source_id and own in ("", target_id):
            return None
        return f"the target's {MARKER_PATH} says {marker.get('role')!r}, not promoting by this cutover"
