"""The version history's blobs are packed (issue 16 item 6, issue 18 item 4): not one file per version.

An initial sync keeps ~19,000 versions at 10,000 objects; one compressed file each (written to a temporary
name and renamed) was most of the CPU the history added. The blobs now live as rows of the history's index
database, written in the index's own transaction. A `.versions/` directory written by an older dbsync (a
`blobs/` directory of one file per blob) must keep working: read, restored from, pruned.
"""

from __future__ import annotations

import os
import sqlite3
import zlib
from pathlib import Path

from dbsync.model import canonical_json
from dbsync.store.blobs import digest
from dbsync.store.versions import DAY, Versions

# The index of a `.versions/` directory as dbsync wrote it before blobs were packed (hex digests, no blob table).
_OLD_SCHEMA = (
    "CREATE TABLE versions (id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, key TEXT NOT NULL, "
    "at REAL NOT NULL, action TEXT NOT NULL, fingerprint TEXT, body TEXT, size INTEGER NOT NULL DEFAULT 0, "
    "version_hint TEXT, author TEXT, target_key TEXT, name TEXT)",
    "CREATE INDEX versions_by_key ON versions (kind, key, id)",
    "CREATE INDEX versions_by_target ON versions (target_key)",
    "CREATE TABLE blobs (name TEXT PRIMARY KEY, raw_bytes INTEGER NOT NULL, stored_bytes INTEGER NOT NULL, "
    "refs INTEGER NOT NULL DEFAULT 0)",
    "CREATE TABLE pins (kind TEXT NOT NULL, key TEXT NOT NULL, fingerprint TEXT, at REAL NOT NULL, "
    "PRIMARY KEY (kind, key))",
)


def _files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def _disk_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in _files(root))


def _old_history(root: Path, at: float) -> tuple[bytes, dict]:
    """A `.versions/` directory in the old layout: one notebook version, its payload and body one file each."""
    body = b"print('written by an older dbsync')\n" * 20
    payload = {"path": "/Shared/old", "sha256": digest(body)}
    text = canonical_json(payload).encode()
    (root / "blobs").mkdir(parents=True)
    db = sqlite3.connect(root / "index.db")
    for statement in _OLD_SCHEMA:
        db.execute(statement)
    for data in (text, body):
        name = digest(data)
        (root / "blobs" / name[:2]).mkdir(exist_ok=True)
        (root / "blobs" / name[:2] / f"{name}.z").write_bytes(zlib.compress(data))
        db.execute("INSERT INTO blobs VALUES (?, ?, ?, 1)", [name, len(data), len(zlib.compress(data))])
    db.execute(
        "INSERT INTO versions VALUES (NULL, 'notebooks', '/Shared/old', ?, 'create', ?, ?, ?, NULL, NULL, "
        "'/Shared/old', 'old')",
        [at, digest(text), digest(body), len(body)],
    )
    db.commit()
    db.close()
    return body, payload


def test_an_initial_sync_worth_of_versions_writes_a_bounded_number_of_files(tmp_path: Path) -> None:
    root = tmp_path / "h.versions"
    versions = Versions(root)
    for window in range(10):
        with versions.batch():
            for i in range(50):
                n = window * 50 + i
                body = f"print({n})\n".encode() * 20
                payload = {"path": f"/n/{n}", "sha256": digest(body)}
                versions.record("notebooks", f"/n/{n}", payload, body, action="create")
    versions.close()
    assert Versions(root).count() == 500
    # Was 1,000 blob files (a payload and a body per version), each a temporary file renamed: the CPU of the history.
    assert len(_files(root)) <= 4, f"one file per blob is back: {len(_files(root))} files for 500 versions"
    assert not (root / "blobs").exists()
    index = sqlite3.connect(root / "index.db")
    kinds = index.execute("SELECT DISTINCT typeof(fingerprint), length(fingerprint), typeof(body) FROM versions")
    assert kinds.fetchall() == [("blob", 32, "blob")], "digests are kept as 32 bytes, not 64 hex characters"


def test_packed_blobs_are_compressed_and_stored_once(tmp_path: Path) -> None:
    versions = Versions(tmp_path / "h.versions")
    body = b"print('the same body on many paths')\n" * 200
    for path in ("/a", "/b", "/c"):
        versions.record("notebooks", path, {"path": path}, body, action="create")
    assert versions.blobs.names().count(digest(body)) == 1
    assert versions.stored_bytes() < len(body), "compressed, and counted once"
    assert versions.content(versions.history("notebooks", "/c")[0])[1] == body


def test_a_history_written_by_an_older_dbsync_is_read_restored_and_pruned(tmp_path: Path) -> None:
    root = tmp_path / "h.versions"
    now = 1_000 * DAY
    body, payload = _old_history(root, at=now - 60 * DAY)
    versions = Versions(root)
    (old,) = versions.history("notebooks", "/Shared/old")
    assert versions.content(old) == (payload, body), "an old blob file is still read"
    assert [v.id for _, v in versions.as_of(now)] == [old.id]
    index = sqlite3.connect(root / "index.db")
    migrated = index.execute(
        "SELECT typeof(fingerprint), typeof(body) FROM versions UNION SELECT typeof(name), 0 FROM blobs"
    )
    assert set(migrated.fetchall()) == {("blob", "blob"), ("blob", 0)}, "the old index's hex digests are migrated"

    new_body = b"print('written after the upgrade')\n" * 20
    versions.record("notebooks", "/Shared/old", {"path": "/Shared/old", "v": 2}, new_body, action="update", at=now)
    copy = {**payload, "path": "/Shared/copy"}
    versions.record("notebooks", "/Shared/copy", copy, body, action="create", at=now)  # same body: not stored again
    assert len(_files(root / "blobs")) == 2, "nothing new is written in the old layout"
    assert versions.content(versions.history("notebooks", "/Shared/copy")[0]) == (copy, body)

    assert versions.prune(keep_days=30, max_bytes=0, now=now) == 1  # the old version, superseded
    assert versions.content(versions.history("notebooks", "/Shared/copy")[0])[1] == body, "still named by /copy"
    assert len(_files(root / "blobs")) == 1, "the old payload file no version names is deleted"
    assert versions.content(versions.history("notebooks", "/Shared/old")[0])[1] == new_body


def test_retention_gives_the_space_of_dropped_blobs_back(tmp_path: Path) -> None:
    root = tmp_path / "h.versions"
    versions = Versions(root)
    now = 1_000 * DAY
    for n in range(40):  # 40 versions of one file, 16 KB of incompressible bytes each
        versions.record("files", "/big", {"v": n}, os.urandom(16_000), action="update", at=now - (40 - n) * DAY)
    versions.close()
    full = _disk_bytes(root)
    assert full > 600_000
    versions = Versions(root)
    assert versions.prune(keep_days=5, max_bytes=10**9, now=now) == 35
    assert versions.stored_bytes() < 100_000
    versions.close()
    assert _disk_bytes(root) < full / 3, f"pruned blobs still take their space: {_disk_bytes(root)} of {full} bytes"


def test_a_window_of_versions_is_kept_in_a_handful_of_statements(tmp_path: Path) -> None:
    versions = Versions(tmp_path / "h.versions")
    shared = b"print('one body on two paths')\n" * 30
    versions.record("notebooks", "/kept", {"path": "/kept"}, shared, action="create")
    statements: list[str] = []
    versions._db().set_trace_callback(statements.append)
    with versions.batch():  # what the engine's thread does for one window of outcomes
        for n in range(30):
            body = f"print({n})\n".encode() * 20
            assert versions.record("notebooks", f"/n/{n}", {"path": f"/n/{n}"}, body, action="create")
        versions.record("notebooks", "/kept", {"path": "/kept"}, shared, action="update")  # unchanged: not again
        versions.record("notebooks", "/copy", {"path": "/copy"}, shared, action="create")
    versions._db().set_trace_callback(None)
    # Was ~6 statements a version (each gives the GIL away on the engine's thread): 180+ for this window.
    assert len(statements) <= 10, f"{len(statements)} statements for one window: {statements[:12]}"
    assert versions.count() == 32 and len(versions.history("notebooks", "/kept")) == 1
    assert versions.content(versions.history("notebooks", "/copy")[0])[1] == shared
    (refs,) = sqlite3.connect(tmp_path / "h.versions" / "index.db").execute(
        "SELECT refs FROM blobs WHERE name = ?", [bytes.fromhex(digest(shared))]
    )
    assert refs == (2,), "the shared body is named by two versions"


def test_the_index_that_now_holds_the_bodies_is_private(tmp_path: Path) -> None:
    root = tmp_path / "h.versions"
    _old_history(root, at=0.0)
    (root / "index.db").chmod(0o644)  # an older dbsync made its index 0644: the bodies were separate 0600 files
    versions = Versions(root)
    versions.record("notebooks", "/secret-sauce", {"path": "/secret-sauce"}, b"print('proprietary')\n", action="create")
    assert (root / "index.db").stat().st_mode & 0o777 == 0o600
    fresh = Versions(tmp_path / "new.versions")
    fresh.record("notebooks", "/n", {"path": "/n"}, b"print(1)\n", action="create")
    modes = {p.name: p.stat().st_mode & 0o777 for p in _files(tmp_path / "new.versions")}
    assert set(modes.values()) == {0o600}, modes
