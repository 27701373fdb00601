"""The store's record of cycles and events (part of Store): when each kind's cycles ran and how they ended."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from dbsync.model import SUCCESSFUL_OUTCOMES
from dbsync.store.schema import CYCLE_RETENTION_SECONDS, EVENT_RETENTION

# The outcomes of a successful cycle (model.cycle_succeeded), as SQL.
_SUCCEEDED = "outcome IN (" + ", ".join(f"'{o}'" for o in SUCCESSFUL_OUTCOMES) + ")"


class Cycles:
    """Store methods over the `cycles` and `events` tables."""

    if TYPE_CHECKING:

        def _row(self, sql: str, params: list[Any] | None = None) -> tuple | None: ...
        def _rows(self, sql: str, params: list[Any] | None = None) -> list[tuple]: ...
        def _transaction(self) -> Any: ...

        db: Any

    def start_cycle(self, kind: str) -> int:
        with self._transaction():
            cursor = self.db.execute("INSERT INTO cycles (kind, started_at) VALUES (?, ?)", [kind, time.time()])
            return int(cursor.lastrowid or 0)

    def finish_cycle(self, cycle_id: int, counts: dict[str, int], outcome: str) -> None:
        """Record the cycle's end, and drop the kind's cycles older than CYCLE_RETENTION_SECONDS but its latest
        successful one (`last_success`, /readyz): nothing reads further back than an hour (the schedules' leads),
        and a daemon running for months kept every cycle (3,000,000 rows: 2 s to read the longest cycles of 25
        kinds, which the scheduler does after every cycle)."""
        with self._transaction():
            self.db.execute(
                "UPDATE cycles SET finished_at = ?, listed = ?, fetched = ?, created = ?, updated = ?, "
                "deleted = ?, errors = ?, outcome = ? WHERE id = ?",
                [
                    time.time(),
                    counts.get("listed", 0),
                    counts.get("fetched", 0),
                    counts.get("created", 0),
                    counts.get("updated", 0),
                    counts.get("deleted", 0),
                    counts.get("errors", 0),
                    outcome,
                    cycle_id,
                ],
            )
            self.db.execute(
                "DELETE FROM cycles WHERE kind = (SELECT kind FROM cycles WHERE id = :id) AND id < :id "
                f"AND started_at < :before AND id != IFNULL((SELECT MAX(id) FROM cycles WHERE {_SUCCEEDED} "
                "AND kind = (SELECT kind FROM cycles WHERE id = :id)), 0)",
                {"id": cycle_id, "before": time.time() - CYCLE_RETENTION_SECONDS},
            )

    def last_cycles(self) -> dict[str, dict[str, Any]]:
        """The latest finished cycle per kind."""
        rows = self._rows(
            "SELECT kind, started_at, finished_at, listed, fetched, created, updated, deleted, errors, outcome "
            "FROM cycles WHERE id IN (SELECT MAX(id) FROM cycles WHERE finished_at IS NOT NULL GROUP BY kind)"
        )
        names = (
            "kind",
            "started_at",
            "finished_at",
            "listed",
            "fetched",
            "created",
            "updated",
            "deleted",
            "errors",
            "outcome",
        )
        return {r[0]: dict(zip(names, r, strict=True)) for r in rows}

    def last_success(self, kind: str) -> float | None:
        """When the kind's last successful cycle (model.cycle_succeeded) ended: what the running daemon exports as
        dbsync_last_success_timestamp_seconds, and a restarted one before its first cycle (None: never)."""
        row = self._row(f"SELECT MAX(finished_at) FROM cycles WHERE kind = ? AND {_SUCCEEDED}", [kind])
        return row[0] if row else None

    def event(self, kind: str | None, key: str | None, action: str, outcome: str, message: str) -> None:
        """Append to the event log (bounded: the oldest events beyond the retention are pruned)."""
        with self._transaction():
            cursor = self.db.execute(
                "INSERT INTO events (ts, kind, source_key, action, outcome, message) VALUES (?, ?, ?, ?, ?, ?)",
                [time.time(), kind, key, action, outcome, message],
            )
            event_id = int(cursor.lastrowid or 0)
            if event_id % 500 == 0:
                self.db.execute("DELETE FROM events WHERE id <= ?", [event_id - EVENT_RETENTION])

    def events(self, limit: int = 50, outcome: str | None = None) -> list[dict[str, Any]]:
        sql = "SELECT ts, kind, source_key, action, outcome, message FROM events"
        params: list[Any] = []
        if outcome:
            sql += " WHERE outcome = ?"
            params.append(outcome)
        sql += " ORDER BY id DESC LIMIT ?"
        params.append(limit)
        names = ("ts", "kind", "source_key", "action", "outcome", "message")
        return [dict(zip(names, r, strict=True)) for r in self._rows(sql, params)]

    def longest_cycles(self, kinds: Iterable[str], since: float) -> float:
        """The longest cycle of each of these kinds that finished since `since`, added up: how long a run of the
        group that reads them one after another took at worst of late (0 when none finished)."""
        return sum(self.longest_cycle_by_kind(kinds, since).values())

    def longest_cycle_by_kind(self, kinds: Iterable[str], since: float) -> dict[str, float]:
        """Each kind's longest cycle that finished since `since` (kinds with none are left out)."""
        kinds = list(kinds)
        marks = ", ".join("?" * len(kinds))
        rows = self._rows(
            f"SELECT kind, MAX(finished_at - started_at) FROM cycles WHERE kind IN ({marks}) AND started_at >= ? "
            "AND finished_at IS NOT NULL GROUP BY kind",
            [*kinds, since],
        )
        return {kind: float(longest or 0.0) for kind, longest in rows}
