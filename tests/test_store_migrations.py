"""A store written by an older dbsync opens and migrates: nothing it knew is lost on upgrade."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from dbsync.store import Store
from dbsync.store.schema import SCHEMA_VERSION

# The resources table exactly as schema 2 wrote it (migration 1 + the origin column of migration 2).
_SCHEMA_2 = [
    """CREATE TABLE resources (
        kind TEXT NOT NULL, source_key TEXT NOT NULL, name TEXT, version_hint TEXT, fingerprint TEXT,
        payload_json TEXT, source_meta_json TEXT, target_key TEXT, target_fingerprint TEXT,
        status TEXT NOT NULL, last_error TEXT, attempts INTEGER NOT NULL DEFAULT 0, retry_at REAL,
        first_seen_at REAL NOT NULL, last_changed_at REAL, last_synced_at REAL, origin TEXT,
        PRIMARY KEY (kind, source_key)
    )""",
    "CREATE INDEX resources_status ON resources (kind, status)",
    "CREATE INDEX resources_target_key ON resources (target_key)",
    """CREATE TABLE cycles (
        id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, started_at REAL NOT NULL, finished_at REAL,
        listed INTEGER DEFAULT 0, fetched INTEGER DEFAULT 0, created INTEGER DEFAULT 0,
        updated INTEGER DEFAULT 0, deleted INTEGER DEFAULT 0, errors INTEGER DEFAULT 0, outcome TEXT
    )""",
    """CREATE TABLE events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        ts REAL NOT NULL, kind TEXT, source_key TEXT, action TEXT, outcome TEXT, message TEXT
    )""",
    "CREATE TABLE cutover (step TEXT PRIMARY KEY, state TEXT NOT NULL, at REAL NOT NULL, detail TEXT)",
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)",
    "INSERT INTO meta VALUES ('schema_version', '2')",
    "INSERT INTO resources (kind, source_key, name, fingerprint, payload_json, target_key, target_fingerprint, "
    "status, first_seen_at, origin) VALUES ('jobs', '42', 'nightly', 'fp', '{\"name\":\"nightly\"}', '7', "
    "'1700000000', 'synced', 1.0, 'created')",
]


def _schema_2_store(path: Path) -> None:
    conn = sqlite3.connect(path)
    for statement in _SCHEMA_2:
        conn.execute(statement)
    conn.commit()
    conn.close()


def test_a_schema_2_store_upgrades_keeping_the_targets_version(tmp_path: Path) -> None:
    """The target's version observed by the drift check survives the column's rename: no false drift after upgrade."""
    path = tmp_path / "state.db"
    _schema_2_store(path)
    store = Store(path)
    try:
        assert store.get_meta("schema_version") == str(SCHEMA_VERSION) == "7"
        prior = store.prior("jobs", "42")
        assert prior is not None
        assert (prior.target_key, prior.target_version, prior.origin) == ("7", "1700000000", "created")
        store.record_target_version("jobs", "42", "1700000099")
        assert store.prior("jobs", "42").target_version == "1700000099"
    finally:
        store.close()


def test_an_upgraded_store_opens_again_without_migrating_twice(tmp_path: Path) -> None:
    """Reopening a migrated store is a no-op (a second rename would fail and refuse to start)."""
    path = tmp_path / "state.db"
    _schema_2_store(path)
    Store(path).close()
    store = Store(path)
    try:
        assert store.prior("jobs", "42").target_version == "1700000000"
    finally:
        store.close()


def test_a_new_store_has_the_current_schema(tmp_path: Path) -> None:
    """A store made from scratch runs every migration and records the target's version in `target_version`."""
    store = Store(tmp_path / "state.db")
    try:
        columns = [row[1] for row in store.db.execute("PRAGMA table_info(resources)").fetchall()]
        assert "target_version" in columns and "target_fingerprint" not in columns
    finally:
        store.close()


def test_a_kinds_cycles_older_than_a_day_are_dropped_but_its_last_success(tmp_path: Path) -> None:
    """A daemon running for months kept every cycle: 3,000,000 rows made each read of the kinds' longest recent
    cycles (after every cycle) take 2 s. A kind keeps a day of cycles, and its latest successful one however
    old: a kind failing for two days still says when it last succeeded."""
    import time

    from dbsync.store.schema import CYCLE_RETENTION_SECONDS

    store = Store(tmp_path / "state.db")
    old = time.time() - CYCLE_RETENTION_SECONDS - 3600
    with store._transaction():
        for kind, outcome, at in [
            ("jobs", "ok", old - 60),
            ("jobs", "ok", old),  # the latest success: kept
            ("jobs", "error", old + 60),
            ("clusters", "ok", old),  # another kind's: left to that kind's next cycle
        ]:
            store.db.execute(
                "INSERT INTO cycles (kind, started_at, finished_at, outcome) VALUES (?, ?, ?, ?)",
                [kind, at, at + 1, outcome],
            )
    store.finish_cycle(store.start_cycle("jobs"), {}, "error")
    rows = store.db.execute("SELECT kind, outcome, finished_at FROM cycles ORDER BY id").fetchall()
    assert [(kind, outcome) for kind, outcome, _ in rows] == [("jobs", "ok"), ("clusters", "ok"), ("jobs", "error")]
    assert store.last_success("jobs") == old + 1
    store.finish_cycle(store.start_cycle("jobs"), {}, "ok")  # a new success: the old one may go
    assert store.db.execute("SELECT COUNT(*) FROM cycles WHERE kind = 'jobs'").fetchone()[0] == 2
    store.close()
