"""`dbsync serve`: one APScheduler job per kind group; the cycles of one worker run one at a time.

Ordering design: the groups' jobs run on one worker thread, so their cycles never overlap. Kinds still run on
their own intervals (notebooks every minute, identities every ten), and dependencies need no coordination: a job
whose new cluster is not replicated yet is `blocked` and goes through on its next cycle, after the clusters cycle
has mapped the cluster. Kinds that share a listing (directories, notebooks, files share one workspace tree walk)
form one group and run together at the shortest of their intervals. A group that stopped at its time slice (a
sweep read by need) is queued again behind the groups waiting on its worker.

More threads besides, on purpose. A kind that declares a `worker` runs its cycles on that worker, beside the
first, with a context of its own (caches, id map, events) over the same workspaces, request budgets and store:
the object ACL sweep ("sweeps": one GET per object, a third of a budget for minutes at a time), the workspace
tree ("tree": ~200 s a cycle at 100,000 objects under a budget) and the Lakeview dashboards with their schedules
("dashboards": a call per dashboard for the schedules, ~170 s a cycle at 2,500 dashboards) and the jobs ("jobs":
37-62 s cycles every 120 s at 8,000 jobs, half the first worker's time). On one worker the sweep and the tree's
cycles kept it ~100 % busy, a group an audit-log hint named waited for both, and the kinds listed whole every few
minutes waited behind the tree (669-1,128 s stale against 120-300 s), then behind the jobs (6-14 % of the time
over 120 s). A kind on another worker may look up ids the first worker's kinds write (a job's cluster, a
dashboard's warehouse, every ACL's object): one not mapped yet is `blocked` and goes through on a later cycle,
as on one worker (the id map asks the store again for every id it has not found). What it must not read is
another worker's listing of the run (`ctx.listed`, per context). The store serialises the workers' writes (a
transaction holds its lock). The audit-log hints are read on one more thread (`poll_hints`), which only marks
objects due and moves the named groups' jobs to now. Hand-over and shutdown wait for every one of them.
"""

from __future__ import annotations

import itertools
import json
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import STATE_RUNNING
from apscheduler.triggers.interval import IntervalTrigger

from dbsync import hints, metrics
from dbsync.config import Settings
from dbsync.context import SyncContext
from dbsync.declaration import CATALOGUE
from dbsync.engine import Engine
from dbsync.errors import StoreError
from dbsync.freshness import LEAD_WINDOW
from dbsync.outcomes import KindReport, cycle_succeeded
from dbsync.registry import Kind, kinds
from dbsync.revisit import check_schedule_need, publish_target
from dbsync.roles import StoreRole, replication_refusal
from dbsync.store.lock import StoreLock
from dbsync.workspace import pool_size

log = logging.getLogger("dbsync.scheduler")
MAX_JITTER_SECONDS = 10.0
STALE_INTERVALS = 3  # a group with no successful cycle for this many intervals makes /readyz fail
CYCLES = "default"  # the first worker's executor; the others are named by the kinds' declarations (worker_of)


def kind_groups(settings: Settings, registry: tuple[Kind, ...] | None = None) -> list[tuple[str, ...]]:
    """Enabled kinds grouped by shared listing, in dependency order."""
    groups: list[list[str]] = []
    last_listing: str | None = None
    for kind in registry or kinds():
        if not settings.kind(kind.name).enabled:
            continue
        listing = kind.declaration.shared_listing
        if listing is not None and listing == last_listing:
            groups[-1].append(kind.name)
        else:
            groups.append([kind.name])
        last_listing = listing
    return [tuple(g) for g in groups]


def group_interval(settings: Settings, group: tuple[str, ...]) -> float:
    return min(settings.interval(name) for name in group)


def worker_of(group: tuple[str, ...]) -> str:
    """The executor a group's cycles run on: the worker its kinds declare (all the same one), else the first."""
    declared = {CATALOGUE.declaration(name).worker for name in group}
    if len(declared) != 1:
        return CYCLES
    return declared.pop() or CYCLES


def jitter(interval: float) -> float:
    """Spread the groups so they do not all hit the API in the same second."""
    return min(MAX_JITTER_SECONDS, interval * 0.1)


class Heartbeat:
    """The worker thread's last sign of progress; /livez fails when it is older than the liveness window."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock  # injectable: tests stall the scheduler without sleeping through the window
        self.last = clock()

    def beat(self) -> None:
        self.last = self.clock()

    def age(self) -> float:
        return self.clock() - self.last


class _BeatingStop:
    """The engine's view of the stop flag: it reads it per kind and per listed object, so a read is a beat."""

    def __init__(self, stop: threading.Event, heartbeats: set[Heartbeat]) -> None:
        self._stop = stop
        self._heartbeats = heartbeats

    def is_set(self) -> bool:
        for heartbeat in self._heartbeats:
            heartbeat.beat()
        return self._stop.is_set()


@dataclass(eq=False)
class Worker:
    """One thread of cycles: its executor's name, the lock its cycle holds, its heartbeat, the context it runs on."""

    executor: str
    ctx: SyncContext
    lock: threading.Lock = field(default_factory=threading.Lock)
    heartbeat: Heartbeat = field(default_factory=Heartbeat)


def liveness_window(settings: Settings, groups: list[tuple[str, ...]]) -> float:
    """Longest quiet time of a scheduler that still works: idle up to its shortest interval (and jitter)
    between cycles, and inside a cycle one REST call with its retries between two beats."""
    shortest = min((group_interval(settings, g) for g in groups), default=60.0)
    return STALE_INTERVALS * shortest + MAX_JITTER_SECONDS + settings.retry_timeout_seconds


@dataclass
class Health:
    """What /readyz reports on: the reconcile, each group's last outcome, a refusal to run."""

    started_at: float = field(default_factory=time.time)
    reconciled: bool = False
    last_ok: dict[tuple[str, ...], float] = field(default_factory=dict)
    unreachable: dict[tuple[str, ...], str] = field(default_factory=dict)
    refused: str | None = None
    fenced: str | None = None  # the last cycle's write-fence refusal (the target's role marker)

    def problems(self, settings: Settings, groups: list[tuple[str, ...]], now: float | None = None) -> list[str]:
        """Ready = replicating: both workspaces answered the last cycle and no group is stale.

        The first full reconcile of a large workspace can take hours, so it is not a condition
        (a rollout would wait for it); /report says when the target is in sync.
        """
        now = now or time.time()
        out = []
        if self.refused:
            out.append(self.refused)
        if self.fenced:
            out.append(self.fenced)
        for group, message in self.unreachable.items():
            out.append(f"{'+'.join(group)}: {message}")
        for group in groups:
            last = self.last_ok.get(group, self.started_at)
            # Nothing is stale while the first reconcile (every kind once) is still going.
            if self.reconciled and now - last > STALE_INTERVALS * group_interval(settings, group):
                out.append(f"{'+'.join(group)}: no successful cycle for {now - last:.0f} s")
        return out


class Daemon:
    """The scheduler around one SyncContext. `start()` returns at once; `shutdown()` stops cleanly."""

    def __init__(self, ctx: SyncContext, store_lock: StoreLock | None = None) -> None:
        self.ctx = ctx
        self.settings = ctx.settings
        self.groups = kind_groups(self.settings)
        self.stop = threading.Event()
        self.health = Health()
        self._need_known = False  # the budget-need check counted objects (at start, else after the reconcile)
        if ctx.source_unreachable:  # started during a source outage: no group is replicating until it lists again
            self.health.unreachable = dict.fromkeys(self.groups, ctx.source_unreachable)
        self.workers = {CYCLES: Worker(CYCLES, ctx)}
        for name in dict.fromkeys(worker_of(group) for group in self.groups):
            if name not in self.workers:
                self.workers[name] = Worker(name, ctx.sibling())  # its own caches: the cycles overlap
        for side in (ctx.source, ctx.target):  # the workers' cycles share each side's connections
            side.keep_connections(pool_size(self.settings.concurrency, cycles=len(self.workers)))
        self._cycle_lock = self.workers[CYCLES].lock
        self._state_lock = threading.Lock()  # over what the workers and the hints thread share: health, queues
        self._running: set[tuple[str, ...]] = set()  # groups whose cycle runs now
        self._again: set[tuple[str, ...]] = set()  # groups with a one-off run queued (_queue_again)
        # The audit-log read has its own thread and lock: a hint is read on time, not after the cycle in flight.
        # Hand-over and shutdown take both locks, so no thread writes the store once it is released or closed.
        self._hints_lock = threading.Lock()
        self.store_lock = store_lock  # held while replicating; handed to a `dbsync cutover` that asks for it
        self.handed_over: str | None = None
        self.generation = 0  # moves when a cycle changed the target: a cached report is stale then
        self.heartbeat = self.workers[CYCLES].heartbeat
        self._one_offs = itertools.count(1)  # one-off jobs of groups that stopped at their slice: ids never repeat
        self.closing = False  # set by shutdown(): /readyz turns 503 so the Service stops sending requests
        self.scheduler = BackgroundScheduler(
            executors={name: ThreadPoolExecutor(max_workers=1) for name in [*self.workers, "hints"]},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        )

    def schedule(self) -> None:
        """The full reconcile now, then one interval job per group."""
        self.scheduler.add_job(self.reconcile, id="reconcile", name="full reconcile")
        now = time.time()
        for group in self.groups:
            interval = group_interval(self.settings, group)
            trigger = IntervalTrigger(seconds=interval, jitter=int(jitter(interval)) or None)
            self.scheduler.add_job(
                self.run_group,
                trigger,
                args=[group],
                id="+".join(group),
                name="+".join(group),
                next_run_time=_at(now + interval),
                executor=worker_of(group),
            )
        if hints.enabled(self.ctx):  # the audit log is read on its own clock, not only when a cycle starts
            every = self.settings.audit_hints.interval
            self.scheduler.add_job(
                self.poll_hints, IntervalTrigger(seconds=every), id="audit-hints", name="hints", executor="hints"
            )

    def poll_hints(self) -> None:
        """Read the audit log on its own thread, while a cycle runs too; the groups of the kinds it names run next.

        On the cycles' worker it waited for the cycle in flight (a 60 s slice of ACL reads), then queued the named
        group behind every group that came due meanwhile.
        """
        with self._hints_lock:
            if self.stop.is_set() or replication_refusal(self.ctx.store.role):
                return
            try:
                named = hints.read(self.ctx)
            except Exception:  # best effort: a hint never stops the daemon; the cycles read on their schedule
                log.exception("reading audit-log hints failed")
                return
        self._run_soon(named, ())

    def start(self) -> None:
        """Schedule replication; after a cutover, only serve metrics and say why /readyz fails.

        A daemon that exited instead would crash-loop its pod, and the operator could not exec into
        it to roll back or reverse.
        """
        refusal = replication_refusal(self.ctx.store.role)
        if refusal:
            log.error("not replicating: %s", refusal)  # /readyz reads the role live, so it follows a rollback
            return
        for group in self.groups:
            for name in group:
                # Alerts on "no success for N intervals" must work across a restart, before the first cycle.
                last = self.ctx.store.last_success(name)
                if last:
                    metrics.LAST_SUCCESS.labels(name).set(last)
                self.ctx.store.record_watching(name, time.time())  # a kind never read is stale from here on
                metrics.set_oldest_verification(name, self.ctx.store.oldest_verification(name))
                publish_target(self.settings, name)  # the staleness alert compares from the start, not the 1st cycle
        self._check_need()
        self.schedule()
        self.scheduler.start()

    def reconcile(self) -> None:
        """Every group once, in dependency order, each its own cycle (as the interval jobs run them).

        One cycle of every kind recorded no kind's outcome or freshness until the last kind ended: at 100,000
        objects under a request budget that was ~30 minutes of every kind looking stale.
        """
        for group in self.groups:
            if self.stop.is_set():
                return
            self._run(group, on=self.workers[CYCLES])
        self.health.reconciled = True
        if not self._need_known:
            self._check_need()  # a new store knows its objects now (a restart's was said at start)

    def _check_need(self) -> None:
        """Say when the kinds read by need ask more of the source budget than it can give (revisit.py)."""
        names = {name for group in self.groups for name in group}
        try:
            needs = check_schedule_need(self.ctx, [k for k in kinds() if k.name in names])
            self._need_known = any(need.reads for need in needs)
        except Exception:  # advice only: it never stops the daemon from replicating
            log.exception("checking what the revisit schedule needs of the budget failed")

    def run_group(self, group: tuple[str, ...]) -> None:
        self._run(group)

    def _run(self, names: tuple[str, ...], on: Worker | None = None) -> list[KindReport]:
        """One cycle of a group, on its worker's lock and context; `on`: the worker whose thread runs it (the
        reconcile runs every group on the first worker's thread), whose heartbeat it beats too."""
        worker = self.workers[worker_of(names)]
        beats = {worker.heartbeat, (on or worker).heartbeat}
        with worker.lock, self._cycle_of(names):
            for heartbeat in beats:
                heartbeat.beat()
            if self.stop.is_set():
                return []
            engine = Engine(
                worker.ctx,
                retry_now=False,
                stop=_BeatingStop(self.stop, beats),  # type: ignore[arg-type]
                time_slice=self.settings.time_slice_seconds,
                read_hints=False,  # poll_hints reads them, on its own thread
            )
            started = time.time()
            try:
                reports = engine.cycle(list(names))
            except StoreError as err:
                if replication_refusal(self.ctx.store.role) is None:
                    self.health.refused = str(err)  # a role refusal is read live by readiness()
                log.error("replication stopped: %s", err)
                self.scheduler.pause()
                return []
            except Exception as err:  # a bug must not kill the daemon; the next cycle tries again
                log.exception("cycle of %s failed", "+".join(names))
                self._record_crash(names, err)
                return []
            # A refusal of the target's role marker is said by /readyz until a cycle writes again.
            self.health.fenced = None if self.stop.is_set() else engine.fenced
            self._record_health(reports)
            self._end_within_interval(names, started)
            self._run_soon(engine.hinted, names)
            self._continue(engine.sliced)
            return reports

    def _end_within_interval(self, group: tuple[str, ...], started: float) -> None:
        """A group read whole every cycle runs next early enough that its cycle ends within the interval.

        Its objects are as fresh as the start of its last complete cycle, so a cycle started an interval after
        the last one left them stale by the interval and the cycle's length until it ended, plus the jitter: the
        jobs kind (10,000 jobs, 49 s cycles against 120 s) was over its target half the time at 100,000 objects.
        And a group due while another group's cycle holds its worker waits for that cycle first: the Unity Catalog
        kinds (0.3 s cycles) were 4-5 % of the time over their target behind the jobs' (34 s) and the secrets'.
        The next run comes the group's longest recent cycle, plus the longest recent cycle of the other groups
        of its worker (the wait), and the jitter earlier, by at most half the interval (a group runs at most
        twice as often); a run already due sooner (an audit-log hint) stays.
        """
        if any(self.settings.max_staleness(name) for name in group):
            return  # read by need: their schedule leads by their cycles' length itself (freshness.next_visit)
        interval = group_interval(self.settings, group)
        lead = min(interval / 2, self._cycle_and_wait(group, started - LEAD_WINDOW))
        at = max(time.time(), started + interval - lead - random.uniform(0, jitter(interval)))
        job = self.scheduler.get_job("+".join(group))
        pending = getattr(job, "next_run_time", None)  # None: paused, or not started yet
        if job is not None and pending is not None and _at(at) < pending:
            self.scheduler.modify_job(job.id, next_run_time=_at(at))

    def _cycle_and_wait(self, group: tuple[str, ...], since: float) -> float:
        """The group's longest recent cycle, plus the longest recent cycle of another group on its worker (what a
        due run may wait behind), from one read of the store."""
        others = [g for g in self.groups if g != group and worker_of(g) == worker_of(group)]
        longest = self.ctx.store.longest_cycle_by_kind({*group, *(k for g in others for k in g)}, since)
        wait = max((sum(longest.get(k, 0.0) for k in g) for g in others), default=0.0)
        return sum(longest.get(k, 0.0) for k in group) + wait

    @contextmanager
    def _cycle_of(self, group: tuple[str, ...]) -> Iterator[None]:
        with self._state_lock:
            self._running.add(group)
        try:
            yield
        finally:
            with self._state_lock:
                self._running.discard(group)

    def _run_soon(self, hinted: set[str], ran: tuple[str, ...]) -> None:
        """Groups of the kinds the audit log named run next on their worker, not at their interval.

        A group whose cycle runs now (it reads what was named before it reaches it) runs again once it ends:
        APScheduler skips a job whose run is still going, and the hint would have waited a whole interval.
        """
        for group in self.groups:
            if not set(group) & hinted or set(group) <= set(ran):
                continue
            with self._state_lock:
                running = group in self._running
            if running:
                self._queue_again(group)
                continue
            try:
                self.scheduler.modify_job("+".join(group), next_run_time=_at(time.time()))
            except JobLookupError:
                continue  # not scheduled (the reconcile still runs): it reads the hinted objects anyway

    def _continue(self, sliced: set[str]) -> None:
        """Groups that stopped at their time slice run again once the groups already waiting have had their turn."""
        for group in self.groups:
            if set(group) & sliced and not self.stop.is_set():
                log.info("%s: time slice used; its other due objects are read after the kinds waiting", "+".join(group))
                self._queue_again(group)

    def _queue_again(self, group: tuple[str, ...]) -> None:
        """One more run of the group on its worker, behind the jobs already waiting there; one at a time.

        A one-off job of its own: the group's interval job may be the one running (APScheduler would skip it).
        """
        with self._state_lock:
            if group in self._again:
                return
            self._again.add(group)
        name = "+".join(group)
        self.scheduler.add_job(
            self._run_again,
            args=[group],
            id=f"{name}:again:{next(self._one_offs)}",  # a new id: ids of finished jobs are not reused
            name=f"{name} (again)",
            executor=worker_of(group),
        )

    def _run_again(self, group: tuple[str, ...]) -> None:
        with self._state_lock:
            self._again.discard(group)
        self._run(group)

    def _record_health(self, reports: list[KindReport]) -> None:
        with self._state_lock:
            self._record_health_of(reports)

    def _record_health_of(self, reports: list[KindReport]) -> None:
        now = time.time()
        if any(r.created or r.updated or r.deleted or r.errors or r.blocked for r in reports):
            self.generation += 1
        by_kind = {r.kind: r for r in reports}
        for group in self.groups:
            group_reports = [by_kind[n] for n in group if n in by_kind]
            if not group_reports:
                continue
            failed = [r for r in group_reports if r.outcome == "listing_failed"]
            if failed:
                self.health.unreachable[group] = failed[0].message or "listing failed"
            elif all(cycle_succeeded(r.outcome) for r in group_reports):
                self.health.unreachable.pop(group, None)
                self.health.last_ok[group] = now

    def _record_crash(self, names: tuple[str, ...], err: Exception) -> None:
        """/readyz names every group of a cycle that stopped on an unexpected error, until one succeeds."""
        message = f"the cycle failed: {type(err).__name__}: {str(err).strip()[:300]}"
        with self._state_lock:
            for group in self.groups:
                if set(group) & set(names):
                    self.health.unreachable[group] = message

    def readiness(self) -> list[str]:
        """Reasons the daemon is not ready (empty when ready); the store's role is read live."""
        refusal = replication_refusal(self.ctx.store.role)
        if refusal:
            return [refusal]
        if self.handed_over:
            return [self.handed_over]
        return self.health.problems(self.settings, self.groups)

    def liveness(self) -> list[str]:
        """Reasons to restart the daemon (empty while alive): the worker made no progress within the window.

        Idle by design (cut over, handed to a cutover, paused on a store refusal, shutting down) is alive:
        a restart would not help, and the clock starts again when replication resumes.
        """
        replicating = self.scheduler.state == STATE_RUNNING and not self.handed_over and not self.stop.is_set()
        if not replicating:
            self.heartbeat.beat()
            return []
        window = liveness_window(self.settings, self.groups)
        for worker in self.workers.values():
            # The other workers are idle between their cycles by design: judged only while one of them runs.
            judged = worker.executor == CYCLES or worker.lock.locked()
            age = worker.heartbeat.age()
            if judged and age > window:
                return [
                    f"the scheduler's {worker.executor} worker made no progress for {age:.0f} s (window "
                    f"{window:.0f} s): a cycle is stuck or the scheduler thread stopped; the restart resumes from "
                    "the store"
                ]
        return []

    # -- hand-off to `dbsync cutover` -------------------------------------------------------------
    def poll(self) -> None:
        """Called twice a second by `serve`: hand the store to a cutover that asks; take it back after.

        The cutover writes its request into the store, so the write fence already refuses every
        target write; here the cycle in flight is stopped and the lock released. Once the lock is free
        again and the store is still a standby (a refused cutover, a rollback), replication resumes.
        """
        if self.store_lock is None:
            return
        if self.handed_over is None:
            _, requested = self.ctx.store.writer_flags()
            if requested:
                self._hand_over(requested)
            return
        self._take_back()

    def _hand_over(self, request: str) -> None:
        self.stop.set()
        if self.scheduler.running:
            self.scheduler.pause()
        with self._quiet(self.settings.shutdown_timeout) as quiet:
            if not quiet:
                return  # the change in flight is still running: the next poll tries again
            assert self.store_lock is not None
            self.store_lock.release()
        self.handed_over = f"not replicating: the store was handed over to `dbsync cutover` ({_who(request)})"
        log.warning(self.handed_over)

    def _take_back(self) -> None:
        assert self.store_lock is not None
        role, requested = self.ctx.store.writer_flags()
        if role != StoreRole.STANDBY or requested or not self.store_lock.try_acquire():
            return  # cut over, or the cutover still runs: stay idle
        role, requested = self.ctx.store.writer_flags()
        if role != StoreRole.STANDBY or requested:
            self.store_lock.release()  # cut over (or about to be): stay idle, serving /metrics and /readyz
            return
        self.handed_over = None
        self.stop.clear()
        log.warning("the store is a standby again and free: replication resumes")
        if self.scheduler.running:
            self.scheduler.resume()
        else:
            self.start()

    def shutdown(self, timeout: float | None = None) -> bool:
        """Stop scheduling, let the change in flight finish (bounded), close the store. True if clean."""
        timeout = self.settings.shutdown_timeout if timeout is None else timeout
        self.closing = True
        self.stop.set()
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        with self._quiet(timeout) as clean:
            if clean:
                self.ctx.store.close()
        return clean

    @contextmanager
    def _quiet(self, timeout: float) -> Iterator[bool]:
        """Every worker's and the hints' locks held (True), or none when one stayed busy for `timeout` s."""
        deadline = time.monotonic() + timeout
        with ExitStack() as held:
            for lock in [*(worker.lock for worker in self.workers.values()), self._hints_lock]:
                if not lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
                    yield False
                    return
                held.callback(lock.release)
            yield True

    def jobs(self) -> list[dict[str, Any]]:
        # A job added before the scheduler started has no next_run_time yet.
        return [{"id": j.id, "next_run_time": getattr(j, "next_run_time", None)} for j in self.scheduler.get_jobs()]


def _who(request: str) -> str:
    try:
        doc = json.loads(request)
    except ValueError:
        return "unknown process"
    return f"pid {doc.get('pid', '?')} on host {doc.get('host', '?')}"


def _at(epoch: float) -> Any:
    return datetime.fromtimestamp(epoch, tz=UTC)
