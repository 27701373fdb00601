"""Secret values between two emulated workspaces as a real source allows: read on a source cluster, never leaked.

A real workspace refuses `secrets/get` outside a notebook or job (databricks-sdk-py `SecretsAPI.get_secret`:
"Throws BAD_REQUEST if normal user calls get secret outside of a notebook"), and the emulator refuses it the
same way. `secrets.values_from: cluster` reads each value with `dbutils.secrets.getBytes` through Command
Execution 1.2 on a source cluster, as databrickslabs/migrate does (dbclient/SecretsClient.py), past the
cluster's `[REDACTED]` output redaction.
"""

from __future__ import annotations

import base64
import logging
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import Pair, endpoint_count
from databricks.sdk.service.workspace import AclPermission
from freezegun import freeze_time

from dbsync.config import load_settings
from dbsync.errors import ConfigError
from dbsync.store import Store
from dbsync.store.versions import Versions, versions_path
from dbsync_emulator.apis import clusters

EXECUTE = "POST /api/1.2/commands/execute"
GET_VALUE = "GET /api/2.0/secrets/get"
VALUE = "s3cr3t-Value-9d27c1"
NEW_VALUE = "r0tated-Value-3a8f50"
BINARY = b"\xff\x00\xfe-binary-secret-7c3e"
# One character of each encoding dbsync prints, and a value whose both encodings hold them: the cluster
# redacts every value the context read, so this one can only be read in a context of its own.
SHORT_HEX, SHORT_LETTER, BOTH = "a", "h", b"\x1a\x1a-both-encodings"


def _cluster(pair: Pair, state: str = "RUNNING") -> str:
    ws = pair.source.workspace
    with ws.lock:
        spec = {"cluster_name": "secrets-reader", "spark_version": "15.4.x-scala2.12", "node_type_id": "i3.xlarge"}
        return clusters.create_cluster(ws, {**spec, "num_workers": 1}, state=state)


def _cluster_settings(cluster_id: str) -> dict:
    return {"secrets": {"values_from": "cluster", "cluster_id": cluster_id}}


def _seed(pair: Pair) -> None:
    src = pair.src
    src.secrets.create_scope("app")
    src.secrets.put_secret("app", "db-password", string_value=VALUE)
    src.secrets.put_secret("app", "blob", bytes_value=base64.b64encode(BINARY).decode())
    src.secrets.put_secret("app", "unicode", string_value="pässwörd-✓")
    src.secrets.put_secret("app", "empty", string_value="")
    src.secrets.put_acl("app", "users", AclPermission.READ)


def _value(pair: Pair, scope: str, key: str) -> bytes:
    """What the target holds: read back by the test (dbsync never reads values from the target)."""
    pair.target.workspace.table("settings")["secrets_get_allowed"] = True
    return base64.b64decode(pair.dst.secrets.get_secret(scope, key).value or "")


def _store_bytes(pair: Pair) -> bytes:
    """The store file with its WAL and shared-memory files, and the version history (its index and every blob
    decompressed): every byte dbsync ever wrote beside the store."""
    files = [p for p in pair.state_path.parent.glob(pair.state_path.name + "*") if p.is_file()]
    history = Versions(versions_path(pair.state_path))
    files += [p for p in history.root.glob("index.db*")]
    return b"".join(p.read_bytes() for p in files) + b"".join(history.blobs.get(n) for n in history.blobs.names())


def _events(pair: Pair) -> str:
    store = Store(pair.state_path)
    try:
        return " ".join(e["message"] for e in store.events(limit=1000))
    finally:
        store.close()


def _problem(pair: Pair, kind: str, key: str) -> dict:
    store = Store(pair.state_path)
    try:
        return next(p for p in store.problems(kind) if p["source_key"] == key)
    finally:
        store.close()


def _leaks(pair: Pair, text: str) -> list[bytes]:
    secrets = (VALUE.encode(), NEW_VALUE.encode(), BINARY, "pässwörd-✓".encode(), BOTH)
    stored = _store_bytes(pair)
    return [
        v
        for v in secrets
        for form in (v, base64.b64encode(v), v.hex().encode())
        if form in stored or form.decode("latin-1") in text
    ]


def test_values_read_on_a_source_cluster_arrive_and_never_leak(pair: Pair, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    _seed(pair)
    cluster_id = _cluster(pair)

    reports = pair.sync(only=["secret_scopes", "secrets"], **_cluster_settings(cluster_id))

    assert reports["secrets"].errors == 0 and reports["secrets"].created == 4
    assert _value(pair, "app", "db-password") == VALUE.encode()
    assert _value(pair, "app", "blob") == BINARY
    assert _value(pair, "app", "unicode") == "pässwörd-✓".encode()
    assert _value(pair, "app", "empty") == b""
    assert endpoint_count(pair.source, GET_VALUE) == 0, "a real source refuses secrets/get: never asked"

    # A rotated value is read and put again; an unchanged one runs no command at all.
    pair.src.secrets.put_secret("app", "db-password", string_value=NEW_VALUE)
    pair.reset_stats()
    assert pair.sync(only=["secrets"], **_cluster_settings(cluster_id))["secrets"].updated == 1
    assert _value(pair, "app", "db-password") == NEW_VALUE.encode()
    assert endpoint_count(pair.source, EXECUTE) == 1
    pair.reset_stats()
    pair.sync(only=["secret_scopes", "secrets"], **_cluster_settings(cluster_id))
    assert endpoint_count(pair.source, EXECUTE) == 0 and pair.target_writes() == 0

    # The SDK's own DEBUG lines hold response bodies; dbsync keeps that logger at WARNING (dbsync/logs.py), and
    # the subprocess test below runs the real CLI at DEBUG. Every other log line is checked here.
    ours = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith("databricks"))
    assert _leaks(pair, ours + _events(pair)) == []


def test_a_value_redacted_in_every_encoding_is_read_in_a_context_of_its_own(pair: Pair) -> None:
    pair.src.secrets.create_scope("app")
    for key, value in (("1-short-hex", SHORT_HEX), ("2-short-letter", SHORT_LETTER)):
        pair.src.secrets.put_secret("app", key, string_value=value)
    pair.src.secrets.put_secret("app", "3-both", bytes_value=base64.b64encode(BOTH).decode())
    cluster_id = _cluster(pair)

    reports = pair.sync(only=["secret_scopes", "secrets"], concurrency=1, **_cluster_settings(cluster_id))

    assert reports["secrets"].errors == 0
    assert [_value(pair, "app", k) for k in ("1-short-hex", "2-short-letter", "3-both")] == [b"a", b"h", BOTH]
    assert endpoint_count(pair.source, "POST /api/1.2/contexts/create") == 2, "the shared one and one of its own"
    assert endpoint_count(pair.source, "POST /api/1.2/contexts/destroy") == 1


def test_a_terminated_cluster_is_started_and_the_values_follow_once_it_runs(pair: Pair) -> None:
    _seed(pair)
    with freeze_time("2026-01-05 10:00:00") as clock:
        cluster_id = _cluster(pair, state="TERMINATED")
        first = pair.sync(only=["secret_scopes", "secrets"], **_cluster_settings(cluster_id))
        assert first["secret_scopes"].errors == 0
        assert first["secrets"].created == 0 and first["secrets"].errors == 4
        assert "started it" in _problem(pair, "secrets", "app/db-password")["last_error"]
        assert pair.src.clusters.get(cluster_id).state.value == "PENDING"
        assert endpoint_count(pair.source, "POST /api/2.1/clusters/start") == 1, "started once, not once per secret"

        clock.tick(600)
        second = pair.sync(only=["secret_scopes", "secrets"], **_cluster_settings(cluster_id))
    assert second["secrets"].errors == 0 and second["secrets"].created == 4
    assert _value(pair, "app", "db-password") == VALUE.encode()


def test_by_default_scopes_replicate_and_values_are_blocked_with_the_setting_to_make(pair: Pair) -> None:
    _seed(pair)

    reports = pair.sync(only=["secret_scopes", "secrets"])

    assert reports["secret_scopes"].created == 1 and reports["secret_scopes"].errors == 0
    assert pair.dst.secrets.list_acls("app")
    assert reports["secrets"].blocked == 4 and reports["secrets"].errors == 0
    problem = _problem(pair, "secrets", "app/db-password")
    assert problem["status"] == "blocked" and "secrets.values_from" in problem["last_error"]
    assert endpoint_count(pair.source, GET_VALUE) == 0 and endpoint_count(pair.source, EXECUTE) == 0


def test_values_from_cluster_without_a_cluster_is_a_one_line_config_error() -> None:
    with pytest.raises(ConfigError) as missing:
        load_settings(overrides={"secrets": {"values_from": "cluster"}}, require_workspaces=False)

    message = str(missing.value)
    assert "secrets.cluster_id" in message and "DBSYNC_SECRETS__CLUSTER_ID" in message and "\n" not in message


def test_sync_once_subprocess_never_prints_a_value(pair: Pair, tmp_path: Path) -> None:
    _seed(pair)
    cluster_id = _cluster(pair)
    env = pair.env() | {"DBSYNC_SECRETS__VALUES_FROM": "cluster", "DBSYNC_SECRETS__CLUSTER_ID": cluster_id}

    result = subprocess.run(
        [sys.executable, "-m", "dbsync.cli", "sync", "--once", "--log-level", "DEBUG"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )

    assert result.returncode == 0, result.stderr
    assert _value(pair, "app", "db-password") == VALUE.encode()
    assert _leaks(pair, result.stdout + result.stderr) == []
