"""The history of what was replicated: every version dbsync wrote to the target, kept to restore from.

`<state_path>.versions/` holds `index.db` (SQLite: one row per version, one per blob with its compressed
bytes, the restore pins): content-addressed, a notebook body or a payload is stored once however many versions
or paths share it. An older dbsync kept the blobs as one file each under `blobs/`: those are still read and
pruned, new ones go to the index. Nothing is opened or written until the first version is recorded, so a no-change cycle
leaves the history untouched. Kinds that declare `versions=False` (secret values) never enter it.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dbsync.errors import StoreError
from dbsync.model import canonical_json
from dbsync.store.blobs import Blobs, DirectoryBlobs, SQLiteBlobs, digest
from dbsync.store.schema import private_files, restrict

log = logging.getLogger(__name__)
DAY = 86400.0
_ROWS_PER_INSERT = 100  # versions a multi-row INSERT carries (11 parameters each, far under SQLite's limit)
PRUNE_EVERY_SECONDS = 3600.0
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS versions (id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, "
    "key TEXT NOT NULL, at REAL NOT NULL, action TEXT NOT NULL, fingerprint TEXT, body TEXT, "
    "size INTEGER NOT NULL DEFAULT 0, version_hint TEXT, author TEXT, target_key TEXT, name TEXT)",
    "CREATE INDEX IF NOT EXISTS versions_by_key ON versions (kind, key, id)",
    "CREATE INDEX IF NOT EXISTS versions_by_target ON versions (target_key)",
    # refs: how many versions name the blob (its payload or its body); a blob at 0 is deleted by a prune.
    "CREATE TABLE IF NOT EXISTS blobs (name TEXT PRIMARY KEY, raw_bytes INTEGER NOT NULL, "
    "stored_bytes INTEGER NOT NULL, refs INTEGER NOT NULL DEFAULT 0)",
    "CREATE TABLE IF NOT EXISTS blob_data (name TEXT PRIMARY KEY, data BLOB NOT NULL)",  # SQLiteBlobs
    "CREATE TABLE IF NOT EXISTS pins (kind TEXT NOT NULL, key TEXT NOT NULL, fingerprint TEXT, at REAL NOT NULL, "
    "PRIMARY KEY (kind, key))",
)
_COLUMNS = "id, kind, key, at, action, fingerprint, body, size, version_hint, author, target_key, name"
# user_version 1: digests in the index are 32-byte blobs (an older index held 64-character hex: migrated on open).
_DIGESTS_AS_BYTES = 1


def _raw(name: str | None) -> bytes | None:
    """A digest as the index stores it: 32 bytes, half its hex (the index is mostly digests)."""
    return bytes.fromhex(name) if name is not None else None


def _hex(value: bytes | str | None) -> str | None:
    return value.hex() if isinstance(value, bytes) else value


@dataclass(frozen=True)
class Version:
    """One replicated version of one object (or its deletion: action `delete`, no payload)."""

    id: int
    kind: str
    key: str
    at: float
    action: str  # create | update | delete | restore
    fingerprint: str | None  # sha256 of the canonical payload: also the name of its blob
    body: str | None  # the name of the body's blob (notebooks, files), None for payload-only kinds
    size: int
    version_hint: str | None
    author: str | None
    target_key: str | None
    name: str | None

    @classmethod
    def _make_row(cls, row: tuple) -> Version:
        """A version from an index row (its digests back to hex, the names the blobs go by)."""
        return cls(*row[:5], _hex(row[5]), _hex(row[6]), *row[7:])

    @property
    def deleted(self) -> bool:
        return self.action == "delete"

    @property
    def blob_names(self) -> list[str]:
        return [n for n in (self.fingerprint, self.body) if n]


@dataclass(frozen=True)
class _Queued:
    """A version waiting for its batch to end: its index row and the blobs it names."""

    kind: str
    key: str
    fingerprint: str
    row: tuple[Any, ...]
    blobs: tuple[tuple[str, bytes], ...]


def versions_path(state_path: str | Path) -> Path:
    """`<state_path>.versions`: beside the store, on the same volume."""
    return Path(f"{state_path}.versions")


class Versions:
    """The version history of one store: record, look up, prune, pin. Opened on first use."""

    def __init__(self, root: Path, blobs: Blobs | None = None, unkept: Iterable[str] = ()) -> None:
        self.root = root
        # Kinds that keep no versions (secret values, init script bodies): `prune_if_due` drops any an earlier
        # dbsync kept (global init scripts' bodies, which may embed credentials, were kept in plain text).
        self.unkept = tuple(unkept)
        older = DirectoryBlobs(root / "blobs") if (root / "blobs").is_dir() else None
        self.blobs: Blobs = blobs or SQLiteBlobs(self._db, legacy=older)
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.RLock()
        self._batching = 0  # > 0 inside batch(): writes join one transaction, committed when the batch ends
        self._queued: list[_Queued] = []  # versions recorded inside batch(), kept when it ends
        self._pruned_at = 0.0

    @classmethod
    def for_state(cls, state_path: str | Path, unkept: Iterable[str] = ()) -> Versions:
        return cls(versions_path(state_path), unkept=unkept)

    # -- connection -----------------------------------------------------------------------------
    def exists(self) -> bool:
        return (self.root / "index.db").exists()

    def _db(self) -> sqlite3.Connection:
        if self._conn is not None:
            return self._conn
        try:
            self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
            new = not self.exists()
            with private_files():  # it holds notebook sources: 0600, as the store (its WAL and SHM take its mode)
                conn = sqlite3.connect(str(self.root / "index.db"), check_same_thread=False, timeout=5)
                conn.isolation_level = None
                if new:  # set before the first table (it rewrites the header when set again): prunes give pages back
                    conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
                conn.execute("PRAGMA journal_mode=WAL")
            restrict(self.root / "index.db")  # an index made by an older dbsync was 0644 (its blobs were files 0600)
            conn.execute("PRAGMA synchronous=NORMAL")  # as the store: a crash loses at most the last versions
            for statement in _SCHEMA:
                conn.execute(statement)
            _migrate(conn, new)
        except (sqlite3.DatabaseError, OSError) as err:
            raise StoreError(f"version history {self.root}: {err}; check state_path and its permissions") from None
        self._conn = conn
        return conn

    def _rows(self, sql: str, params: Iterable[Any] = ()) -> list[tuple]:
        if self._conn is None and not self.exists():
            return []  # a read never creates the history
        with self._lock:
            return self._db().execute(sql, list(params)).fetchall()

    def _write(self, statements: list[tuple[str, list[Any]]]) -> None:
        with self._writing() as db:
            for sql, params in statements:
                db.execute(sql, params)

    @contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        """The connection inside a write transaction: committed at the end, or by the batch() around it."""
        with self._lock:
            db = self._db()
            if not db.in_transaction:
                db.execute("BEGIN IMMEDIATE")
            try:
                yield db
                if self._batching == 0:
                    db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    @contextmanager
    def batch(self) -> Iterator[None]:
        """The versions recorded in the block are kept together when it ends: a handful of statements and one
        transaction for the whole window, not ~6 statements per version on the engine's thread (each of them
        gives the GIL away to the workers and waits to get it back). None recorded: nothing is opened."""
        with self._lock:
            self._batching += 1
            try:
                yield
            finally:
                self._batching -= 1
                if self._batching == 0:
                    self._keep_queued()

    def _keep_queued(self) -> None:
        queued, self._queued = self._queued, []
        try:
            self._keep(queued)
        except (StoreError, sqlite3.DatabaseError, OSError) as err:  # the replicas are written: report, go on
            log.error(
                "version history %s: %d versions not kept: %s; check its disk and permissions",
                self.root,
                len(queued),
                err,
            )
        if self._conn is not None and self._conn.in_transaction:
            self._conn.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    # -- recording ------------------------------------------------------------------------------
    def latest(self, kind: str, key: str) -> Version | None:
        rows = self._rows(
            f"SELECT {_COLUMNS} FROM versions WHERE kind = ? AND key = ? ORDER BY id DESC LIMIT 1", [kind, key]
        )
        return Version._make_row(rows[0]) if rows else None

    def record(
        self,
        kind: str,
        key: str,
        payload: dict[str, Any],
        body: bytes | None,
        *,
        action: str,
        target_key: str | None = None,
        version_hint: str | None = None,
        author: str | None = None,
        name: str | None = None,
        at: float | None = None,
        canonical: str | None = None,
    ) -> bool:
        """Keep one applied version; False (nothing written) when it is the one already kept last.

        Inside batch() the version is queued and True returned: it is kept (or found unchanged) when the batch ends.
        `canonical`: the payload's canonical JSON, when the caller has it.
        """
        text = (canonical if canonical is not None else canonical_json(payload)).encode()
        fingerprint = digest(text)
        body_name = digest(body) if body is not None else None
        size = len(body) if body is not None else len(text)
        when = at or time.time()
        row = (
            kind,
            key,
            when,
            action,
            _raw(fingerprint),
            _raw(body_name),
            size,
            version_hint,
            author,
            target_key,
            name,
        )
        blobs = ((fingerprint, text),) + (((body_name, body),) if body is not None and body_name else ())
        queued = _Queued(kind, key, fingerprint, row, blobs)
        with self._lock:
            if self._batching:
                self._queued.append(queued)
                return True
            return self._keep([queued]) == 1

    def _keep(self, queued: list[_Queued]) -> int:
        """Keep these versions in one transaction, but not one equal to its object's last: how many were kept.
        A blob is stored once (in the same transaction as the rows that name it); a known one is counted again."""
        last = self._last_fingerprints({(q.kind, q.key) for q in queued})
        kept: list[_Queued] = []
        for item in queued:
            if last.get((item.kind, item.key)) != item.fingerprint:
                kept.append(item)
                last[(item.kind, item.key)] = item.fingerprint
        if not kept:
            return 0
        refs = Counter(name for item in kept for name, _ in item.blobs)
        data = {name: body for item in kept for name, body in item.blobs}
        known = self._known_blobs(list(refs))
        with self._writing() as db:
            stored = self._put({name: body for name, body in data.items() if name not in known})
            rows = [(_raw(name), len(data[name]), stored.get(name, 0), count) for name, count in refs.items()]
            _insert_many(
                db,
                "blobs (name, raw_bytes, stored_bytes, refs)",
                rows,
                " ON CONFLICT (name) DO UPDATE SET refs = refs + excluded.refs",
            )
            _insert_many(db, f"versions ({_COLUMNS})", [(None, *item.row) for item in kept])
        return len(kept)

    def _put(self, blobs: dict[str, bytes]) -> dict[str, int]:
        if isinstance(self.blobs, SQLiteBlobs):  # rows of this database: one statement a window
            return self.blobs.put_many(blobs)
        return {name: self.blobs.put(name, body) for name, body in blobs.items()}

    def _last_fingerprints(self, keys: set[tuple[str, str]]) -> dict[tuple[str, str], str | None]:
        """The fingerprint of each object's last kept version (None: a deletion), one read per kind."""
        last: dict[tuple[str, str], str | None] = {}
        for kind in {k for k, _ in keys}:
            names = [key for k, key in keys if k == kind]
            for start in range(0, len(names), 500):
                chunk = names[start : start + 500]
                marks = ", ".join("?" * len(chunk))
                for key, fingerprint, _ in self._rows(
                    f"SELECT key, fingerprint, MAX(id) FROM versions WHERE kind = ? AND key IN ({marks}) GROUP BY key",
                    [kind, *chunk],
                ):
                    last[(kind, key)] = _hex(fingerprint)
        return last

    def _known_blobs(self, names: list[str]) -> set[str]:
        known: set[str] = set()
        for start in range(0, len(names), 500):
            chunk = [_raw(n) for n in names[start : start + 500]]
            marks = ", ".join("?" * len(chunk))
            known |= {_hex(r[0]) or "" for r in self._rows(f"SELECT name FROM blobs WHERE name IN ({marks})", chunk)}
        return known

    def record_deleted(self, kind: str, key: str, target_key: str | None, at: float | None = None) -> bool:
        """The object was deleted from the target: a tombstone, so a restore as of a later time leaves it out."""
        with self._lock:
            if self._queued and not self._batching:
                self._keep_queued()
        last = self.latest(kind, key)
        if last is None or last.deleted:
            return False
        self._write(
            [
                (
                    f"INSERT INTO versions ({_COLUMNS}) "
                    "VALUES (NULL, ?, ?, ?, 'delete', NULL, NULL, 0, NULL, NULL, ?, ?)",
                    [kind, key, at or time.time(), target_key, last.name],
                )
            ]
        )
        return True

    # -- reading --------------------------------------------------------------------------------
    def history(self, kind: str | None, key: str) -> list[Version]:
        """Every kept version of an object, oldest first: by kind and source key, or (no kind) by key or target key."""
        if kind is not None:
            sql, params = "kind = ? AND key = ?", [kind, key]
        else:
            sql, params = "key = ? OR target_key = ?", [key, key]
        rows = self._rows(f"SELECT {_COLUMNS} FROM versions WHERE {sql} ORDER BY id", params)
        return [Version._make_row(r) for r in rows]

    def get(self, version_id: int) -> Version | None:
        rows = self._rows(f"SELECT {_COLUMNS} FROM versions WHERE id = ?", [version_id])
        return Version._make_row(rows[0]) if rows else None

    def as_of(self, at: float, kinds: Iterable[str] | None = None) -> Iterator[tuple[Version | None, Version]]:
        """(the version each object had at `at` or None, its latest version) for every object ever kept.

        Two grouped reads per kind, not one per object: a restore of 100,000 objects plans in seconds. One kind at
        a time, so only one kind's versions of then are held (all kinds at once: 517 MB at 100,000 objects).
        """
        wanted = set(kinds) if kinds is not None else None
        names = [row[0] for row in self._rows("SELECT DISTINCT kind FROM versions ORDER BY kind")]
        for name in names:
            if wanted is not None and name not in wanted:
                continue
            then = {
                v.key: v
                for v in map(
                    Version._make_row,
                    self._rows(
                        f"SELECT {_COLUMNS} FROM versions WHERE id IN "
                        "(SELECT MAX(id) FROM versions WHERE kind = ? AND at <= ? GROUP BY key)",
                        [name, at],
                    ),
                )
            }
            rows = self._rows(
                f"SELECT {_COLUMNS} FROM versions WHERE id IN "
                "(SELECT MAX(id) FROM versions WHERE kind = ? GROUP BY key) ORDER BY key",
                [name],
            )
            for latest in map(Version._make_row, rows):
                yield then.get(latest.key), latest

    def content(self, version: Version) -> tuple[dict[str, Any], bytes | None]:
        """The payload and body (None for payload-only kinds) a version wrote."""
        if version.fingerprint is None:
            raise KeyError(f"{version.kind} {version.key} version {version.id} is a deletion: it has no content")
        with self._lock:
            payload = json.loads(self.blobs.get(version.fingerprint))
            return payload, (self.blobs.get(version.body) if version.body else None)

    def stored_bytes(self) -> int:
        rows = self._rows("SELECT COALESCE(SUM(stored_bytes), 0) FROM blobs")
        return int(rows[0][0]) if rows else 0

    def count(self) -> int:
        rows = self._rows("SELECT COUNT(*) FROM versions")
        return int(rows[0][0]) if rows else 0

    # -- pins (restore --pin) -------------------------------------------------------------------
    def pin(self, kind: str, key: str, fingerprint: str | None) -> None:
        """Keep the restored copy of (kind, key): the next cycles report the source's difference as pending."""
        self._write(
            [
                (
                    "INSERT OR REPLACE INTO pins (kind, key, fingerprint, at) VALUES (?, ?, ?, ?)",
                    [kind, key, fingerprint, time.time()],
                )
            ]
        )

    def unpin(self, kinds: Iterable[str] | None = None) -> int:
        """Drop the pins (of `kinds`, or all): the next cycle copies the source again. How many were dropped."""
        pinned = self.pinned_keys(kinds)
        if pinned:
            self._write([("DELETE FROM pins WHERE kind = ? AND key = ?", [k, key]) for k, key in pinned])
        return len(pinned)

    def pinned_keys(self, kinds: Iterable[str] | None = None) -> set[tuple[str, str]]:
        wanted = set(kinds) if kinds is not None else None
        return {(k, key) for k, key in self._rows("SELECT kind, key FROM pins") if wanted is None or k in wanted}

    # -- retention ------------------------------------------------------------------------------
    def prune_if_due(self, keep_days: float, max_bytes: int, now: float | None = None) -> int:
        """`prune` at most once an hour per process: versions dropped (0 when not due or nothing to drop)."""
        now = now or time.time()
        if now - self._pruned_at < PRUNE_EVERY_SECONDS or not self.exists():
            return 0
        self._pruned_at = now
        return self.prune(keep_days, max_bytes, now, self.unkept)

    def prune(self, keep_days: float, max_bytes: int, now: float | None = None, unkept: Iterable[str] = ()) -> int:
        """Drop every version of the `unkept` kinds (kept by a dbsync from before the kind declared it keeps none:
        global init scripts, whose bodies may embed credentials), versions older than `keep_days` (each object
        keeps the one it had at the cutoff), then the oldest superseded versions while the blobs exceed
        `max_bytes`; then the blobs no version names. Writes nothing when there is nothing to drop."""
        unkept = list(unkept)
        marks = ", ".join("?" * len(unkept))
        dropped = self._drop([r[0] for r in self._rows(f"SELECT id FROM versions WHERE kind IN ({marks})", unkept)])
        cutoff = (now or time.time()) - keep_days * DAY
        old = [
            r[0]
            for r in self._rows(
                "SELECT v.id FROM versions v WHERE v.at < ? AND EXISTS (SELECT 1 FROM versions w WHERE w.kind = v.kind "
                "AND w.key = v.key AND w.id > v.id AND w.at <= ?) "
                "UNION SELECT v.id FROM versions v WHERE v.action = 'delete' AND v.at < ? AND v.id = "
                "(SELECT MAX(id) FROM versions w WHERE w.kind = v.kind AND w.key = v.key)",
                [cutoff, cutoff, cutoff],
            )
        ]
        dropped += self._drop(old)
        while self.stored_bytes() > max_bytes:
            superseded = [
                r[0]
                for r in self._rows(
                    "SELECT v.id FROM versions v WHERE EXISTS (SELECT 1 FROM versions w WHERE w.kind = v.kind "
                    "AND w.key = v.key AND w.id > v.id) ORDER BY v.id LIMIT 200"
                )
            ]
            if not superseded:
                break  # only each object's latest version is left: max_bytes never drops those
            dropped += self._drop(superseded)
        if dropped:
            self._give_back_space()
        return dropped

    def _give_back_space(self) -> None:
        """Return the pages of deleted blobs to the file system (an index made before auto_vacuum reuses them)."""
        with self._lock:
            self._db().executescript("PRAGMA incremental_vacuum;")  # execute() would step it once: one page
            self._db().execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()

    def _drop(self, ids: list[int]) -> int:
        """Delete these versions, then the blobs no version names any more (their rows, then their bytes: a crash
        in between leaves bytes nothing names, never a version without its blob)."""
        if not ids:
            return 0
        marks = ", ".join("?" * len(ids))
        with self._lock:
            rows = self._rows(f"SELECT {_COLUMNS} FROM versions WHERE id IN ({marks})", ids)
            dropped = [Version._make_row(r) for r in rows]
            uncount = [
                ("UPDATE blobs SET refs = refs - 1 WHERE name = ?", [_raw(n)]) for v in dropped for n in v.blob_names
            ]
            self._write([(f"DELETE FROM versions WHERE id IN ({marks})", ids), *uncount])
            unused = [r[0] for r in self._rows("SELECT name FROM blobs WHERE refs <= 0")]
            self._write([("DELETE FROM blobs WHERE name = ?", [n]) for n in unused])
            with self._writing():
                for name in unused:
                    self.blobs.delete(_hex(name) or "")
        return len(ids)


def _migrate(conn: sqlite3.Connection, new: bool) -> None:
    """An index written by an older dbsync (hex digests) gets 32-byte digests, once, in one transaction."""
    if conn.execute("PRAGMA user_version").fetchone()[0] >= _DIGESTS_AS_BYTES:
        return
    conn.create_function("unhex_digest", 1, bytes.fromhex, deterministic=True)
    conn.execute("BEGIN IMMEDIATE")
    try:
        if not new:
            for table, column in (("versions", "fingerprint"), ("versions", "body"), ("blobs", "name")):
                conn.execute(f"UPDATE {table} SET {column} = unhex_digest({column}) WHERE typeof({column}) = 'text'")
        conn.execute(f"PRAGMA user_version = {_DIGESTS_AS_BYTES}")
        conn.execute("COMMIT")
    except sqlite3.DatabaseError:
        conn.execute("ROLLBACK")  # the older index stays as it was, readable by the dbsync that wrote it
        raise


def _insert_many(db: sqlite3.Connection, into: str, rows: list[tuple[Any, ...]], tail: str = "") -> None:
    """One multi-row INSERT per `_ROWS_PER_INSERT` rows: one statement (one step) instead of one per row."""
    for start in range(0, len(rows), _ROWS_PER_INSERT):
        chunk = rows[start : start + _ROWS_PER_INSERT]
        marks = "(" + ", ".join("?" * len(chunk[0])) + ")"
        values = ", ".join([marks] * len(chunk))
        db.execute(f"INSERT INTO {into} VALUES {values}{tail}", [v for row in chunk for v in row])
