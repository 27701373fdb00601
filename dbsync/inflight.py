"""Work in flight on a thread pool, taken back by the submitting thread in windows of finished futures.

`concurrent.futures.wait(FIRST_COMPLETED)` over the set in flight installs a waiter on every future and removes it
again each time it returns, and it returns once per finished future: at 32 changes in flight, a window of 16 cost
the engine's thread ~1,000 lock operations and 16 wake-ups, on the thread that also records every outcome (and
holds the GIL the workers need). Here each future, as it finishes, joins one list; the waiting thread is woken
once, when as many have finished as it asked for.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any, Generic, TypeVar

T = TypeVar("T")

_NOBODY_WAITS = 1 << 62


class InFlight(Generic[T]):
    """Futures submitted through it; `take` waits for a window of them and returns those finished."""

    def __init__(self) -> None:
        self._finished: list[Future[T]] = []
        self._ready = threading.Condition(threading.Lock())
        self._wanted = _NOBODY_WAITS  # finished futures the waiting thread asked for
        self.count = 0  # submitted and not taken back yet (finished or not)

    def submit(self, pool: Executor, fn: Callable[..., T], *args: Any) -> None:
        future = pool.submit(fn, *args)
        self.count += 1
        future.add_done_callback(self._done)  # on the worker as it finishes (or here, if it already has)

    def _done(self, future: Future[T]) -> None:
        with self._ready:
            self._finished.append(future)
            if len(self._finished) >= self._wanted:
                self._ready.notify()

    def take(self, keep: int = 0) -> list[Future[T]]:
        """Wait until at most `keep` are unfinished; every finished future not taken yet (a raise is in its result)."""
        with self._ready:
            wanted = self.count - keep
            if wanted <= 0:
                return []
            self._wanted = wanted
            try:
                while len(self._finished) < wanted:
                    self._ready.wait()
            finally:
                self._wanted = _NOBODY_WAITS
            finished, self._finished = self._finished, []
        self.count -= len(finished)
        return finished
