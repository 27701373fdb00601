"""What a re-run pays before its first useful request: the modules a `dbsync` process loads.

A `sync --once` from cron pays its start-up on every run; at 10,000 objects the start-up was a quarter of a
re-run's wall time (BENCHMARKS.md "Re-run after trimming fixed costs"). Most of it was the databricks-sdk
package loading all of its ~60 service modules (2,300 dataclasses) for one WorkspaceClient, and the
daemon's scheduler and status server loaded by commands that never serve.
"""

from __future__ import annotations

import ast
import io
import json
import posixpath
import subprocess
import sys
from pathlib import Path
from typing import Any

from databricks.sdk import WorkspaceClient
from databricks.sdk.core import Config
from databricks.sdk.service.workspace import Language

from dbsync import sdk
from dbsync_emulator import EmulatorHandle
from dbsync_emulator.seed import seed_workspace
from tests.conftest import Pair

REPO = Path(__file__).resolve().parent.parent
# Daemon-only modules: the scheduler (apscheduler) and the status server.
DAEMON_ONLY = ("apscheduler", "dbsync.scheduler", "dbsync.server", "dbsync.cli.serve")
# Service modules of the SDK a sync of workspace objects and identities does not use: the first three only a full
# WorkspaceClient loads, the others the kinds of Unity Catalog, MLflow, dashboards, serving, settings, and SQL
# (warehouses, queries, alerts, statements: ~110 ms of every process's start-up when the SQL kinds' modules
# imported it at the top).
UNUSED_SDK = tuple(
    f"databricks.sdk.service.{name}"
    for name in ("cleanrooms", "marketplace", "apps", "catalog", "ml", "dashboards", "serving", "settings", "sql")
)
PAGE_ONLY = ("jinja2", "dbsync.report_html")  # the report page's: `serve` and `validate --format html`
CUTOVER_ONLY = ("dbsync.cutover",)  # cutover, rollback, reverse, failback and the daemon's hand-over

_LOADED = """
import json, sys
from dbsync.cli import main
try:
    code = main(sys.argv[2:])
except SystemExit as stop:
    code = stop.code
with open(sys.argv[1], "w") as out:
    json.dump(sorted(sys.modules), out)
sys.exit(code or 0)
"""


def _modules_after(args: list[str], tmp_path: Path, env: dict[str, str] | None = None) -> tuple[int, set[str], str]:
    """Run `dbsync <args>` in a fresh interpreter; its exit code, the modules it loaded, its stderr."""
    out = tmp_path / "modules.json"
    proc = subprocess.run(
        [sys.executable, "-c", _LOADED, str(out), *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )
    return proc.returncode, set(json.loads(out.read_text())), proc.stderr


def test_help_loads_neither_the_daemon_nor_the_whole_sdk(tmp_path: Path) -> None:
    code, loaded, err = _modules_after(["--help"], tmp_path)
    assert code == 0, err
    assert not [m for m in loaded if m.startswith(DAEMON_ONLY)]
    assert not loaded & set(UNUSED_SDK)


def test_sync_once_loads_neither_the_daemon_nor_the_whole_sdk_and_still_syncs(pair: Pair, tmp_path: Path) -> None:
    pair.src.workspace.mkdirs("/Shared/team")
    env = pair.env()
    code, loaded, err = _modules_after(["sync", "--once", "--kinds", "directories,groups"], tmp_path, env)
    assert code == 0, err
    assert pair.dst.workspace.get_status("/Shared/team").path == "/Shared/team"
    assert not [m for m in loaded if m.startswith(DAEMON_ONLY + PAGE_ONLY + CUTOVER_ONLY)]
    assert not loaded & set(UNUSED_SDK)


def test_the_lazy_client_builds_the_same_api_classes_as_the_sdk(emulator: EmulatorHandle) -> None:
    """Each API dbsync reads from the client is the class the SDK's own WorkspaceClient would build."""
    config = Config(host=emulator.url, token=emulator.token, auth_type="pat")
    real, lazy = WorkspaceClient(config=config), sdk.LazyWorkspaceClient(config)
    for name in sdk.APIS:
        assert type(getattr(lazy, name)) is type(getattr(real, name)), name
    assert lazy.workspace is lazy.workspace  # built once, like the SDK's
    assert lazy.workspace._api is lazy.api_client


def test_every_api_the_product_names_is_wired() -> None:
    """A kind that reads `client.<api>` the lazy client does not know fails here, not in a user's sync."""
    api_names = {n for n, v in vars(WorkspaceClient).items() if isinstance(v, property)}
    used: set[str] = set()
    for path in (REPO / "dbsync").rglob("*.py"):
        tree = ast.parse(path.read_text())
        used |= {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)}
        # getattr(client, "users"): the identities kinds name their API in a string
        used |= {
            node.value for node in ast.walk(tree) if isinstance(node, ast.Constant) and isinstance(node.value, str)
        }
    missing = sorted((used & api_names) - set(sdk.APIS) - {"config", "api_client"})
    assert not missing, f"add to dbsync/sdk.py APIS: {missing}"


def test_a_no_change_cycle_reads_the_drift_checks_target_listings_ahead_and_still_sees_drift(pair: Pair) -> None:
    """The drift check lists the target of each kind: on a no-change cycle those listings are read ahead with the
    source listings, so a slow target tree (0.3 s a directory) no longer holds the secret kinds behind it; a
    notebook deleted by hand on the target is still reported as drift in that same cycle."""
    with pair.source.workspace.lock:
        seed_workspace(pair.source.workspace, 40, seed=5)
    kinds = ["directories", "notebooks", "secret_scopes", "secrets"]
    pair.sync(only=kinds)
    pair.sync(only=kinds)  # the first look after a write records each target object's baseline
    notebook = next(
        o.path for o in pair.dst.workspace.list("/Shared", recursive=True) if o.object_type.value == "NOTEBOOK"
    )
    pair.dst.workspace.delete(notebook)
    pair.reset_stats()
    pair.target.set_faults(latency_ms=300, path_prefix="/api/2.0/workspace/list")

    reports = pair.sync(only=kinds, listing_concurrency=4)

    order = list(pair.target.stats.document()["endpoints"])  # in the order their first request was answered
    assert order.index("GET /api/2.0/secrets/list") < order.index("GET /api/2.0/workspace/list"), order
    assert reports["notebooks"].drifted == 1 and reports["directories"].drifted == 0
    assert reports["secrets"].listed > 0 and reports["secrets"].drifted == 0
    assert all(r.outcome == "ok" and r.errors == 0 and r.created + r.updated == 0 for r in reports.values())
    assert pair.target_writes() == 0


def test_a_no_change_cycle_reads_the_listed_kinds_target_listings_ahead_and_still_sees_drift(pair: Pair) -> None:
    """Policies, pools and clusters (kinds whose listing carries every field) have their drift check's target listing
    read ahead too: a slow target listing of policies (0.3 s) no longer holds the clusters' behind it, each listed in
    turn on the engine's thread (at 10,000 objects ~1.5 s of a 6 s re-run); a pool deleted by hand on the target
    is still reported as drift in that same cycle."""
    with pair.source.workspace.lock:
        seed_workspace(pair.source.workspace, 200, seed=5)
    kinds = ["cluster_policies", "instance_pools", "clusters"]
    pair.sync(only=kinds)
    pair.sync(only=kinds)  # the first look after a write records each target object's baseline
    pool = next(iter(pair.dst.instance_pools.list()))
    pair.dst.instance_pools.delete(pool.instance_pool_id)
    pair.reset_stats()
    pair.target.set_faults(latency_ms=300, path_prefix="/api/2.0/policies/clusters/list")

    reports = pair.sync(only=kinds, listing_concurrency=4)

    order = list(pair.target.stats.document()["endpoints"])  # in the order their first request was answered
    assert order.index("GET /api/2.1/clusters/list") < order.index("GET /api/2.0/policies/clusters/list"), order
    assert reports["instance_pools"].drifted == 1
    assert reports["cluster_policies"].drifted == 0 and reports["clusters"].drifted == 0
    assert all(r.outcome == "ok" and r.errors == 0 and r.created + r.updated == 0 for r in reports.values())
    assert pair.target_writes() == 0


def test_a_re_run_refreshes_the_notebooks_it_wrote_instead_of_listing_the_target_tree_again(pair: Pair) -> None:
    """60 changed notebooks in a tree of more directories: their drift baselines come from 60 get-status calls,
    not from a second walk of the target tree (one `list` per directory), and the next cycle sees no drift."""
    with pair.source.workspace.lock:
        seed_workspace(pair.source.workspace, 1000, seed=5)
    kinds = ["directories", "notebooks"]
    pair.sync(only=kinds)
    pair.sync(only=kinds)
    paths = sorted(o.path for o in pair.src.workspace.list("/", recursive=True) if o.object_type.value == "NOTEBOOK")
    for n, path in enumerate(paths[:60]):  # each its own content: one content everywhere is an edit storm
        pair.src.workspace.upload(path, io.BytesIO(f"print({n})".encode()), language=Language.PYTHON, overwrite=True)
    pair.reset_stats()

    reports = pair.sync(only=kinds)

    directories = reports["directories"].listed
    assert reports["notebooks"].updated == 60 and directories > 60
    lists = pair.target.stats.document()["endpoints"]["GET /api/2.0/workspace/list"]["count"]
    assert lists <= directories + 1, f"the target tree was walked again: {lists} listings, {directories} directories"
    again = pair.sync(only=kinds)
    assert again["notebooks"].drifted == 0 and again["notebooks"].updated == 0


def test_an_initial_sync_lists_the_target_tree_once_after_writing_the_three_workspace_kinds(pair: Pair) -> None:
    """The drift baselines of directories, notebooks and files come from one walk of the target tree after all three
    were written: checked each after its own writes, the tree was walked again or refreshed path by path for each
    kind (at 2,000 objects three walks and 150 get-status calls, one walk thrown away as soon as the next kind
    imported). Every baseline is taken: the next cycle writes nothing and sees no drift."""
    with pair.source.workspace.lock:
        seed_workspace(pair.source.workspace, 300, seed=5)
    kinds = ["directories", "notebooks", "files"]
    pair.reset_stats()

    reports = pair.sync(only=kinds)

    directories = reports["directories"].listed
    assert all(reports[k].created > 0 for k in kinds) and directories > 10
    endpoints = pair.target.stats.document()["endpoints"]
    lists = endpoints["GET /api/2.0/workspace/list"]["count"]
    statuses = endpoints.get("GET /api/2.0/workspace/get-status", {}).get("count", 0)
    # one walk read ahead before the first write (a no-change cycle's), one after the writes: +1 for the root
    assert lists + statuses <= 2 * (directories + 1), f"{lists} listings, {statuses} get-status, {directories} dirs"
    pair.reset_stats()
    again = pair.sync(only=kinds)
    assert all(again[k].drifted == 0 and again[k].created + again[k].updated == 0 for k in kinds)
    assert pair.target_writes() == 0
    drifted = pair.dst.workspace.list("/", recursive=True)
    notebook = next(o.path for o in drifted if o.object_type.value == "NOTEBOOK")
    pair.dst.workspace.delete(notebook)
    assert pair.sync(only=kinds)["notebooks"].drifted == 1  # the baselines were taken: a deletion is drift


def test_the_acl_kind_finds_target_object_ids_in_the_tree_the_drift_check_walked(pair: Pair) -> None:
    """An initial sync of the tree and its ACLs walks the target tree once after the writes: the ACLs of directories
    (whose drift baseline holds no object id) take their target object ids from that walk, not from a second walk
    of every directory (plus 50 get-status first). Each ACL lands on its own object: what the target answers for a
    directory and a notebook is what the source has."""
    from databricks.sdk.service import iam

    with pair.source.workspace.lock:
        seed_workspace(pair.source.workspace, 300, seed=5)
    src, dst = pair.src, pair.dst
    notebook = next(o for o in src.workspace.list("/", recursive=True) if o.object_type.value == "NOTEBOOK")
    folder = src.workspace.get_status(posixpath.dirname(notebook.path or ""))
    for obj, kind, level in ((folder, "directories", "CAN_MANAGE"), (notebook, "notebooks", "CAN_RUN")):
        src.permissions.set(
            kind,
            str(obj.object_id),
            access_control_list=[
                iam.AccessControlRequest(group_name="users", permission_level=iam.PermissionLevel(level))
            ],
        )
    kinds = ["directories", "notebooks", "files", "permissions"]
    pair.reset_stats()

    reports = pair.sync(only=kinds)

    assert not [r for r in reports.values() if r.errors or r.blocked], reports
    directories = reports["directories"].listed
    endpoints = pair.target.stats.document()["endpoints"]
    lists = endpoints["GET /api/2.0/workspace/list"]["count"]
    statuses = endpoints.get("GET /api/2.0/workspace/get-status", {}).get("count", 0)
    # one walk read ahead before the first write, one after the writes: +1 for the root each
    assert lists + statuses <= 2 * (directories + 1), f"{lists} listings, {statuses} get-status, {directories} dirs"

    def levels(w: WorkspaceClient, kind: str, path: str) -> set[tuple[str, str]]:
        acl = w.permissions.get(kind, str(w.workspace.get_status(path).object_id)).access_control_list or []
        return {
            (e.group_name or e.user_name or "", p.permission_level.value) for e in acl for p in e.all_permissions or []
        }

    for obj, kind in ((folder, "directories"), (notebook, "notebooks")):
        assert ("users", "CAN_MANAGE" if kind == "directories" else "CAN_RUN") in levels(dst, kind, obj.path)
        assert levels(dst, kind, obj.path) == levels(src, kind, obj.path)


def test_a_stop_inside_the_tree_group_plans_the_deletes_without_walking_the_target_again(pair: Pair) -> None:
    """SIGTERM while the notebooks are written: the directories' drift check (deferred to the end of the tree group)
    does not walk the target tree before the process may exit; the baselines are taken by the next cycle, which
    sees no drift and writes nothing it had not written."""
    import threading

    from dbsync.engine import Engine

    with pair.source.workspace.lock:
        seed_workspace(pair.source.workspace, 300, seed=5)
    kinds = ["directories", "notebooks", "files"]
    stop = threading.Event()
    ctx = pair.context()
    pair.reset_stats()

    def stop_at_the_notebooks(report: Any) -> None:
        if report.kind == "notebooks":
            stop.set()

    reports = {r.kind: r for r in Engine(ctx, stop=stop, progress=stop_at_the_notebooks).cycle(kinds)}

    assert reports["directories"].created > 10 and reports["notebooks"].outcome == "interrupted"
    endpoints = pair.target.stats.document()["endpoints"]
    lists = endpoints["GET /api/2.0/workspace/list"]["count"]  # the walk read ahead before the first write
    statuses = endpoints.get("GET /api/2.0/workspace/get-status", {}).get("count", 0)
    assert lists + statuses <= reports["directories"].listed + 1, f"read after the stop: {lists} lists, {statuses}"
    again = pair.sync(only=kinds)
    assert all(again[k].drifted == 0 for k in kinds) and again["directories"].created == 0
