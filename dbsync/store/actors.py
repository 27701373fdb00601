"""Who changed what on the source (part of Store): the audit log's actor of each object, for `dbsync history`.

The `actors` table (schema 6) holds one row per audit event naming an object; a pair that reads no audit log
leaves it empty, and `dbsync history` then names nobody.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any


class Actors:
    """Store methods over the `actors` table: one row per audit event naming an object (its id, key or path)."""

    if TYPE_CHECKING:

        def _rows(self, sql: str, params: list[Any] | None = None) -> list[tuple]: ...
        def _transaction(self) -> Any: ...

        db: Any

    def remember_actors(self, entries: Iterable[tuple[str, bool, float, str]], forget_before: float) -> int:
        """Keep (object, ACL change?, event time, email) rows; drop those older than `forget_before`. How many kept.

        `object` is how the audit row names it (a path, a job id, a workspace object id); `acl`: an ACL change."""
        rows = [[obj, int(acl), at, email] for obj, acl, at, email in entries]
        if not rows:
            return 0
        with self._transaction():
            self.db.execute("DELETE FROM actors WHERE at < ?", [forget_before])
            for row in rows:
                self.db.execute("INSERT OR REPLACE INTO actors (object, acl, at, email) VALUES (?, ?, ?, ?)", row)
        return len(rows)

    def actor_events(self, objects: Iterable[str], acl: bool) -> list[tuple[float, str]]:
        """(event time, email) of the rows naming any of `objects`, oldest first."""
        names = sorted(set(objects))
        if not names:
            return []
        marks = ", ".join("?" * len(names))
        return [
            (float(at), str(email))
            for at, email in self._rows(
                f"SELECT at, email FROM actors WHERE acl = ? AND object IN ({marks}) ORDER BY at", [int(acl), *names]
            )
        ]
