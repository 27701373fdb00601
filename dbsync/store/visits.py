"""The revisit schedule of the kinds read by need (part of Store): when each object was last read, when it is due."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from dbsync.freshness import Visit, after_read, next_visit

# The next_visit of an object something named (an audit-log row, a restore that wrote it): read before the
# objects whose scheduled time has come (a sweep reads the named first), and due whatever the clock says.
NAMED = 0.0
log = logging.getLogger(__name__)


class Visits:
    """Store methods over the `visits` table: one row per object of a kind read by need."""

    if TYPE_CHECKING:

        def _row(self, sql: str, params: list[Any] | None = None) -> tuple | None: ...
        def _rows(self, sql: str, params: list[Any] | None = None) -> list[tuple]: ...
        def _stream(self, sql: str, params: list[Any] | None = None) -> Iterator[tuple]: ...
        def _transaction(self) -> Any: ...
        def get_meta(self, key: str) -> str | None: ...
        def set_meta(self, key: str, value: str) -> None: ...
        def delete_meta(self, key: str) -> None: ...
        def _set_meta(self, key: str, value: str) -> None: ...

        db: Any
        lock: Any

    def visits_of(self, kind: str, keys: list[str]) -> dict[str, tuple[float, float]]:
        """key → (next visit, last verified) of these objects of a kind read by need, in one read."""
        marks = ", ".join("?" * len(keys))
        rows = self._rows(
            f"SELECT source_key, next_visit, verified_at FROM visits WHERE kind = ? AND source_key IN ({marks})",
            [kind, *keys],
        )
        return {row[0]: (row[1], row[2]) for row in rows}

    def synced_at_of(self, kind: str, keys: list[str]) -> dict[str, float]:
        """key → when dbsync last wrote the object to the target, for those it has written, in one read."""
        marks = ", ".join("?" * len(keys))
        rows = self._rows(
            f"SELECT source_key, last_synced_at FROM resources WHERE kind = ? AND source_key IN ({marks}) "
            "AND last_synced_at IS NOT NULL",
            [kind, *keys],
        )
        return {row[0]: row[1] for row in rows}

    def record_visits(
        self,
        kind: str,
        reads: Sequence[tuple[str, bool, Sequence[float]]],
        now: float,
        cycle: float,
        max_staleness: float,
        by_rate: bool = False,
        lead: float = 0.0,
    ) -> None:
        """Objects read now, each (key, changed: its content differed, times: when the changes found were made,
        freshness.after_read): schedule their next reads (freshness.py).

        `by_rate`: containers (directories of a listing read by need), read by their observed change rate. `lead`:
        the longest its kind's recent cycles took (freshness.next_visit).
        One read of their rows and one statement for a window of them: at 10,000 ACLs a SELECT and an INSERT per ACL
        each gave the GIL away to the workers and waited to get it back, on the thread that feeds the workers."""
        debug = log.isEnabledFor(logging.DEBUG)  # every ACL of a sweep passes here: no rule text unless asked
        rows: list[tuple[Any, ...]] = []
        with self._transaction():
            known = self._visit_rows(kind, [key for key, _, _ in reads])
            for key, changed, times in reads:
                row = known.get(key)
                visit = after_read(Visit(*row) if row else Visit(), changed, now, cycle, max_staleness, by_rate, times)
                due_at = next_visit(now, key, visit.interval or max_staleness, cycle, first=row is None, lead=lead)
                if debug:
                    log.debug(
                        "%s %s read (changed %s): every %.0f s, %s",
                        kind,
                        key,
                        changed,
                        visit.interval or 0,
                        _rule(visit),
                    )
                rows.append((kind, key, now, due_at, visit.interval, visit.changed_at, visit.change_gap))
            self.db.conn.executemany(
                "INSERT INTO visits (kind, source_key, verified_at, next_visit, revisit_interval, changed_at, "
                "change_gap) VALUES (?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (kind, source_key) DO UPDATE SET verified_at = excluded.verified_at, "
                "next_visit = excluded.next_visit, revisit_interval = excluded.revisit_interval, "
                "changed_at = excluded.changed_at, change_gap = excluded.change_gap",
                rows,
            )

    def _visit_rows(self, kind: str, keys: list[str]) -> dict[str, tuple[Any, ...]]:
        """key → (revisit_interval, changed_at, change_gap) of those of `keys` with a visit row."""
        found: dict[str, tuple[Any, ...]] = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ", ".join("?" * len(chunk))
            for key, *rest in self.db.execute(
                f"SELECT source_key, revisit_interval, changed_at, change_gap FROM visits "
                f"WHERE kind = ? AND source_key IN ({marks})",
                [kind, *chunk],
            ):
                found[key] = tuple(rest)
        return found

    def hint_visits(self, kind: str, keys: Iterable[str]) -> int:
        """Objects something says changed (an audit-log row): named (due at any time, read first) until they are
        read. How many were scheduled."""
        count = 0
        with self._transaction():
            for key in keys:
                cursor = self.db.execute(
                    "UPDATE visits SET next_visit = ? WHERE kind = ? AND source_key = ?", [NAMED, kind, key]
                )
                count += cursor.rowcount
        return count

    def sweep_resume(self, kind: str) -> str | None:
        """The key the kind's last sweep stopped after at its time slice: the next starts there (None: at the start)."""
        return self.get_meta(f"sweep_resume:{kind}")

    def record_sweep_resume(self, kind: str, key: str | None) -> None:
        """Where the sweep of `kind` stopped (a key), or None once a cycle listed it to the end."""
        if key is not None:
            self.set_meta(f"sweep_resume:{kind}", key)
        elif self.sweep_resume(kind) is not None:
            self.delete_meta(f"sweep_resume:{kind}")

    def record_sweep_start(self, kind: str, now: float) -> float | None:
        """The daemon's sweep of `kind` came to the start of its order now (it goes round it, slice after slice):
        how long its last whole pass took, from the time before (None: the first).

        Kept for the operator and the steady-state benchmark (`sweep_start`: when the last pass ended,
        `sweep_pass`: its length). It is no longer anyone's margin: a slice reads the overdue ACLs most overdue
        first (watchers/permissions.py), so one that came due just after the walk went by does not wait for it to
        come round. As the margin, the pass fed on itself: passes of 424, 875, 1,724, 2,220 s at 100,000 ACLs under
        a 50 requests/s budget, 25,000 ACLs overdue (steady state run 10).
        """
        with self._transaction():  # the pass and its end together (the steady-state benchmark reads both)
            before = self.get_meta(f"sweep_start:{kind}")
            self._set_meta(f"sweep_start:{kind}", repr(now))
            if before is None:
                return None
            length = max(0.0, now - float(before))
            self._set_meta(f"sweep_pass:{kind}", repr(length))
        return length

    def named_visits(self, kind: str) -> list[tuple[str, float]]:
        """(key, last verified) of a kind's objects named since they were last read (hint_visits), in key order.

        Sorted here, not by the query: with ORDER BY source_key SQLite walks the primary key to skip the sort,
        every row of the kind, for the few named (31 ms at 111,348 ACLs, under the store lock, each time the
        sweep looks: every 64 objects or 2 s); without it, it seeks them in visits_due."""
        rows = self._rows("SELECT source_key, verified_at FROM visits WHERE kind = ? AND next_visit = ?", [kind, NAMED])
        return sorted((row[0], row[1]) for row in rows)

    def overdue_visits(self, kind: str, until: float, limit: int) -> list[tuple[str, float, float]]:
        """(key, next visit, revisit interval) of a kind's objects whose revisit comes before `until`, soonest first
        (at most `limit`; the named, due whatever the clock says, are not among them: named_visits)."""
        rows = self._rows(
            "SELECT source_key, next_visit, revisit_interval FROM visits WHERE kind = ? AND next_visit > ? "
            "AND next_visit <= ? ORDER BY next_visit LIMIT ?",
            [kind, NAMED, until, limit],
        )
        return [(row[0], row[1], row[2] or 0.0) for row in rows]

    def record_full_read(self, kind: str, at: float, bound: bool = False) -> None:
        """A cycle that started at `at` listed the kind completely and read every object due or not.

        `bound`: part of the listing was taken as last seen, read at `at`: no object is known fresher than that.
        """
        with self._transaction():
            self.set_meta(f"read_in_full:{kind}", repr(at))
            if bound:
                self.set_meta(f"oldest_listing:{kind}", repr(at))
            else:
                self.db.execute("DELETE FROM meta WHERE key = ?", [f"oldest_listing:{kind}"])

    def record_watching(self, kind: str, since: float) -> None:
        """dbsync watches the kind from `since` on (its first cycle's start, or the daemon's start): recorded once,
        kept across restarts. What nothing has read yet is as old as that (oldest_verification)."""
        key = f"watched_since:{kind}"
        if self.get_meta(key) is None:  # one read a cycle; a write only the first time
            with self._transaction():
                self.db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)", [key, repr(since)])

    def oldest_verification(self, kind: str) -> float | None:
        """When the least recently read live object of the kind was read (None: never watched).

        An object was read at its last visit or at the start of the last cycle that read the whole kind,
        whichever is later; an object with neither was last read when it was written. A kind never read in full
        and with no object recorded (its listing has failed since dbsync began watching it) is as old as the
        watch: it was None, exported as 0 (fresh), and no alert ever fired for it (the last-success one has no
        series before a first success)."""
        full = self.get_meta(f"read_in_full:{kind}")
        floor = float(full) if full else 0.0
        row = self._row(
            "SELECT MIN(MAX(COALESCE(v.verified_at, r.last_synced_at, r.first_seen_at), ?)), COUNT(*) "
            "FROM resources r LEFT JOIN visits v ON v.kind = r.kind AND v.source_key = r.source_key "
            "WHERE r.kind = ? AND r.status != 'deleted'",
            [floor, kind],
        )
        if row is None or not row[1]:
            watched = full or self.get_meta(f"watched_since:{kind}")
            return float(watched) if watched else None
        bound = self.get_meta(f"oldest_listing:{kind}")
        return min(row[0], float(bound)) if bound else row[0]

    def listing_schedule(self, listing: str) -> dict[str, tuple[float, float]]:
        """Container → (next listing due, last listed) of a listing read by need (the workspace tree's directories)."""
        rows = self._rows("SELECT source_key, next_visit, verified_at FROM visits WHERE kind = ?", [listing])
        return {row[0]: (row[1], row[2]) for row in rows}

    def listing_digests(self, listing: str) -> dict[str, str]:
        """Container → digest of its last listing (what "its contents changed" is measured against)."""
        prefix = f"digest:{listing}:"
        rows = self._rows("SELECT key, value FROM meta WHERE key >= ? AND key < ?", [prefix, prefix + "\uffff"])
        return {row[0][len(prefix) :]: row[1] for row in rows}

    def last_seen(self, kinds: list[str]) -> Iterator[tuple[str, str, str | None, str | None]]:
        """(kind, key, version hint, source_meta JSON) of the live rows of these kinds: their listing as last seen.

        Streamed under the store lock (take the rows at once): at 100,000 objects the list was ~40 MB held beside
        the tree schedule built from it, the daemon's peak."""
        marks = ", ".join("?" * len(kinds))
        return self._stream(
            "SELECT kind, source_key, version_hint, source_meta_json FROM resources "
            f"WHERE kind IN ({marks}) AND status != 'deleted'",
            list(kinds),
        )

    def record_listings(
        self,
        listing: str,
        listed: dict[str, tuple[bool, str, tuple[float, ...]]],
        gone: Iterable[str],
        now: float,
        cycle: float,
        cap: float,
        by_rate: bool = True,
        lead: float = 0.0,
    ) -> None:
        """Containers listed now (container → (changed, digest, when its changes were made)) get their next listing;
        those gone are forgotten.

        `by_rate`: by each one's observed change rate (freshness.py); False: doubling while unchanged. `lead`: the
        longest the kinds reading the listing took of late, together (freshness.next_visit)."""
        with self._transaction():
            reads = [(key, changed, times) for key, (changed, _, times) in listed.items()]
            self.record_visits(listing, reads, now, cycle, cap, by_rate=by_rate, lead=lead)
            for key, (changed, digest, _) in listed.items():
                if changed:
                    self.set_meta(f"digest:{listing}:{key}", digest)
            for key in gone:
                self.db.execute("DELETE FROM visits WHERE kind = ? AND source_key = ?", [listing, key])
                self.db.execute("DELETE FROM meta WHERE key = ?", [f"digest:{listing}:{key}"])

    def verified_target_version(self, kind: str, source_key: str) -> str | None:
        """The target's version of a synced object as the drift check last saw it (None: not synced or not seen)."""
        row = self._row(
            "SELECT target_version FROM resources WHERE kind = ? AND source_key = ? AND status = 'synced'",
            [kind, source_key],
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


def _rule(visit: Visit) -> str:
    """Which of freshness.py's rules set the interval, for the debug line (a benchmark splits its tail by it)."""
    if visit.change_gap is not None:
        return f"by its gap ({visit.change_gap:.0f} s)"
    return "seen to change once" if visit.changed_at is not None else "never seen to change"
