"""`dbsync cutover --rollback`: the target jobs paused again, the source jobs restored, the pair a standby again."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from dbsync.cutover import endpoints, pipelines, schedules
from dbsync.cutover.common import JOBS, RUN_ROW, SOURCE_ROW, TARGET_ROW, CutoverError, list_jobs, step_state
from dbsync.cutover.plan import Restorer, repause_items
from dbsync.roles import StoreRole

if TYPE_CHECKING:
    from dbsync.cutover.runbook import Runbook


def rollback(book: Runbook) -> dict[str, Any]:
    """Re-pause the target jobs the cutover unpaused, restore the source jobs it paused, back to standby.

    Per job, the target copy is paused before its source job may run again, and a source job whose
    target copy runs (unpaused outside dbsync) is not restored. Idempotent: each job is compared with
    its recorded state, and the record is cleared only when everything is back.
    """
    source_rows, target_rows = book.job_rows(SOURCE_ROW), book.job_rows(TARGET_ROW)
    result: dict[str, Any] = {"target_repaused": 0, "source_restored": 0, "missing": []}
    if not book.rows and book.store.role == StoreRole.STANDBY:
        return {**result, "nothing_to_do": True}
    if needs_source(book.rows) and book.skip_source:
        raise CutoverError(
            "source jobs, pipelines or dashboard schedules were paused by the cutover and must be restored: the "
            "rollback needs the source; run it again without --skip-source once the source answers"
        )
    marked = source_marked(book.rows)
    book.record(RUN_ROW, "rollback", {**book.detail(RUN_ROW), "rollback_at": time.time()})
    book.set_role(StoreRole.CUTOVER_IN_PROGRESS)
    if not book.skip_source:
        # Before anything of the old primary runs again: a reverse replication (`dbsync reverse`) whose
        # target it is reads its marker, and one still saying standby let it pause the restored jobs.
        book.mark_source_primary(required=marked)
        if marked:  # its marker said standby: a reverse replication may still trust that for a while
            book.wait_for_other_writers("source", "rollback")
    target_live = list_jobs(book.ctx.target)
    source_live = list_jobs(book.ctx.source) if source_rows else {}
    repause = repause_items(target_rows, target_live, result["missing"])
    restore = Restorer(source_rows, source_live, target_live, _target_key_of(book), result["missing"])
    writes = book.write_jobs("target", repause, "PAUSED", follow=restore.after_repause, record=False)
    blocked = {item.detail.get("source_key") for item, _ in writes.failed["target"]}
    more = book.write_jobs("source", restore.remaining(blocked), "UNPAUSED", record=False)
    result["target_repaused"] = writes.done["target"]
    result["source_restored"] = writes.done["source"] + more.done["source"]
    failures = [m for w in (writes, more) for side in ("source", "target") for _, m in w.failed[side]]
    failures += restore.kept
    result["pipelines_restored"], pipeline_failures = pipelines.rollback(book, result["missing"])
    result["endpoints_scaled_to_zero"], endpoint_failures = endpoints.rollback(book)
    result["dashboard_schedules_restored"], schedule_failures = schedules.rollback(book, result["missing"])
    failures += pipeline_failures + endpoint_failures + schedule_failures
    if failures:
        raise CutoverError(
            f"rollback: {len(failures)} job(s) not restored, e.g. {failures[0]}. Fix that, then run "
            "`dbsync cutover --rollback` again."
        )
    book.store.clear_cutover()
    book.rows = {}
    book.set_role(StoreRole.STANDBY)
    book.store.set_meta("rolled_back_at", str(time.time()))  # the report page says "rolled back" for a day
    book.ctx.event(None, None, "cutover", "ok", "cutover rolled back: the target is a standby again")
    return result


def needs_source(rows: dict[str, Any]) -> bool:
    """Whether the record holds anything the cutover stopped on the source: jobs, pipelines, schedules.

    Counting the jobs alone opened the rollback of a cutover that stopped only a pipeline without the
    source, and the rollback then refused: it needed the source.
    """
    prefixes = (SOURCE_ROW, pipelines.SWITCH.source_row, schedules.SWITCH.source_row)
    return any(row.startswith(prefixes) for row in rows)


def source_marked(rows: dict[str, Any]) -> bool:
    """Whether the cutover may have marked the source standby: its pause_source ran, or the record is gone.

    A record cleared by a rollback killed before its last write says nothing: the marker may be standby.
    """
    return not rows or step_state(rows, "pause_source") not in ("pending", "skipped")


def _target_key_of(book: Runbook) -> Callable[[str], str | None]:
    """Source job id → the id of its replicated copy, as the store knows it (None when never replicated)."""

    def target_key(source_key: str) -> str | None:
        prior = book.store.prior(JOBS, source_key)
        return prior.target_key if prior else None

    return target_key
