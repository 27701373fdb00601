"""Probes that fit a DR daemon (issue 21, item 3): /livez follows the scheduler's heartbeat, /readyz says "serving"
(a source outage or a completed cutover keeps the pod Ready), /cutover-readyz and dbsync_cutover_ready say whether
a cutover may rely on the standby. Run against real emulators over HTTP; time moves through an injected clock."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from conftest import Pair
from test_deploy import ALL_ON, _values, chart, container, helm, render  # noqa: F401
from test_serve import Served

from dbsync.scheduler import Daemon, liveness_window
from dbsync.server import StatusServer
from dbsync.store import Store


def _wait(served: Served, path: str, predicate: Any, seconds: float = 60) -> httpx.Response:
    """GET `path` until `predicate(answer)` holds (bounded); the answer."""
    deadline = time.monotonic() + seconds
    answer: httpx.Response | None = None
    while True:
        try:
            answer = served.get(path)
            if predicate(answer):
                return answer
        except httpx.HTTPError:
            pass
        assert served.proc.poll() is None and time.monotonic() < deadline, (
            answer and answer.text,
            served.log.read_text()[-2000:],
        )
        time.sleep(0.2)


def test_a_source_outage_keeps_the_daemon_ready_and_alive_and_says_why_a_cutover_is_not(
    pair: Pair, tmp_path: Path
) -> None:
    served = Served(pair, tmp_path, DBSYNC_RETRY_TIMEOUT_SECONDS="1", DBSYNC_KINDS__JOBS__INTERVAL="1")
    try:
        _wait(served, "/readyz", lambda r: r.status_code == 200)
        pair.source.stop()  # the disaster: the primary workspace stops answering at all
        cutover = _wait(served, "/cutover-readyz", lambda r: r.status_code == 503 and r.json()["problems"])
        # The first group to list after the stop names itself and why (which group depends on the schedule).
        assert any(": listing failed" in p for p in cutover.json()["problems"]), cutover.text
        ready = served.get("/readyz")
        assert ready.status_code == 200 and ready.json()["serving"] is True, ready.text
        assert ready.json()["cutover_ready"] is False
        live = served.get("/livez", auth=False)  # the kubelet sends no token
        assert live.status_code == 200 and live.json()["alive"] is True, live.text
        assert "dbsync_cutover_ready 0.0" in served.get("/metrics").text
        assert served.get("/cutover-readyz", auth=False).status_code == 401  # the reasons name the workspaces
    finally:
        assert served.terminate() == 0


def test_a_daemon_restarted_during_a_source_outage_comes_up_and_serves(pair: Pair, tmp_path: Path) -> None:
    """The pod restarts in the disaster itself: with a store that knows the pair it must come up (not crash-loop),
    ready as a server, alive, and say why a cutover is not ready; a store that never met its source cannot."""
    pair.src.workspace.mkdirs("/Shared/etl")
    assert pair.sync(only=["directories"])["directories"].errors == 0  # the store now knows the pair
    pair.source.stop()  # the primary stops answering, then the pod is restarted
    served = Served(pair, tmp_path, DBSYNC_RETRY_TIMEOUT_SECONDS="1", DBSYNC_KINDS__JOBS__INTERVAL="1")
    try:
        _wait(served, "/readyz", lambda r: r.status_code == 200)
        assert served.get("/livez", auth=False).status_code == 200
        cutover = served.get("/cutover-readyz")  # at once, not after the first reconcile: nothing is replicating
        assert cutover.status_code == 503, cutover.text
        assert all("the source did not answer when the daemon started" in p for p in cutover.json()["problems"])
        assert "starting anyway" in served.log.read_text()
    finally:
        assert served.terminate() == 0
    fresh = subprocess.run(
        [sys.executable, "-m", "dbsync.cli", "serve"],
        env=served.env | {"DBSYNC_STATE_PATH": str(tmp_path / "new.db")},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert fresh.returncode == 2 and "cannot reach the source workspace" in fresh.stderr, fresh.stderr


def test_after_a_completed_cutover_the_daemon_stays_ready_and_cutover_readiness_says_complete(
    pair: Pair, tmp_path: Path
) -> None:
    store = Store(pair.state_path)
    store.set_meta("role", "cutover-complete")
    store.close()
    served = Served(pair, tmp_path)
    try:
        ready = _wait(served, "/readyz", lambda r: True)
        assert ready.status_code == 200, ready.text  # `helm upgrade --wait` right after a cutover must not hang
        cutover = served.get("/cutover-readyz")
        assert cutover.status_code == 503 and "cutover is complete" in cutover.json()["problems"][0], cutover.text
        assert served.get("/livez", auth=False).status_code == 200  # idle by design: a restart would not help
        exposition = served.get("/metrics").text
        assert "dbsync_cutover_ready 0.0" in exposition and "dbsync_cutover_state 2.0" in exposition
    finally:
        assert served.terminate() == 0


def test_a_replicating_standby_is_cutover_ready_in_the_endpoint_and_the_gauge(pair: Pair, tmp_path: Path) -> None:
    pair.src.workspace.mkdirs("/Shared/live")
    served = Served(pair, tmp_path)
    try:
        answer = _wait(served, "/cutover-readyz", lambda r: r.status_code == 200, seconds=90)
        assert answer.json() == {"ready": True, "problems": []}
        assert "dbsync_cutover_ready 1.0" in served.get("/metrics").text
    finally:
        assert served.terminate() == 0


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_liveness_fails_within_its_window_when_the_scheduler_stalls_and_recovers_with_progress(pair: Pair) -> None:
    ctx = pair.context()
    daemon = Daemon(ctx)
    clock = _Clock()
    daemon.heartbeat.clock = clock
    daemon.heartbeat.beat()
    server = StatusServer(("127.0.0.1", 0), daemon, None)
    server.start()
    window = liveness_window(daemon.settings, daemon.groups)
    assert window == 3 * 60 + 10 + 60  # 3 shortest intervals (the tree, 60 s), the jitter, one call's retries
    held = daemon._cycle_lock.acquire()  # a cycle that never ends: the reconcile cannot start, nothing progresses
    try:
        daemon.start()
        assert httpx.get(server.url + "/livez", timeout=10).status_code == 200
        clock.now += window - 1
        assert httpx.get(server.url + "/livez", timeout=10).status_code == 200
        clock.now += 2
        stalled = httpx.get(server.url + "/livez", timeout=10)
        assert stalled.status_code == 503, stalled.text
        assert "no progress for" in stalled.json()["problems"][0]
        assert httpx.get(server.url + "/readyz", timeout=10).status_code == 200  # liveness restarts, not readiness
        daemon._cycle_lock.release()
        held = False
        deadline = time.monotonic() + 60
        while httpx.get(server.url + "/livez", timeout=10).status_code != 200:  # the reconcile runs: it beats
            assert time.monotonic() < deadline, "the heartbeat never moved after the cycle could run"
            time.sleep(0.1)
    finally:
        if held:
            daemon._cycle_lock.release()
        daemon.shutdown(timeout=30)
        server.shutdown()
        server.server_close()


def test_the_staleness_targets_are_published_when_the_daemon_starts_not_after_each_kinds_first_cycle(
    pair: Pair,
) -> None:
    """The staleness alert compares dbsync_staleness_seconds with its target: at 100,000 objects a kind's first
    cycle came 20 minutes after the start, and until then its target was 0 (the alert could not say a thing)."""
    daemon = Daemon(pair.context(kinds={"permissions": {"max_staleness": 1234}}))
    server = StatusServer(("127.0.0.1", 0), daemon, None)
    server.start()
    try:
        with daemon._cycle_lock:  # no cycle runs: what /metrics says comes from the start alone
            daemon.start()
            text = httpx.get(server.url + "/metrics", timeout=10).text
    finally:
        daemon.shutdown(timeout=30)
        server.shutdown()
        server.server_close()
    assert 'dbsync_staleness_target_seconds{kind="permissions"} 1234.0' in text


def test_a_daemon_idle_by_design_is_alive_however_long_it_waits(pair: Pair) -> None:
    ctx = pair.context()
    ctx.store.set_meta("role", "cutover-complete")
    daemon = Daemon(ctx)
    clock = _Clock()
    daemon.heartbeat.clock = clock
    daemon.start()  # refuses to replicate after a cutover, stays up to serve
    clock.now += 10 * liveness_window(daemon.settings, daemon.groups)
    assert daemon.liveness() == []
    server = StatusServer(("127.0.0.1", 0), daemon, None)
    server.start()
    try:
        assert httpx.get(server.url + "/readyz", timeout=10).status_code == 200
        daemon.stop.set()  # what a hand-over to `dbsync cutover` does first: still serving
        assert httpx.get(server.url + "/readyz", timeout=10).status_code == 200
        daemon.shutdown()
        assert httpx.get(server.url + "/readyz", timeout=10).status_code == 503  # leaving: out of the Service
    finally:
        server.shutdown()
        server.server_close()


# -- the chart uses them ------------------------------------------------------------------------------
def test_the_chart_probes_liveness_on_the_heartbeat_and_readiness_on_serving(chart: Any) -> None:  # noqa: F811
    for values in (_values(ALL_ON), {**_values(ALL_ON), "auth": {"enabled": False}}):
        main = container(render(chart, values))
        assert main["livenessProbe"]["httpGet"] == {"path": "/livez", "port": "http"}  # no token needed
        assert main["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        readiness = main["readinessProbe"]
        probe = readiness.get("httpGet", {}).get("path") or readiness["exec"]["command"][-1]
        assert "/readyz" in probe and "/cutover-readyz" not in probe
