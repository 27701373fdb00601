"""What one cycle of one kind did, counted in the one vocabulary every surface uses (summary, cycles, metrics)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dbsync import metrics
from dbsync.model import Applied, Change, Delete, Prior

# Which outcomes are a successful cycle: defined with the vocabulary in model.py, where the store (which reads past
# cycles for last_success) can import it too; here for the engine and the daemon, beside the report it judges.
from dbsync.model import cycle_succeeded as cycle_succeeded


@dataclass(frozen=True)
class Unwritten:
    """`dbsync plan`: an object the sync would not write, `blocked` (waiting on something) or in `error`, and why."""

    kind: str
    key: str
    action: str
    reason: str


@dataclass
class KindReport:
    """What one cycle of one kind did (the `sync --once` summary and the cycles table)."""

    kind: str
    listed: int = 0
    fetched: int = 0
    unchanged: int = 0
    created: int = 0
    updated: int = 0
    skipped: int = 0  # nothing written on purpose (a user dbsync may not create, a mount), with the reason
    partial: int = 0  # written with entries left out (principals the target lacks): applied again when they exist
    deleted: int = 0
    blocked: int = 0
    held: int = 0  # updates the edit-storm guard held: the target keeps its copies until they are confirmed
    pending: int = 0  # source changes not copied on purpose: the object is pinned by `dbsync restore --pin`
    errors: int = 0
    drifted: int = 0
    # Listed, not read: an unchanged object of a kind read by need whose revisit is not due (its status stands).
    not_due: int = 0
    started_at: float = 0.0  # wall clock at the start of the listing: what a complete read verified is this old
    seconds: float = 0.0
    outcome: str = "ok"
    message: str | None = None
    planned: list[Change] = field(default_factory=list)
    unwritten: list[Unwritten] = field(default_factory=list)  # a plan's blocked and failed objects
    pending_deletes: list[Delete] = field(default_factory=list, repr=False)
    # Outcomes blocked on a reference; retried once after the kind's other changes are applied.
    blocked_outcomes: list[Any] = field(default_factory=list, repr=False)
    # Updates fetched and decided, applied once the whole listing shows whether the edit-storm guard holds them.
    deferred: list[Any] = field(default_factory=list, repr=False)
    deferred_bytes: int = field(default=0, repr=False)

    def counts(self) -> dict[str, int]:
        return {k: getattr(self, k) for k in ("listed", "fetched", "created", "updated", "deleted", "errors")}


Progress = Callable[[KindReport], None]


def count_applied(report: KindReport, action: str, applied: Applied) -> None:
    """One vocabulary: a skipped or partial apply is never counted as created or updated; an old copy the write
    deleted besides (a moved folder's) is counted as a delete, as a source delete's is."""
    if applied.deleted:
        report.deleted += 1
        metrics.CHANGES_APPLIED.labels(report.kind, "delete").inc()
    if applied.skipped:
        report.skipped += 1
    elif applied.waiting_on:
        report.partial += 1
    elif action == "create":
        report.created += 1
    else:
        report.updated += 1


def count_unchanged(report: KindReport, prior: Prior | None) -> None:
    """Nothing to write this cycle: still skipped or partial if it was, else unchanged.

    A drifted object stays unchanged here: `drifted` counts the edits detected in this cycle (the alert's series).
    """
    status = prior.copy_status if prior is not None else "synced"
    if status in ("skipped", "partial"):
        setattr(report, status, getattr(report, status) + 1)
    else:
        report.unchanged += 1


def count_failure(report: KindReport, outcome: Any, plan_only: bool) -> None:
    """A change that failed (`error`), waits (`blocked`) or is pinned (`pending`), counted.

    A plan names each one as well: it used to count them and print nothing, so `plan` showed the scope alone and
    exited 0 where `sync --once` then said `secrets blocked 1` and exited 1.
    """
    if outcome.status == "blocked":
        report.blocked += 1
        report.blocked_outcomes.append(outcome)
    elif outcome.status == "pending":
        report.pending += 1
    else:
        report.errors += 1
        metrics.SYNC_ERRORS.labels(report.kind).inc()
    if plan_only:
        status = outcome.status or "error"
        report.unwritten.append(Unwritten(report.kind, outcome.resource.key, status, outcome.error or ""))
