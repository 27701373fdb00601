"""The paced two-sided writer: pause-status writes on both workspaces at once, each paced to its rate limit.

The two workspaces have their own rate limits, so a write on one side (a target unpause) may follow a
write on the other (its source pause) while the next writes of the first side go on. Each side has a
bounded thread pool and a Pacer; the calling thread alone sees the results (and records them).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, TypeVar

from databricks.sdk.service.jobs import JobSettings

from dbsync.cutover.common import JobView, Pause, one_line

T = TypeVar("T")
SIDES = ("source", "target")


class Pacer:
    """Spaces calls at most `rate` per second across threads, so bulk writes meet no 429 on the way."""

    def __init__(
        self,
        rate: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.interval = 1.0 / rate
        self.clock = clock
        self.sleep = sleep
        self.next_at = 0.0
        self.lock = threading.Lock()

    def wait(self) -> None:
        """Return when the next call may go: at once, or `1 / rate` seconds after the previous one."""
        with self.lock:
            now = self.clock()
            at = max(now, self.next_at)
            self.next_at = at + self.interval
        if at > now:
            self.sleep(at - now)


def set_pause(ws: Any, pacer: Pacer, job: JobView, fields: Iterable[str], status: str) -> None:
    """jobs/update with the whole trigger object and a new pause_status: every other setting is kept."""
    new = {f: {**job.triggers[f], "pause_status": status} for f in fields}
    pacer.wait()
    ws.client.jobs.update(int(job.job_id), new_settings=JobSettings.from_dict(new))


@dataclass
class Writes:
    """What a batch of pause writes did, per side: successes, and failures with their message."""

    done: dict[str, int] = field(default_factory=lambda: {"source": 0, "target": 0})
    failed: dict[str, list[tuple[Pause, str]]] = field(default_factory=lambda: {"source": [], "target": []})


class PacedWriter:
    """Writes pause statuses on both sides of a pair in parallel, each side paced at `rate` writes a second."""

    def __init__(self, workspaces: dict[str, Any], rate: float, concurrency: int) -> None:
        self.workspaces = workspaces  # "source" / "target" → the workspace (its .client)
        self.pacers = {side: Pacer(rate) for side in SIDES}
        self.concurrency = concurrency

    def write_all(
        self,
        side: str,
        todo: list[Pause],
        status: str,
        follow: Callable[[Pause], Pause | None] | None = None,
        before: Callable[[Pause], None] | None = None,
        after: Callable[[Pause, str], None] | None = None,
    ) -> Writes:
        """Write each job's new pause status, calling `before(item)` ahead of a write and `after(item, state)`.

        With `follow`, each success on `side` may start a write on the other side (a target unpause after
        its source pause), with the opposite status. Callbacks run in the calling thread only.
        """
        other = "target" if side == "source" else "source"
        statuses = {side: status, other: "UNPAUSED" if status == "PAUSED" else "PAUSED"}
        writes = Writes()
        pools = {s: ThreadPoolExecutor(self.concurrency, thread_name_prefix=f"cutover-{s}") for s in statuses}
        inflight: dict[Future[None], tuple[str, Pause]] = {}
        queue = iter(todo)

        def submit(on: str, item: Pause) -> None:
            if before is not None:
                before(item)
            ws, pacer = self.workspaces[on], self.pacers[on]
            inflight[pools[on].submit(set_pause, ws, pacer, item.job, item.fields, statuses[on])] = (on, item)

        def refill() -> None:
            while sum(1 for s, _ in inflight.values() if s == side) < self.concurrency * 2:
                item = next(queue, None)
                if item is None:
                    return
                submit(side, item)

        try:
            refill()
            while inflight:
                done, _ = wait(inflight, return_when=FIRST_COMPLETED)
                for future in done:
                    on, item = inflight.pop(future)
                    error = future.exception()
                    if error is not None:
                        writes.failed[on].append(
                            (item, f"{on} job {item.job.job_id} ({item.job.name}): {one_line(error)}")
                        )
                        continue
                    writes.done[on] += 1
                    if after is not None:
                        after(item, statuses[on].lower())
                    then = follow(item) if follow is not None and on == side else None
                    if then is not None:
                        submit(other, then)
                refill()
        finally:
            for pool in pools.values():
                pool.shutdown(wait=True, cancel_futures=True)  # an interrupt stops the queue, not a write in flight
        return writes

    def parallel(self, items: Iterable[T], call: Callable[[T], None]) -> Iterator[tuple[T, BaseException | None]]:
        """call(item) on a bounded pool; yields (item, error) in the calling thread as each finishes."""
        workers = self.concurrency
        pool = ThreadPoolExecutor(workers, thread_name_prefix="cutover")
        inflight: dict[Future[None], T] = {}
        try:
            for item in items:
                inflight[pool.submit(call, item)] = item
                if len(inflight) >= workers * 2:
                    done, _ = wait(inflight, return_when=FIRST_COMPLETED)
                    for future in done:
                        yield inflight.pop(future), future.exception()
            for future in list(inflight):
                future.exception()  # waits
                yield inflight.pop(future), future.exception()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)  # an interrupt stops the queue, not a write in flight
