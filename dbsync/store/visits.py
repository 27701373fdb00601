"""The revisit schedule of the kinds read by need (part of Store): when each object was last read, when it is due."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from dbsync.freshness import next_interval, next_visit


class Visits:
    """Store methods over the `visits` table: one row per object of a kind read by need."""

    if TYPE_CHECKING:

        def _row(self, sql: str, params: list[Any] | None = None) -> tuple | None: ...
        def _rows(self, sql: str, params: list[Any] | None = None) -> list[tuple]: ...
        def _transaction(self) -> Any: ...

        db: Any

    def visit_due(self, kind: str, key: str, parent: tuple[str, str] | None, now: float) -> bool:
        """Whether the object must be read now: never read, its time has come, or its parent was written since."""
        parent_kind, parent_key = parent or ("", "")
        row = self._row(
            "SELECT v.next_visit, v.verified_at, "
            "(SELECT last_synced_at FROM resources WHERE kind = ? AND source_key = ?) "
            "FROM visits v WHERE v.kind = ? AND v.source_key = ?",
            [parent_kind, parent_key, kind, key],
        )
        if row is None:
            return True
        due_at, verified_at, parent_written = row
        return due_at <= now or (parent_written is not None and parent_written > verified_at)

    def record_visit(self, kind: str, key: str, changed: bool, now: float, cycle: float, max_staleness: float) -> None:
        """The object was read now (`changed`: its content differed from the target's): schedule the next read."""
        with self._transaction():
            row = self.db.execute(
                "SELECT revisit_interval FROM visits WHERE kind = ? AND source_key = ?", [kind, key]
            ).fetchone()
            previous = row[0] if row else None
            interval = next_interval(previous, changed, cycle, max_staleness)
            due_at = next_visit(now, key, interval, cycle, first=row is None)
            self.db.execute(
                "INSERT INTO visits (kind, source_key, verified_at, next_visit, revisit_interval) "
                "VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (kind, source_key) DO UPDATE SET verified_at = excluded.verified_at, "
                "next_visit = excluded.next_visit, revisit_interval = excluded.revisit_interval",
                [kind, key, now, due_at, interval],
            )

    def hint_visits(self, kind: str, keys: Iterable[str], now: float) -> int:
        """Objects something says changed (an audit-log row): due now, and hot again. How many were scheduled."""
        count = 0
        with self._transaction():
            for key in keys:
                cursor = self.db.execute(
                    "UPDATE visits SET next_visit = MIN(next_visit, ?) WHERE kind = ? AND source_key = ?",
                    [now, kind, key],
                )
                count += cursor.rowcount
        return count

    def oldest_verification(self, kind: str) -> float | None:
        """When the least recently read live object of a kind read by need was read (None: none recorded)."""
        row = self._row(
            "SELECT MIN(v.verified_at) FROM visits v "
            "JOIN resources r ON r.kind = v.kind AND r.source_key = v.source_key "
            "WHERE v.kind = ? AND r.status != 'deleted'",
            [kind],
        )
        return row[0] if row else None

    def keys_with_object_id(self, kind: str, object_id: int) -> list[str]:
        """Live rows of a kind whose source_meta names this workspace object id (an ACL row of a notebook)."""
        rows = self._rows(
            "SELECT source_key FROM resources WHERE kind = ? AND status != 'deleted' "
            "AND json_extract(source_meta_json, '$.object_id') = ?",
            [kind, object_id],
        )
        return [row[0] for row in rows]

    def kinds_holding(self, keys: list[str]) -> set[str]:
        """The kinds with a live row under one of these source keys (a path, a job id)."""
        found: set[str] = set()
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ", ".join("?" * len(chunk))
            rows = self._rows(
                f"SELECT DISTINCT kind FROM resources WHERE source_key IN ({marks}) AND status != 'deleted'", chunk
            )
            found.update(row[0] for row in rows)
        return found
