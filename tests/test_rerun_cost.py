"""What a re-run pays before its first useful request: the modules a `dbsync` process loads.

A `sync --once` from cron pays its start-up on every run; at 10,000 objects the start-up was a quarter of a
re-run's wall time (BENCHMARKS.md "Re-run after trimming fixed costs"). Most of it was the databricks-sdk
package loading all of its ~60 service modules (2,300 dataclasses) for one WorkspaceClient, and the
daemon's scheduler and status server loaded by commands that never serve.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

from databricks.sdk import WorkspaceClient
from databricks.sdk.core import Config

from dbsync import sdk
from dbsync_emulator import EmulatorHandle
from dbsync_emulator.seed import seed_workspace
from tests.conftest import Pair

REPO = Path(__file__).resolve().parent.parent
# Daemon-only modules: the scheduler (apscheduler) and the status server.
DAEMON_ONLY = ("apscheduler", "dbsync.scheduler", "dbsync.server", "dbsync.cli.serve")
# Service modules of the SDK no head-to-head kind uses: loaded only by a full WorkspaceClient.
UNUSED_SDK = ("databricks.sdk.service.cleanrooms", "databricks.sdk.service.marketplace", "databricks.sdk.service.apps")

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
    assert not [m for m in loaded if m.startswith(DAEMON_ONLY)]
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
    source listings, so a slow one (2 s for the target's policies) no longer holds the kinds after it; a hand
    edit of a job on the target is still reported as drift in that same cycle."""
    with pair.source.workspace.lock:
        seed_workspace(pair.source.workspace, 40, seed=5)
    kinds = ["cluster_policies", "instance_pools", "jobs"]
    pair.sync(only=kinds)
    pair.sync(only=kinds)  # the first look after a write records each target object's baseline
    target_job = next(iter(pair.dst.jobs.list(expand_tasks=True)))
    assert target_job.settings is not None and target_job.job_id is not None
    target_job.settings.name = "edited-by-hand-on-the-standby"
    pair.dst.jobs.reset(target_job.job_id, target_job.settings)
    pair.reset_stats()
    pair.target.set_faults(latency_ms=2000, path_prefix="/api/2.0/policies/clusters/list")

    reports = pair.sync(only=kinds, listing_concurrency=4)

    order = list(pair.target.stats.document()["endpoints"])  # in the order their first request was answered
    assert order.index("GET /api/2.2/jobs/list") < order.index("GET /api/2.0/policies/clusters/list"), order
    assert reports["jobs"].drifted == 1 and reports["cluster_policies"].drifted == 0
    assert all(r.outcome == "ok" and r.errors == 0 and r.created + r.updated == 0 for r in reports.values())
    assert pair.target_writes() == 0
