"""Object ACLs of every replicated object that has them (jobs, clusters, pools, policies, workspace objects).

Listed from the store (objects already on the target), one GET per object on the source: the
Permissions API has no bulk read and no version, so the fingerprint of the direct entries decides.
Inherited entries and the admins group are the service's, never replicated.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Container, Iterator
from typing import Any

from databricks.sdk.errors import DatabricksError

from dbsync.apierrors import is_gone
from dbsync.context import SyncContext
from dbsync.declaration import RARELY_CHANGED, Declaration
from dbsync.errors import Blocked, RetryLater
from dbsync.model import ADDED, AGAIN, AHEAD, OVERDUE, Prior, Resource
from dbsync.registry import acl_watchers
from dbsync.watchers.base import Watcher
from dbsync.workspace import Workspace

log = logging.getLogger(__name__)
PRINCIPAL_FIELDS = ("user_name", "group_name", "service_principal_name")
# source_meta key of an ACL: its object's origin on the target (created, adopted, None: not recorded). On an object
# dbsync adopted the ACL is the DR team's too, and only what dbsync added goes (replicators/permissions.py).
OBJECT_ORIGIN = "object_origin"
NAMED_EVERY = 64  # objects listed between two looks for ACLs an audit-log hint named meanwhile
NAMED_LOOK_SECONDS = 2.0  # or seconds, whichever comes first: 64 objects due take ~20 s of reads that give way
# The share of a daemon slice that reads overdue ACLs, most overdue first, before the sweep walks on in its order
# (which finds the ACLs never read, those whose object was written, and in a whole turn the deleted ones).
OVERDUE_SHARE = 0.5
OVERDUE_EVERY = 16  # then one overdue ACL every this many objects of the walk, which reads only the due it passes
OVERDUE_LOOKUP = 10_000  # overdue keys looked up at once: ~6 minutes of reads at a 50 requests/s budget
# Once none is overdue, the walk takes those due within this share of their revisit interval (soonest first) in the
# overdue's place: read ahead while the budget has room, a lead the other kinds' bursts eat into before an ACL goes
# overdue. At most 1/16 more reads (a cold ACL up to 300 s early at 4,800 s), only when nothing is overdue; an ACL
# that changed of late (a short interval, doubling) is read hardly earlier, not up its ladder at once.
READ_AHEAD_SHARE = 1 / 16


def direct_entries(ctx: SyncContext, acl: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Direct (not inherited) entries with principals mapped, sorted: the replicated part of an ACL."""
    entries = []
    for item in acl:
        kind = next((f for f in PRINCIPAL_FIELDS if item.get(f)), None)
        if kind is None or (kind == "group_name" and item[kind] == "admins"):
            continue
        for perm in item.get("all_permissions") or []:
            if perm.get("inherited"):
                continue
            principal = ctx.principals.principal(kind, item[kind])
            entries.append({kind: principal, "permission_level": perm["permission_level"]})
    return sorted(entries, key=lambda e: (e["permission_level"], *(e.get(f, "") for f in PRINCIPAL_FIELDS)))


class PermissionsWatcher(Watcher):
    kind = "permissions"
    drift_check = False
    resumes_sweep = True  # list() starts where the last slice stopped
    # One GET per object on the target (no listing): the report takes the store's word for what is there.
    # A key "<object kind>:<object key>" reverses through the object's own mapping; a plan shows the ACL of
    # each object created in the same run.
    # Read by need: an ACL whose object was written is read at once, the rest within `max_staleness`.
    declaration = Declaration(
        interval=300,
        target_listed=False,
        reverse_key="object",
        writes_acls=True,
        freshness=RARELY_CHANGED,
        listed_in_turn=True,
        worker="sweeps",  # the sweep (one GET per object) runs beside the tree's cycles, not between them
        gives_way=True,  # ~70 % of a 50 requests/s budget at 100,000 objects: the others' requests go first
    )

    def list(self, ctx: SyncContext, ws: Workspace) -> Iterator[Resource]:
        """Every replicated object's ACL in (object kind, key) order, from where the last sweep stopped at its time
        slice round to it (from the start, every cycle read the same first slice and never reached the rest).

        The ACLs an audit-log hint named come first, and those named while the sweep runs as soon as it looks
        (every NAMED_EVERY objects or NAMED_LOOK_SECONDS), not in their turn: a hinted ACL waited for the sweep
        to reach its key, up to a whole time slice. One named again after this sweep read it is read again at the
        next look (it waited for the next cycle: ACL-only edits reached the standby in p99 163 s with hints, goal
        120 s).

        In the daemon's slices the overdue ACLs come next, most overdue first, for up to OVERDUE_SHARE of the slice,
        then one every OVERDUE_EVERY objects of the walk. In key order alone an ACL that came due just after the
        sweep went by waited a whole pass for it to come round: its margin was the pass, and the longer the pass,
        the more reads the schedule asked (at 100,000 ACLs under a 50 requests/s budget, passes of 400-2,200 s and
        ACLs up to 767 s past their `max_staleness`). Without the overdue beside it, the walk (a few hundred objects
        a second, 4 % of them due) left ~5 of the 45 paced requests/s unused while 4,000 ACLs were overdue. Once
        none is overdue, the walk takes those due within READ_AHEAD_SHARE of their interval instead, soonest first:
        with the ACLs read just in time, each burst of the other kinds' requests (a first round, the secrets'
        listings every 10 minutes) left ACLs up to 300 s overdue, 65 s past their `max_staleness` (run 12)."""
        order = _SweepOrder(list(acl_watchers()), ctx.history.sweep_resume(self.kind))
        ahead: dict[str, float] = {}  # key -> when it was last yielded out of turn: skipped when the sweep reaches it
        now = time.time()
        until = now + ctx.settings.max_staleness(self.kind) * READ_AHEAD_SHARE  # the longest interval's read ahead
        visits = ctx.history.overdue(self.kind, until, OVERDUE_LOOKUP) if ctx.time_slice else []
        overdue = iter([key for key, due, _ in visits if due <= now])
        soon = (key for key, due, every in visits if now < due <= now + every * READ_AHEAD_SHARE)
        beside = itertools.chain(overdue, soon)  # the walk's: the overdue left, then the due soon
        position: tuple[int, str] | None = None  # the last object yielded in its turn, ranked
        looked = time.monotonic()

        def look(i: int) -> bool:  # time to look for named ACLs
            nonlocal looked
            if i % NAMED_EVERY and time.monotonic() - looked < NAMED_LOOK_SECONDS:
                return False
            looked = time.monotonic()
            return True

        until = time.monotonic() + (ctx.time_slice or 0) * OVERDUE_SHARE
        for i in itertools.count():
            if time.monotonic() >= until:
                break
            if look(i):
                yield from self._named(ctx, order, position, ahead)
            if (stub := self._next_overdue(ctx, order, overdue, ahead, position)) is None:
                break
            yield stub
        for i, (object_kind, prior) in enumerate(self._replicated(ctx, order)):
            if look(i):
                yield from self._named(ctx, order, position, ahead)
            position = order.rank(object_kind, prior.key)
            if i % OVERDUE_EVERY == 0 and (stub := self._next_overdue(ctx, order, beside, ahead, position)):
                yield stub
            if f"{object_kind}:{prior.key}" not in ahead:
                yield self._stub(object_kind, prior)
        yield from self._named(ctx, order, position, ahead)  # named while the last objects were listed

    def _replicated(self, ctx: SyncContext, order: _SweepOrder) -> Iterator[tuple[str, Prior]]:
        for object_kind, after, until in order.segments():
            if ctx.time_slice and object_kind == order.kinds[0] and not after:
                self._came_round(ctx)
            listed = ctx.listed.get(object_kind)  # None when the kind was not listed in this run
            for prior in ctx.history.priors(object_kind, payloads=False, after=after):
                if until is not None and prior.key > until:
                    break
                if _on_target(prior, listed):
                    yield object_kind, prior

    def _came_round(self, ctx: SyncContext) -> None:
        """The daemon's sweep (in slices: `ctx.time_slice`) is at the start of its order again: a pass ended.

        Its length is logged and kept (Store.record_sweep_start): how long the walk takes to find new ACLs and,
        in a turn read within one slice, deleted ones. `sync --once`, plans and validate read everything at once
        and record nothing here."""
        length = ctx.store.record_sweep_start(self.kind, time.time())
        if length is not None:
            log.info("%s: the sweep came round to its start, %.0f s after the last time", self.kind, length)

    def _named(
        self, ctx: SyncContext, order: _SweepOrder, position: tuple[int, str] | None, ahead: dict[str, float]
    ) -> Iterator[Resource]:
        """Named ACLs, ahead of their turn: those the sweep has not reached, and those it passed (named after it
        did; most were not due then, so not read).

        One already yielded ahead is yielded again only once that read is recorded (verified since) and it is
        still named, so named after it; while its read is in flight its mark is older than the read, which sees
        the change.
        """
        for key, verified_at in ctx.history.named(self.kind):
            object_kind, _, source_key = key.partition(":")
            if object_kind not in order.kinds:
                continue
            if key in ahead and verified_at <= ahead[key]:
                continue
            prior = self._replicated_prior(ctx, object_kind, source_key)
            if prior is not None:
                passed = position is not None and order.rank(object_kind, source_key) <= position
                stub = self._stub(object_kind, prior)
                stub.out_of_turn = AGAIN if key in ahead or passed else AHEAD
                ahead[key] = time.time()
                yield stub

    def _next_overdue(
        self,
        ctx: SyncContext,
        order: _SweepOrder,
        overdue: Iterator[str],
        ahead: dict[str, float],
        position: tuple[int, str] | None,
    ) -> Resource | None:
        """The next of the ACLs overdue (or, beside the walk, due soon) when the slice began, most overdue first
        (None: no more); the walk skips it. One the walk has passed in this slice was read in its turn."""
        for key in overdue:
            object_kind, _, source_key = key.partition(":")
            if key in ahead or object_kind not in order.kinds:
                continue
            if position is not None and order.rank(object_kind, source_key) <= position:
                continue
            prior = self._replicated_prior(ctx, object_kind, source_key)
            if prior is not None:
                stub = self._stub(object_kind, prior)
                stub.out_of_turn = OVERDUE
                ahead[key] = time.time()
                return stub
        return None

    @staticmethod
    def _replicated_prior(ctx: SyncContext, object_kind: str, source_key: str) -> Prior | None:
        """The object's row when it is on the target and (when its kind was listed in this run) still listed."""
        prior = ctx.history.prior(object_kind, source_key)
        return prior if prior is not None and _on_target(prior, ctx.listed.get(object_kind)) else None

    def object_acl(self, object_kind: str, prior: Prior) -> Resource:
        """The stub of one replicated object's ACL (`prior`: the object's row), to fetch and write on its own: a job
        the cutover replicates after its final sync (dbsync/cutover/late_jobs.py), whose ACL no sync reads any more."""
        return self._stub(object_kind, prior)

    def _stub(self, object_kind: str, prior: Prior) -> Resource:
        return Resource(
            self.kind,
            f"{object_kind}:{prior.key}",
            name=prior.key,
            version_hint=None,
            source_meta={
                "object_kind": object_kind,
                "target_key": prior.target_key,
                **{k: v for k, v in prior.source_meta.items() if k != ADDED},  # what dbsync added to the ACL is its own
                OBJECT_ORIGIN: prior.origin,
            },
        )

    def parent(self, stub: Resource) -> tuple[str, str] | None:
        """The object the ACL is on: written since the ACL was last read, the ACL is read again at once."""
        return stub.source_meta["object_kind"], stub.key.split(":", 1)[1]

    def fetch(self, ctx: SyncContext, ws: Workspace, stub: Resource) -> Resource:
        object_kind = stub.source_meta["object_kind"]
        watcher = acl_watchers()[object_kind]
        source_key = stub.key.split(":", 1)[1]
        object_id = watcher.acl_object_id(ctx, ws, source_key, stub.source_meta)
        try:
            acl = ws.client.permissions.get(watcher.acl_type or "", object_id or "").as_dict()
        except DatabricksError as err:
            if is_gone(err):
                raise RetryLater(f"{object_kind} {source_key} is gone from the source") from None
            raise
        stub.payload = {
            "object_kind": object_kind,
            "target_key": stub.source_meta["target_key"],
            "access_control_list": direct_entries(ctx, acl.get("access_control_list") or []),
        }
        return stub

    def restored(self, ctx: SyncContext, resource: Resource) -> Resource:
        """A restored ACL goes on the object's current target copy (a restore may have recreated it)."""
        payload = resource.payload or {}
        object_kind, source_key = payload["object_kind"], resource.key.split(":", 1)[1]
        target_key = ctx.history.target_key(object_kind, source_key)
        if target_key is None:
            raise Blocked(f"{object_kind} {source_key} is not on the target: restore it too (or first)")
        resource.payload = {**payload, "target_key": target_key}
        resource.source_meta = {**resource.source_meta, "object_kind": object_kind, "target_key": target_key}
        return resource


def _on_target(prior: Prior, listed: Container[str] | None) -> bool:
    """The object is on the target and, when its kind was listed in this run (`listed`), still on the source."""
    return prior.target_key is not None and (listed is None or prior.key in listed)


def watcher_for(kind: str) -> PermissionsWatcher:
    return PermissionsWatcher()


class _SweepOrder:
    """The ACL sweep's order: (object kind, key), starting after the key the last sweep stopped at, round to it."""

    def __init__(self, kinds: list[str], resume: str | None) -> None:
        self.kinds = kinds
        kind, _, key = (resume or "").partition(":")
        self.start, self.resume_key = (kinds.index(kind), key) if kind in kinds else (0, None)

    def segments(self) -> list[tuple[str, str, str | None]]:
        """(object kind, list after this key, up to this key or None) in sweep order."""
        n = len(self.kinds)
        turn = [self.kinds[(self.start + i) % n] for i in range(n)]
        if self.resume_key is None:
            return [(kind, "", None) for kind in turn]
        first = turn[0]
        return [(first, self.resume_key, None), *((kind, "", None) for kind in turn[1:]), (first, "", self.resume_key)]

    def rank(self, kind: str, key: str) -> tuple[int, str]:
        """Where (kind, key) comes in the sweep: ranks compare as the sweep's order does."""
        turn = (self.kinds.index(kind) - self.start) % len(self.kinds)
        if turn == 0 and self.resume_key is not None and key <= self.resume_key:
            turn = len(self.kinds)  # the resumed kind's keys before the resume point come last
        return turn, key
