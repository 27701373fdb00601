"""Continuous pipelines in the cutover: stopped on the source, started on the target, undone by a rollback.

A standby copy is always written `continuous: false` (the service starts a continuous pipeline on create
and restarts it on every edit), and the store keeps each source pipeline's `continuous` in source_meta.
pause_source switches each continuous source pipeline to triggered (which stops its update), recorded
as `source_pipeline:<id>` before the write; unpause_target switches the copy of each one to continuous
(which starts it), recorded as `target_pipeline:<id>`. With --skip-source the copies of the pipelines the
last sync saw continuous are started. A rollback switches the started copies back first, then the source.
Triggered pipelines run from jobs (a `pipeline_task`) or by hand: their jobs' pause states cover them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from databricks.sdk.errors import DatabricksError, NotFound

from dbsync.cutover.common import job_rows, one_line, step_state
from dbsync.model import Prior
from dbsync.replicators.common import sdk_call

if TYPE_CHECKING:
    from dbsync.cutover.runbook import Runbook

PIPELINES = "pipelines"
CONTINUOUS = "continuous"  # the pipelines watcher's source_meta key
SOURCE_PIPELINE_ROW, TARGET_PIPELINE_ROW = "source_pipeline:", "target_pipeline:"


def _spec(ws: Any, pipeline_id: str) -> dict[str, Any] | None:
    """The live spec of a pipeline, None when it is gone."""
    try:
        return ws.client.pipelines.get(pipeline_id).as_dict().get("spec") or {}
    except NotFound:
        return None


def set_continuous(ws: Any, book: Runbook, side: str, pipeline_id: str, spec: dict[str, Any], on: bool) -> None:
    """PUT the pipeline's whole spec with `continuous` changed: every other setting kept."""
    book.writer.pacers[side].wait()
    sdk_call(ws.client.pipelines.update, {**spec, CONTINUOUS: on}, pipeline_id=pipeline_id)


def _continuous_priors(book: Runbook) -> list[Prior]:
    """Replicated pipelines the store last saw continuous on the source."""
    return [p for p in book.store.priors(PIPELINES, payloads=False) if p.source_meta.get(CONTINUOUS)]


def wanted(book: Runbook) -> list[Prior]:
    """The pipelines whose copies must run on the new primary: those continuous on the source when it stopped."""
    if step_state(book.rows, "pause_source") == "done":
        stopped = job_rows(book.rows, SOURCE_PIPELINE_ROW)
        return [p for p in book.store.priors(PIPELINES, payloads=False) if p.key in stopped]
    return _continuous_priors(book)


def stop_source(book: Runbook) -> tuple[int, list[str]]:
    """pause_source: each continuous source pipeline switched to triggered; (stopped, failures)."""
    stopped, failed = 0, []
    for prior in _continuous_priors(book):
        row = SOURCE_PIPELINE_ROW + prior.key
        spec = _spec(book.ctx.source, prior.key)
        if spec is None or (not spec.get(CONTINUOUS) and row not in book.rows):
            continue  # gone, or triggered since the last sync: nothing of it runs
        detail = {"name": spec.get("name") or prior.key, "prior": {CONTINUOUS: True}}
        if row not in book.rows:
            book.record(row, "pending", detail)  # the prior state is kept before the write
        try:
            if spec.get(CONTINUOUS):
                set_continuous(book.ctx.source, book, "source", prior.key, spec, on=False)
        except DatabricksError as err:
            failed.append(f"source pipeline {prior.key} ({detail['name']}): {one_line(err)}")
            continue
        book.record(row, "stopped", book.rows[row]["detail"])
        stopped += 1
    return stopped, failed


def start_target(book: Runbook) -> tuple[int, list[str]]:
    """unpause_target: the copy of each pipeline that ran on the source switched to continuous; (started, failures)."""
    started, failed = 0, []
    for prior in wanted(book):
        if prior.target_key is None:
            failed.append(f"pipeline {prior.key} was never replicated to the target")
            continue
        row = TARGET_PIPELINE_ROW + prior.target_key
        spec = _spec(book.ctx.target, prior.target_key)
        if spec is None:
            failed.append(f"target pipeline {prior.target_key} (copy of {prior.key}) is missing")
            continue
        detail = {"name": spec.get("name") or prior.key, "source_key": prior.key}
        if row not in book.rows:
            book.record(row, "pending", detail)
        try:
            if not spec.get(CONTINUOUS):
                set_continuous(book.ctx.target, book, "target", prior.target_key, spec, on=True)
        except DatabricksError as err:
            failed.append(f"target pipeline {prior.target_key} ({detail['name']}): {one_line(err)}")
            continue
        book.record(row, "started", detail)
        started += 1
    return started, failed


def rollback(book: Runbook, missing: list[str]) -> tuple[int, list[str]]:
    """The copies the cutover started switched back to triggered, then the source pipelines it stopped restored.

    Returns (pipelines switched, failures); a pipeline gone from its workspace is added to `missing`.
    """
    done, failed = 0, []
    for side, prefix, on in (("target", TARGET_PIPELINE_ROW, False), ("source", SOURCE_PIPELINE_ROW, True)):
        if failed:
            break  # a copy that may still run: its source pipeline must not start again
        ws = book.ctx.target if side == "target" else book.ctx.source
        for pipeline_id, row in job_rows(book.rows, prefix).items():
            spec = _spec(ws, pipeline_id)
            if spec is None:
                missing.append(f"{side} pipeline {pipeline_id}")
                continue
            if bool(spec.get(CONTINUOUS)) == on:
                continue
            try:
                set_continuous(ws, book, side, pipeline_id, spec, on=on)
                done += 1
            except DatabricksError as err:
                failed.append(f"{side} pipeline {pipeline_id} ({row['detail'].get('name')}): {one_line(err)}")
    return done, failed


def plan_text(book: Runbook, skip_source: bool) -> str:
    """The dry run's line: which continuous pipelines move from the source to the target."""
    names = [p.key for p in wanted(book)]
    if not names:
        return "no continuous pipeline to move"
    where = "started on the target" if skip_source else "stopped on the source and started on the target"
    shown = ", ".join(_name(book, k) for k in names[:5]) + (" …" if len(names) > 5 else "")
    return f"{len(names)} continuous pipeline(s) {where}: {shown}"


def _name(book: Runbook, key: str) -> str:
    prior = book.store.prior(PIPELINES, key)
    payload = prior.payload if prior else None
    return str((payload or {}).get("name") or key)
