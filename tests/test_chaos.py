"""Chaos, fast: dbsync killed mid-sync, throttled, handed a broken store and awkward input.

The full versions (20+ kills over 2,000 objects, a 300-object storm, a source restarted empty) are in
benchmarks/chaos.py; these keep the same promises on small sets, within seconds.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import io
import os
import random
import resource
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from conftest import Pair
from databricks.sdk.service import compute, iam, jobs
from databricks.sdk.service.workspace import ImportFormat, Language

from dbsync.store import Store


def _dbsync(pair: Pair, *args: str, state: Path | None = None, **popen: object) -> subprocess.Popen[str]:
    env = pair.env() | {"DBSYNC_IDENTITIES__CREATE_USERS": "true", "DBSYNC_LOG_LEVEL": "WARNING"}
    # Secret values over secrets/get, which a test allows on its source emulator (a real workspace refuses it).
    env["DBSYNC_SECRETS__VALUES_FROM"] = "api"
    if state is not None:
        env["DBSYNC_STATE_PATH"] = str(state)
    return subprocess.Popen(
        [sys.executable, "-m", "dbsync.cli", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,  # type: ignore[call-overload]
    )


def _cycles_started(state: Path) -> int:
    if not state.exists():
        return 0
    try:
        with contextlib.closing(sqlite3.connect(f"file:{state}?mode=ro", uri=True, timeout=5)) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM cycles").fetchone()[0])
    except sqlite3.Error:
        return 0


def _tree(w) -> dict[str, str]:
    return {o.path: o.object_type.value for o in w.workspace.list("/", recursive=True)}


def _notebooks(w) -> dict[str, bytes]:
    return {p: w.workspace.download(p).read() for p, kind in _tree(w).items() if kind == "NOTEBOOK"}


def test_kill_9_at_random_points_then_converges_without_duplicates(seeded_pair: Pair) -> None:
    rng = random.Random(20261125)  # fixed: the same kill points every run
    seeded_pair.target.set_faults(latency_ms=8)  # a target slow enough that a kill lands mid-sync
    seeded_pair.source.workspace.table("settings")["secrets_get_allowed"] = True
    killed = 0
    for _ in range(6):  # three kills; a run that ends before its kill point (a fast machine) does not count
        if killed == 3:
            break
        started = _cycles_started(seeded_pair.state_path)
        proc = _dbsync(seeded_pair, "sync", "--once")
        deadline = time.monotonic() + 60
        while _cycles_started(seeded_pair.state_path) == started and proc.poll() is None:
            assert time.monotonic() < deadline, "dbsync never started a cycle"
            time.sleep(0.02)
        time.sleep(rng.uniform(0.1, 1.5))
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            killed += 1
        proc.communicate(timeout=30)
    seeded_pair.target.set_faults()
    assert killed == 3

    for _ in range(2):  # a cluster created just before a kill may be running: the next run stops it first
        final = _dbsync(seeded_pair, "sync", "--once")
        out, err = final.communicate(timeout=120)
        if final.returncode == 0:
            break
    assert final.returncode == 0, out + err[-2000:]

    src, dst = seeded_pair.src, seeded_pair.dst
    assert _notebooks(src) == _notebooks(dst)
    assert _tree(src).keys() <= _tree(dst).keys()
    untagged = [j.as_dict() for j in dst.jobs.list() if not (j.settings.tags or {}).get("dbsync_source_job_id")]
    assert untagged == []  # a job on the target without its source's id: one dbsync lost track of
    job_tags = [j.settings.tags["dbsync_source_job_id"] for j in dst.jobs.list()]
    assert sorted(job_tags) == sorted(str(j.job_id) for j in src.jobs.list())  # each source job exactly once
    for listing in (dst.clusters.list(), dst.instance_pools.list()):
        tags = [(o.custom_tags or {}).get("dbsync_source_id") for o in listing]
        assert len(tags) == len(set(tags)) and None not in tags
    assert all(c.state.value in ("TERMINATED", "TERMINATING") for c in dst.clusters.list())


def test_429_and_503_storm_converges_and_retry_after_is_honoured(pair: Pair) -> None:
    src = pair.src
    src.workspace.mkdirs("/Shared/storm")
    for i in range(3):
        src.workspace.upload(f"/Shared/storm/n{i}.py", io.BytesIO(f"print({i})".encode()), overwrite=True)
    src.jobs.create(
        name="storm",
        tasks=[
            jobs.Task(
                task_key="t",
                environment_key="e",
                notebook_task=jobs.NotebookTask(notebook_path="/Shared/storm/n0.py"),
            )
        ],
        environments=[jobs.JobEnvironment(environment_key="e")],
    )
    pair.reset_stats()
    for handle in (pair.source, pair.target):
        handle.set_faults(rate_429=0.20, rate_503=0.05, retry_after_seconds=1, deterministic=True)
    reports = pair.sync(only=["directories", "notebooks", "jobs"])
    for handle in (pair.source, pair.target):
        handle.set_faults()
    assert all(r.errors == 0 and r.blocked == 0 for r in reports.values()), reports
    assert _notebooks(pair.src) == _notebooks(pair.dst)
    assert [j.settings.name for j in pair.dst.jobs.list()] == ["storm"]
    for handle in (pair.source, pair.target):
        ledger = handle.stats.document()["retry_after"]
        # Every refused request came back, and none before its Retry-After had elapsed.
        assert ledger["sent"] > 0 and ledger["retried"] == ledger["sent"] and ledger["early"] == 0, ledger


def test_retry_after_ledger_catches_an_impatient_client(pair: Pair) -> None:
    import httpx

    pair.source.set_faults(rate_429=1.0, retry_after_seconds=5)
    headers = {"Authorization": f"Bearer {pair.source.token}"}
    for _ in range(2):
        httpx.get(f"{pair.source.url}/api/2.0/workspace/list", params={"path": "/"}, headers=headers)
    ledger = pair.source.stats.document()["retry_after"]
    assert ledger["sent"] == 2 and ledger["retried"] == 1 and ledger["early"] == 1
    assert ledger["min_margin_seconds"] < 0


def _drop_dac_override() -> None:
    # Root ignores file modes; without CAP_DAC_OVERRIDE (dropped for the exec'd child) it obeys them.
    libc = ctypes.CDLL(None, use_errno=True)
    # PR_CAPBSET_DROP of CAP_DAC_OVERRIDE. Best effort: where it is refused (no CAP_SETPCAP) and root keeps
    # the capability, the read-only case fails its exit-code assertion, which names it.
    libc.prctl(24, 1, 0, 0, 0)


def _file_size_limit() -> None:
    # A full disk without privileges: writes past the limit fail with EFBIG instead of killing dbsync.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (16 * 1024, 16 * 1024))


def test_locked_read_only_and_full_stores_stop_with_exit_2_and_write_nothing(pair: Pair, tmp_path: Path) -> None:
    pair.src.workspace.upload("/Shared/a.py", io.BytesIO(b"print(1)"), overwrite=True)
    store = Store(pair.state_path)  # a store of this pair that already exists
    store.bind_pair(str(pair.src.get_workspace_id()), str(pair.dst.get_workspace_id()))
    store.close()
    locked = tmp_path / "locked.db"
    readonly_dir = tmp_path / "readonly"
    readonly_dir.mkdir()
    readonly = readonly_dir / "state.db"
    for copy in (locked, readonly):
        copy.write_bytes(pair.state_path.read_bytes())
    readonly.chmod(0o444)
    readonly_dir.chmod(0o555)
    holder = sqlite3.connect(locked, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another process mid-transaction (a second dbsync, a backup)
    try:
        runs = {
            "locked": _dbsync(pair, "sync", "--once", state=locked),
            "read-only": _dbsync(
                pair, "sync", "--once", state=readonly, preexec_fn=_drop_dac_override if os.geteuid() == 0 else None
            ),
            "disk": _dbsync(pair, "sync", "--once", state=tmp_path / "full" / "state.db", preexec_fn=_file_size_limit),
        }
        answers = {name: proc.communicate(timeout=60) for name, proc in runs.items()}
    finally:
        holder.rollback()
        holder.close()
        readonly_dir.chmod(0o755)
    for name, proc in runs.items():
        _, err = answers[name]
        assert proc.returncode == 2, (name, err)
        last = err.strip().splitlines()[-1]
        assert last.startswith("dbsync: state store") and name in last, (name, err)
        assert "Traceback" not in err
    assert pair.target_writes() == 0


def test_awkward_source_objects_are_replicated_or_reported(pair: Pair) -> None:
    src, dst = pair.src, pair.dst
    src.workspace.mkdirs("/Shared/odd")
    bodies = {
        "/Shared/odd/not utf-8 \u2013 名前 📓": b"x = '\xff\xfe'\x00\n# COMMAND ---\n",
        '/Shared/odd/it\'s "quoted"  twice': b"",
        "/Shared/odd/percent%20plus+amp&hash#": b"print(1)\r\n# COMMAND ----------\r\nprint(2)\r\n",
        "/Shared/odd/ten megabytes": b"x = 1\n" * (10_000_000 // 6),
    }
    for path, body in bodies.items():
        src.workspace.import_(
            path, content=base64.b64encode(body).decode(), format=ImportFormat.SOURCE, language=Language.PYTHON
        )
    cluster = compute.ClusterSpec(spark_version="15.4.x-scala2.12", node_type_id="i3.xlarge", num_workers=1)
    tasks = [
        jobs.Task(
            task_key=f"t{i:03d}",
            job_cluster_key="main",
            notebook_task=jobs.NotebookTask(notebook_path="/Shared/odd/ten megabytes"),
            depends_on=[jobs.TaskDependency(task_key=f"t{i - 1:03d}")] if i else None,
        )
        for i in range(150)  # past the 100 a jobs/list page carries per job
    ]
    src.jobs.create(
        name='150 tasks "q"', tasks=tasks, job_clusters=[jobs.JobCluster(job_cluster_key="main", new_cluster=cluster)]
    )
    a = src.groups.create(display_name="cycle a")
    b = src.groups.create(display_name="cycle b", members=[iam.ComplexValue(value=a.id)])
    src.groups.patch(
        a.id,
        operations=[iam.Patch(op=iam.PatchOp.ADD, value={"members": [{"value": b.id}]})],
        schemas=[iam.PatchSchema.URN_IETF_PARAMS_SCIM_API_MESSAGES_2_0_PATCH_OP],
    )
    gone = src.users.create(user_name="gone@example.com")
    notebook_id = src.workspace.get_status("/Shared/odd/ten megabytes").object_id
    src.permissions.update(
        "notebooks",
        str(notebook_id),
        access_control_list=[
            iam.AccessControlRequest(user_name="gone@example.com", permission_level=iam.PermissionLevel.CAN_RUN),
            iam.AccessControlRequest(group_name="cycle a", permission_level=iam.PermissionLevel.CAN_READ),
        ],
    )
    src.users.delete(gone.id)  # the ACL still names a user who no longer exists

    reports = pair.sync(identities={"create_users": True})
    assert not [r for r in reports.values() if r.errors or r.blocked], reports
    assert _notebooks(dst) == {p: src.workspace.download(p).read() for p in bodies}
    (copy,) = list(dst.jobs.list())
    assert len(dst.jobs.get(copy.job_id).settings.tasks) == 150 and copy.settings.name == '150 tasks "q"'
    members = {g.display_name: {m.display for m in g.members or []} for g in dst.groups.list()}
    assert members["cycle a"] == {"cycle b"} and members["cycle b"] == {"cycle a"}
    target_id = dst.workspace.get_status("/Shared/odd/ten megabytes").object_id
    acl = dst.permissions.get("notebooks", str(target_id)).access_control_list
    direct = {(e.group_name or e.user_name, p.permission_level.value) for e in acl for p in e.all_permissions}
    assert ("cycle a", "CAN_READ") in direct and not any(name == "gone@example.com" for name, _ in direct)
    partial = pair.context().store.events(outcome="partial")  # written, with the missing user's entry left out
    assert any("gone@example.com" in e["message"] for e in partial)
