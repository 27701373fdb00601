"""What a cluster starts with, between two emulated workspaces: global init scripts (in run order), a
cluster's libraries, and DBFS mounts (made from a cluster, reported for manual action, never copied).
"""

from __future__ import annotations

import base64
import json
import re

from conftest import Pair
from databricks.sdk import WorkspaceClient
from databricks.sdk.service import compute
from databricks.sdk.service.compute import Language

from dbsync.context import open_context
from dbsync.engine import Engine
from dbsync.report import format_text, validate
from dbsync.report_html import render
from dbsync_emulator.apis import clusters

SPARK = "15.4.x-scala2.12"
PYPI = compute.Library(pypi=compute.PythonPyPiLibrary(package="requests==2.31.0"))
JAR = compute.Library(jar="dbfs:/FileStore/jars/etl-1.0.jar")
WHEEL = compute.Library(whl="/Workspace/Shared/libs/etl-1.0-py3-none-any.whl")
MISSING_WHEEL = compute.Library(whl="/Workspace/Shared/libs/gone-0.1-py3-none-any.whl")


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _scripts(w: WorkspaceClient) -> list[tuple[str, bool, str]]:
    """(name, enabled, body) of every global init script, in run order; a copy's body without the line dbsync
    adds to its copies (`# dbsync_source_id=<source script id>`, tests/test_same_name_copies.py)."""
    out = []
    for script in w.global_init_scripts.list():
        body = base64.b64decode(w.global_init_scripts.get(script.script_id).script).decode()
        out.append((script.name, bool(script.enabled), re.sub(r"\n# dbsync_source_id=[^\n]+\n\Z", "", body)))
    return out


def _cluster(pair: Pair, name: str, state: str = "TERMINATED") -> str:
    ws = pair.source.workspace
    with ws.lock:
        spec = {"cluster_name": name, "spark_version": SPARK, "node_type_id": "i3.xlarge", "num_workers": 1}
        return clusters.create_cluster(ws, spec, state=state)


def _target_cluster(pair: Pair, source_id: str) -> str:
    return next(c.cluster_id for c in pair.dst.clusters.list() if c.custom_tags.get("dbsync_source_id") == source_id)


def _libraries(w: WorkspaceClient, cluster_id: str) -> list[dict]:
    return [s.library.as_dict() for s in w.libraries.cluster_status(cluster_id)]


def _no_change(pair: Pair, kinds: list[str]) -> dict[str, dict[str, int]]:
    """Run a cycle that should change nothing: the API calls it made per side. Fails if it wrote to the target."""
    pair.reset_stats()
    reports = pair.sync(only=kinds)
    assert pair.target_writes() == 0
    assert all(r.created == r.updated == r.deleted == r.errors == 0 for r in reports.values()), reports
    return {
        # Without the credentials check (GET .../scim/v2/Me) every new `sync --once` process makes once per side.
        side: {
            k: v["count"] for k, v in handle.stats.document()["endpoints"].items() if " /api/" in k and "/Me" not in k
        }
        for side, handle in (("source", pair.source), ("target", pair.target))
    }


def test_global_init_scripts_reach_the_target_in_order(pair: Pair) -> None:
    src, dst = pair.src, pair.dst
    hand_made = dst.global_init_scripts.create("dr-only monitoring", _b64("echo dr"), enabled=True).script_id
    proxy = src.global_init_scripts.create("proxy", _b64("export HTTPS_PROXY=http://proxy:3128"), enabled=True)
    src.global_init_scripts.create("agents", _b64("#!/bin/bash\ncurl -s http://agents/install | sh"))
    src.global_init_scripts.create("certs", _b64("update-ca-certificates"), enabled=True, position=0)

    assert pair.sync(only=["global_init_scripts"])["global_init_scripts"].created == 3
    replicated = [s for s in _scripts(dst) if s[0] != "dr-only monitoring"]
    assert replicated == _scripts(src)
    assert [s.script_id for s in dst.global_init_scripts.list()][-1] == hand_made  # its slot is kept

    src.global_init_scripts.update(proxy.script_id, name="proxy", script=_b64("export HTTPS_PROXY=http://p2:3128"))
    src.api_client.do("PATCH", f"/api/2.0/global-init-scripts/{proxy.script_id}", body={"position": 0})
    certs = next(s for s in src.global_init_scripts.list() if s.name == "certs")
    src.global_init_scripts.delete(certs.script_id)
    reports = pair.sync(only=["global_init_scripts"])
    assert reports["global_init_scripts"].deleted == 1
    assert [s for s in _scripts(dst) if s[0] != "dr-only monitoring"] == _scripts(src)
    assert _scripts(src)[0] == ("proxy", True, "export HTTPS_PROXY=http://p2:3128")

    calls = _no_change(pair, ["global_init_scripts"])
    # The listing only (and the target's for the drift check): no script body is read when nothing changed.
    assert calls == {
        "source": {"GET /api/2.0/global-init-scripts": 1},
        "target": {"GET /api/2.0/global-init-scripts": 1},
    }


def test_lost_store_adopts_init_scripts_by_name(pair: Pair) -> None:
    pair.src.global_init_scripts.create("proxy", _b64("echo proxy"), enabled=True)
    pair.sync(only=["global_init_scripts"])
    pair.state_path.unlink()
    reports = pair.sync(only=["global_init_scripts"])
    assert reports["global_init_scripts"].errors == 0
    assert [s.name for s in pair.dst.global_init_scripts.list()] == ["proxy"]


def test_cluster_libraries_follow_their_cluster_to_the_target(pair: Pair) -> None:
    cluster_id = _cluster(pair, "etl-shared")
    _cluster(pair, "adhoc")  # a cluster without libraries is listed too (an empty set)
    pair.src.libraries.install(cluster_id, [PYPI, JAR])
    reports = pair.sync(only=["clusters", "cluster_libraries"])
    assert reports["cluster_libraries"].errors == 0 and reports["cluster_libraries"].blocked == 0

    target_id = _target_cluster(pair, cluster_id)
    assert target_id != cluster_id
    assert _libraries(pair.dst, target_id) == [PYPI.as_dict(), JAR.as_dict()]  # on the target's own cluster
    statuses = {s.status.value for s in pair.dst.libraries.cluster_status(target_id)}
    assert statuses == {"PENDING"}  # queued on the terminated standby cluster, installed at its next start
    assert pair.dst.clusters.get(target_id).state.value in ("TERMINATED", "TERMINATING")

    pair.src.libraries.uninstall(cluster_id, [JAR])
    pair.src.libraries.install(cluster_id, [WHEEL])
    assert pair.sync(only=["clusters", "cluster_libraries"])["cluster_libraries"].updated == 1
    assert _libraries(pair.dst, target_id) == [PYPI.as_dict(), WHEEL.as_dict()]

    calls = _no_change(pair, ["clusters", "cluster_libraries"])
    assert calls["source"] == {"GET /api/2.1/clusters/list": 2, "GET /api/2.0/libraries/all-cluster-statuses": 1}

    pair.src.clusters.permanent_delete(cluster_id)
    reports = pair.sync(only=["clusters", "cluster_libraries"])
    assert reports["cluster_libraries"].deleted == 1 and reports["cluster_libraries"].errors == 0
    assert all(c.cluster_id != target_id for c in pair.dst.clusters.list())


def test_a_library_that_failed_on_the_source_is_reported_not_copied(pair: Pair) -> None:
    pair.source.workspace.cluster_start_seconds = 0  # the running source cluster resolves libraries at once
    cluster_id = _cluster(pair, "ml-running", state="RUNNING")
    pair.src.libraries.install(cluster_id, [PYPI, MISSING_WHEEL])
    failed = [s for s in pair.src.libraries.cluster_status(cluster_id) if s.status.value == "FAILED"]
    assert [s.library.as_dict() for s in failed] == [MISSING_WHEEL.as_dict()]

    pair.sync(only=["clusters", "cluster_libraries"])
    assert _libraries(pair.dst, _target_cluster(pair, cluster_id)) == [PYPI.as_dict()]
    ctx = pair.context()
    # The cluster's libraries are synced (the failed one is not the target's to have): the note says which.
    noted = [e for e in ctx.store.events(outcome="synced") if e["kind"] == "cluster_libraries"]
    assert len(noted) == 1 and MISSING_WHEEL.whl in noted[0]["message"]

    report = validate(ctx, ["clusters", "cluster_libraries"])
    actions = [a for a in report.manual_actions if a["kind"] == "cluster_libraries"]
    assert (
        len(actions) == 1
        and MISSING_WHEEL.whl in actions[0]["action"]
        and "FileNotFoundException" in actions[0]["action"]
    )
    assert report.ready_for_cutover, report.reasons  # reported beside readiness, not as "missing"


def _mount(pair: Pair, cluster_id: str, source: str, mount_point: str) -> None:
    w = pair.src
    context = w.command_execution.create(cluster_id=cluster_id, language=Language.PYTHON).result()
    command = f'dbutils.fs.mount("{source}", "{mount_point}", extra_configs={{"fs.s3a.secret.key": "s3cr3t"}})'
    result = w.command_execution.execute(
        cluster_id=cluster_id, context_id=context.id, language=Language.PYTHON, command=command
    ).result()
    assert result.results.data == "True", result.results
    w.command_execution.destroy(cluster_id=cluster_id, context_id=context.id)


def test_a_mount_is_reported_as_needing_manual_action(pair: Pair) -> None:
    cluster_id = _cluster(pair, "analysts-running", state="RUNNING")
    _mount(pair, cluster_id, "s3a://acme-landing/raw", "/mnt/raw")

    pair.reset_stats()
    reports = pair.sync(only=["mounts"])
    assert reports["mounts"].errors == 0 and pair.target_writes() == 0  # nothing is ever written for a mount
    ctx = pair.context()
    assert any("needs manual action" in e["message"] for e in ctx.store.events(outcome="skipped"))

    report = validate(ctx, ["mounts"])
    (mounts,) = report.kinds
    assert mounts.report_only and mounts.source_count == 1 and mounts.missing_count == 0
    assert report.ready_for_cutover and not report.reasons  # an action to take, not "missing" noise
    (action,) = report.manual_actions
    assert action["key"] == "/mnt/raw" and "s3a://acme-landing/raw" in action["action"]
    text = format_text(report)
    assert "needs manual action" in text and "/mnt/raw" in text and "s3cr3t" not in text
    assert "s3cr3t" not in json.dumps(report.as_dict())
    assert report.as_dict()["manual_actions"] == [action]  # what /report serves
    page = render(report)
    assert "Needs manual action (1)" in page and "s3a://acme-landing/raw" in page

    calls = _no_change(pair, ["mounts"])
    assert calls["target"] == {}  # a standby's mounts cannot be read: the target is never asked

    # The cluster stops: the inventory cannot be refreshed, the known mount stays and the report says why.
    pair.src.clusters.delete(cluster_id)
    reports = pair.sync(only=["mounts"])
    assert reports["mounts"].deleted == 0
    report = validate(pair.context(), ["mounts"])
    assert [a["key"] for a in report.manual_actions] == ["", "/mnt/raw"]
    assert "no interactive source cluster is running" in report.manual_actions[0]["action"]


def test_plan_marks_mounts_manual(pair: Pair) -> None:
    cluster_id = _cluster(pair, "analysts-running", state="RUNNING")
    _mount(pair, cluster_id, "abfss://lake@acct.dfs.core.windows.net/", "/mnt/lake")
    ctx = open_context(pair.settings(), dry_run=True)
    reports = Engine(ctx).cycle(["mounts"])
    ctx.store.close()
    assert [(c.action, c.key) for c in reports[0].planned] == [("create", "/mnt/lake")]
    from dbsync.cli import plan_action

    # One vocabulary: dbsync will not write it, so the plan says skip, with the manual action as the reason.
    assert plan_action(reports[0].planned[0]) == "skip"
    assert "needs manual action" in (reports[0].planned[0].skip_reason or "")
