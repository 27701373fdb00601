"""The engine records a window of outcomes in one store transaction, not one transaction per change.

A commit per change made the engine's thread (the only one that writes the store) the bottleneck of an
initial sync: with 8 workers applying, it spent more time in BEGIN / COMMIT and the store lock than in
everything else. Counted with SQLite's own statement trace on the real store.
"""

from __future__ import annotations

from dbsync.engine import Engine
from dbsync_emulator.seed import seed_workspace
from tests.conftest import Pair


def test_an_initial_sync_commits_once_per_window_of_outcomes_not_once_per_change(pair: Pair) -> None:
    with pair.source.workspace.lock:
        seed_workspace(pair.source.workspace, 300, seed=4)
    ctx = pair.context()
    statements: list[str] = []
    ctx.store.db.conn.set_trace_callback(statements.append)
    try:
        reports = {r.kind: r for r in Engine(ctx).cycle(["directories", "notebooks"])}
    finally:
        ctx.store.db.conn.set_trace_callback(None)
        ctx.store.close()

    recorded = sum(r.created + r.updated for r in reports.values())
    commits = sum(1 for s in statements if s.strip().upper() == "COMMIT")
    assert recorded >= 100, reports
    assert commits * 3 <= recorded, f"{commits} commits for {recorded} recorded changes"
    # Every change is still recorded: a second cycle finds nothing to do.
    again = pair.sync(only=["directories", "notebooks"])
    assert all(r.created == r.updated == 0 and r.fetched == 0 for r in again.values()), again


def test_the_version_history_of_an_initial_sync_commits_once_per_window_too(pair: Pair) -> None:
    with pair.source.workspace.lock:
        seed_workspace(pair.source.workspace, 300, seed=4)
    ctx = pair.context()
    statements: list[str] = []
    ctx.versions._db().set_trace_callback(statements.append)  # the history's own SQLite index
    try:
        reports = {r.kind: r for r in Engine(ctx).cycle(["directories", "notebooks"])}
        kept = ctx.versions.count()  # a window's versions are one multi-row INSERT: count the rows
    finally:
        ctx.versions._db().set_trace_callback(None)
        ctx.store.close()

    commits = sum(1 for s in statements if s.strip().upper() == "COMMIT")
    assert kept >= sum(r.created for r in reports.values()) >= 100, reports
    assert commits * 3 <= kept, f"{commits} commits for {kept} versions kept"
