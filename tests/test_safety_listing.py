"""A listing that fails is never an empty listing: 404s, reset connections, HTML pages, looping tokens.

Faults come from the emulator's fault rules (`PUT /_emulator/faults` with `rules`), driven over HTTP
by the real databricks-sdk. The SDK retries a reset connection until `retry_timeout_seconds`, then
raises TimeoutError (databricks-sdk-py `_base_client._is_retryable`: requests.ConnectionError is
"cannot connect"); an HTML body on a 200 fails in `response.json()` with requests' JSONDecodeError.
"""

from __future__ import annotations

import base64
import io
import sqlite3
import subprocess
import sys
from typing import Any

import pytest
import requests
from conftest import Pair, endpoint_count, sdk_client
from databricks.sdk.errors import NotFound
from databricks.sdk.service import compute, jobs
from databricks.sdk.service.sql import StatementState
from databricks.sdk.service.workspace import ImportFormat, Language

from dbsync.scheduler import Daemon
from dbsync_emulator import EmulatorHandle
from dbsync_emulator.apis.sql import create_warehouse

JOBS_LIST = "/api/2.2/jobs/list"
WORKSPACE_LIST = "/api/2.0/workspace/list"


def _rule(action: str, path: str, **extra: Any) -> dict[str, Any]:
    return {"action": action, "path": path, "method": "GET", **extra}


def _auth(handle: EmulatorHandle) -> dict[str, str]:
    return {"Authorization": f"Bearer {handle.token}"}


def _make_jobs(w: Any, count: int) -> None:
    for i in range(count):
        w.jobs.create(name=f"job-{i:03d}", tasks=[_task()])


def _task() -> jobs.Task:
    cluster = compute.ClusterSpec(spark_version="15.4.x-scala2.12", node_type_id="i3.xlarge", num_workers=1)
    return jobs.Task(task_key="t", notebook_task=jobs.NotebookTask(notebook_path="/Shared/x"), new_cluster=cluster)


# -- the emulator's fault rules, seen through the SDK --------------------------------------------
def test_emulator_not_found_rule_hits_one_path_for_the_next_n_requests(emulator: EmulatorHandle, w: Any) -> None:
    w.workspace.mkdirs("/Shared/finance")
    w.workspace.mkdirs("/Shared/sales")
    emulator.set_faults(rules=[_rule("not_found", WORKSPACE_LIST, query={"path": "/Shared/finance"}, times=1)])
    assert [o.path for o in w.workspace.list("/Shared")] == ["/Shared/finance", "/Shared/sales"]
    with pytest.raises(NotFound) as caught:
        list(w.workspace.list("/Shared/finance"))
    assert caught.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert list(w.workspace.list("/Shared/finance")) == []  # the rule was for one request
    faults = requests.get(f"{emulator.url}/_emulator/faults", headers=_auth(emulator), timeout=5).json()
    assert faults["rules"][0]["times"] == 0


def test_emulator_reset_rule_closes_the_connection_without_an_answer(emulator: EmulatorHandle) -> None:
    emulator.set_faults(rules=[_rule("reset", "/api/2.1/clusters/list")])
    client = sdk_client(emulator, retry_timeout_seconds=1)
    with pytest.raises(TimeoutError) as caught:
        list(client.clusters.list())
    assert isinstance(caught.value.__cause__, requests.ConnectionError)
    assert len(list(client.cluster_policies.list())) > 0  # other paths answer


def test_emulator_html_rule_answers_200_with_an_html_page(emulator: EmulatorHandle, w: Any) -> None:
    emulator.set_faults(rules=[_rule("html", WORKSPACE_LIST)])
    with pytest.raises(ValueError):  # requests' JSONDecodeError
        list(w.workspace.list("/"))
    response = requests.get(f"{emulator.url}{WORKSPACE_LIST}?path=/", headers=_auth(emulator), timeout=5)
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/html")


def test_emulator_loop_token_rule_answers_a_page_its_own_token(emulator: EmulatorHandle, w: Any) -> None:
    _make_jobs(w, 25)
    emulator.set_faults(rules=[_rule("loop_token", JOBS_LIST)])
    first = w.api_client.do("GET", JOBS_LIST, query={"limit": 10})
    second = w.api_client.do("GET", JOBS_LIST, query={"limit": 10, "page_token": first["next_page_token"]})
    assert second["next_page_token"] == first["next_page_token"]
    assert [j["job_id"] for j in second["jobs"]] != [j["job_id"] for j in first["jobs"]]


def test_emulator_repeat_page_rule_answers_new_tokens_to_the_same_page(emulator: EmulatorHandle, w: Any) -> None:
    _make_jobs(w, 25)
    emulator.set_faults(rules=[_rule("repeat_page", JOBS_LIST)])
    first = w.api_client.do("GET", JOBS_LIST, query={"limit": 10})
    second = w.api_client.do("GET", JOBS_LIST, query={"limit": 10, "page_token": first["next_page_token"]})
    third = w.api_client.do("GET", JOBS_LIST, query={"limit": 10, "page_token": second["next_page_token"]})
    assert len({first["next_page_token"], second["next_page_token"], third["next_page_token"]}) == 3
    assert [j["job_id"] for j in third["jobs"]] == [j["job_id"] for j in second["jobs"]]


def test_emulator_skip_object_rule_leaves_one_object_out_of_a_page(emulator: EmulatorHandle, w: Any) -> None:
    _make_jobs(w, 5)
    whole = [j.settings.name for j in w.jobs.list() if j.settings]
    emulator.set_faults(rules=[_rule("skip_object", JOBS_LIST, position=1, times=1)])
    assert [j.settings.name for j in w.jobs.list() if j.settings] == whole[:1] + whole[2:]
    assert [j.settings.name for j in w.jobs.list() if j.settings] == whole  # the rule was for one page


def test_emulator_schema_not_found_rule_fails_one_statement(emulator: EmulatorHandle, w: Any) -> None:
    with emulator.workspace.lock:
        warehouse = create_warehouse(emulator.workspace, {"name": "wh", "cluster_size": "2X-Small"})
    statement = "SHOW TABLES IN `hive_metastore`.`default`"
    rule = {"action": "schema_not_found", "path": "/api/2.0/sql/statements", "statement": statement, "times": 1}
    emulator.set_faults(rules=[rule])
    run = w.statement_execution.execute_statement
    assert run(statement="SHOW SCHEMAS", warehouse_id=warehouse).status.state == StatementState.SUCCEEDED
    failed = run(statement=statement, warehouse_id=warehouse).status
    assert failed.state == StatementState.FAILED and "[SCHEMA_NOT_FOUND]" in (failed.error.message or "")
    assert run(statement=statement, warehouse_id=warehouse).status.state == StatementState.SUCCEEDED


def test_emulator_rejects_an_unknown_fault_action(emulator: EmulatorHandle) -> None:
    response = requests.put(
        f"{emulator.url}/_emulator/faults",
        json={"rules": [{"action": "explode", "path": "/api/"}]},
        headers=_auth(emulator),
        timeout=5,
    )
    assert response.status_code == 400 and "explode" in response.json()["message"]


# -- defect: a 404 on one listing deleted what it held ---------------------------------------------
def _finance_tree(pair: Pair) -> None:
    src = pair.src
    src.workspace.mkdirs("/Shared/finance")
    src.workspace.mkdirs("/Shared/other")
    for i in range(3):
        src.workspace.import_(
            f"/Shared/finance/nb{i}",
            content=base64.b64encode(f"print({i})".encode()).decode(),
            format=ImportFormat.SOURCE,
            language=Language.PYTHON,
        )
    for i in range(4):
        src.workspace.upload(f"/Shared/finance/data{i}.csv", io.BytesIO(b"a,b\n1,2\n"), format=ImportFormat.AUTO)
    src.workspace.import_(
        "/Shared/other/keep",
        content=base64.b64encode(b"print(0)").decode(),
        format=ImportFormat.SOURCE,
        language=Language.PYTHON,
    )


def _target_paths(pair: Pair) -> set[str]:
    return {o.path for o in pair.dst.workspace.list("/Shared", recursive=True)}


def test_a_404_on_one_directory_listing_deletes_nothing(pair: Pair) -> None:
    _finance_tree(pair)
    kinds = ["directories", "notebooks", "files"]
    pair.sync(only=kinds)
    before = _target_paths(pair)
    assert "/Shared/finance/nb2" in before and "/Shared/finance/data3.csv" in before
    pair.source.set_faults(rules=[_rule("not_found", WORKSPACE_LIST, query={"path": "/Shared/finance"}, times=1)])
    reports = pair.sync(only=kinds)
    assert {k: (r.outcome, r.deleted) for k, r in reports.items()} == {k: ("listing_failed", 0) for k in kinds}
    assert "/Shared/finance" in (reports["notebooks"].message or "")
    assert _target_paths(pair) == before
    reports = pair.sync(only=kinds)  # the fault is over: a normal cycle, still nothing to delete
    assert all(r.outcome == "ok" and r.deleted == 0 for r in reports.values())
    assert _target_paths(pair) == before


def test_a_404_on_a_scopes_keys_deletes_no_secret(pair: Pair) -> None:
    pair.src.secrets.create_scope("app")
    for key in ("a", "b", "c"):
        pair.src.secrets.put_secret("app", key, string_value=f"value-{key}")
    with pair.source.workspace.lock:  # values read with secrets/get, which the emulator refuses by default
        pair.source.workspace.table("settings")["secrets_get_allowed"] = True
    pair.sync(only=["secret_scopes", "secrets"], secrets={"values_from": "api"})
    pair.source.set_faults(rules=[_rule("not_found", "/api/2.0/secrets/list", query={"scope": "app"}, times=1)])
    report = pair.sync(only=["secret_scopes", "secrets"], secrets={"values_from": "api"})["secrets"]
    assert (report.outcome, report.deleted) == ("listing_failed", 0)
    assert sorted(s.key for s in pair.dst.secrets.list_secrets("app")) == ["a", "b", "c"]


def _policies(w: Any) -> list[str]:
    return sorted(p.name for p in w.cluster_policies.list() if p.name and p.name.startswith("p"))


def _clusters(w: Any) -> list[str]:
    return sorted(c.cluster_name or "" for c in w.clusters.list())


def test_the_guard_holds_most_of_a_small_kind_but_lets_one_delete_through(pair: Pair) -> None:
    ids = [
        pair.src.clusters.create(
            cluster_name=f"c{i}", spark_version="15.4.x-scala2.12", node_type_id="i3.xlarge", num_workers=1
        ).response.cluster_id
        for i in range(5)
    ]
    pair.sync(only=["clusters"])
    pair.src.clusters.permanent_delete(ids[0])
    report = pair.sync(only=["clusters"])["clusters"]
    assert (report.outcome, report.deleted) == ("ok", 1)  # one of five is an ordinary delete
    for cluster_id in ids[1:4]:
        pair.src.clusters.permanent_delete(cluster_id)
    report = pair.sync(only=["clusters"])["clusters"]
    assert (report.outcome, report.deleted) == ("delete_guard", 0)  # three of four at once is not
    assert "3 of 4 clusters" in (report.message or "")
    assert _clusters(pair.dst) == ["c1", "c2", "c3", "c4"]


# -- defect: listing failures that are not API errors crashed the run --------------------------------
def _cycle_outcomes(pair: Pair) -> list[str | None]:
    with sqlite3.connect(pair.state_path) as conn:
        return [row[0] for row in conn.execute("SELECT outcome FROM cycles ORDER BY id")]


def test_a_reset_connection_on_a_listing_is_listing_failed_and_other_kinds_finish(pair: Pair) -> None:
    ids = [pair.src.cluster_policies.create(name=f"p{i}", definition="{}").policy_id for i in range(6)]
    _make_jobs(pair.src, 2)
    kinds = ["cluster_policies", "jobs"]
    pair.sync(only=kinds)
    pair.src.cluster_policies.delete(ids[0])
    pair.source.set_faults(rules=[_rule("reset", JOBS_LIST)])
    reports = pair.sync(only=kinds, retry_timeout_seconds=1)
    assert reports["jobs"].outcome == "listing_failed" and "jobs" in (reports["jobs"].message or "")
    assert (reports["cluster_policies"].outcome, reports["cluster_policies"].deleted) == ("ok", 1)
    assert len(_policies(pair.dst)) == 5 and len(list(pair.dst.jobs.list())) == 2
    assert None not in _cycle_outcomes(pair)


def test_an_html_page_on_a_listing_is_a_summary_and_exit_1_not_a_traceback(pair: Pair) -> None:
    _finance_tree(pair)
    pair.sync(only=["directories", "notebooks", "files"])
    before = _target_paths(pair)
    pair.source.set_faults(rules=[_rule("html", WORKSPACE_LIST, query={"path": "/Shared/finance"})])
    result = subprocess.run(
        [sys.executable, "-m", "dbsync.cli", "sync", "--once", "--kinds", "directories,notebooks,files"],
        env=pair.env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "notebooks" in result.stdout and "listing failed" in result.stdout
    assert _target_paths(pair) == before
    assert None not in _cycle_outcomes(pair)


def test_serve_says_in_readyz_that_a_groups_listing_broke(pair: Pair) -> None:
    _make_jobs(pair.src, 2)
    pair.source.set_faults(rules=[_rule("html", JOBS_LIST)])
    ctx = pair.context()
    daemon = Daemon(ctx)
    daemon.run_group(("jobs",))
    problems = daemon.readiness()
    assert any(p.startswith("jobs:") for p in problems), problems
    assert None not in _cycle_outcomes(pair)


# -- defect: a looping page token never ended --------------------------------------------------------
@pytest.mark.parametrize("action", ["loop_token", "repeat_page"])
def test_a_looping_page_token_ends_the_listing_as_failed(pair: Pair, action: str) -> None:
    _make_jobs(pair.src, 130)  # two pages of 100
    pair.sync(only=["jobs"])
    pair.source.stats.reset()
    # Bounded, so that code without the guard ends too (after 40 pages of the same jobs).
    pair.source.set_faults(rules=[_rule(action, JOBS_LIST, times=40)])
    report = pair.sync(only=["jobs"])["jobs"]
    assert report.outcome == "listing_failed" and report.deleted == 0
    assert "page" in (report.message or "")
    assert endpoint_count(pair.source, f"GET {JOBS_LIST}") <= 4
    assert len(list(pair.dst.jobs.list())) == 130


# -- defect: `sync --once` exited 0 with deletes held ------------------------------------------------
def test_sync_once_exits_1_and_says_why_when_the_guard_holds_deletes(pair: Pair) -> None:
    ids = [pair.src.cluster_policies.create(name=f"p{i}", definition="{}").policy_id for i in range(6)]
    pair.sync(only=["cluster_policies"])
    for policy_id in ids:  # 6 of 11 (the workspace's 5 built-in policies stay)
        pair.src.cluster_policies.delete(policy_id)
    command = [sys.executable, "-m", "dbsync.cli", "sync", "--once", "--kinds", "cluster_policies"]
    result = subprocess.run(command, env=pair.env(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "deletes held" in result.stderr and "--force-deletes" in result.stderr
    assert len(_policies(pair.dst)) == 6
    help_text = subprocess.run(
        [sys.executable, "-m", "dbsync.cli", "sync", "--help"], capture_output=True, text=True, timeout=60
    ).stdout
    assert "exit status" in help_text and "delete guard" in help_text


def test_validate_reports_a_broken_listing_instead_of_crashing(pair: Pair) -> None:
    _make_jobs(pair.src, 2)
    pair.sync(only=["jobs"])
    pair.source.set_faults(rules=[_rule("html", JOBS_LIST)])
    command = [sys.executable, "-m", "dbsync.cli", "validate", "--kinds", "jobs"]
    result = subprocess.run(command, env=pair.env(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "JSONDecodeError" in result.stdout
