"""The store's schema: the migrations that build it, step by step, and the SQLite plumbing under it."""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from pathlib import Path
from typing import Any

from dbsync.errors import StoreError

SCHEMA_VERSION = 7
EVENT_RETENTION = 20_000  # events kept; older ones are pruned
CYCLE_RETENTION_SECONDS = 86_400.0  # each kind's cycles kept (and its latest successful one, however old)

_MIGRATIONS: dict[int, list[str]] = {
    1: [
        """CREATE TABLE IF NOT EXISTS resources (
            kind TEXT NOT NULL,
            source_key TEXT NOT NULL,
            name TEXT,
            version_hint TEXT,
            fingerprint TEXT,
            payload_json TEXT,
            source_meta_json TEXT,
            target_key TEXT,
            target_fingerprint TEXT,
            status TEXT NOT NULL,
            last_error TEXT,
            attempts INTEGER NOT NULL DEFAULT 0,
            retry_at REAL,
            first_seen_at REAL NOT NULL,
            last_changed_at REAL,
            last_synced_at REAL,
            PRIMARY KEY (kind, source_key)
        )""",
        "CREATE INDEX IF NOT EXISTS resources_status ON resources (kind, status)",
        """CREATE TABLE IF NOT EXISTS cycles (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            kind TEXT NOT NULL,
            started_at REAL NOT NULL,
            finished_at REAL,
            listed INTEGER DEFAULT 0, fetched INTEGER DEFAULT 0, created INTEGER DEFAULT 0,
            updated INTEGER DEFAULT 0, deleted INTEGER DEFAULT 0, errors INTEGER DEFAULT 0,
            outcome TEXT
        )""",
        "CREATE INDEX IF NOT EXISTS cycles_kind ON cycles (kind, id)",
        """CREATE TABLE IF NOT EXISTS events (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            ts REAL NOT NULL, kind TEXT, source_key TEXT, action TEXT, outcome TEXT, message TEXT
        )""",
        """CREATE TABLE IF NOT EXISTS cutover (
            step TEXT PRIMARY KEY, state TEXT NOT NULL, at REAL NOT NULL, detail TEXT
        )""",
        "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)",
    ],
    # Who made each target object: 'created' (dbsync may delete it) or 'adopted' (never deleted by dbsync).
    # Rows written before this migration did not record it: only the identities' created_by_dbsync flag
    # proves a creation; every other row stays NULL and each replicator's `unrecorded_origin` decides.
    2: [
        "ALTER TABLE resources ADD COLUMN origin TEXT",
        "UPDATE resources SET origin = 'created' WHERE json_extract(source_meta_json, '$.created_by_dbsync') = 1",
        "CREATE INDEX IF NOT EXISTS resources_target_key ON resources (target_key)",
    ],
    # The column holds the target's own version of the object (its version hint, observed by the drift
    # check), not a fingerprint of a payload: name it for what it holds.
    3: ["ALTER TABLE resources RENAME COLUMN target_fingerprint TO target_version"],
    # The revisit schedule of the kinds read by need (object ACLs): when each object was last read and when it
    # is due again, so a restart resumes the sweep instead of reading everything at once.
    4: [
        """CREATE TABLE IF NOT EXISTS visits (
            kind TEXT NOT NULL,
            source_key TEXT NOT NULL,
            verified_at REAL NOT NULL,
            next_visit REAL NOT NULL,
            revisit_interval REAL NOT NULL,
            PRIMARY KEY (kind, source_key)
        )""",
        "CREATE INDEX IF NOT EXISTS visits_due ON visits (kind, next_visit)",
    ],
    # Each object's change rate (dbsync/freshness.py): when it last changed and the mean gap between its changes.
    # Rows of schema 4 start with neither: their objects double their interval until two changes are seen.
    5: [
        "ALTER TABLE visits ADD COLUMN changed_at REAL",
        "ALTER TABLE visits ADD COLUMN change_gap REAL",
    ],
    # Who changed what on the source, from the audit log (store/actors.py), for `dbsync history`. Stores that
    # made it on the first audit row kept (before this migration) already have it.
    6: [
        "CREATE TABLE IF NOT EXISTS actors (object TEXT NOT NULL, acl INTEGER NOT NULL, at REAL NOT NULL, "
        "email TEXT NOT NULL, PRIMARY KEY (object, acl, at, email))",
    ],
    # The keys of the source objects a listing (`validate`, /report) counted without a row, each kind's replaced
    # whole by its next such listing (store/counts.py). Schema 6 kept only their number, less every row of the kind
    # recorded since: five new objects a partial cycle recorded hid five counted ones it never reached. That count
    # stays in meta, read the old way, until the kind's next listing or complete cycle replaces it.
    7: [
        "CREATE TABLE IF NOT EXISTS pending_new (kind TEXT NOT NULL, source_key TEXT NOT NULL, "
        "listed_at REAL NOT NULL, PRIMARY KEY (kind, source_key)) WITHOUT ROWID",
    ],
}


class _Transaction:
    """BEGIN IMMEDIATE … COMMIT under the store lock; ROLLBACK on error; re-entrant."""

    def __init__(self, conn: sqlite3.Connection, lock: threading.RLock, path: Path) -> None:
        self.conn = conn
        self.lock = lock
        self.path = path
        self.outer = False

    def __enter__(self) -> None:
        self.lock.acquire()
        self.outer = not self.conn.in_transaction
        if self.outer:
            try:
                self.conn.execute("BEGIN IMMEDIATE")
            except sqlite3.DatabaseError as err:
                self.lock.release()
                raise StoreError(_explain(self.path, err)) from None

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        try:
            if self.outer:
                self.conn.execute("ROLLBACK" if exc_type else "COMMIT")
        except sqlite3.DatabaseError as err:
            raise StoreError(_explain(self.path, err)) from None
        finally:
            self.lock.release()
        if isinstance(exc, sqlite3.DatabaseError):
            raise StoreError(_explain(self.path, exc)) from None


class private_files:
    """umask 077 while the store (and its WAL and SHM, which SQLite creates with the store's mode) is made."""

    def __enter__(self) -> None:
        self.previous = os.umask(0o077)

    def __exit__(self, *exc: object) -> None:
        os.umask(self.previous)


def restrict(path: Path) -> None:
    """chmod 0600 the store, its WAL and SHM (a store made by an older dbsync was 0644)."""
    for suffix in ("", "-wal", "-shm"):
        file = Path(f"{path}{suffix}")
        try:
            if file.exists() and file.stat().st_mode & 0o077:
                file.chmod(0o600)
        except OSError:
            pass  # not ours to change (a read-only volume): SQLite reports what matters


def _json(value: Any) -> str | None:
    if value is None or value == {}:
        return None
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _explain(path: Path, err: sqlite3.DatabaseError) -> str:
    text = str(err)
    if "locked" in text:
        return f"state store {path} is locked by another process: run one dbsync per store (is `dbsync serve` running?)"
    if "readonly" in text or "read-only" in text:
        return f"state store {path} is read-only: make the file and its directory writable by this user"
    if "not a database" in text or "malformed" in text:
        return (
            f"state store {path} is corrupt ({text}): move it aside; the next sync adopts what exists on "
            "the target instead of duplicating it"
        )
    if "disk" in text and "full" in text:
        return f"state store {path}: the disk is full; free space and run again"
    if "disk I/O error" in text:
        # EFBIG (a file size limit) and EIO come back as an I/O error, not as SQLITE_FULL.
        code = getattr(err, "sqlite_errorname", "SQLITE_IOERR")
        return (
            f"state store {path}: disk I/O error ({code}): the disk may be full, a file size limit reached or "
            "the volume failing; free space or check the volume and run again"
        )
    return f"state store {path}: {text}"
