"""The state store: SQLite (WAL) through sqlite-utils. The only module with SQL in it.

One row per (kind, source_key) with its fingerprints and target key; cycles, events, cutover steps
and meta (schema version, the workspace pair, the role). The engine records the outcomes of a window of
changes (those finished together, at most `concurrency * 4`) in one transaction (`batch()`), so a crash
loses at most that window's records; the next cycle finds those objects on the target and adopts them.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Container, Iterable, Iterator
from pathlib import Path
from typing import Any

import sqlite_utils

from dbsync.errors import StoreError
from dbsync.model import (
    HELD_FROM,
    WAITING_ON,
    Applied,
    Prior,
    Resource,
    StoredJSON,
    canonical_json,
    fingerprint,
    text_fingerprint,
)
from dbsync.roles import StoreRole
from dbsync.store.actors import Actors
from dbsync.store.counts import Counts
from dbsync.store.cycles import Cycles
from dbsync.store.meta import AddedAhead, _keeping_added, _meta_json
from dbsync.store.schema import (
    _MIGRATIONS,
    SCHEMA_VERSION,
    _explain,
    _json,
    _Transaction,
    private_files,
    restrict,
)
from dbsync.store.visits import Visits


def _prior(row: sqlite3.Row | tuple | None) -> Prior | None:
    if row is None:
        return None
    kind, key, version_hint, fp, target_key, target_ver, status, attempts, payload, meta, origin = row
    return Prior(
        kind=kind, key=key, version_hint=version_hint, fingerprint=fp, target_key=target_key,
        target_version=target_ver, status=status, attempts=attempts, origin=origin,
        payload=StoredJSON(payload) if payload else None, source_meta=StoredJSON(meta) if meta else {},
    )  # fmt: skip


_PRIOR_COLUMNS = (
    "kind, source_key, version_hint, fingerprint, target_key, target_version, status, attempts, "
    "payload_json, source_meta_json, origin"
)


# Applied: the lag clock stops (lag counts unsynced changes only); a step still to do (pending) keeps it running.
_APPLIED = {
    pending: f"""INSERT INTO resources (kind, source_key, name, version_hint, fingerprint, payload_json,
                   source_meta_json, target_key, target_version, status, last_error, attempts,
                   retry_at, first_seen_at, last_changed_at, last_synced_at, origin)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT (kind, source_key) DO UPDATE SET
                   name = excluded.name, version_hint = excluded.version_hint,
                   fingerprint = excluded.fingerprint, payload_json = excluded.payload_json,
                   source_meta_json = excluded.source_meta_json, target_key = excluded.target_key,
                   target_version = excluded.target_version, status = excluded.status,
                   last_error = excluded.last_error,
                   attempts = CASE WHEN excluded.attempts = 0 THEN 0 ELSE resources.attempts + 1 END,
                   retry_at = excluded.retry_at,
                   last_changed_at = {"resources.last_changed_at" if pending else "NULL"},
                   last_synced_at = excluded.last_synced_at,
                   origin = COALESCE(excluded.origin, resources.origin)"""
    for pending in (False, True)
}


class Store(Visits, Cycles, Counts, Actors, AddedAhead):
    """The SQLite state of one source → target pair."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.lock = threading.RLock()
        self._readers = threading.local()  # per-thread read-only connections (writer_flags)
        try:
            if self.path.parent and not self.path.parent.exists():
                self.path.parent.mkdir(parents=True, exist_ok=True)
            with private_files():
                conn = sqlite3.connect(str(self.path), check_same_thread=False, timeout=5, isolation_level=None)
                self.db = sqlite_utils.Database(conn)
                self.db.execute("PRAGMA journal_mode=WAL")
                self.db.execute("PRAGMA synchronous=NORMAL")
                self._migrate()
            restrict(self.path)
        except sqlite3.DatabaseError as err:
            raise StoreError(_explain(self.path, err)) from None
        except OSError as err:
            raise StoreError(f"state store {self.path}: {err.strerror}; check state_path and its permissions") from None

    # -- schema ---------------------------------------------------------------------------------
    def _migrate(self) -> None:
        with self.lock:
            self.db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
            current = int(self.get_meta("schema_version") or 0)
            if current > SCHEMA_VERSION:
                raise StoreError(
                    f"state store {self.path} has schema version {current}, newer than this dbsync "
                    f"({SCHEMA_VERSION}); upgrade dbsync"
                )
            for version in range(current + 1, SCHEMA_VERSION + 1):
                with self._transaction():
                    for statement in _MIGRATIONS[version]:
                        self.db.execute(statement)
                    self._set_meta("schema_version", str(version))

    def _rows(self, sql: str, params: list[Any] | None = None) -> list[tuple]:
        """Run a read under the store lock (the daemon's HTTP thread reads while a cycle writes)."""
        with self.lock:
            try:
                return self.db.execute(sql, params or []).fetchall()
            except sqlite3.DatabaseError as err:
                raise StoreError(_explain(self.path, err)) from None

    def _stream(self, sql: str, params: list[Any] | None = None) -> Iterator[tuple]:
        """A read row by row under the store lock, held until the caller has taken the last row: for reads of
        every row of a kind, whose list would be held whole beside what the caller builds from it."""
        with self.lock:
            try:
                yield from self.db.execute(sql, params or [])
            except sqlite3.DatabaseError as err:
                raise StoreError(_explain(self.path, err)) from None

    def _row(self, sql: str, params: list[Any] | None = None) -> tuple | None:
        rows = self._rows(sql, params)
        return rows[0] if rows else None

    def _transaction(self) -> Any:
        return _Transaction(self.db.conn, self.lock, self.path)

    def batch(self) -> Any:
        """One transaction for several records (a window of outcomes): each record's own transaction joins it."""
        return self._transaction()

    def close(self) -> None:
        with self.lock:
            self.db.conn.close()

    # -- meta and the workspace pair ------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        row = self._row("SELECT value FROM meta WHERE key = ?", [key])
        return row[0] if row else None

    def _set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", [key, value])

    def set_meta(self, key: str, value: str) -> None:
        with self._transaction():
            self._set_meta(key, value)

    def bind_pair(self, source_id: str, target_id: str) -> bool:
        """Record the workspace pair on first use (True: bound now); refuse a store of another pair."""
        with self._transaction():
            known_source = self.get_meta("source_workspace_id")
            known_target = self.get_meta("target_workspace_id")
            if known_source is None and known_target is None:
                self._set_meta("source_workspace_id", source_id)
                self._set_meta("target_workspace_id", target_id)
                return True
        if (known_source, known_target) != (source_id, target_id):
            raise StoreError(
                f"state store {self.path} belongs to workspaces {known_source} → {known_target}, but this "
                f"config is {source_id} → {target_id}. Point state_path at the store of this pair (or a new "
                "file); to replicate in the other direction use `dbsync reverse`."
            )
        return False

    @property
    def role(self) -> str:
        return self.get_meta("role") or StoreRole.STANDBY

    def writer_flags(self) -> tuple[str, str | None]:
        """(role, cutover request or None) in one read: the write fence asks before every target write.

        Read on the asking thread's own read-only connection: a write must not wait for the store lock while
        the engine's thread records a window of outcomes (WAL readers see every committed change).
        """
        sql = "SELECT key, value FROM meta WHERE key IN ('role', 'cutover_requested')"
        try:
            rows = dict(self._reader().execute(sql).fetchall())
        except sqlite3.DatabaseError:
            rows = dict(self._rows(sql))  # no second connection (a read-only directory): the shared one
        return rows.get("role") or StoreRole.STANDBY, rows.get("cutover_requested")

    def _reader(self) -> sqlite3.Connection:
        """This thread's read-only connection to the store (opened on first use, closed with the thread)."""
        conn: sqlite3.Connection | None = getattr(self._readers, "conn", None)
        if conn is None:
            conn = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True, timeout=5)
            self._readers.conn = conn
        return conn

    def delete_meta(self, key: str) -> None:
        with self._transaction():
            self.db.execute("DELETE FROM meta WHERE key = ?", [key])

    # -- resources ------------------------------------------------------------------------------
    def prior(self, kind: str, key: str) -> Prior | None:
        """What the store knows of (kind, key); None for a never-seen or deleted object."""
        row = self._row(
            f"SELECT {_PRIOR_COLUMNS} FROM resources WHERE kind = ? AND source_key = ? AND status != 'deleted'",
            [kind, key],
        )
        return _prior(row)

    def priors_of(self, kind: str, keys: list[str]) -> dict[str, Prior]:
        """The live priors of these keys of a kind, in one read (the engine reads its listing's a window at a time)."""
        marks = ", ".join("?" * len(keys))
        sql = (
            f"SELECT {_PRIOR_COLUMNS} FROM resources WHERE kind = ? AND status != 'deleted' AND source_key IN ({marks})"
        )
        found = (_prior(row) for row in self._rows(sql, [kind, *keys]))
        return {p.key: p for p in found if p is not None}

    def priors(self, kind: str, page: int = 1000, payloads: bool = True, after: str = "") -> Iterator[Prior]:
        """Every live (not deleted) resource of a kind, streamed a page at a time in key order.

        `payloads=False` leaves `payload` None: a page of 1,000 job settings decoded is several MB, and
        the callers that walk a whole kind for its keys and target ids never read it.
        """
        columns = _PRIOR_COLUMNS if payloads else _PRIOR_COLUMNS.replace("payload_json", "NULL")
        while True:
            rows = self._rows(
                f"SELECT {columns} FROM resources WHERE kind = ? AND status != 'deleted' "
                "AND source_key > ? ORDER BY source_key LIMIT ?",
                [kind, after, page],
            )
            for row in rows:
                prior = _prior(row)
                if prior is not None:
                    yield prior
            if len(rows) < page:
                return
            after = rows[-1][1]

    def live_keys_not_in(self, kind: str, present: Container[str], page: int = 5000) -> tuple[int, list[str]]:
        """(live resources of a kind, the keys of those not in `present`), read a page at a time.

        The delete plan needs both; a page at a time keeps a 100,000-object kind from holding a second set
        of every key beside the listing's own.
        """
        known, missing, after = 0, [], ""
        while True:
            rows = self._rows(
                "SELECT source_key FROM resources WHERE kind = ? AND status != 'deleted' AND source_key > ? "
                "ORDER BY source_key LIMIT ?",
                [kind, after, page],
            )
            known += len(rows)
            missing.extend(row[0] for row in rows if row[0] not in present)
            if len(rows) < page:
                return known, missing
            after = rows[-1][0]

    def live_count(self, kind: str) -> int:
        row = self._row("SELECT COUNT(*) FROM resources WHERE kind = ? AND status != 'deleted'", [kind])
        return int(row[0]) if row else 0

    def target_key(self, kind: str, source_key: str) -> str | None:
        """The target id a source object was replicated to (the id map)."""
        row = self._row(
            "SELECT target_key FROM resources WHERE kind = ? AND source_key = ? AND status != 'deleted'",
            [kind, source_key],
        )
        return row[0] if row else None

    def record_seen_many(self, resources: Iterable[Resource]) -> None:
        """Read, their payload unchanged (the listing changed their version hint): the hint, name and meta are kept.
        One statement for a window of them (none: the store is not opened for writing)."""
        rows = [
            (r.version_hint, r.name, meta, meta, r.kind, r.key)
            for r in resources
            for meta in [_meta_json(r.source_meta)]
        ]
        if not rows:
            return
        with self._transaction():  # an update the guard held, undone on the source: its copy's status again
            self.db.conn.executemany(
                f"UPDATE resources SET version_hint = ?, name = ?, source_meta_json = {_keeping_added('?')}, "
                "last_changed_at = NULL, "
                f"status = IIF(status = 'pending', COALESCE(json_extract(source_meta_json, '$.{HELD_FROM}'), status), "
                "status) WHERE kind = ? AND source_key = ?",
                rows,
            )

    def record_applied(
        self, resource: Resource, applied: Applied, retry_in: float = 0.0, canonical: str | None = None
    ) -> None:
        """A create or update reached the target: fingerprints, target key, origin, status synced / partial / skipped.

        A partial or skipped object keeps the principals it waits for in its source_meta (WAITING_ON).
        With `applied.pending` (a step still to do, like stopping a created cluster) the target key and
        origin are recorded but the status is error, retried after `retry_in` seconds: a restart resumes
        the step on the recorded object instead of creating another. `canonical`: the payload's canonical JSON,
        when the caller has it (the engine: the same text goes into the version history).
        """
        self.record_applied_many([(resource, applied, retry_in, canonical)])

    def record_applied_many(self, records: Iterable[tuple[Resource, Applied, float, str | None]]) -> None:
        """record_applied of each (resource, applied, retry_in, canonical): one statement for a window of them (none:
        the store is not opened for writing)."""
        now = time.time()
        rows: dict[bool, list[list[Any]]] = {False: [], True: []}  # by applied.pending: the lag clock's column
        for resource, applied, retry_in, canonical in records:
            text = canonical if canonical is not None else canonical_json(resource.payload)
            meta = {k: v for k, v in resource.source_meta.items() if k not in (WAITING_ON, HELD_FROM)} | applied.meta
            if applied.waiting_on:
                meta[WAITING_ON] = sorted(set(applied.waiting_on))
            rows[bool(applied.pending)].append(
                [
                    resource.kind,
                    resource.key,
                    resource.name,
                    resource.version_hint if applied.version_hint is None else applied.version_hint,
                    text_fingerprint(text),
                    text if resource.payload else None,  # canonical: sorted keys, no spaces (as _json writes)
                    _json(meta),
                    applied.target_key,
                    None,  # the target's own version is observed by the next drift check
                    applied.status,
                    applied.pending or applied.note,
                    1 if applied.pending else 0,
                    now + retry_in if applied.pending and retry_in else None,
                    now,
                    None,
                    now,
                    applied.origin,
                ]
            )
        if not rows[False] and not rows[True]:
            return
        with self._transaction():
            for pending, batch in rows.items():
                if batch:
                    self.db.conn.executemany(_APPLIED[pending], batch)

    def seed_reversed(self, kind: str, key: str, name: str, target_key: str, payload: dict[str, Any]) -> None:
        """A failback row that knows its target but not its content: pending, adopted, the lag clock running.

        `payload` is a placeholder whose fingerprint matches no real payload, so the next cycle fetches the
        object and updates `target_key` in place (never creates); adopted, so failback never deletes it.
        """
        now = time.time()
        with self._transaction():
            self.db.execute(
                """INSERT INTO resources (kind, source_key, name, version_hint, fingerprint, payload_json,
                       source_meta_json, target_key, target_version, status, last_error, attempts,
                       retry_at, first_seen_at, last_changed_at, last_synced_at, origin)
                   VALUES (?, ?, ?, NULL, ?, ?, NULL, ?, NULL, 'pending', NULL, 0, NULL, ?, ?, ?, 'adopted')
                   ON CONFLICT (kind, source_key) DO UPDATE SET
                       name = excluded.name, version_hint = NULL, fingerprint = excluded.fingerprint,
                       payload_json = excluded.payload_json, source_meta_json = NULL,
                       target_key = excluded.target_key, target_version = NULL, status = 'pending',
                       last_error = NULL, attempts = 0, retry_at = NULL, last_changed_at = excluded.last_changed_at,
                       last_synced_at = excluded.last_synced_at, origin = 'adopted'""",
                [kind, key, name, fingerprint(payload), _json(payload), target_key, now, now, now],
            )

    def record_failure(self, resource: Resource, status: str, error: str, retry_in: float = 0.0) -> None:
        """A change that did not reach the target: blocked, or error with backoff."""
        now = time.time()
        fingerprint = resource.fingerprint if resource.payload is not None else None
        with self._transaction():
            self.db.execute(
                f"""INSERT INTO resources (kind, source_key, name, version_hint, fingerprint, payload_json,
                       source_meta_json, status, last_error, attempts, retry_at, first_seen_at, last_changed_at)
                   VALUES (?, ?, ?, NULL, ?, ?, ?, ?, ?, 1, ?, ?, ?)
                   ON CONFLICT (kind, source_key) DO UPDATE SET
                       name = excluded.name, fingerprint = COALESCE(excluded.fingerprint, resources.fingerprint),
                       payload_json = COALESCE(excluded.payload_json, resources.payload_json),
                       source_meta_json = {_keeping_added("excluded.source_meta_json")},
                       status = excluded.status, last_error = excluded.last_error,
                       attempts = resources.attempts + 1, retry_at = excluded.retry_at,
                       last_changed_at = COALESCE(resources.last_changed_at, excluded.last_changed_at)""",
                [
                    resource.kind,
                    resource.key,
                    resource.name,
                    fingerprint,
                    _json(resource.payload),
                    _meta_json(resource.source_meta),
                    status,
                    error,
                    now + retry_in if retry_in else None,
                    now,
                    now,
                ],
            )

    def record_pending(self, kind: str, key: str) -> None:
        """The source changed (a new version hint): start the lag clock if it is not running."""
        with self._transaction():
            self.db.execute(
                "UPDATE resources SET last_changed_at = COALESCE(last_changed_at, ?) WHERE kind = ? AND source_key = ?",
                [time.time(), kind, key],
            )

    def record_held(self, kind: str, keys: Iterable[str]) -> None:
        """Updates the edit-storm guard holds: `pending` (their source change is not on the target) until applied,
        the status of their copy kept in source_meta (HELD_FROM: the next cycle's guard still counts them), the lag
        clock running from the first hold. An update held again keeps what it was held from."""
        held = f"json_extract(source_meta_json, '$.{HELD_FROM}')"
        with self._transaction():
            self.db.conn.executemany(
                "UPDATE resources SET status = 'pending', last_changed_at = COALESCE(last_changed_at, ?), "
                f"source_meta_json = IIF(status = 'pending', source_meta_json, json_set(COALESCE(source_meta_json, "
                f"'{{}}'), '$.{HELD_FROM}', status)) WHERE kind = ? AND source_key = ? "
                f"AND (status IN ('synced', 'partial', 'skipped') OR (status = 'pending' AND {held} IS NOT NULL))",
                [(time.time(), kind, key) for key in keys],
            )

    def record_pinned_deletes(self, kind: str, keys: list[str], why: str) -> None:
        """Source deletes a `restore --pin` keeps from the target: `pending` with the reason, the lag clock running.
        The rows stay live, so the first cycle after `--unpin` deletes them."""
        with self._transaction():
            self.db.conn.executemany(
                "UPDATE resources SET status = 'pending', last_error = ?, last_changed_at = COALESCE(last_changed_at, "
                "?) WHERE kind = ? AND source_key = ? AND status != 'deleted'",
                [(why, time.time(), kind, key) for key in keys],
            )

    def record_pending_seen(self, kind: str, key: str, version_hint: str | None, fingerprint: str | None) -> None:
        """Validation saw a source change: start the lag clock, unless a cycle recorded the object since it read it."""
        with self._transaction():
            self.db.execute(
                "UPDATE resources SET last_changed_at = COALESCE(last_changed_at, ?) WHERE kind = ? AND source_key = ? "
                "AND version_hint IS ? AND fingerprint IS ? AND status != 'deleted'",
                [time.time(), kind, key, version_hint, fingerprint],
            )

    def record_due(self, kind: str, key: str) -> None:
        """A principal a partial / skipped object waited for exists now: `pending`, applied again this cycle."""
        with self._transaction():
            self.db.execute(
                "UPDATE resources SET status = 'pending', last_changed_at = COALESCE(last_changed_at, ?) "
                "WHERE kind = ? AND source_key = ? AND status IN ('partial', 'skipped')",
                [time.time(), kind, key],
            )

    def record_deleted(self, kind: str, key: str) -> None:
        with self._transaction():
            self.db.execute(
                "UPDATE resources SET status = 'deleted', target_key = NULL, target_version = NULL, origin = NULL, "
                "last_error = NULL, last_synced_at = ?, last_changed_at = NULL WHERE kind = ? AND source_key = ?",
                [time.time(), kind, key],
            )

    def owned_target_keys(self, target_keys: list[str]) -> set[str]:
        """The target keys (paths, scope/key) that a live row dbsync did not adopt points at: dbsync put them there."""
        owned: set[str] = set()
        for start in range(0, len(target_keys), 500):
            chunk = target_keys[start : start + 500]
            marks = ", ".join("?" * len(chunk))
            rows = self._rows(
                f"SELECT target_key FROM resources WHERE target_key IN ({marks}) AND status != 'deleted' "
                "AND origin IS NOT 'adopted'",
                chunk,
            )
            owned.update(row[0] for row in rows)
        return owned

    def record_drift(self, kind: str, key: str, heal: bool) -> None:
        """The target copy changed outside dbsync: `drifted` (report) or `pending` (rewrite next cycle).

        A reported drift keeps the baseline written by dbsync, so switching to `drift: heal` later still
        sees the difference; a heal forgets it (the rewrite sets a new one).
        """
        with self._transaction():
            self.db.execute(
                "UPDATE resources SET status = ?, "
                "target_version = CASE WHEN ? THEN NULL ELSE target_version END, "
                "last_changed_at = COALESCE(last_changed_at, ?) WHERE kind = ? AND source_key = ?",
                ["pending" if heal else "drifted", heal, time.time() if heal else None, kind, key],
            )

    def record_fingerprint(self, kind: str, key: str, payload: dict[str, Any]) -> None:
        """The same source object fingerprinted anew (a new normalizer): payload and fingerprint, nothing else."""
        with self._transaction():
            self.db.execute(
                "UPDATE resources SET payload_json = ?, fingerprint = ? WHERE kind = ? AND source_key = ?",
                [_json(payload), fingerprint(payload), kind, key],
            )

    def record_target_version(self, kind: str, key: str, target_version: str | None) -> None:
        with self._transaction():
            self.db.execute(
                "UPDATE resources SET target_version = ? WHERE kind = ? AND source_key = ?",
                [target_version, kind, key],
            )

    def retry_due(self, prior: Prior, now: float | None = None) -> bool:
        row = self._row("SELECT retry_at FROM resources WHERE kind = ? AND source_key = ?", [prior.kind, prior.key])
        return not row or row[0] is None or row[0] <= (now or time.time())

    def forget(self, kind: str) -> None:
        """Drop every record of a kind (used by `dbsync reverse` to rebuild fingerprints)."""
        with self._transaction():
            self.db.execute("DELETE FROM resources WHERE kind = ?", [kind])

    # -- summaries ------------------------------------------------------------------------------
    def status_counts(self) -> dict[str, dict[str, int]]:
        """{kind: {status: count}} over live resources."""
        out: dict[str, dict[str, int]] = {}
        for kind, status, count in self._rows(
            "SELECT kind, status, COUNT(*) FROM resources WHERE status != 'deleted' GROUP BY kind, status"
        ):
            out.setdefault(kind, {})[status] = count
        return out

    def problems(
        self, kind: str, limit: int = 50, statuses: tuple[str, ...] = ("blocked", "error")
    ) -> list[dict[str, Any]]:
        """Resources of a kind in these statuses (blocked or error by default), with their last error or reason."""
        marks = ", ".join("?" for _ in statuses)
        rows = self._rows(
            "SELECT source_key, name, status, last_error, attempts FROM resources "
            f"WHERE kind = ? AND status IN ({marks}) ORDER BY source_key LIMIT ?",
            [kind, *statuses, limit],
        )
        return [dict(zip(("source_key", "name", "status", "last_error", "attempts"), r, strict=True)) for r in rows]

    def keys_with_status(self, kind: str, status: str, limit: int = 50) -> list[str]:
        rows = self._rows(
            "SELECT source_key FROM resources WHERE kind = ? AND status = ? ORDER BY source_key LIMIT ?",
            [kind, status, limit],
        )
        return [r[0] for r in rows]

    def labels(self, kind: str, keys: list[str]) -> dict[str, tuple[str | None, str | None]]:
        """{source key: (name, target key)} for the keys the store knows: pages show names, link target copies."""
        if not keys:
            return {}
        marks = ", ".join("?" for _ in keys)
        rows = self._rows(
            f"SELECT source_key, name, target_key FROM resources WHERE kind = ? AND source_key IN ({marks})",
            [kind, *keys],
        )
        return {r[0]: (r[1], r[2]) for r in rows}

    def oldest_unsynced_change(self, kind: str) -> float | None:
        """When the oldest source change not yet applied was first seen (None when in sync).

        Changes of objects already recorded carry their own clock; objects never replicated yet are seen as
        a group (`record_pending_new`) by validation, before a cycle of their kind reaches them.
        """
        row = self._row("SELECT MIN(last_changed_at) FROM resources WHERE kind = ? AND status != 'deleted'", [kind])
        new = self.get_meta(f"pending_new_since:{kind}")
        times = [t for t in ((row[0] if row else None), float(new) if new else None) if t is not None]
        return min(times) if times else None

    # -- cutover steps --------------------------------------------------------------------------
    def cutover_steps(self) -> dict[str, dict[str, Any]]:
        rows = self._rows("SELECT step, state, at, detail FROM cutover")
        return {r[0]: {"state": r[1], "at": r[2], "detail": json.loads(r[3]) if r[3] else None} for r in rows}

    def record_cutover_step(self, step: str, state: str, detail: Any = None) -> None:
        with self._transaction():
            self.db.execute(
                "INSERT OR REPLACE INTO cutover (step, state, at, detail) VALUES (?, ?, ?, ?)",
                [step, state, time.time(), _json(detail)],
            )

    def clear_cutover(self) -> None:
        with self._transaction():
            self.db.execute("DELETE FROM cutover")
