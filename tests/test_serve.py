"""`dbsync serve`: schedules, health, metrics over HTTP, the report, shutdown and restart."""

from __future__ import annotations

import io
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import Pair
from databricks.sdk.errors import NotFound
from freezegun import freeze_time

from dbsync import metrics
from dbsync.config import Settings
from dbsync.engine import update_gauges
from dbsync.model import Resource
from dbsync.scheduler import Daemon, Health, group_interval, kind_groups
from dbsync.store import Store

AUTH = "serve-auth-token-123"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Served:
    """A `dbsync serve` subprocess and how to talk to it."""

    def __init__(self, pair: Pair, tmp: Path, **env: str) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = (
            pair.env()
            | {
                "DBSYNC_SERVER__PORT": str(self.port),
                "DBSYNC_SERVER__AUTH_TOKEN": AUTH,
                "DBSYNC_IDENTITIES__CREATE_USERS": "true",  # the emulated target has no identity provider
            }
            | env
        )
        self.log = tmp / f"serve-{self.port}.log"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "dbsync.cli", "serve"],
            env=self.env,
            cwd=tmp,
            stdout=subprocess.PIPE,
            stderr=self.log.open("w"),
            text=True,
        )

    def get(self, path: str, auth: bool = True) -> httpx.Response:
        headers = {"Authorization": f"Bearer {AUTH}"} if auth else {}
        return httpx.get(self.url + path, headers=headers, timeout=30)

    def wait_in_sync(self, deadline: float = 60) -> dict:
        """Poll /report (bounded) until the target is in sync; the report document."""
        end = time.monotonic() + deadline
        report: dict = {}
        while time.monotonic() < end:
            try:
                assert self.get("/readyz").status_code == 200
                report = self.get("/report").json()
                if report["ready_for_cutover"]:
                    return report
            except httpx.HTTPError:
                pass
            assert self.proc.poll() is None, self.log.read_text()
            time.sleep(0.5)
        raise AssertionError(f"not in sync in {deadline} s: {report.get('reasons')} {self.log.read_text()[-1500:]}")

    def terminate(self, timeout: float = 30) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)


@pytest.fixture
def served(pair: Pair, tmp_path: Path) -> Iterator[Served]:
    pair.src.workspace.mkdirs("/Shared/live")
    pair.src.workspace.upload("/Shared/live/n.py", io.BytesIO(b"print('v1')"), overwrite=True)
    server = Served(pair, tmp_path, DBSYNC_KINDS__NOTEBOOKS__INTERVAL="1", DBSYNC_KINDS__DIRECTORIES__INTERVAL="1")
    try:
        yield server
    finally:
        if server.proc.poll() is None:
            server.proc.kill()
            server.proc.wait()


def test_kinds_sharing_a_listing_run_together_at_the_shortest_interval() -> None:
    settings = Settings(kinds={"files": {"interval": 30}})
    groups = kind_groups(settings)
    tree = next(g for g in groups if "notebooks" in g)
    assert tree == ("directories", "notebooks", "files")
    assert group_interval(settings, tree) == 30
    assert group_interval(settings, ("jobs",)) == 120 and group_interval(settings, ("permissions",)) == 300
    disabled = Settings(kinds={"jobs": {"enabled": False}})
    assert all("jobs" not in g for g in kind_groups(disabled))


def test_readiness_goes_stale_when_a_group_stops_succeeding() -> None:
    settings = Settings()
    groups = [("jobs",)]
    with freeze_time("2026-01-01 00:00:00") as clock:
        health = Health()
        clock.tick(3600)
        assert health.problems(settings, groups) == []  # a long first reconcile is not a failure
        health.reconciled = True
        health.last_ok[("jobs",)] = time.time()
        assert health.problems(settings, groups) == []
        clock.tick(3 * 120 - 1)
        assert health.problems(settings, groups) == []
        clock.tick(2)
        assert health.problems(settings, groups) == ["jobs: no successful cycle for 361 s"]


def test_lag_is_the_age_of_the_oldest_unapplied_change(tmp_path: Path) -> None:
    store = Store(tmp_path / "lag.db")
    gauge = metrics.REPLICATION_LAG.labels("jobs")
    with freeze_time("2026-01-01 00:00:00") as clock:
        store.record_failure(Resource("jobs", "1", payload={"a": 1}), "error", "target said no")
        update_gauges(store, ["jobs"])
        assert gauge._value.get() == 0
        clock.tick(90)
        update_gauges(store, ["jobs"])  # a stuck cycle: nothing applied, lag keeps growing
        assert gauge._value.get() == 90
        from dbsync.model import Applied

        store.record_applied(Resource("jobs", "1", payload={"a": 1}), Applied("9"))
        update_gauges(store, ["jobs"])
        assert gauge._value.get() == 0
    store.close()


def test_serve_follows_the_source_and_exposes_metrics(pair: Pair, served: Served, promtool: str) -> None:
    served.wait_in_sync()
    assert served.get("/healthz", auth=False).status_code == 200
    assert served.get("/metrics", auth=False).status_code == 401
    assert served.get("/report", auth=False).status_code == 401

    exposition = served.get("/metrics").text
    for name in (
        "dbsync_resources",
        "dbsync_changes_applied_total",
        "dbsync_cycle_duration_seconds_bucket",
        "dbsync_last_success_timestamp_seconds",
        "dbsync_replication_lag_seconds",
        "dbsync_api_requests_total",
        "dbsync_delete_guard_tripped",
        "dbsync_cutover_state",
    ):
        assert name in exposition, name
    assert 'dbsync_changes_applied_total{action="create",kind="notebooks"} 1.0' in exposition
    assert "/Shared/live" not in exposition  # never an object path as a label
    checked = subprocess.run([promtool, "check", "metrics"], input=exposition, capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr

    assert "Ready for cutover" in served.get("/report.html").text

    pair.src.workspace.upload("/Shared/live/n.py", io.BytesIO(b"print('v2')"), overwrite=True)
    deadline = time.monotonic() + 2 * 1 + 10  # two intervals, plus the cycle itself on a loaded machine
    while b"v2" not in pair.dst.workspace.download("/Shared/live/n.py").read():
        assert time.monotonic() < deadline, "the target did not follow the source"
        time.sleep(0.2)

    assert served.terminate() == 0
    log = served.log.read_text()
    for secret in (pair.source.token, pair.target.token, AUTH):
        assert secret not in log


def test_sigterm_mid_cycle_exits_cleanly_and_restart_converges(pair: Pair, tmp_path: Path) -> None:
    from dbsync_emulator.seed import seed_workspace

    with pair.source.workspace.lock:
        seed_workspace(pair.source.workspace, 300, seed=9)
    pair.target.set_faults(latency_ms=15)  # a slow target keeps the first reconcile busy
    pair.source.workspace.table("settings")["secrets_get_allowed"] = True  # refused by default, as on a workspace
    server = Served(pair, tmp_path, DBSYNC_SECRETS__VALUES_FROM="api")
    deadline = time.monotonic() + 60
    while len(list(pair.dst.workspace.list("/", recursive=True))) < 20:
        assert time.monotonic() < deadline and server.proc.poll() is None, server.log.read_text()[-2000:]
        time.sleep(0.1)
    started = time.monotonic()
    assert server.terminate(timeout=35) == 0
    assert time.monotonic() - started < 30  # shutdown_timeout
    pair.target.set_faults()

    restart = Served(pair, tmp_path, DBSYNC_SECRETS__VALUES_FROM="api")
    try:
        restart.wait_in_sync(deadline=120)
    finally:
        assert restart.terminate() == 0
    tags = [(j.settings.tags or {}).get("dbsync_source_job_id") for j in pair.dst.jobs.list()]
    assert len(tags) == len(set(tags)) == len(list(pair.src.jobs.list()))
    cluster_tags = [c.custom_tags["dbsync_source_id"] for c in pair.dst.clusters.list()]
    assert len(cluster_tags) == len(set(cluster_tags))


def test_serve_refuses_to_replicate_after_cutover(pair: Pair, tmp_path: Path) -> None:
    assert (
        subprocess.run(
            [sys.executable, "-m", "dbsync.cli", "sync", "--once", "--kinds", "directories"],
            env=pair.env(),
            cwd=tmp_path,
            capture_output=True,
        ).returncode
        == 0
    )
    store = Store(pair.state_path)
    store.set_meta("role", "cutover-complete")
    store.close()
    pair.src.workspace.mkdirs("/Shared/after-cutover")
    pair.reset_stats()
    server = Served(pair, tmp_path)
    try:
        deadline = time.monotonic() + 30
        while True:  # it keeps running (a pod must not crash-loop), says why it is not ready, writes nothing
            try:
                ready = server.get("/cutover-readyz")
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, server.log.read_text()
                time.sleep(0.2)
        assert ready.status_code == 503 and "cutover is complete" in ready.json()["problems"][0]
        assert "dbsync_cutover_state 2.0" in server.get("/metrics").text
        time.sleep(1)
        assert pair.target_writes() == 0
    finally:
        assert server.terminate() == 0
    with pytest.raises(NotFound):
        pair.dst.workspace.get_status("/Shared/after-cutover")


def test_port_in_use_is_a_clear_config_error(pair: Pair, tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "dbsync.cli", "serve"],
            env=pair.env() | {"DBSYNC_SERVER__PORT": str(port)},
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 2 and "server.port" in result.stderr and str(port) in result.stderr


def test_report_page_escapes_names_and_links_to_the_objects() -> None:
    from dbsync.report import KindValidation, Report
    from dbsync.report_html import render

    notebooks = KindValidation(
        "notebooks", source_count=3, target_count=2, in_sync=2, missing=["/Shared/<b>x</b>"], missing_count=1
    )
    jobs = KindValidation("jobs", source_count=1, target_count=1, in_sync=1, drifted=["42"], drifted_count=1)
    page = render(
        Report(0.0, [notebooks, jobs], False, ["notebooks: 1 not replicated"]),
        target_host="https://dr.example.com",
        source_host="https://primary.example.com",
        labels=lambda kind, keys: {"42": ("nightly <etl>", "1042")} if kind == "jobs" else {},
    )
    assert "<b>x</b>" not in page and "&lt;b&gt;x&lt;/b&gt;" in page
    assert 'href="https://primary.example.com/#workspace/Shared/%3Cb%3Ex%3C/b%3E"' in page
    assert 'href="https://dr.example.com/jobs/1042">nightly &lt;etl&gt;</a>' in page  # drift: the edited target copy
    assert "Not ready for cutover" in page and "<script" not in page


def test_the_first_reconcile_records_each_group_when_it_ends_not_when_every_kind_has(pair: Pair) -> None:
    """`dbsync serve` starts with every kind once. Run as one cycle, no kind's outcome (nor its freshness) was
    recorded until the last kind ended: at 100,000 objects under a request budget, every kind looked ~30 min
    stale. Each group is its own cycle now, in dependency order: policies are recorded while jobs still list."""
    import threading

    from dbsync.registry import kind_names
    from dbsync.scheduler import Daemon
    from dbsync_emulator.seed import seed_workspace

    with pair.source.workspace.lock:
        seed_workspace(pair.source.workspace, 20, seed=5)
    ctx = pair.context(kinds={k: {"enabled": k in ("cluster_policies", "jobs")} for k in kind_names()})
    daemon = Daemon(ctx)
    pair.source.set_faults(latency_ms=3000, path_prefix="/api/2.2/jobs/list")
    reconcile = threading.Thread(target=daemon.reconcile)
    reconcile.start()
    try:
        deadline = time.monotonic() + 30
        while ctx.store.last_success("cluster_policies") is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert ctx.store.last_success("cluster_policies") is not None
        assert reconcile.is_alive() and ctx.store.last_success("jobs") is None  # jobs still listing
    finally:
        reconcile.join(timeout=60)
    assert ctx.store.last_success("jobs") is not None and daemon.health.reconciled


def test_a_dashboard_schedules_cycle_in_flight_does_not_hold_the_kinds_listed_whole(pair: Pair) -> None:
    """The schedules' listing is a call per dashboard (~170 s a cycle at 2,500 dashboards under a budget): on the
    first worker it held the jobs and clusters kinds, listed every 2 minutes, for that long (run 5 of the 100,000
    object benchmark: 549-945 s stale). Dashboards and their schedules run on a worker of their own, one after the
    other (a schedule names its dashboard by id), while the jobs' cycle goes through."""
    import threading

    from dbsync.registry import kind_names
    from dbsync.scheduler import Daemon
    from dbsync_emulator.seed import seed_workspace

    with pair.source.workspace.lock:
        seed_workspace(pair.source.workspace, 20, seed=5)
    enabled = ("dashboards", "dashboard_schedules", "cluster_policies", "jobs")
    ctx = pair.context(kinds={k: {"enabled": k in enabled} for k in kind_names()})
    daemon = Daemon(ctx)
    daemon.schedule()
    executors = {job.id: job.executor for job in daemon.scheduler.get_jobs()}
    assert executors["dashboards"] == executors["dashboard_schedules"] != executors["jobs"]
    pair.source.set_faults(latency_ms=2000, path_prefix="/api/2.0/lakeview/")
    schedules = threading.Thread(target=daemon.run_group, args=[("dashboard_schedules",)])
    schedules.start()
    try:
        held = daemon.workers[executors["dashboard_schedules"]].lock
        deadline = time.monotonic() + 10
        while not held.locked() and time.monotonic() < deadline:  # the schedules' cycle holds its worker
            time.sleep(0.01)
        daemon.run_group(("cluster_policies",))
        daemon.run_group(("jobs",))
        assert schedules.is_alive(), "the schedules' cycle ended before the jobs' cycle: nothing was shown"
        assert ctx.store.last_success("jobs") is not None
    finally:
        pair.source.set_faults()
        schedules.join(timeout=120)
    assert ctx.store.last_success("dashboard_schedules") is not None


def _cycle_and_its_next_run(pair: Pair, daemon: Daemon, kind: str = "jobs") -> tuple[float, float, float]:
    """One cycle of a kind of a daemon whose scheduler is paused: its start, its length, and the next run it set."""
    daemon.schedule()
    daemon.scheduler.start(paused=True)  # next run times are computed, nothing runs by itself
    try:
        started = time.time()
        daemon.run_group((kind,))
        return started, time.time() - started, daemon.scheduler.get_job(kind).next_run_time.timestamp()
    finally:
        pair.source.set_faults()
        daemon.scheduler.shutdown(wait=False)


def test_a_kind_listed_whole_runs_again_early_enough_that_its_next_cycle_ends_within_its_interval(pair: Pair) -> None:
    """A kind read whole is as fresh as the start of its last complete cycle. Run an interval after the last
    start, it was stale by the interval plus its cycle's length (and the jitter) until that cycle ended: the jobs
    kind, 49 s cycles against 120 s, was over its staleness target half the time at 100,000 objects. Its next run
    comes its longest recent cycle earlier."""
    from dbsync.registry import kind_names
    from dbsync.scheduler import Daemon

    ctx = pair.context(kinds={k: {"enabled": k == "jobs"} for k in kind_names()})
    pair.source.set_faults(latency_ms=1500, path_prefix="/api/2.2/jobs/list")
    started, took, next_run = _cycle_and_its_next_run(pair, Daemon(ctx))
    interval = group_interval(ctx.settings, ("jobs",))
    assert took >= 1.5
    # The next cycle, as long as this one, ends within the interval of this one's start (staleness <= interval).
    assert time.time() - 1 <= next_run <= started + interval - took + 0.2, (next_run - started, took)


def test_a_kind_listed_whole_runs_early_by_the_wait_for_its_worker_too(pair: Pair) -> None:
    """A kind due while another kind's cycle holds their worker waits for it, and its objects age meanwhile: the
    Unity Catalog kinds (0.3 s cycles) were over their target behind the jobs' 34 s cycles at 100,000 objects. Its
    next run comes the other kind's recent cycle earlier too."""
    from dbsync.registry import kind_names
    from dbsync.scheduler import Daemon, worker_of

    wanted = {"clusters", "cluster_policies"}
    ctx = pair.context(kinds={k: {"enabled": k in wanted, "interval": 20} for k in kind_names()})
    assert worker_of(("clusters",)) == worker_of(("cluster_policies",))
    daemon = Daemon(ctx)
    pair.source.set_faults(latency_ms=3000, path_prefix="/api/2.0/policies/clusters/list")
    try:
        held = time.time()
        daemon.run_group(("cluster_policies",))  # the cycle a due clusters run would wait behind
        held = time.time() - held
    finally:
        pair.source.set_faults()
    started, took, next_run = _cycle_and_its_next_run(pair, daemon, "clusters")
    assert held >= 3 > 2 >= took  # the wait is longer than the jitter (at most 2 s at a 20 s interval)
    # Were the clusters due behind a policies cycle like the last, their cycle would still end within the interval.
    assert next_run <= started + 20 - took - held + 0.2, (next_run - started, took, held)


def test_the_jobs_run_beside_the_first_workers_cycle_and_pick_up_the_clusters_it_maps(pair: Pair) -> None:
    """At 100,000 objects the jobs' cycles (37-62 s every 120 s) were half the first worker's time, and the kinds
    listed whole behind them passed their 120 s target. They run on a worker of their own, beside a cycle in flight
    on the first worker; a job whose cluster the first worker has not replicated yet is `blocked`, and goes
    through with the cluster's target id once the clusters' cycle has mapped it."""
    import threading

    from databricks.sdk.service import jobs

    from dbsync.registry import kind_names
    from dbsync.scheduler import CYCLES, Daemon, worker_of

    assert worker_of(("jobs",)) != CYCLES
    cluster = pair.src.clusters.create(
        cluster_name="etl", spark_version="15.4.x-scala2.12", node_type_id="i3.xlarge", num_workers=1
    ).response.cluster_id
    task = jobs.Task(task_key="t", existing_cluster_id=cluster, notebook_task=jobs.NotebookTask(notebook_path="/x"))
    job = str(pair.src.jobs.create(name="nightly", tasks=[task]).job_id)
    ctx = pair.context(kinds={k: {"enabled": k in ("clusters", "jobs")} for k in kind_names()})
    daemon = Daemon(ctx)
    daemon.run_group(("jobs",))
    assert ctx.store.prior("jobs", job).status == "blocked"
    daemon.run_group(("clusters",))  # on the first worker: maps the cluster
    with daemon._cycle_lock:  # a cycle in flight on the first worker
        cycle = threading.Thread(target=daemon.run_group, args=[("jobs",)])
        cycle.start()
        cycle.join(timeout=60)
        assert not cycle.is_alive(), "the jobs' cycle waited for the first worker's"
    assert ctx.store.prior("jobs", job).status == "synced"
    [copy] = list(pair.dst.jobs.list(expand_tasks=True))
    assert copy.settings.tasks[0].existing_cluster_id == ctx.store.target_key("clusters", cluster)


def test_the_daemons_workers_calling_at_once_keep_their_connections(
    pair: Pair, caplog: pytest.LogCaptureFixture
) -> None:
    """Five workers, each a cycle with `concurrency` threads, share one HTTP pool per workspace. Sized for one
    cycle (20), the requests beyond it opened connections that were thrown away after one call, each with a
    WARNING ("Connection pool is full, discarding connection") in the daemon's log (the 100,000-object steady
    state). The daemon sizes each side's pool for all its workers' threads."""
    import logging
    import threading

    from dbsync.registry import kind_names

    caplog.set_level(logging.WARNING, logger="urllib3.connectionpool")
    ctx = pair.context(concurrency=8, kinds={k: {"enabled": True} for k in kind_names()})
    daemon = Daemon(ctx)
    threads = len(daemon.workers) * ctx.settings.concurrency  # each worker's cycle pool, the least that runs at once
    assert threads > 20
    pair.source.set_faults(latency_ms=300)  # every call in flight at once
    start = threading.Barrier(threads)

    def call() -> None:
        start.wait(timeout=30)
        list(ctx.source.client.workspace.list("/"))

    callers = [threading.Thread(target=call) for _ in range(threads)]
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join(timeout=60)
    pair.source.set_faults()
    assert not [r for r in caplog.records if "Connection pool is full" in r.getMessage()]
