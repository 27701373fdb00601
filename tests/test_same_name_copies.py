"""Source objects that share a name the service lets them share: IP access lists with one label, global init
scripts with one name. Each gets its own copy on the target, never one copy for two, and a restart after a
kill -9 between the creates and their record finds those copies again instead of making them twice.
"""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from conftest import Pair, endpoint_count, killed_before_the_record
from databricks.sdk import WorkspaceClient
from databricks.sdk.service import settings

from dbsync.config import reversed_settings
from dbsync.context import open_context
from dbsync.cutover import Runbook, open_cutover_context
from dbsync.engine import Engine
from dbsync.report import validate
from dbsync.reverse import seed_reverse_store
from dbsync.store import Store

SETUP = b"#!/bin/bash\necho setup\n"
MARKER = b"# dbsync_source_id="


def _lists(w: WorkspaceClient) -> list[tuple[str, list[str]]]:
    return sorted((x.label or "", sorted(x.ip_addresses or [])) for x in w.ip_access_lists.list())


def _bodies(w: WorkspaceClient) -> list[bytes]:
    """Every global init script's body, in run order."""
    api = w.global_init_scripts
    return [base64.b64decode(api.get(s.script_id or "").script or "") for s in api.list()]


def _body(w: WorkspaceClient, script_id: str) -> bytes:
    return base64.b64decode(w.global_init_scripts.get(script_id).script or "")


def _script(w: WorkspaceClient, name: str, body: bytes) -> str:
    return w.global_init_scripts.create(name, base64.b64encode(body).decode(), enabled=True).script_id or ""


def _copies(pair: Pair, kind: str) -> dict[str, str]:
    """{source key: target key} as the store records it."""
    store = Store(pair.state_path)
    try:
        return {p.key: p.target_key or "" for p in store.priors(kind, payloads=False)}
    finally:
        store.close()


# -- IP access lists -------------------------------------------------------------------------------------------
def test_two_source_lists_with_one_label_get_a_target_list_each(pair: Pair) -> None:
    pair.src.ip_access_lists.create("office", settings.ListType.ALLOW, ip_addresses=["10.0.0.0/16"])
    pair.src.ip_access_lists.create("office", settings.ListType.ALLOW, ip_addresses=["192.168.0.0/24"])

    report = pair.sync(only=["ip_access_lists"], concurrency=1)["ip_access_lists"]

    assert report.created == 2 and report.errors == 0, report
    assert _lists(pair.dst) == [("office", ["10.0.0.0/16"]), ("office", ["192.168.0.0/24"])]
    copies = _copies(pair, "ip_access_lists")
    assert len(set(copies.values())) == 2, f"two source lists recorded on one target list: {copies}"
    pair.reset_stats()
    pair.sync(only=["ip_access_lists"])
    assert pair.target_writes() == 0


def test_a_new_source_list_never_takes_over_the_copy_of_another_with_its_label(pair: Pair) -> None:
    pair.src.ip_access_lists.create("office", settings.ListType.ALLOW, ip_addresses=["10.0.0.0/16"])
    pair.sync(only=["ip_access_lists"])

    pair.src.ip_access_lists.create("office", settings.ListType.ALLOW, ip_addresses=["192.168.0.0/24"])
    pair.sync(only=["ip_access_lists"])

    assert _lists(pair.dst) == [("office", ["10.0.0.0/16"]), ("office", ["192.168.0.0/24"])]
    assert len(set(_copies(pair, "ip_access_lists").values())) == 2


def test_the_dr_teams_only_list_of_a_label_is_still_adopted(pair: Pair) -> None:
    pair.dst.ip_access_lists.create("office", settings.ListType.ALLOW, ip_addresses=["172.16.0.0/12"])
    pair.src.ip_access_lists.create("office", settings.ListType.ALLOW, ip_addresses=["10.0.0.0/16"])

    pair.sync(only=["ip_access_lists"])

    assert _lists(pair.dst) == [("office", ["10.0.0.0/16"])]
    store = Store(pair.state_path)
    try:
        assert [p.origin for p in store.priors("ip_access_lists")] == ["adopted"]  # never deleted by dbsync
    finally:
        store.close()


def test_lists_sharing_a_label_are_not_created_twice_after_a_kill_before_their_record(
    pair: Pair, monkeypatch: pytest.MonkeyPatch
) -> None:
    pair.src.ip_access_lists.create("office", settings.ListType.ALLOW, ip_addresses=["10.0.0.0/16"])
    pair.src.ip_access_lists.create("office", settings.ListType.ALLOW, ip_addresses=["192.168.0.0/24"])
    killed_before_the_record(pair, ["ip_access_lists"], monkeypatch)
    assert len(_lists(pair.dst)) == 2  # both reached the target, neither was recorded

    pair.reset_stats()
    report = pair.sync(only=["ip_access_lists"])["ip_access_lists"]

    assert report.errors == 0 and endpoint_count(pair.target, "POST /api/2.0/ip-access-lists") == 0, report
    assert _lists(pair.dst) == [("office", ["10.0.0.0/16"]), ("office", ["192.168.0.0/24"])]
    assert len(set(_copies(pair, "ip_access_lists").values())) == 2


# -- global init scripts ---------------------------------------------------------------------------------------
def test_init_scripts_sharing_a_name_are_not_created_twice_after_a_kill_before_their_record(
    pair: Pair, monkeypatch: pytest.MonkeyPatch
) -> None:
    _script(pair.src, "setup", SETUP)
    _script(pair.src, "setup", b"#!/bin/bash\necho second setup")  # no final newline
    killed_before_the_record(pair, ["global_init_scripts"], monkeypatch)
    assert len(list(pair.dst.global_init_scripts.list())) == 2  # both reached the target, neither was recorded

    pair.reset_stats()
    report = pair.sync(only=["global_init_scripts"])["global_init_scripts"]

    assert report.errors == 0 and endpoint_count(pair.target, "POST /api/2.0/global-init-scripts") == 0, report
    names = [s.name for s in pair.dst.global_init_scripts.list()]
    assert names == ["setup", "setup"], "each script would run twice on every cluster start"
    store = Store(pair.state_path)
    try:  # dbsync's own copies, found by their marker: deleted with their source
        assert [p.origin for p in store.priors("global_init_scripts")] == ["created", "created"]
    finally:
        store.close()


def test_a_new_source_script_never_takes_over_the_copy_of_another_with_its_name(pair: Pair) -> None:
    _script(pair.src, "setup", SETUP)
    pair.sync(only=["global_init_scripts"])

    _script(pair.src, "setup", b"echo later\n")
    pair.sync(only=["global_init_scripts"])

    assert sorted(body.split(b"\n" + MARKER)[0] for body in _bodies(pair.dst)) == sorted([b"echo later\n", SETUP])
    assert len(set(_copies(pair, "global_init_scripts").values())) == 2


def test_the_marker_is_never_content(pair: Pair, tmp_path: Path) -> None:
    """The copy ends with dbsync's marker line; a comparison never sees it, and a failback never writes it back."""
    script_id = _script(pair.src, "setup", SETUP)
    hand_made = _script(pair.dst, "dr-only", b"echo dr\n")
    pair.sync(only=["global_init_scripts"])

    copy = _copies(pair, "global_init_scripts")[script_id]
    assert _body(pair.dst, copy) == SETUP + b"\n" + MARKER + script_id.encode() + b"\n"
    assert _body(pair.dst, hand_made) == b"echo dr\n"  # the DR team's script: untouched
    pair.reset_stats()
    pair.sync(only=["global_init_scripts"])
    assert pair.target_writes() == 0
    ctx = pair.context()
    try:
        assert validate(ctx, ["global_init_scripts"]).kinds[0].in_sync_percent == 100.0
    finally:
        ctx.store.close()

    # Failback: after a cutover the new primary's copy is edited, and replicated back into the old primary's script.
    cutover = open_cutover_context(pair.settings())
    Runbook(cutover, force=True).run()
    cutover.store.close()
    forward = Store(pair.state_path)
    try:
        seed_reverse_store(forward, tmp_path / "reverse.db")
    finally:
        forward.close()
    edited = b"#!/bin/bash\necho edited on the new primary\n"
    marker_kept = edited + b"\n" + MARKER + script_id.encode() + b"\n"  # edited by hand, the marker line left as is
    pair.dst.global_init_scripts.update(copy, "setup", base64.b64encode(marker_kept).decode())
    back = open_context(reversed_settings(pair.settings(state_path=str(tmp_path / "reverse.db"), direction="reverse")))
    try:
        reports = Engine(back).cycle(["global_init_scripts"])
    finally:
        back.store.close()
    assert not [r for r in reports if r.errors], reports
    assert _body(pair.src, script_id) == edited  # the old primary's own script: the edit, and no marker either way
