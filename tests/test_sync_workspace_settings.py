"""Workspace settings between two emulated workspaces: workspace-conf keys, IP access lists, and the
settings dbsync refuses to copy because they would lock it out.
"""

from __future__ import annotations

from conftest import Pair
from databricks.sdk.service import settings

SETTINGS_KINDS = ["workspace_conf", "ip_access_lists"]


def test_workspace_conf_keys_and_ip_access_lists(pair: Pair) -> None:
    src, dst = pair.src, pair.dst
    src.workspace_conf.set_status(
        {"maxTokenLifetimeDays": "90", "enableWebTerminal": "true", "enableVerboseAuditLogs": "true"}
    )
    office = src.ip_access_lists.create(
        "office", settings.ListType.ALLOW, ip_addresses=["127.0.0.1", "10.0.0.0/8"]
    ).ip_access_list
    src.ip_access_lists.create("bad actors", settings.ListType.BLOCK, ip_addresses=["192.0.2.0/24"])

    reports = pair.sync(only=SETTINGS_KINDS)
    assert all(r.errors == 0 for r in reports.values()), reports
    conf = dst.workspace_conf.get_status("maxTokenLifetimeDays,enableWebTerminal,enableVerboseAuditLogs")
    # enableVerboseAuditLogs is not in workspace_conf.keys: never read, never written.
    assert conf == {"maxTokenLifetimeDays": "90", "enableWebTerminal": "true", "enableVerboseAuditLogs": "false"}
    lists = {x.label: x for x in dst.ip_access_lists.list()}
    assert sorted(lists) == ["bad actors", "office"]
    assert sorted(lists["office"].ip_addresses or []) == ["10.0.0.0/8", "127.0.0.1"]

    pair.reset_stats()
    pair.sync(only=SETTINGS_KINDS)
    assert pair.target_writes() == 0

    src.ip_access_lists.replace(office.list_id, "office", settings.ListType.ALLOW, False, ip_addresses=["127.0.0.1"])  # type: ignore[union-attr]
    src.workspace_conf.set_status({"maxTokenLifetimeDays": ""})
    bad = next(x for x in src.ip_access_lists.list() if x.label == "bad actors")
    src.ip_access_lists.delete(bad.list_id or "")
    pair.sync(only=SETTINGS_KINDS)
    (office_target,) = dst.ip_access_lists.list()
    assert (office_target.enabled, office_target.ip_addresses) == (False, ["127.0.0.1"])
    assert dst.workspace_conf.get_status("maxTokenLifetimeDays") == {"maxTokenLifetimeDays": None}


def test_settings_that_would_lock_dbsync_out_are_refused(pair: Pair) -> None:
    src, dst = pair.src, pair.dst
    dst.ip_access_lists.create("dbsync", settings.ListType.ALLOW, ip_addresses=["127.0.0.1"])
    dst.workspace_conf.set_status({"enableIpAccessLists": "true"})  # the standby enforces its lists
    src.ip_access_lists.create("dbsync", settings.ListType.ALLOW, ip_addresses=["10.0.0.0/8"])
    src.workspace_conf.set_status({"enableTokensConfig": "false"})

    reports = pair.sync(only=SETTINGS_KINDS)
    assert reports["ip_access_lists"].errors == 1 and reports["workspace_conf"].errors == 1
    assert [x.ip_addresses for x in dst.ip_access_lists.list()] == [["127.0.0.1"]]  # dbsync can still get in
    assert dst.workspace_conf.get_status("enableTokensConfig") == {"enableTokensConfig": "true"}
    problems = {p["source_key"]: p["last_error"] for p in pair.context().store.problems("workspace_conf")}
    assert "personal access token" in problems["enableTokensConfig"]
    (ip_problem,) = pair.context().store.problems("ip_access_lists")
    assert "allow list" in ip_problem["last_error"]
