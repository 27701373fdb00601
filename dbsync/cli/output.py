"""What the commands print: the progress line, the summary table, the JSON documents."""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

from dbsync import logs
from dbsync.model import COUNTED, cycle_succeeded


class Progress:
    """One self-rewriting line per kind on a terminal that shows text logs; silent otherwise (logs carry the detail)."""

    def __init__(self) -> None:
        self.enabled = logs.progress_allowed()
        self.last = 0.0

    def __call__(self, report: Any) -> None:
        now = time.monotonic()
        if not self.enabled or now - self.last < 0.25:
            return
        self.last = now
        sys.stderr.write(
            f"\r{report.kind}: {report.listed} listed, {report.fetched} fetched, "
            f"{report.created} created, {report.updated} updated, {report.skipped} skipped, {report.partial} partial, "
            f"{report.errors} errors   "
        )
        sys.stderr.flush()

    def done(self) -> None:
        if self.enabled:
            sys.stderr.write("\r" + " " * 100 + "\r")


# One vocabulary on every surface: only created / updated / unchanged are in sync.
SUMMARY_COLUMNS = ("created", "updated", "unchanged", "skipped", "partial", "deleted", "blocked", "errors", "drifted")


STATUS_COLUMNS = COUNTED  # `dbsync status`: the words of dbsync_resources


def summary_table(reports: Sequence[Any]) -> str:
    """The `sync --once` table: one row per kind, counted with the outcome vocabulary."""
    columns = ("listed", "fetched", *SUMMARY_COLUMNS, "seconds")
    lines = [f"{'kind':<20}" + "".join(f"{c:>10}" for c in columns)]
    for r in reports:
        counts = "".join(f"{getattr(r, c):>10}" for c in columns[:-1])
        lines.append(f"{r.kind:<20}{counts}{r.seconds:>10.2f}")
        if getattr(r, "not_due", 0):
            lines.append(f"  · {r.not_due} not read: revisit not due, last verified status stands")
        if r.message:
            lines.append(f"  ! {r.message}")
    return "\n".join(lines)


def report_json(r: Any) -> dict[str, Any]:
    doc = {k: getattr(r, k) for k in ("kind", "listed", "fetched", *SUMMARY_COLUMNS, "outcome", "message")}
    doc.update(held=r.held, pending=r.pending)  # held by the edit-storm guard; pinned by `dbsync restore --pin`
    doc["seconds"] = round(r.seconds, 3)
    doc["not_due"] = getattr(r, "not_due", 0)  # listed, not read (a kind read by need)
    return doc


PlanRow = tuple[str, str, str | None, str | None]  # action, kind, key (None: the kind as a whole), reason


def plan_rows(planned: Sequence[Any], reports: Sequence[Any], besides: Sequence[PlanRow] = ()) -> list[PlanRow]:
    """Every line of a plan: the changes (`skip` with its reason), the deletes a write makes `besides` its own (a
    moved folder's old copy), then what the sync would leave `blocked` or in `error`, then each kind the plan cannot
    speak for in full: `unknown` when its listing failed or was stopped before its end (a plan of part of the source
    is not "nothing else to do"), `held` when a guard would hold its deletes or updates. A stopped listing was
    `held`, a word that promised the sync would hold something."""
    rows: list[PlanRow] = [(plan_action(c), c.kind, c.key, c.skip_reason) for c in planned]
    rows += besides
    rows += [(u.action, u.kind, u.key, u.reason) for r in reports for u in r.unwritten]
    rows += [(kind_row(r), r.kind, None, r.message) for r in reports if r.message]
    return rows


def kind_row(report: Any) -> str:
    """A plan's word for a kind it names: `held` when its whole listing was read (cycle_succeeded), else `unknown`."""
    return "held" if cycle_succeeded(report.outcome) else "unknown"


def plan_json(row: PlanRow) -> dict[str, Any]:
    action, kind, key, reason = row
    doc = {"action": action, "kind": kind, "key": key}
    if reason:
        doc["reason"] = reason
    return doc


def plan_text(rows: Sequence[PlanRow]) -> str:
    """One line per object, `! kind: why` per kind, and the counts; what is not written or not listed is named."""
    lines = [
        f"{a:<7} {kind:<20} {key}" + (f"  ({reason})" if reason else "")
        for a, kind, key, reason in rows
        if key is not None
    ]
    lines += [f"! {kind}: {reason}" for _, kind, key, reason in rows if key is None]
    count = Counter(action for action, *_ in rows)
    actions = ("create", "update", "delete", "skip")
    summary = f"{sum(count[a] for a in actions)} change(s): " + ", ".join(f"{count[a]} {a}" for a in actions)
    if count["blocked"] or count["error"]:
        summary += f"; not written: {count['blocked']} blocked, {count['error']} error"
    unknown = [kind for action, kind, *_ in rows if action == "unknown"]
    if unknown:
        summary += f"; not listed: {', '.join(unknown)} (their changes are unknown)"
    return "\n".join([*lines, summary])


def plan_action(change: Any) -> str:
    """`skip` for a change dbsync will not write (a mount, a user it may not create), with its reason."""
    return "skip" if change.skip_reason else str(change.action)


def cutover_progress(event: str, name: str, detail: dict[str, Any]) -> None:
    if event == "wait":  # a pause of a step, with its reason: the operator must not take it for a hang
        print(f"      {detail['summary']} …", file=sys.stderr, flush=True)
        return
    if event != "step":
        return
    from dbsync.cutover import STEPS  # the cutover's modules load for the commands that cut over, not for `sync`

    number = f"{STEPS.index(name) + 1}/{len(STEPS)}"
    if detail["state"] == "running":
        print(f"[{number}] {name} …", file=sys.stderr, flush=True)
    else:
        print(
            f"[{number}] {name}: {detail['state']} in {detail['seconds']:.1f} s — {detail['summary']}", file=sys.stderr
        )
