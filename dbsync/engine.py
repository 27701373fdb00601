"""The reconcile loop: list → diff → fetch → plan → apply → record, for each kind in dependency order.

Workers only talk HTTP (fetch and apply); the calling thread owns the store: it records every outcome
in its own transaction, and the events workers raise (queued on the context). Upserts run in dependency
order, then deletes in reverse order, so a job goes before the cluster it used. Listings stream: at most
`concurrency * 4` changes are in flight, and a notebook body lives from its export to its import only.
After a kind's upserts (after its group's, for kinds sharing a listing) come its drift check (drift.py) and
its planned deletes (_settle).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

from databricks.sdk.errors import DatabricksError

from dbsync import apply, deletes, drift, hints, metrics, pacing, planner, revisit, update_guard
from dbsync.compact import KeySet
from dbsync.context import SyncContext
from dbsync.errors import Blocked, DbsyncError, Kept, ListingError, Permanent, RetryLater, StoreError, one_line
from dbsync.inflight import InFlight
from dbsync.mapping import arrived
from dbsync.model import (
    AGAIN,
    COUNTED,
    IN_SYNC,
    NAMED_TURNS,
    WAITING_ON,
    Applied,
    Change,
    Delete,
    Prior,
    Resource,
)
from dbsync.outcomes import KindReport, Progress, count_failure, count_unchanged, cycle_succeeded
from dbsync.readahead import ListingsAhead
from dbsync.registry import Kind, kinds
from dbsync.role import WriteFenced
from dbsync.roles import replication_refusal
from dbsync.update_guard import PINNED, guarded_updates, guards, hold_for_guard, keep_deletion
from dbsync.watchers.base import describe

log = logging.getLogger("dbsync.engine")
MAX_BACKOFF_SECONDS = 3600.0


@dataclass
class _Outcome:
    resource: Resource
    prior: Prior | None
    change: Change | None = None
    applied: Applied | None = None
    status: str | None = None  # blocked | error when the change failed
    error: str | None = None
    retry_in: float = 0.0
    deferred: bool = False  # an update waiting for the edit-storm guard's decision
    refetch: bool = False  # its body was let go (too many held at once): fetched again if it is applied


class Engine:
    """Runs cycles over the registered kinds for one SyncContext."""

    def __init__(
        self,
        ctx: SyncContext,
        force_deletes: bool = False,
        force_updates: bool = False,
        retry_now: bool = True,
        progress: Progress | None = None,
        registry: Iterable[Kind] | None = None,
        stop: threading.Event | None = None,
        check_drift: bool = True,
        full_sweep: bool = False,
        time_slice: float | None = None,
        read_hints: bool = True,
    ) -> None:
        self.ctx = ctx
        self.force_deletes = force_deletes
        self.force_updates = force_updates
        self.pinned: set[tuple[str, str]] = set()  # `restore --pin`: (kind, key) the source may not overwrite
        self.retry_now = retry_now  # `sync --once` retries errors at once; the daemon backs off
        self.progress = progress
        self.registry = tuple(registry if registry is not None else kinds())
        self.stop = stop or threading.Event()  # set by SIGTERM: finish the changes in flight, then stop
        self.check_drift = check_drift
        self.full_sweep = full_sweep  # read every object, due or not (cutover's final sync)
        # The daemon's: a kind read by need reads its due objects for this long, then leaves the rest due (revisit.py)
        self.time_slice = time_slice
        self.read_hints = read_hints  # the daemon reads the audit log on a thread of its own instead
        self.sliced: set[str] = set()  # kinds that stopped at their time slice: the daemon runs them again soon
        self.hinted: set[str] = set()  # kinds the audit-log hints of this cycle named (the daemon runs them soon)
        self.fenced: str | None = None  # set by the first write the fence refused: the cycle stops there
        self.ahead = ListingsAhead(ctx, [])  # this cycle's source listings, read ahead of their turn (readahead.py)
        self.wrote = False  # an apply was tried this cycle: the target listings read ahead are out of date
        self.settling: list[tuple[Kind, KindReport, KeySet]] = []  # listed whole, not yet drift-checked (_settle)

    @property
    def plan_only(self) -> bool:
        """A plan (`dbsync plan`, a context opened with dry_run): list, compare, write nothing."""
        return self.ctx.dry_run

    def selected_kinds(self, names: Iterable[str] | None = None) -> list[Kind]:
        wanted = set(names) if names else None
        return [
            k
            for k in self.registry
            if (wanted is None or k.name in wanted) and (wanted is not None or self.ctx.settings.kind(k.name).enabled)
        ]

    def cycle(self, names: Iterable[str] | None = None) -> list[KindReport]:
        """One pass over the selected kinds: upserts in dependency order, then deletes in reverse."""
        refusal = replication_refusal(self.ctx.store.role)
        if refusal and not self.plan_only:
            raise StoreError(refusal)
        self.ctx.new_run()
        if self.read_hints and not self.plan_only and not self.full_sweep:
            self.hinted = hints.read(self.ctx)  # objects the audit log names are due before the kinds list
        selected = self.selected_kinds(names)
        self.wrote = False
        self.settling, self.pinned = [], set()
        drift = self.check_drift and not self.plan_only
        self.ctx.by_need = not self.plan_only and not self.full_sweep
        self.ctx.time_slice = self.time_slice if self.ctx.by_need else None
        try:
            # the workers queue their events; listings are read ahead of their kinds' turns
            with self.ctx.owning_events(), ListingsAhead(self.ctx, selected, drift) as self.ahead:
                reports = self._cycle(selected)
        finally:
            self.ctx.by_need = False  # validate and plans on this context read everything
            self.ctx.time_slice = None
        if not self.plan_only:
            history = self.ctx.settings.history
            self.ctx.versions.prune_if_due(history.keep_days, history.max_bytes)
        return reports

    def _cycle(self, selected: list[Kind]) -> list[KindReport]:
        reports: list[tuple[Kind, KindReport, int]] = []
        unfinished: dict[int, str] = {}  # cycle rows started and not finished yet
        try:
            for position, kind in enumerate(selected):
                if self.stop.is_set():
                    break
                cycle_id = 0 if self.plan_only else self.ctx.store.start_cycle(kind.name)
                unfinished[cycle_id] = kind.name
                started, wall = time.monotonic(), time.time()
                report = self._upserts(kind)
                report.seconds, report.started_at = time.monotonic() - started, wall
                reports.append((kind, report, cycle_id))
                if not _shares_listing(kind, selected[position + 1 :]):
                    self._settle()
                    self._release_listing(kind)
            self._settle()  # a stop between two kinds of a group: those listed still plan their deletes
            for kind, report, cycle_id in reversed(reports):
                started = time.monotonic()
                self._deletes(kind, report)
                report.seconds += time.monotonic() - started
                if not self.plan_only:
                    self._finish(kind, report, cycle_id)
                unfinished.pop(cycle_id, None)
        except BaseException as err:
            self._close_unfinished(unfinished, {cid: r.counts() for _, r, cid in reports}, err)
            raise
        return [report for _, report, _ in reports]

    def _close_unfinished(
        self, unfinished: dict[int, str], counts: dict[int, dict[str, int]], err: BaseException
    ) -> None:
        """A run that stops on an unexpected error still gives every cycle row it started an outcome."""
        if self.plan_only:
            return
        outcome = "error" if isinstance(err, Exception) else "interrupted"  # Ctrl-C is not a failure
        for cycle_id, name in unfinished.items():
            try:
                self.ctx.store.finish_cycle(cycle_id, counts.get(cycle_id, {}), outcome)
                self.ctx.event(name, None, "cycle", "error", f"{name}: the cycle stopped: {describe(err)}")
            except Exception:  # the store itself may be what failed; the original error is raised
                log.warning("cannot record the end of the %s cycle", name, exc_info=True)

    # -- upserts --------------------------------------------------------------------------------
    def _upserts(self, kind: Kind) -> KindReport:
        report = KindReport(kind.name)
        kind_settings = self.ctx.settings.kind(kind.name)
        listed = KeySet()  # 16 bytes a key: the permissions kind lists 100,000+
        inflight: InFlight[_Outcome] = InFlight()
        limit = self.ctx.settings.concurrency * 4
        store = self.ctx.store
        self.pinned |= self.ctx.versions.pinned_keys([kind.name])  # kept to its deletes, planned after its group
        deadline = time.monotonic() + self.time_slice if self.time_slice and not self.full_sweep else None
        cut, last_key = False, None  # a sweep stopped listing at its slice (revisit.sweep_ends) after last_key
        try:
            # Reads an audit-log hint named have threads of their own: behind the sweep's (4 x concurrency queued,
            # each giving way to every other request) hinted ACL edits reached the standby in p99 160 s (goal 120).
            named = ThreadPoolExecutor(2, thread_name_prefix=f"named-{kind.name}")
            with (
                named,
                ThreadPoolExecutor(self.ctx.settings.concurrency, thread_name_prefix=f"sync-{kind.name}") as pool,
            ):
                due = revisit.DueCheck(self.ctx, kind)
                size = planner.SWEEP_WINDOW if kind.watcher.resumes_sweep else planner.PRIOR_WINDOW
                for stub, known in planner.with_priors(store, kind.name, self.ahead.listing(kind), due.window, size):
                    if self.stop.is_set() or self.fenced:
                        report.outcome = "interrupted"
                        report.message = self.fenced or "stopped before the listing ended"
                        break
                    if revisit.sweep_ends(kind, deadline, held=bool(report.deferred)):
                        cut = True
                        self.sliced.add(kind.name)
                        break
                    if not stub.out_of_turn:
                        last_key = stub.key  # an ACL read out of its turn does not move the resume point
                    if not planner.selected(kind_settings, stub.key):
                        continue
                    if stub.out_of_turn != AGAIN:  # named again after its read: listed and counted once
                        listed.add(stub.key)
                        report.listed += 1
                    prior = self._due_if_arrived(kind, known)
                    if not self.full_sweep and due.not_due(stub, prior):
                        report.not_due += 1
                        continue
                    if revisit.beyond_slice(self.ctx, kind, stub, prior, deadline):
                        report.not_due += 1  # still due: the daemon's next turn of the kind reads it
                        self.sliced.add(kind.name)
                        continue
                    if not planner.needs_fetch(stub, prior, self._retry_due(prior)):
                        count_unchanged(report, prior)
                        continue
                    if prior is not None and stub.version_hint is not None and not self.plan_only:
                        store.record_pending(kind.name, stub.key)  # the source changed: the lag clock starts
                    threads = named if stub.out_of_turn in NAMED_TURNS else pool
                    inflight.submit(threads, self._process, kind, stub, prior)
                    if inflight.count >= limit:
                        self._drain(kind, report, inflight, keep=limit // 2)
                    self._tick(report)
                self._drain(kind, report, inflight)  # changes in flight finish and are recorded
                if report.outcome == "interrupted":
                    return report  # an unfinished listing never plans deletes
                guarded_updates(self, kind, report, pool)
                self._retry_blocked(kind, report, pool)
        except ListingError as err:
            report.outcome = "listing_failed"
            report.message = f"listing failed, no deletes this cycle: {err}"
            report.errors += 1
            metrics.SYNC_ERRORS.labels(kind.name).inc()
            self.ctx.event(
                kind.name, None, "list", "error", f"{kind.name}: listing failed, no deletes this cycle: {err}"
            )
            return report
        if not self.plan_only and kind.watcher.resumes_sweep and (last_key is not None or not cut):
            # The next turn goes on from there, cut or not: a turn that came round to where it began and the next
            # from the start of the order made a short round, counted as a pass (logged, Store.record_sweep_start).
            # A slice cut before its walk moved (all of it overdue or named ACLs) keeps the resume point.
            store.record_sweep_resume(kind.name, last_key)
        if cut:  # the objects not listed were not read: not due as far as this cycle knows
            report.not_due += max(0, store.live_count(kind.name) - report.listed)
            return report
        listed.freeze()
        self.ctx.listed[kind.name] = listed
        self.settling.append((kind, report, listed))  # its drift check and deletes: _settle, after its group
        return report

    def _settle(self) -> None:
        """Drift checks and planned deletes of the kinds listed whole since the last settle, in their order.

        Kinds sharing a listing (the workspace tree's three) settle together after the last of them is written,
        against one target listing: checked each after its own writes, the target tree was listed again for each
        kind that wrote (at an initial sync three listings of every directory instead of one).
        """
        settling, self.settling = self.settling, []
        checked = [(k, r) for k, r, _ in settling if self.check_drift and k.watcher.drift_check and not self.plan_only]
        if checked and self.stop.is_set():  # a walk of the target would hold the shutdown up: baselines next cycle
            log.info("drift check of %s left for the next cycle: stopping", ", ".join(k.name for k, _ in checked))
            checked = []
        ahead = {k.name: self.ahead.target_listing(k, written=self.wrote) for k, _ in checked}
        for kind, report in checked:
            if report.created or report.updated:
                kind.watcher.forget_target_listing(self.ctx)  # a baseline must be read after this cycle's writes
        for kind, report, listed in settling:
            started = time.monotonic()
            if kind.name in ahead:
                drift.detect(self.ctx, kind, report, ahead[kind.name], self.stop)
            self._plan_deletes(kind, report, listed)
            report.seconds += time.monotonic() - started

    def _release_listing(self, kind: Kind) -> None:
        """A listing shared by consecutive kinds (the workspace tree) is freed once the last of them is done."""
        if kind.declaration.shared_listing is None:
            return
        if kind.watcher.listing_cut(self.ctx):
            self.sliced.add(kind.name)  # its walk stopped at the time slice: the daemon runs the group again soon
        kind.watcher.release_listing(self.ctx)

    def _due_if_arrived(self, kind: Kind, prior: Prior | None) -> Prior | None:
        """A partial or skipped object whose missing principal now exists on the target is applied again."""
        if prior is None or prior.status not in ("partial", "skipped"):
            return prior
        waiting = prior.source_meta.get(WAITING_ON) or []
        if not waiting or not arrived(self.ctx, waiting):
            return prior
        if not self.plan_only:
            self.ctx.store.record_due(kind.name, prior.key)
        return replace(prior, status="pending")

    def _retry_due(self, prior: Prior | None) -> bool:
        if prior is None or self.retry_now:
            return True
        return self.ctx.store.retry_due(prior)

    def _process(self, kind: Kind, stub: Resource, prior: Prior | None) -> _Outcome:
        """Worker: fetch the payload, decide, apply. Never raises: failures become outcomes."""
        resource = stub
        try:
            with pacing.giving_way(kind.watcher.declaration.gives_way and stub.out_of_turn not in NAMED_TURNS):
                resource = kind.watcher.fetch(self.ctx, self.ctx.source, stub)
            change = planner.decide(resource, prior)
            if change is None:
                return _Outcome(resource, prior)
            if (kind.name, resource.key) in self.pinned:  # in a plan too (it used to list them as writes)
                return _Outcome(resource, prior, status="pending", error=PINNED)
            if self.plan_only:
                change.skip_reason = kind.replicator.preview(self.ctx, change)  # why it will not be written
                return _Outcome(resource, prior, change)
            if guards(self.ctx, change) and not self.force_updates:
                return _Outcome(resource, prior, change, deferred=True)  # applied after the guard's look
            return _Outcome(resource, prior, change, kind.replicator.apply(self.ctx, change))
        except Exception as err:  # one bad object never stops the cycle
            return self._failure(resource, prior, err)

    def _failure(self, resource: Resource, prior: Prior | None, err: Exception) -> _Outcome:
        backoff = _backoff(prior)
        if isinstance(err, WriteFenced):
            self.fenced = str(err)
        if isinstance(err, Blocked):
            return _Outcome(resource, prior, status="blocked", error=str(err))
        if isinstance(err, RetryLater):
            return _Outcome(resource, prior, status="error", error=str(err), retry_in=err.delay or backoff)
        if isinstance(err, (Permanent, DatabricksError, DbsyncError)):
            return _Outcome(resource, prior, status="error", error=one_line(err), retry_in=backoff)
        if isinstance(err, (ConnectionError, TimeoutError, OSError)):
            return _Outcome(resource, prior, status="error", error=f"network: {one_line(err)}", retry_in=backoff)
        log.exception("unexpected error on %s %s", resource.kind, resource.key)
        return _Outcome(resource, prior, status="error", error=f"{type(err).__name__}: {err}", retry_in=backoff)

    def _drain(self, kind: Kind, report: KindReport, inflight: InFlight[_Outcome], keep: int = 0) -> None:
        """Wait until at most `keep` changes are in flight (workers stay busy); record the finished in one go."""
        done = inflight.take(keep)
        if not done:
            return
        with apply.window(self.ctx, kind) as records:
            for future in done:
                self._record(kind, report, future.result(), records)

    def _retry_blocked(self, kind: Kind, report: KindReport, pool: ThreadPoolExecutor) -> None:
        """Objects of this kind that waited on others of the same kind (a job running a job) go again."""
        blocked, report.blocked_outcomes = report.blocked_outcomes, []
        # Only an apply that waited on a reference can go again; one blocked while fetched (a secret the
        # source cannot give) has no payload and waits for the next cycle.
        blocked = [o for o in blocked if o.resource.payload is not None]
        if not blocked or self.plan_only or report.created == 0:
            return
        report.blocked -= len(blocked)
        again: InFlight[_Outcome] = InFlight()
        for outcome in blocked:
            again.submit(pool, self._reapply, kind, outcome)
        self._drain(kind, report, again)

    def _reapply(self, kind: Kind, outcome: _Outcome) -> _Outcome:
        try:
            change = planner.decide(outcome.resource, outcome.prior)
            if change is None:
                return _Outcome(outcome.resource, outcome.prior)
            return _Outcome(outcome.resource, outcome.prior, change, kind.replicator.apply(self.ctx, change))
        except Exception as err:
            return self._failure(outcome.resource, outcome.prior, err)

    def _record(self, kind: Kind, report: KindReport, outcome: _Outcome, window: apply.Window) -> None:
        """Main thread: records one outcome in the transaction of its window; its rows are written as it ends."""
        resource = outcome.resource
        if outcome.status is None and resource.payload is not None:
            report.fetched += 1
        if outcome.status is not None:
            self._record_failure(kind, report, outcome)
            return
        if outcome.deferred:
            hold_for_guard(report, outcome)
            return
        if resource.payload is not None and not self.plan_only:
            window.reads.append((resource, outcome.change is not None))
        if outcome.change is None:
            count_unchanged(report, outcome.prior)
            if not self.plan_only:
                _keep_waiting(resource, outcome.prior)
                window.seen.append(resource)
            return
        if self.plan_only:
            report.planned.append(outcome.change)
            return
        self.wrote = True
        assert outcome.applied is not None
        action, backoff = outcome.change.action, _backoff(outcome.prior)
        apply.record_applied(self.ctx, window, kind, resource, outcome.prior, action, outcome.applied, backoff, report)

    def _record_failure(self, kind: Kind, report: KindReport, outcome: _Outcome) -> None:
        resource = outcome.resource
        self.wrote = True  # a failed apply may have written part of its change
        count_failure(report, outcome, self.plan_only)  # a plan names it (outcomes.py)
        if self.plan_only:
            return
        self.ctx.store.record_failure(resource, outcome.status or "error", outcome.error or "", outcome.retry_in)
        self.ctx.event(
            kind.name,
            resource.key,
            "apply",
            outcome.status or "error",
            f"{kind.name} {resource.key}: {outcome.error}",
        )

    # -- deletes --------------------------------------------------------------------------------
    def _plan_deletes(self, kind: Kind, report: KindReport, listed: KeySet) -> None:
        known, missing = self.ctx.store.live_keys_not_in(kind.name, listed)
        # Only the missing keys' rows are read: walking the whole kind would decode every payload for one delete.
        priors = (self.ctx.store.prior(kind.name, k) for k in missing if deletes.in_scope(self.ctx, kind, k))
        gone = [p for p in priors if p is not None and (kind.name, p.key) not in self.pinned]
        kept_back = [k for k in missing if (kind.name, k) in self.pinned]  # a pinned restore stays: pending
        update_guard.pinned_deletes(self.ctx, report, kept_back, self.plan_only)
        plan = planner.plan_deletes(
            kind.name, gone, report.listed, known, self.ctx.settings.deletes, force=self.force_deletes
        )
        metrics.DELETE_GUARD_TRIPPED.labels(kind.name).set(1 if plan.held else 0)
        if plan.held:
            report.outcome = "delete_guard"
            report.message = f"deletes held: {plan.reason}"
            if not self.plan_only:
                self.ctx.event(
                    kind.name,
                    None,
                    "delete",
                    "held",
                    f"{kind.name}: delete guard tripped, {len(gone)} deletes held: {plan.reason}. "
                    "Check the source; run `dbsync sync --once --force-deletes` if they are intended.",
                )
        report.pending_deletes = deletes.confirmed(self.ctx, kind, plan.deletes)  # each one gone from the source

    def _deletes(self, kind: Kind, report: KindReport) -> None:
        changes, report.pending_deletes = report.pending_deletes, []
        if self.plan_only:
            report.planned.extend(changes)
            return
        with ThreadPoolExecutor(self.ctx.settings.concurrency, thread_name_prefix=f"delete-{kind.name}") as pool:
            futures = {pool.submit(self._delete_one, kind, c): c for c in changes}
            for future, change in futures.items():
                outcome, message = future.result()
                self.ctx.record_events()
                if outcome == "error":
                    report.errors += 1
                    metrics.SYNC_ERRORS.labels(kind.name).inc()
                    self.ctx.event(kind.name, change.key, "delete", "error", f"{kind.name} {change.key}: {message}")
                    continue
                self.ctx.store.record_deleted(kind.name, change.key)  # deleted, or no longer dbsync's to track
                if outcome == "deleted":
                    report.deleted += 1
                    metrics.CHANGES_APPLIED.labels(kind.name, "delete").inc()
                    keep_deletion(self.ctx, kind, change.key, change.target_key)
                else:
                    self.ctx.event(kind.name, change.key, "delete", outcome, f"{kind.name} {change.key}: {message}")

    def _delete_one(self, kind: Kind, change: Delete) -> tuple[str, str | None]:
        """(deleted | kept | skipped | error, why): only what dbsync created is deleted."""
        if self.fenced:
            return "error", self.fenced
        prior = change.prior
        if prior is None or not prior.target_key:
            return "skipped", "gone from the source before it reached the target: forgotten, nothing deleted"
        if (prior.origin or kind.replicator.unrecorded_origin) == "adopted":
            why = "dbsync adopted it" if prior.origin else "dbsync did not record creating it (an older store)"
            return "kept", f"gone from the source; {prior.target_key} is kept on the target because {why}"
        try:
            kind.replicator.delete(self.ctx, change)
            return "deleted", None
        except Kept as err:
            return "kept", f"gone from the source; kept on the target: {err}"
        except Exception as err:
            if isinstance(err, WriteFenced):
                self.fenced = str(err)
            return "error", one_line(err)

    # -- bookkeeping ----------------------------------------------------------------------------
    def _finish(self, kind: Kind, report: KindReport, cycle_id: int) -> None:
        outcome = report.outcome if report.outcome != "ok" or report.errors == 0 else "errors"
        self.ctx.store.finish_cycle(cycle_id, report.counts(), outcome)
        metrics.CYCLE_DURATION.labels(kind.name).observe(report.seconds)
        if cycle_succeeded(outcome):
            metrics.LAST_SUCCESS.labels(kind.name).set(time.time())
        if report.outcome == "ok" and revisit.read_every_object(self.ctx, kind):
            # Every source object was read, and applied or recorded: new ones validation saw waiting have rows now.
            self.ctx.store.record_pending_new(kind.name, ())
        update_gauges(self.ctx.store, [kind.name])
        revisit.record_freshness(self.ctx, kind, report.outcome == "ok", report.not_due, report.started_at)
        log.info(
            "cycle %s",
            kind.name,
            extra={
                "kind": kind.name,
                "outcome": outcome,
                "seconds": round(report.seconds, 3),
                "counts": {
                    **report.counts(),
                    "blocked": report.blocked,
                    "skipped": report.skipped,
                    "partial": report.partial,
                },
            },
        )

    def _tick(self, report: KindReport) -> None:
        if self.progress is not None:
            self.progress(report)


def _shares_listing(kind: Kind, following: list[Kind]) -> bool:
    """The next kind reads the same listing (the workspace tree): the group settles after the last of them."""
    listing = kind.declaration.shared_listing
    return listing is not None and bool(following) and following[0].declaration.shared_listing == listing


def _backoff(prior: Prior | None) -> float:
    """Seconds before a failed (or half-done) change is tried again: doubling per attempt, capped."""
    attempts = prior.attempts if prior else 0
    return min(MAX_BACKOFF_SECONDS, 30.0 * 2**attempts)


def _keep_waiting(resource: Resource, prior: Prior | None) -> None:
    """An unchanged partial object still waits for the same principals (the listing does not know them)."""
    resource.source_meta.pop(WAITING_ON, None)
    if prior is not None and prior.status != IN_SYNC and prior.source_meta.get(WAITING_ON):  # synced: none, not read
        resource.source_meta[WAITING_ON] = prior.source_meta[WAITING_ON]


def update_gauges(store: Any, kind_names: Iterable[str]) -> None:
    """Refresh dbsync_resources and dbsync_replication_lag_seconds from the store."""
    counts = store.verified_counts()  # the words of validate: a kind whose listing failed is unknown
    now = time.time()
    for name in kind_names:
        for status in COUNTED:
            metrics.RESOURCES.labels(name, status).set(counts.get(name, {}).get(status, 0))
        oldest = store.oldest_unsynced_change(name)
        metrics.REPLICATION_LAG.labels(name).set(max(0.0, now - oldest) if oldest else 0.0)
