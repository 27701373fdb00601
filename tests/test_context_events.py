"""The event queue: worker threads raise events, the thread that owns the store records them."""

from __future__ import annotations

import threading
from pathlib import Path

from dbsync.context import SyncContext
from dbsync.store import Store


def _context(tmp_path: Path) -> SyncContext:
    # Only the store and the queue are exercised: no workspace is needed to raise an event.
    return SyncContext(None, None, None, Store(tmp_path / "state.db"), None, None)  # type: ignore[arg-type]


def _worker_event(ctx: SyncContext, message: str) -> None:
    thread = threading.Thread(target=ctx.event, args=("jobs", "1", "update", "skipped", message))
    thread.start()
    thread.join(timeout=10)


def test_a_workers_event_waits_for_the_owning_thread_then_is_recorded_in_order(tmp_path: Path) -> None:
    """While a cycle runs, a worker never writes the store: its event appears once the engine drains the queue."""
    ctx = _context(tmp_path)
    try:
        with ctx.owning_events():
            _worker_event(ctx, "first, from a worker")
            assert ctx.store.events() == []  # not written by the worker thread
            ctx.event("jobs", "2", "update", "error", "second, from the owner")  # records the queued one first
            _worker_event(ctx, "third, from a worker")
        messages = [e["message"] for e in reversed(ctx.store.events())]
        assert messages == ["first, from a worker", "second, from the owner", "third, from a worker"]
    finally:
        ctx.store.close()


def test_outside_a_cycle_an_event_is_recorded_at_once(tmp_path: Path) -> None:
    """cutover, cli and validate raise events with no engine draining: they are recorded when raised."""
    ctx = _context(tmp_path)
    try:
        _worker_event(ctx, "from a thread, no cycle running")
        assert [e["message"] for e in ctx.store.events()] == ["from a thread, no cycle running"]
    finally:
        ctx.store.close()
