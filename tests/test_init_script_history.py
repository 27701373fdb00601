"""A global init script's body never reaches the store or the version history: it may embed credentials.

The store keeps its sha256 only; `dbsync history` and `restore` say the kind keeps no versions instead of finding
none; a history an older dbsync wrote (bodies in plain text, zlib-compressed) loses them at the next sync.
"""

from __future__ import annotations

import base64

import pytest
from conftest import Pair, run_cli

from dbsync.store.versions import Versions, versions_path

CREDENTIAL = b"AKIAINITSCRIPTSECRET0123456789"
SCRIPT = b"#!/bin/bash\nexport AWS_SECRET_ACCESS_KEY=" + CREDENTIAL + b"\n"
KINDS = ["global_init_scripts"]


def _create_script(pair: Pair) -> str:
    created = pair.src.global_init_scripts.create("creds", base64.b64encode(SCRIPT).decode(), enabled=True)
    return created.script_id or ""


def _credential_anywhere(pair: Pair) -> list[str]:
    """Where the credential is on disk: the store's and the history's files, and every (decompressed) blob."""
    found = [p.name for p in pair.state_path.parent.rglob("*") if p.is_file() and CREDENTIAL in p.read_bytes()]
    versions = Versions(versions_path(pair.state_path))
    try:
        found += [f"blob {name}" for name in versions.blobs.names() if CREDENTIAL in (versions.blobs.get(name) or b"")]
    finally:
        versions.close()
    return found


def test_the_body_is_copied_but_kept_nowhere(pair: Pair) -> None:
    script_id = _create_script(pair)
    pair.src.workspace.mkdirs("/Shared/app")  # a kind that keeps versions: the history exists

    reports = pair.sync(only=[*KINDS, "directories"])

    assert reports["global_init_scripts"].created == 1
    [copy] = pair.dst.global_init_scripts.list()
    assert base64.b64decode(pair.dst.global_init_scripts.get(copy.script_id or "").script or "").startswith(SCRIPT)
    assert _credential_anywhere(pair) == []
    versions = Versions(versions_path(pair.state_path))
    try:
        assert versions.exists() and versions.history("global_init_scripts", script_id) == []
    finally:
        versions.close()


def test_history_and_restore_say_the_kind_keeps_no_versions(
    pair: Pair, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    script_id = _create_script(pair)
    pair.src.workspace.mkdirs("/Shared/app")
    pair.sync(only=[*KINDS, "directories"])

    code, _, err = run_cli(pair, monkeypatch, capsys, "history", f"global_init_scripts:{script_id}")
    assert code == 1
    assert "global_init_scripts keep no versions (their contents may hold credentials)" in err

    code, out, err = run_cli(
        pair, monkeypatch, capsys, "restore", "--at", "2099-01-01", "--kinds", "global_init_scripts"
    )
    assert "global_init_scripts keep no versions" in err
    assert "0 change(s) planned" in out


def test_bodies_an_older_history_kept_are_dropped_at_the_next_sync(pair: Pair) -> None:
    script_id = _create_script(pair)
    pair.src.workspace.mkdirs("/Shared/app")
    pair.sync(only=[*KINDS, "directories"])
    older = Versions(versions_path(pair.state_path))  # what an older dbsync wrote for the script
    try:
        older.record("global_init_scripts", script_id, {"name": "creds"}, SCRIPT, action="create")
    finally:
        older.close()
    assert _credential_anywhere(pair), "the older history holds the body"

    pair.sync(only=KINDS)

    assert _credential_anywhere(pair) == []
