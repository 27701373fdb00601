"""One writer per store, no write into a promoted primary, the role on the workspaces, private store files.

Every test drives `dbsync` as an operator would (subprocesses over real HTTP against two emulators) and
checks what the operator would see on the workspaces. The role marker is a workspace file: the
Workspace API's `import` (format RAW, overwrite) and `export` are the documented calls
(docs.databricks.com/api/workspace/workspace/import, /export).
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import signal
import socket
import sqlite3
import stat
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from conftest import Pair
from databricks.sdk.service import compute, jobs
from databricks.sdk.service.workspace import ImportFormat

from dbsync.report import validate
from dbsync.role import MARKER_PATH
from dbsync.scheduler import Daemon
from dbsync.server import StatusServer
from dbsync_emulator.apis import workspace as emulated_workspace

AUTH = "safety-auth-token-1"
TASKS = [jobs.Task(task_key="t", environment_key="e", notebook_task=jobs.NotebookTask(notebook_path="/x"))]
ENVIRONMENTS = [jobs.JobEnvironment(environment_key="e")]
CRON_ON = jobs.CronSchedule(
    quartz_cron_expression="0 0 * * * ?", timezone_id="UTC", pause_status=jobs.PauseStatus.UNPAUSED
)


def _env(pair: Pair, **extra: str) -> dict[str, str]:
    return pair.env() | {"DBSYNC_IDENTITIES__CREATE_USERS": "true", "DBSYNC_LOG_LEVEL": "WARNING"} | extra


def _dbsync(pair: Pair, *args: str, cwd: Path | None = None, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "dbsync.cli", *args],
        env=_env(pair, **env),
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _run(pair: Pair, *args: str, timeout: float = 180, **env: str) -> tuple[int, str, str]:
    proc = _dbsync(pair, *args, **env)
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def _writes(pair: Pair, endpoint: str = "") -> int:
    """Requests that changed the target (anything but GET), optionally of one endpoint, since the last reset."""
    endpoints = pair.target.stats.document()["endpoints"]
    return sum(v["count"] for k, v in endpoints.items() if not k.startswith("GET") and endpoint in k)


def _job_copies(pair: Pair) -> Counter[str]:
    return Counter((j.settings.tags or {}).get("dbsync_source_job_id") or "" for j in pair.dst.jobs.list())


def _marker(w: Any) -> dict[str, Any]:
    return json.loads(base64.b64decode(w.workspace.export(MARKER_PATH).content or ""))


def _notebooks(pair: Pair, count: int) -> None:
    """`count` small notebooks on the source, made in-process (fast) under /Shared/bulk."""
    ws = pair.source.workspace
    with ws.lock:
        emulated_workspace.mkdirs(ws, "/Shared/bulk")
        for i in range(count):
            emulated_workspace.put_notebook(ws, f"/Shared/bulk/n{i:04d}", "PYTHON", f"print({i})".encode())


def _source_jobs(pair: Pair, count: int) -> None:
    for i in range(count):
        pair.src.jobs.create(name=f"job-{i}", tasks=TASKS, environments=ENVIRONMENTS, schedule=CRON_ON)


def _set_meta(state: Path, key: str, value: str) -> None:
    with contextlib.closing(sqlite3.connect(state, timeout=10, isolation_level=None)) as conn:
        conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", [key, value])


# -- defect 5: two writers on one store ---------------------------------------------------------
def test_two_concurrent_syncs_one_refuses_naming_the_holder_and_nothing_is_duplicated(seeded_pair: Pair) -> None:
    pair = seeded_pair
    pair.target.set_faults(latency_ms=5)  # the first run is still going when the second starts
    runs = [_dbsync(pair, "sync", "--once") for _ in range(2)]
    answers = [proc.communicate(timeout=300) for proc in runs]
    pair.target.set_faults()
    codes = sorted(proc.returncode for proc in runs)
    refused = next((err for proc, (_, err) in zip(runs, answers, strict=True) if proc.returncode == 2), "")
    assert codes[0] != 2 and codes[1] == 2, (codes, [a[1][-800:] for a in answers])
    line = refused.strip()
    assert "\n" not in line and "in use by `dbsync sync --once` (pid" in line and "on host" in line, refused

    assert all(n == 1 for n in _job_copies(pair).values())
    for listing in (pair.dst.clusters.list(), pair.dst.instance_pools.list()):
        tags = Counter((o.custom_tags or {}).get("dbsync_source_id") for o in listing)
        assert all(n == 1 for n in tags.values()), tags
    scripts = Counter(s.name for s in pair.dst.global_init_scripts.list())
    assert all(n == 1 for n in scripts.values()), scripts


def test_a_second_writer_reaching_the_store_by_another_path_is_refused(tmp_path: Path) -> None:
    from dbsync.store.lock import StoreLock

    store = tmp_path / "volume" / "state.db"
    store.parent.mkdir()
    store.touch()
    (tmp_path / "current.db").symlink_to(store)  # e.g. a symlink an operator keeps to the live store
    daemon = StoreLock(store, "serve")
    daemon.acquire()
    try:
        other = StoreLock(tmp_path / "current.db", "sync --once")
        assert not other.try_acquire(), "a symlink to the store took a lock of its own beside the daemon's"
    finally:
        daemon.release()
    assert StoreLock(tmp_path / "current.db", "sync --once").try_acquire()


def test_validate_reports_two_copies_of_one_source_job_as_not_ready(pair: Pair) -> None:
    _source_jobs(pair, 2)
    pair.sync(only=["jobs"])
    copy = next(j for j in pair.dst.jobs.list())
    pair.dst.jobs.create(
        name=copy.settings.name, tasks=TASKS, environments=ENVIRONMENTS, tags=dict(copy.settings.tags or {})
    )  # what a second writer left behind
    ctx = pair.context()
    try:
        report = validate(ctx, ["jobs"])
    finally:
        ctx.store.close()
    assert not report.ready_for_cutover
    assert any("duplicate" in reason and "jobs" in reason for reason in report.reasons), report.reasons


# -- defect 4: the write fence --------------------------------------------------------------------
def test_no_target_write_lands_after_the_role_flips_mid_cycle(pair: Pair) -> None:
    _notebooks(pair, 400)
    pair.target.set_faults(latency_ms=40)  # a slow target: the cycle is mid-way when the role flips
    proc = _dbsync(pair, "sync", "--once", "--kinds", "directories,notebooks")
    deadline = time.monotonic() + 120
    while _writes(pair, "workspace/import") < 20:
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.02)
    _set_meta(pair.state_path, "role", "cutover-in-progress")  # what a cutover's first write records
    time.sleep(0.5)  # requests already on the wire (8 at most, 40 ms each) land
    after_flip = _writes(pair)
    out, err = proc.communicate(timeout=120)
    pair.target.set_faults()
    assert _writes(pair) == after_flip, f"{_writes(pair) - after_flip} target writes after the role flipped"
    assert after_flip < 400 + 10
    assert proc.returncode == 1 and "refused" in out + err


# -- #15 defect 3: the role on the workspaces -----------------------------------------------------
def test_a_fresh_store_against_a_promoted_target_refuses_and_pauses_nothing(pair: Pair, tmp_path: Path) -> None:
    _source_jobs(pair, 3)
    code, _, err = _run(pair, "sync", "--once")
    assert code in (0, 1), err
    assert _marker(pair.dst)["role"] == "standby" and _marker(pair.src)["role"] == "primary"
    code, _, err = _run(pair, "cutover", "--yes", "--force")
    assert code == 0, err
    assert _marker(pair.dst)["role"] == "primary" and _marker(pair.src)["role"] == "standby"
    reports = list(pair.state_path.parent.glob("cutover-report-*.json"))
    assert reports and all(stat.S_IMODE(r.stat().st_mode) == 0o600 for r in reports)
    running = {j.job_id for j in pair.dst.jobs.list() if j.settings.schedule.pause_status == jobs.PauseStatus.UNPAUSED}
    assert len(running) == 3

    pair.reset_stats()
    code, out, err = _run(pair, "sync", "--once", DBSYNC_STATE_PATH=str(tmp_path / "lost" / "fresh.db"))
    assert code == 2, out + err
    assert len(err.strip().splitlines()) == 1 and "`dbsync reverse`" in err and "primary" in err, err
    assert pair.target_writes() == 0
    still = {j.job_id for j in pair.dst.jobs.list() if j.settings.schedule.pause_status == jobs.PauseStatus.UNPAUSED}
    assert still == running


def test_the_role_marker_is_never_replicated_or_counted(pair: Pair) -> None:
    pair.src.workspace.upload("/Shared/a.py", io.BytesIO(b"print(1)"), format=ImportFormat.AUTO, overwrite=True)
    pair.sync(only=["directories", "notebooks", "files"])
    pair.sync(only=["directories", "notebooks", "files"])
    assert _marker(pair.dst)["role"] == "standby"  # the target's own, not a copy of the source's "primary"
    ctx = pair.context()
    try:
        report = validate(ctx, ["directories", "notebooks", "files"])
        assert not any("/Shared/.dbsync" in key for key in ctx.store.live_keys_not_in("files", set())[1])
    finally:
        ctx.store.close()
    assert report.ready_for_cutover, report.reasons
    assert all(r.extra_count == 0 for r in report.kinds), [(r.kind, r.extra) for r in report.kinds]


# -- serve and cutover: the hand-off ----------------------------------------------------------------
class _Serve:
    def __init__(self, pair: Pair, tmp: Path, **env: str) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.log = tmp / f"serve-{self.port}.log"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "dbsync.cli", "serve"],
            env=_env(pair, DBSYNC_SERVER__PORT=str(self.port), DBSYNC_SERVER__AUTH_TOKEN=AUTH, **env),
            cwd=tmp,
            stdout=subprocess.DEVNULL,
            stderr=self.log.open("w"),
        )

    def get(self, path: str) -> httpx.Response:
        return httpx.get(f"http://127.0.0.1:{self.port}{path}", headers={"Authorization": f"Bearer {AUTH}"}, timeout=30)

    def wait_for(self, predicate: Any, seconds: float = 60) -> httpx.Response:
        deadline = time.monotonic() + seconds
        while True:
            try:
                answer = self.get("/cutover-readyz")
                if predicate(answer):
                    return answer
            except httpx.HTTPError:
                answer = None
            assert self.proc.poll() is None and time.monotonic() < deadline, (answer, self.log.read_text()[-2000:])
            time.sleep(0.2)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=60)


def test_cutover_takes_the_store_over_from_a_running_daemon_without_duplicates(
    seeded_pair: Pair, tmp_path: Path
) -> None:
    pair = seeded_pair
    pair.target.set_faults(latency_ms=5)
    serve = _Serve(pair, tmp_path)
    try:
        deadline = time.monotonic() + 60
        while pair.target_writes() < 30:  # the daemon is mid-way through its first reconcile
            assert serve.proc.poll() is None and time.monotonic() < deadline, serve.log.read_text()[-2000:]
            time.sleep(0.05)
        code, _, err = _run(pair, "cutover", "--yes", "--force", timeout=300)
        assert code == 0, err[-3000:]
        assert "hand over" in err, err[-2000:]
        assert serve.proc.poll() is None, "the daemon stays up to serve /metrics and /readyz"
        ready = serve.wait_for(lambda r: "cutover is complete" in r.text, seconds=10)
        assert ready.status_code == 503
        pair.target.set_faults()
        pair.reset_stats()
        time.sleep(2)  # several daemon polls and intervals
        assert pair.target_writes() == 0
    finally:
        assert serve.stop() == 0
    copies = _job_copies(pair)
    assert all(n == 1 for n in copies.values()), {k: n for k, n in copies.items() if n > 1}
    assert sum(copies.values()) == len(list(pair.src.jobs.list()))
    assert _marker(pair.dst)["role"] == "primary"


def test_readyz_follows_the_role_from_in_progress_to_complete(pair: Pair, tmp_path: Path) -> None:
    pair.src.workspace.mkdirs("/Shared/live")
    serve = _Serve(pair, tmp_path, DBSYNC_KINDS__DIRECTORIES__INTERVAL="1")
    try:
        serve.wait_for(lambda r: r.status_code == 200)
        _set_meta(pair.state_path, "role", "cutover-in-progress")
        serve.wait_for(lambda r: "cutover is in progress" in r.text, seconds=20)
        _set_meta(pair.state_path, "role", "cutover-complete")
        answer = serve.wait_for(lambda r: "cutover is complete" in r.text, seconds=5)
        assert answer.status_code == 503
    finally:
        serve.stop()


# -- #14 defect 10: --skip-source against a live source ------------------------------------------
def test_skip_source_is_refused_while_the_source_answers(pair: Pair) -> None:
    _source_jobs(pair, 2)
    pair.sync(only=["jobs"])
    pair.reset_stats()
    code, out, err = _run(pair, "cutover", "--yes", "--skip-source")
    assert code == 2, out + err
    assert "answers" in err and "--force" in err and len(err.strip().splitlines()) == 1, err
    assert pair.target_writes() == 0
    assert all(j.settings.schedule.pause_status == jobs.PauseStatus.PAUSED for j in pair.dst.jobs.list())
    assert all(j.settings.schedule.pause_status == jobs.PauseStatus.UNPAUSED for j in pair.src.jobs.list())


# -- #14 defect 9: what the store holds and who may read it ---------------------------------------
def test_the_store_its_wal_lock_and_hmac_key_are_private_and_the_key_is_not_in_the_store(pair: Pair) -> None:
    pair.state_path.write_bytes(b"")
    pair.state_path.chmod(0o644)  # a store an older dbsync made under umask 022
    pair.src.secrets.create_scope("risk")
    pair.src.secrets.put_secret("risk", "password", string_value="Summer2024!")
    for handle in (pair.source, pair.target):  # values read with secrets/get, which the emulator refuses by default
        with handle.workspace.lock:
            handle.workspace.table("settings")["secrets_get_allowed"] = True
    proc = subprocess.Popen(
        [sys.executable, "-m", "dbsync.cli", "sync", "--once", "--kinds", "secret_scopes,secrets"],
        env=_env(pair) | {"DBSYNC_SECRETS__VALUES_FROM": "api"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: os.umask(0o022),
    )
    _, err = proc.communicate(timeout=120)
    assert proc.returncode in (0, 1), err
    assert pair.dst.secrets.get_secret("risk", "password").value  # replicated
    files = [pair.state_path, Path(f"{pair.state_path}.lock"), Path(f"{pair.state_path}.hmac-key")]
    files += [p for p in (Path(f"{pair.state_path}-wal"), Path(f"{pair.state_path}-shm")) if p.exists()]
    modes = {p.name: oct(stat.S_IMODE(p.stat().st_mode)) for p in files}
    assert set(modes.values()) == {"0o600"}, modes
    with contextlib.closing(sqlite3.connect(pair.state_path)) as conn:
        keys = {row[0] for row in conn.execute("SELECT key FROM meta")}
    assert "secret_hmac_key" not in keys


# -- #14 defect 8: the report cannot be used to spend the workspaces' rate limits ------------------
def test_two_reports_within_the_cache_time_cost_one_listing(pair: Pair) -> None:
    _source_jobs(pair, 2)
    pair.sync(only=["jobs"])
    ctx = pair.context(kinds={name: {"enabled": name == "jobs"} for name in _kind_names()})
    now = [1000.0]
    server = StatusServer(("127.0.0.1", 0), Daemon(ctx), AUTH, clock=lambda: now[0])
    server.start()
    try:
        url = f"{server.url}/report"
        headers = {"Authorization": f"Bearer {AUTH}"}
        pair.reset_stats()
        assert httpx.get(url, headers=headers, timeout=30).status_code == 200
        first = pair.source.stats.document()["endpoints"]
        now[0] += 30  # half a minute later, another caller
        assert httpx.get(url.replace("/report", "/report.html"), headers=headers, timeout=30).status_code == 200
        assert pair.source.stats.document()["endpoints"] == first, "the second report listed the source again"
        now[0] += 31
        httpx.get(url, headers=headers, timeout=30)
        assert pair.source.stats.document()["endpoints"] != first  # after the minute, a fresh listing
    finally:
        server.shutdown()
        server.server_close()
        ctx.store.close()


def _kind_names() -> list[str]:
    from dbsync.registry import KIND_NAMES

    return list(KIND_NAMES)


def test_a_lost_store_never_resets_compute_on_a_promoted_primary(pair: Pair, tmp_path: Path) -> None:
    """The same refusal from the cluster side: a fresh store must not terminate the new primary's clusters."""
    pair.src.clusters.create(
        cluster_name="etl", spark_version="15.4.x-scala2.12", node_type_id="i3.xlarge", num_workers=1
    )
    code, _, err = _run(pair, "sync", "--once", "--kinds", "clusters")
    assert code in (0, 1), err
    code, _, err = _run(pair, "cutover", "--yes", "--force")
    assert code == 0, err
    target_cluster = next(iter(pair.dst.clusters.list()))
    pair.dst.clusters.start(target_cluster.cluster_id)  # the new primary's team starts it
    pair.reset_stats()
    code, _, err = _run(pair, "sync", "--once", DBSYNC_STATE_PATH=str(tmp_path / "other.db"))
    assert code == 2 and "`dbsync reverse`" in err, err
    assert pair.target_writes() == 0
    assert pair.dst.clusters.get(target_cluster.cluster_id).state in (compute.State.PENDING, compute.State.RUNNING)


def test_a_rollback_gives_the_markers_back_and_replication_resumes(pair: Pair) -> None:
    _source_jobs(pair, 1)
    assert _run(pair, "sync", "--once")[0] in (0, 1)
    assert _run(pair, "cutover", "--yes", "--force")[0] == 0
    code, _, err = _run(pair, "cutover", "--rollback", "--yes")
    assert code == 0, err
    assert _marker(pair.dst)["role"] == "standby" and _marker(pair.src)["role"] == "primary"
    pair.src.jobs.create(name="after rollback", tasks=TASKS, environments=ENVIRONMENTS)
    code, _, err = _run(pair, "sync", "--once", "--kinds", "jobs")
    assert code == 0, err
    assert "after rollback" in {j.settings.name for j in pair.dst.jobs.list()}
