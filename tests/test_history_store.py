"""The version history (issue 18, item 1): every replicated version kept, content-addressed, pruned, secret-free.

`<state_path>.versions/` holds an SQLite index and zlib blobs named by the sha256 of their content, so a body
that lands on many paths, or comes back after an edit is undone, is stored once. A no-change cycle writes
nothing there; secret values never enter it (the secrets kind declares `versions=False`).
"""

from __future__ import annotations

import base64
import sqlite3
import zlib
from pathlib import Path

from conftest import Pair
from databricks.sdk.service.workspace import ImportFormat, Language
from test_sync_secret_values import BINARY, VALUE, _cluster, _cluster_settings, _seed

from dbsync.store.blobs import digest
from dbsync.store.versions import DAY, Versions, versions_path

KINDS = ("cluster_policies", "instance_pools", "clusters", "notebooks", "files", "jobs", "sql_queries", "dashboards")


def _write_notebook(pair: Pair, path: str, text: str) -> None:
    pair.src.workspace.import_(
        path,
        content=base64.b64encode(text.encode()).decode(),
        format=ImportFormat.SOURCE,
        language=Language.PYTHON,
        overwrite=True,
    )


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every file of the history with its size and modification time (a write changes one of them)."""
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()}


def test_identical_bodies_are_stored_once_and_an_unchanged_version_is_not_kept_again(tmp_path: Path) -> None:
    versions = Versions(tmp_path / "h.versions")
    body = b"print('same everywhere')\n" * 50
    for path in ("/a", "/b", "/c"):
        assert versions.record("notebooks", path, {"path": path, "sha256": digest(body)}, body, action="create")
    assert not versions.record("notebooks", "/a", {"path": "/a", "sha256": digest(body)}, body, action="update")
    bodies = [n for n in versions.blobs.names() if n == digest(body)]
    assert bodies == [digest(body)], "one blob for three paths"
    assert versions.count() == 3
    index = sqlite3.connect(tmp_path / "h.versions" / "index.db")
    (stored,) = index.execute("SELECT data FROM blob_data WHERE name = ?", [bytes.fromhex(digest(body))]).fetchone()
    assert zlib.decompress(stored) == body and len(stored) < len(body) / 5, "compressed"
    payload, got = versions.content(versions.history("notebooks", "/b")[0])
    assert got == body and payload["path"] == "/b"


def test_retention_drops_old_versions_but_keeps_what_each_object_had_at_the_cutoff(tmp_path: Path) -> None:
    versions = Versions(tmp_path / "h.versions")
    now = 1_000 * DAY
    for age_days, text in ((40, "v1"), (35, "v2"), (5, "v3")):
        versions.record("jobs", "7", {"name": text}, None, action="update", at=now - age_days * DAY)
    versions.record("jobs", "8", {"name": "gone"}, None, action="create", at=now - 50 * DAY)
    versions.record_deleted("jobs", "8", "18", at=now - 45 * DAY)
    assert versions.prune(keep_days=30, max_bytes=10**9, now=now) == 3  # v1, and job 8's version and tombstone
    assert [versions.content(v)[0]["name"] for v in versions.history("jobs", "7")] == ["v2", "v3"]
    assert versions.history("jobs", "8") == []
    # max_bytes drops superseded versions, oldest first, never an object's latest.
    assert versions.prune(keep_days=30, max_bytes=0, now=now) == 1
    assert [versions.content(v)[0]["name"] for v in versions.history("jobs", "7")] == ["v3"]
    assert len(versions.blobs.names()) == 1, "the blobs no version names are deleted"


def test_a_blob_shared_by_versions_stays_while_one_of_them_names_it(tmp_path: Path) -> None:
    versions = Versions(tmp_path / "h.versions")
    now = 1_000 * DAY
    body = b"shared body\n" * 100
    for key, age in (("/old", 60), ("/new", 1)):
        versions.record("files", key, {"path": "/same"}, body, action="create", at=now - age * DAY)
    versions.record("files", "/old", {"path": "/same", "v": 2}, b"other", action="update", at=now - 50 * DAY)
    assert versions.prune(keep_days=30, max_bytes=10**9, now=now) == 1
    assert versions.content(versions.history("files", "/new")[0])[1] == body, "still named by /new"
    assert digest(body) in versions.blobs.names()


def test_every_replicated_version_is_kept_and_a_no_change_cycle_writes_nothing(seeded_pair: Pair) -> None:
    pair = seeded_pair
    pair.sync()
    root = versions_path(pair.state_path)
    versions = Versions(root)
    kept = {kind for kind in KINDS if any(True for _ in versions.as_of(2e9, [kind]))}
    assert kept == set(KINDS)
    assert any(True for _ in versions.as_of(2e9, ["permissions"])), "ACLs are kept too"

    notebook = next(latest for _, latest in versions.as_of(2e9, ["notebooks"]))
    before = pair.src.workspace.download(notebook.key).read()
    _write_notebook(pair, notebook.key, "print('edited')\n")
    assert pair.sync(only=["directories", "notebooks", "files"])["notebooks"].updated == 1
    first, second = versions.history("notebooks", notebook.key)
    after = pair.src.workspace.download(notebook.key).read()
    assert versions.content(first)[1] == before and versions.content(second)[1] == after != before
    assert (first.action, second.action) == ("create", "update") and second.at >= first.at
    assert versions.history(None, notebook.target_key or "") == [first, second], "found by its path"

    snapshot = _snapshot(root)
    count = versions.count()
    versions.close()
    pair.reset_stats()
    pair.sync()
    assert pair.target_writes() == 0
    assert _snapshot(root) == snapshot, "a no-change cycle writes nothing to the history"
    assert Versions(root).count() == count


def test_a_secret_value_never_enters_the_history(pair: Pair) -> None:
    _seed(pair)
    reports = pair.sync(only=["secret_scopes", "secrets"], **_cluster_settings(_cluster(pair)))
    assert reports["secrets"].created == 4
    versions = Versions(versions_path(pair.state_path))
    assert versions.history("secret_scopes", "app"), "the scope (its ACLs) is kept"
    assert versions.history("secrets", "app/db-password") == []
    contents = [versions.blobs.get(n) for n in versions.blobs.names()]
    assert contents
    for secret in (VALUE.encode(), BINARY):
        for form in (secret, base64.b64encode(secret), secret.hex().encode()):
            assert not any(form in blob for blob in contents), form
