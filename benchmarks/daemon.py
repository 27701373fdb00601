"""Daemon benchmark: `dbsync serve` under a steady stream of source edits.

Two emulator processes (source seeded), one `dbsync serve` process, and a driver that edits a
notebook and renames a job at a steady rate. For every edit the driver measures how long until the
target shows it (end-to-end lag). Prints lag p50/p99 per kind against the kind's interval, the
daemon's CPU % and peak RSS (from /proc), and API calls per minute at steady state (from /metrics).

    python benchmarks/daemon.py [--objects 5000] [--minutes 3] [--notebook-interval 20] [--jobs-interval 40]
"""

from __future__ import annotations

import argparse
import base64
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from databricks.sdk import WorkspaceClient
from databricks.sdk.core import Config
from databricks.sdk.service.workspace import ImportFormat, Language

sys.path.insert(0, str(Path(__file__).parent))
from harness import Emulator, free_port, proc_rss_mb

CLK_TCK = os.sysconf("SC_CLK_TCK")


def client(url: str, token: str) -> WorkspaceClient:
    return WorkspaceClient(config=Config(host=url, token=token, auth_type="pat"))


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def api_calls(metrics_url: str) -> float:
    text = httpx.get(metrics_url, timeout=30).text
    return sum(
        float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith("dbsync_api_requests_total{")
    )


def wait_until(check, deadline: float, poll: float = 0.5) -> float | None:
    """Seconds until check() is true (polled), or None past the deadline."""
    started = time.monotonic()
    while time.monotonic() - started < deadline:
        if check():
            return time.monotonic() - started
        time.sleep(poll)
    return None


class Driver:
    """Edits the source at a steady rate and measures when each edit shows on the target."""

    def __init__(self, src: WorkspaceClient, dst: WorkspaceClient, intervals: dict[str, float]) -> None:
        self.src, self.dst, self.intervals = src, dst, intervals
        self.lags: dict[str, list[float]] = {"notebooks": [], "jobs": []}
        self.missed: dict[str, int] = {"notebooks": 0, "jobs": 0}
        self.stop = threading.Event()
        notebooks = [
            o.path
            for o in src.workspace.list("/Shared", recursive=True)
            if o.object_type and o.object_type.value == "NOTEBOOK"
        ]
        self.notebooks = notebooks[:50]
        self.jobs = [j.job_id for j in src.jobs.list(limit=100)][:20]

    def edit_notebook(self, i: int) -> None:
        path = self.notebooks[i % len(self.notebooks)]
        marker = f"edit-{i}-{time.time()}".encode()
        self.src.workspace.import_(
            path,
            content=base64.b64encode(b"print('%s')" % marker).decode(),
            format=ImportFormat.SOURCE,
            language=Language.PYTHON,
            overwrite=True,
        )
        self._measure("notebooks", lambda: marker in self.dst.workspace.download(path).read())

    def rename_job(self, i: int) -> None:
        job_id = self.jobs[i % len(self.jobs)]
        job = self.src.jobs.get(job_id)
        name = f"renamed-{i}-{int(time.time())}"
        job.settings.name = name
        self.src.jobs.reset(job_id, job.settings)
        self._measure("jobs", lambda: any(j.settings.name == name for j in self.dst.jobs.list(name=name)))

    def _measure(self, kind: str, check) -> None:
        def run() -> None:
            lag = wait_until(check, deadline=4 * self.intervals[kind], poll=1.0)
            if lag is None:
                self.missed[kind] += 1
            else:
                self.lags[kind].append(lag)

        threading.Thread(target=run, daemon=True).start()

    def run(self, seconds: float, every: float) -> None:
        i = 0
        end = time.monotonic() + seconds
        while time.monotonic() < end and not self.stop.is_set():
            self.edit_notebook(i)
            if i % 3 == 0:
                self.rename_job(i)
            i += 1
            time.sleep(every)


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--objects", type=int, default=5000)
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--notebook-interval", type=float, default=20.0)
    parser.add_argument("--jobs-interval", type=float, default=40.0)
    parser.add_argument("--edit-every", type=float, default=2.0, help="seconds between source edits")
    args = parser.parse_args()
    port = free_port()
    # Secret values are copied over secrets/get (the emulators allow it; a real workspace does not: see README).
    emulators = [Emulator("src-token", seed_objects=args.objects), Emulator("tgt-token")]
    src_url, tgt_url = emulators[0].url, emulators[1].url
    intervals = {"notebooks": args.notebook_interval, "jobs": args.jobs_interval}
    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DBSYNC_", "DATABRICKS_"))} | {
            "DBSYNC_SOURCE__HOST": src_url,
            "DBSYNC_SOURCE__TOKEN": "src-token",
            "DBSYNC_TARGET__HOST": tgt_url,
            "DBSYNC_TARGET__TOKEN": "tgt-token",
            "DBSYNC_STATE_PATH": f"{tmp}/daemon.db",
            "DBSYNC_SERVER__PORT": str(port),
            "DBSYNC_IDENTITIES__CREATE_USERS": "true",
            "DBSYNC_SECRETS__VALUES_FROM": "api",
            "DBSYNC_LOG_LEVEL": "WARNING",
            "DBSYNC_KINDS__NOTEBOOKS__INTERVAL": str(args.notebook_interval),
            "DBSYNC_KINDS__DIRECTORIES__INTERVAL": str(args.notebook_interval),
            "DBSYNC_KINDS__FILES__INTERVAL": str(args.notebook_interval),
            "DBSYNC_KINDS__JOBS__INTERVAL": str(args.jobs_interval),
        }
        log = Path(f"{tmp}/serve.log").open("w")  # noqa: SIM115 - lives as long as the daemon
        daemon = subprocess.Popen([sys.executable, "-m", "dbsync.cli", "serve"], env=env, stderr=log)
        base = f"http://127.0.0.1:{port}"
        try:
            started = time.monotonic()
            ready = wait_until(lambda: _ready(base), deadline=1800, poll=2.0)
            print(
                f"dbsync daemon benchmark: ~{args.objects} objects, {time.strftime('%Y-%m-%d')}, "
                f"load average {os.getloadavg()[0]:.1f}"
            )
            print(f"initial reconcile until /report ready: {ready:.0f} s" if ready else "never in sync")
            src, dst = client(src_url, "src-token"), client(tgt_url, "tgt-token")
            driver = Driver(src, dst, intervals)
            cpu0, calls0, t0 = cpu_seconds(daemon.pid), api_calls(base + "/metrics"), time.monotonic()
            driver.run(args.minutes * 60, args.edit_every)
            time.sleep(max(intervals.values()) * 2)  # let the last edits land
            cpu1, calls1, t1 = cpu_seconds(daemon.pid), api_calls(base + "/metrics"), time.monotonic()
            print(
                f"steady state: {t1 - t0:.0f} s, daemon CPU {100 * (cpu1 - cpu0) / (t1 - t0):.1f} % of one core, "
                f"peak RSS {proc_rss_mb(daemon.pid)[1]:.0f} MB, API calls {60 * (calls1 - calls0) / (t1 - t0):.0f}/min"
            )
            print(f"{'kind':<12}{'interval s':>11}{'edits':>7}{'p50 s':>8}{'p99 s':>8}{'goal p99':>10}{'missed':>8}")
            for kind, lags in driver.lags.items():
                print(
                    f"{kind:<12}{intervals[kind]:>11.0f}{len(lags):>7}{percentile(lags, 50):>8.1f}"
                    f"{percentile(lags, 99):>8.1f}{2 * intervals[kind]:>10.0f}{driver.missed[kind]:>8}"
                )
            print(
                f"(total wall time {time.monotonic() - started:.0f} s; p50 of notebooks "
                f"{statistics.median(driver.lags['notebooks']) if driver.lags['notebooks'] else float('nan'):.1f} s)"
            )
        finally:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(timeout=60)
            for emulator in emulators:
                emulator.stop()


def _ready(base: str) -> bool:
    try:
        return httpx.get(base + "/report", timeout=60).json().get("ready_for_cutover") is True
    except (httpx.HTTPError, ValueError):
        return False


if __name__ == "__main__":
    main()
