"""What `status` and dbsync_resources count (part of Store): the store's rows, in the words `validate` uses."""

from __future__ import annotations

import json
import time
from collections.abc import Collection
from typing import TYPE_CHECKING, Any

from dbsync.model import cycle_succeeded

_NEW = "pending_new:"  # meta key prefix: {"count", "listed_at"} a schema 6 store kept (migration 7: the table)
_NEW_SINCE = "pending_new_since:"  # meta key prefix: when such objects were first seen (the lag clock)


class Counts:
    """Store methods behind `dbsync status` and dbsync_resources (model.COUNTED)."""

    if TYPE_CHECKING:

        def _row(self, sql: str, params: list[Any] | None = None) -> tuple | None: ...
        def _rows(self, sql: str, params: list[Any] | None = None) -> list[tuple]: ...
        def _transaction(self) -> Any: ...
        def _set_meta(self, key: str, value: str) -> None: ...
        def get_meta(self, key: str) -> str | None: ...
        def status_counts(self) -> dict[str, dict[str, int]]: ...
        def last_cycles(self) -> dict[str, dict[str, Any]]: ...

        db: Any

    def verified_counts(self, disabled: Collection[str] = ()) -> dict[str, dict[str, int]]:
        """{kind: {status: count}} as `status` and dbsync_resources say it (model.COUNTED): the store's statuses, but

        - the `synced` rows of a kind whose last cycle did not succeed (model.cycle_succeeded: its listing failed,
          or was stopped before its end by a shutdown or a write the fence refused) are `unknown`. Those rows are
          what an older cycle verified; `plan` calls such a kind unknown and the report's "last verified" is that
          older cycle, while the metric kept it whole as synced (a SIGTERM mid-listing, first; a failed listing
          until the audit of 22a9b03);
        - the source objects without a row as of the last listing (`record_pending_new`: new ones no cycle reached
          yet, or written by a process killed before it recorded them) are `pending`, as `validate` counts them:
          they had no row, so `status` and the metric did not count them at all;
        - the `disabled` kinds (registry.disabled_kinds) are not counted: dbsync does not replicate them, so their
          rows are neither synced nor unknown, and `validate` and /report leave them out. A kind turned off after
          its listing failed was `unknown` for ever (DbsyncKindUnknown paged for it); enabled again, it is again."""
        counts = {kind: statuses for kind, statuses in self.status_counts().items() if kind not in disabled}
        for kind, cycle in self.last_cycles().items():
            statuses = counts.get(kind, {})
            if not cycle_succeeded(cycle["outcome"]) and "synced" in statuses:
                statuses["unknown"] = statuses.pop("synced")
        for kind, new in self.pending_new().items():
            if kind in disabled:
                continue
            statuses = counts.setdefault(kind, {})
            statuses["pending"] = statuses.get("pending", 0) + new
        return counts

    def pending_new(self) -> dict[str, int]:
        """{kind: source objects without a row}: the keys the last listing that counted them kept, less those with a
        live row now (a cycle reached them: each is counted once, by its row).

        Only the counted objects' own rows take them out. Their number less every row of the kind recorded since the
        listing let five new notebooks a cycle that read part of the tree recorded hide five counted ones it never
        reached: `status` and the metric said nothing was pending while the standby lacked them. An object counted,
        then deleted on the source before a cycle reached it, stays pending until the next listing: errs towards
        pending."""
        out = dict(
            self._rows(
                "SELECT kind, COUNT(*) FROM pending_new AS p WHERE NOT EXISTS (SELECT 1 FROM resources AS r "
                "WHERE r.kind = p.kind AND r.source_key = p.source_key AND r.status != 'deleted') GROUP BY kind"
            )
        )
        # A store of schema 6 kept the number only (schema.py, migration 7): read the old way until replaced.
        for key, value in self._rows("SELECT key, value FROM meta WHERE key LIKE ?", [_NEW + "%"]):
            kind, counted = key[len(_NEW) :], json.loads(value)
            row = self._row(
                "SELECT COUNT(*) FROM resources WHERE kind = ? AND first_seen_at >= ?", [kind, counted["listed_at"]]
            )
            out[kind] = out.get(kind, 0) + max(0, counted["count"] - (row[0] if row else 0))
        return {kind: count for kind, count in out.items() if count > 0}

    def record_pending_new(self, kind: str, keys: Collection[str], listed_at: float | None = None) -> None:
        """The keys of the objects on the source never replicated (no row yet), as a listing that read the store at
        `listed_at` found them: when they were first seen starts the lag clock, and those still without a row are
        `pending` in verified_counts. They replace the kind's keys of the listing before. A cycle that read every
        object of the kind recorded each (or it is gone) and says none.

        One transaction, the keys inserted in one batch: 100,000 of them (an initial sync's) took 0.2-0.3 s, 0.3-0.4 s
        replacing as many, and pending_new() 0.1 s over them (2 busy cores)."""
        since, legacy = _NEW_SINCE + kind, _NEW + kind
        if not keys:
            kept = self._row("SELECT 1 FROM pending_new WHERE kind = ? LIMIT 1", [kind])
            if kept is None and self.get_meta(since) is None and self.get_meta(legacy) is None:
                return  # nothing to stop: no write
        with self._transaction():
            self.db.execute("DELETE FROM pending_new WHERE kind = ?", [kind])
            self.db.execute("DELETE FROM meta WHERE key = ?", [legacy])
            if not keys:
                self.db.execute("DELETE FROM meta WHERE key = ?", [since])
                return
            now = time.time()
            self.db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)", [since, repr(now)])
            at = listed_at or now
            self.db.conn.executemany(
                "INSERT OR IGNORE INTO pending_new (kind, source_key, listed_at) VALUES (?, ?, ?)",
                ((kind, key, at) for key in keys),
            )
