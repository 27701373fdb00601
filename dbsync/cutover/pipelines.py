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

from databricks.sdk.errors import NotFound

from dbsync.cutover.common import kind_disabled
from dbsync.cutover.switches import Switch
from dbsync.model import Prior
from dbsync.replicators.common import sdk_call

if TYPE_CHECKING:
    from dbsync.cutover.runbook import Runbook

PIPELINES = "pipelines"
CONTINUOUS = "continuous"  # the pipelines watcher's source_meta key
SOURCE_PIPELINE_ROW, TARGET_PIPELINE_ROW = "source_pipeline:", "target_pipeline:"


class ContinuousPipelines(Switch):
    kind, noun = PIPELINES, "pipeline"
    source_row, target_row = SOURCE_PIPELINE_ROW, TARGET_PIPELINE_ROW
    off_state, on_state = "stopped", "started"
    prior_detail = {CONTINUOUS: True}

    def live(self, ws: Any, key: str) -> dict[str, Any] | None:
        """The live spec of a pipeline."""
        try:
            return ws.client.pipelines.get(key).as_dict().get("spec") or {}
        except NotFound:
            return None

    def is_on(self, live: dict[str, Any]) -> bool:
        return bool(live.get(CONTINUOUS))

    def turn(self, ws: Any, key: str, live: dict[str, Any], on: bool) -> None:
        """PUT the pipeline's whole spec with `continuous` changed: every other setting kept."""
        sdk_call(ws.client.pipelines.update, {**live, CONTINUOUS: on}, pipeline_id=key)

    def was_on(self, prior: Prior) -> bool:
        return bool(prior.source_meta.get(CONTINUOUS))

    def name(self, book: Runbook, prior: Prior, live: dict[str, Any] | None) -> str:
        if live is not None:
            return str(live.get("name") or prior.key)
        stored = book.store.prior(PIPELINES, prior.key)  # the dry run's priors are read without payloads
        return str(((stored.payload if stored else None) or {}).get("name") or prior.key)


SWITCH = ContinuousPipelines()
wanted, stop_source, start_target, rollback = SWITCH.wanted, SWITCH.stop_source, SWITCH.start_target, SWITCH.rollback


def plan_text(book: Runbook, skip_source: bool) -> str:
    """The dry run's line: which continuous pipelines move from the source to the target."""
    priors = wanted(book)
    if not priors:
        return "no continuous pipeline to move"
    where = "started on the target" if skip_source else "stopped on the source and started on the target"
    if not SWITCH.enabled(book):  # the target's are the DR team's: the copies, stale, stay as they are
        where = "not started on the target" if skip_source else "stopped on the source, none started on the target"
        where += f" ({kind_disabled(PIPELINES)}: the target's are not dbsync's)"
    shown = ", ".join(SWITCH.name(book, p, None) for p in priors[:5]) + (" …" if len(priors) > 5 else "")
    return f"{len(priors)} continuous pipeline(s) {where}: {shown}"
