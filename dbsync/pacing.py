"""Client-side pacing: a request budget per workspace, and per API family where the service has its own limits.

Every request the SDK sends passes the workspace's transport (workspace.FencedAdapter), which takes one token
from the workspace's bucket and one from its family's before sending, so no kind, retry or delete can bypass
the budget. Requests are given slots 1/rate seconds apart (a bucket holds one token at most), so no window of one
second holds more than `rate` of them, and a workspace that allows the budget never answers 429.

The count is also kept over the times requests actually leave, not only over their slots: a request leaves only
once fewer than `rate` left in the second before it. A thread that wakes late from its wait (the machine busy,
the GIL held) would otherwise put its request next to the following one, on time (with slots alone, one thread
oversleeping 110 ms put an 11th request in a second against a budget of 10, paced at 9/s; the RPO benchmark
counted 11 in 1-3 seconds). A late request does not push the slots after it back: spacing every request 1/rate
after the one before actually left lost each one's lateness, and in the daemon's process (a busy interpreter,
each wake-up waiting for the GIL) a budget paced at 45/s sent ~38 (steady state, 100,000 objects).

A request can give way (`giving_way()`, the ACL sweep's reads in turn): it takes a slot only when none of the
others is waiting for one, and joins the queue after GIVE_WAY_PATIENCE seconds at most. The sweep is most of a
budget at 100,000 objects (32 of 45 paced requests/s) and nobody waits for any one of its reads, while a kind
listed every 2 minutes waited behind its queue for each page (jobs: 49 s a cycle, stale 50 % of the time).

Requests late together (a pause of the whole process: a garbage collection, the GIL held by a listing's parse)
catch up at CATCH_UP times the rate, not all at once: each leaves at least 1/(CATCH_UP x rate) after the one before.
Let out in one burst, they reached the service together with the next second's and it counted 51 in a second
against a budget of 50 paced at 45 (steady state, 100,000 objects, 90 minutes; 46-47 before late requests could
leave closer than 1/rate, and after this floor).

The buckets pace at HEADROOM of the configured budget. The service counts requests when they arrive, and what
happens between leaving and arriving (the network, the service's own queue) is not the client's to space.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from dbsync import metrics

Clock = Callable[[], float]
Sleep = Callable[[float], None]
# The longest a request that gives way waits for a free slot before it queues like any other: the sweep still
# moves when the others fill the budget (8 threads a patience each: ~1.6 reads/s at the least).
GIVE_WAY_PATIENCE = 5.0
CATCH_UP = 2.0  # late requests leave at most this many times the rate, never in one burst (see above)
_thread = threading.local()


@contextmanager
def giving_way(on: bool = True) -> Iterator[None]:
    """The requests this thread sends in the block give way to the other requests of their budget."""
    before = gives_way()
    _thread.gives_way = on
    try:
        yield
    finally:
        _thread.gives_way = before


def gives_way() -> bool:
    """Whether the requests this thread sends now give way (see giving_way)."""
    return getattr(_thread, "gives_way", False)


class TokenBucket:
    """`rate` requests per second, slots 1/rate apart (a burst of one), shared by every thread that sends.

    A caller reserves the next free slot under the lock and waits for it outside the lock, so threads are
    served in the order they asked and none waits longer than the requests queued before it. The clock and
    the sleep are injectable: tests advance a fake clock instead of sleeping.
    """

    def __init__(self, rate: float, clock: Clock = time.monotonic, sleep: Sleep = time.sleep) -> None:
        if rate <= 0:
            raise ValueError(f"a request budget must be above 0 requests per second, not {rate}")
        self.rate = rate
        self.clock = clock
        self.sleep = sleep
        self._next = clock()  # the earliest time the next request may leave
        # When the last requests actually left: at most `rate` of them in any second (one per 1/rate below 1/s).
        self._left: deque[float] = deque(maxlen=max(1, math.floor(rate + 1e-9)))
        self._span = 1.0 if rate >= 1 else 1.0 / rate
        self._lock = threading.Lock()

    def take(self) -> float:
        """Wait for this request's slot; the seconds waited (0 when the budget had room).

        Slots only: a late departure is not gated. The transport paces through RequestBudget.take, which also
        keeps at most `rate` of the times requests actually leave in any second (gate, leave)."""
        with self._lock:
            now = self.clock()
            slot = self.reserve(max(now, self._next))
        wait = slot - now
        if wait > 0:
            self.sleep(wait)
        return wait

    def free_at(self) -> float:
        """The earliest time the next request may leave (read under the caller's lock)."""
        return self._next

    def reserve(self, slot: float) -> float:
        """Give `slot` (not earlier than free_at()) to a request: the next one leaves 1/rate after it."""
        self._next = slot + 1.0 / self.rate
        return slot

    def gate(self) -> float:
        """The earliest time a request may actually leave: once fewer than `rate` left in the second before it,
        and 1/(CATCH_UP x rate) after the last one (read under the lock)."""
        if not self._left:
            return float("-inf")
        spaced = self._left[-1] + 1.0 / (CATCH_UP * self.rate)
        if len(self._left) < (self._left.maxlen or 1):
            return spaced
        return max(self._left[0] + self._span, spaced)

    def leave(self, now: float) -> None:
        """A request leaves now (under the caller's lock). A late one does not push the next slots back: the one
        after it may leave closer than 1/rate (down to 1/(CATCH_UP x rate)), as long as no second holds more than
        `rate`."""
        self._left.append(now)


@dataclass(frozen=True)
class ApiFamily:
    """Endpoints the service limits together (its "Resource limits" page), by path prefix."""

    name: str
    prefixes: tuple[str, ...]


# The families the service documents separate per-workspace limits for (approximate, per workspace):
# Workspace export ~60/s and import ~30/s; Permissions GET ~100/s, PUT/PATCH ~30/s; SCIM GET ~255/s;
# Jobs create / run-now ~20/s; SQL statement execution (a warehouse's own queue behind it).
FAMILIES: tuple[ApiFamily, ...] = (
    ApiFamily("workspace", ("/api/2.0/workspace/",)),
    ApiFamily("permissions", ("/api/2.0/permissions/",)),
    ApiFamily("scim", ("/api/2.0/preview/scim/", "/api/2.0/account/scim/")),
    ApiFamily("jobs", ("/api/2.0/jobs/", "/api/2.1/jobs/", "/api/2.2/jobs/")),
    ApiFamily("sql_statements", ("/api/2.0/sql/statements",)),
)
FAMILY_NAMES = tuple(f.name for f in FAMILIES)


def family_of(path: str) -> str | None:
    """The API family of a request path, None for the endpoints that only share the workspace budget."""
    for family in FAMILIES:
        if path.startswith(family.prefixes):
            return family.name
    return None


HEADROOM = 0.9  # the share of a configured budget dbsync paces at (see above)


class RequestBudget:
    """One workspace side's buckets: the workspace-wide one (every request) and one per configured family."""

    def __init__(
        self,
        side: str,
        per_second: float | None,
        families: dict[str, float | None] | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
        patience: float = GIVE_WAY_PATIENCE,
    ) -> None:
        self.side = side
        self.patience = patience
        self.per_second = per_second
        self.clock = clock
        self.sleep = sleep
        self._lock = threading.Lock()  # one lock for all the side's buckets: a slot is reserved in each at once
        self.overall = TokenBucket(per_second * HEADROOM, clock, sleep) if per_second else None
        self.families = {
            name: TokenBucket(rate * HEADROOM, clock, sleep) for name, rate in (families or {}).items() if rate
        }
        self.configured = {name: rate for name, rate in (families or {}).items() if rate}

    @property
    def paced(self) -> bool:
        return self.overall is not None or bool(self.families)

    def take(self, path: str, gives_way: bool = False) -> float:
        """Wait until the request to `path` fits every bucket it draws from; the seconds waited.

        One slot is reserved in all of them at once: waiting for the family and then for the workspace
        would let two family requests leave closer together than the family's rate allows. After the wait the
        request passes each bucket's gate (TokenBucket.gate: at most `rate` in a second, late ones not in a burst).
        `gives_way`: the request reserves only a slot free now (no request queued before it), waking when the
        queue's last slot has passed, and queues like the others once its patience is out.
        """
        family = self.families.get(family_of(path) or "") if self.families else None
        buckets = [b for b in (family, self.overall) if b is not None]
        if not buckets:
            return 0.0
        waited = 0.0
        give_up = self.clock() + self.patience if gives_way else None
        while True:
            with self._lock:
                now = self.clock()
                slot = max(now, *(b.free_at() for b in buckets))
                if give_up is None or slot <= now or now >= give_up:
                    for bucket in buckets:
                        bucket.reserve(slot)
                    break
            pause = min(slot, give_up) - now  # the queue's last slot passes, unless another request takes it
            self.sleep(pause)
            waited += pause
        while True:
            if slot > now:
                self.sleep(slot - now)
                waited += slot - now
            with self._lock:
                now = self.clock()
                slot = max(b.gate() for b in buckets)
                if slot <= now + 1e-9:
                    for bucket in buckets:
                        bucket.leave(now)
                    return waited

    def export(self) -> None:
        """Publish the configured budgets (an unpaced side or family publishes no series)."""
        if self.per_second:
            metrics.API_BUDGET.labels(self.side).set(self.per_second)
        for name, rate in self.configured.items():
            metrics.API_FAMILY_BUDGET.labels(self.side, name).set(rate)
