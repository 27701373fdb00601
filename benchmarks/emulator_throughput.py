"""Requests per second the emulator serves for its two hottest reads: workspace/list and jobs/get.

    python benchmarks/emulator_throughput.py                 # in-process emulator, both client modes
    python benchmarks/emulator_throughput.py --mode process  # clients in a separate process only
    python benchmarks/emulator_throughput.py --url http://127.0.0.1:8080 --token dapi-...

Seeds a directory with 100 notebooks and one job, then measures each client library over one
keep-alive connection and from N threads (one connection each). "in-process" clients share the
emulator's interpreter (and GIL); "process" clients run in a child interpreter, as dbsync would.
`http.client` is the leanest keep-alive client and shows what the server itself sustains; httpx,
requests and databricks-sdk add their own per-request cost on the client side.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from urllib.parse import urlencode, urlparse

import httpx
import requests

BENCH_DIR = "/Shared/bench"
NOTEBOOKS = 100
CLIENTS = ("http.client", "httpx", "requests", "sdk")
TARGET_RPS = 1500


@dataclass
class Result:
    """One cell of the table: a client library on one endpoint with some threads."""

    endpoint: str
    client: str
    mode: str
    threads: int
    rps: float
    p50_ms: float
    p99_ms: float


# -- seeding ----------------------------------------------------------------------------------------
def seed(url: str, token: str) -> int:
    """100 notebooks in BENCH_DIR and one job (through the REST API); returns the job id."""
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
        client.post("/api/2.0/workspace/mkdirs", json={"path": BENCH_DIR}).raise_for_status()
        for i in range(NOTEBOOKS):
            source = base64.b64encode(f"# notebook {i}\nprint({i})".encode()).decode()
            body = {
                "path": f"{BENCH_DIR}/nb{i:03d}",
                "content": source,
                "language": "PYTHON",
                "overwrite": True,
            }
            client.post("/api/2.0/workspace/import", json=body).raise_for_status()
        job = {
            "name": "bench",
            "job_clusters": [
                {
                    "job_cluster_key": "main",
                    "new_cluster": {
                        "spark_version": "15.4.x-scala2.12",
                        "node_type_id": "i3.xlarge",
                        "num_workers": 2,
                    },
                }
            ],
            "tasks": [
                {
                    "task_key": f"t{i}",
                    "job_cluster_key": "main",
                    "notebook_task": {"notebook_path": f"{BENCH_DIR}/nb{i:03d}"},
                }
                for i in range(5)
            ],
            "schedule": {
                "quartz_cron_expression": "0 0 1 * * ?",
                "timezone_id": "UTC",
                "pause_status": "PAUSED",
            },
        }
        answer = client.post("/api/2.2/jobs/create", json=job)
        answer.raise_for_status()
        return int(answer.json()["job_id"])


# -- one client call per library ---------------------------------------------------------------------
def _endpoints(job_id: int) -> dict[str, tuple[str, dict[str, str]]]:
    return {
        "GET workspace/list": ("/api/2.0/workspace/list", {"path": BENCH_DIR}),
        "GET jobs/get": ("/api/2.2/jobs/get", {"job_id": str(job_id)}),
    }


def make_call(client: str, url: str, token: str, endpoint: str, job_id: int) -> Callable[[], None]:
    """A function doing one request of `endpoint` on its own keep-alive connection."""
    path, params = _endpoints(job_id)[endpoint]
    headers = {"Authorization": f"Bearer {token}"}
    if client == "http.client":
        parsed = urlparse(url)
        conn = http.client.HTTPConnection(parsed.hostname or "127.0.0.1", parsed.port or 80, timeout=30)
        target = f"{path}?{urlencode(params)}"

        def raw() -> None:
            conn.request("GET", target, headers=headers)
            response = conn.getresponse()
            response.read()
            if response.status != 200:
                raise RuntimeError(f"{endpoint}: HTTP {response.status}")

        return raw
    if client == "httpx":
        session = httpx.Client(base_url=url, headers=headers, timeout=30)
        return lambda: session.get(path, params=params).raise_for_status() and None
    if client == "requests":
        rsession = requests.Session()
        rsession.headers.update(headers)
        return lambda: rsession.get(url + path, params=params, timeout=30).raise_for_status()
    return _sdk_call(url, token, endpoint, job_id)


def _sdk_call(url: str, token: str, endpoint: str, job_id: int) -> Callable[[], None]:
    from databricks.sdk import WorkspaceClient
    from databricks.sdk.core import Config

    for name in [n for n in os.environ if n.startswith("DATABRICKS_")]:
        del os.environ[name]  # only what is configured here
    w = WorkspaceClient(config=Config(host=url, token=token, auth_type="pat"))
    if endpoint == "GET workspace/list":
        return lambda: None if len(list(w.workspace.list(BENCH_DIR))) == NOTEBOOKS else _fail(endpoint)
    return lambda: None if w.jobs.get(job_id).job_id == job_id else _fail(endpoint)


def _fail(endpoint: str) -> None:
    raise RuntimeError(f"{endpoint}: unexpected answer")


# -- measuring --------------------------------------------------------------------------------------
def measure(
    client: str, url: str, token: str, endpoint: str, job_id: int, threads: int, duration: float, mode: str
) -> Result:
    """Requests/s of `threads` connections calling `endpoint` for `duration` seconds."""
    calls = [make_call(client, url, token, endpoint, job_id) for _ in range(threads)]
    for call in calls:
        call()  # connect and warm up outside the timed window
    latencies: list[list[float]] = [[] for _ in range(threads)]
    start = threading.Barrier(threads + 1)
    deadline = [0.0]

    def worker(n: int) -> None:
        call, own = calls[n], latencies[n]
        start.wait()
        while True:
            began = time.perf_counter()
            if began >= deadline[0]:
                return
            call()
            own.append(time.perf_counter() - began)

    pool = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    for thread in pool:
        thread.start()
    deadline[0] = time.perf_counter() + duration
    began = time.perf_counter()
    start.wait()
    for thread in pool:
        thread.join()
    elapsed = time.perf_counter() - began
    merged = sorted(x for own in latencies for x in own)
    p99 = merged[min(len(merged) - 1, int(len(merged) * 0.99))] if merged else 0.0
    return Result(
        endpoint,
        client,
        mode,
        threads,
        len(merged) / elapsed,
        statistics.median(merged) * 1000 if merged else 0.0,
        p99 * 1000,
    )


def run_all(
    url: str,
    token: str,
    job_id: int,
    clients: list[str],
    thread_counts: list[int],
    duration: float,
    mode: str,
) -> list[Result]:
    results = []
    for endpoint in _endpoints(job_id):
        for client in clients:
            for threads in thread_counts:
                results.append(measure(client, url, token, endpoint, job_id, threads, duration, mode))
    return results


def run_in_child(url: str, token: str, job_id: int, args: argparse.Namespace) -> list[Result]:
    """The same measurements from a separate interpreter, so client and server do not share a GIL."""
    command = [
        sys.executable,
        os.path.abspath(__file__),
        "--url",
        url,
        "--token",
        token,
        "--job-id",
        str(job_id),
        "--clients",
        ",".join(args.clients),
        "--threads",
        str(args.threads),
        "--duration",
        str(args.duration),
        "--json",
    ]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return [Result(**{**row, "mode": "process"}) for row in json.loads(output)]


def print_table(results: list[Result]) -> None:
    header = f"{'endpoint':<20}{'client':<13}{'mode':<12}{'threads':>8}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}"
    print(header)
    print("-" * len(header))
    for r in results:
        print(f"{r.endpoint:<20}{r.client:<13}{r.mode:<12}{r.threads:>8}{r.rps:>10.0f}{r.p50_ms:>9.2f}{r.p99_ms:>9.2f}")
    best = max(results, key=lambda r: r.rps)
    verdict = "met" if best.rps >= TARGET_RPS else "NOT met"
    print(
        f"\ntarget >= {TARGET_RPS} req/s {verdict}: best {best.rps:.0f} req/s "
        f"({best.endpoint}, {best.client}, {best.mode}, {best.threads} thread(s))"
    )


def main(argv: list[str] | None = None) -> None:
    """Parse arguments, start or reach an emulator, seed it, measure and print the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="an emulator that is already running (default: start one in-process)")
    parser.add_argument("--token", default="dapi-emulator-token")
    parser.add_argument("--job-id", type=int, help=argparse.SUPPRESS)  # set by the parent: already seeded
    parser.add_argument("--mode", choices=("in-process", "process", "both"), default="both")
    parser.add_argument(
        "--clients",
        type=lambda s: s.split(","),
        default=list(CLIENTS),
        help=f"comma-separated subset of {','.join(CLIENTS)}",
    )
    parser.add_argument("--threads", type=int, default=8, help="threads for the concurrent row (default 8)")
    parser.add_argument("--duration", type=float, default=1.0, help="seconds per measurement (default 1.0)")
    parser.add_argument("--json", action="store_true", help="print results as JSON (used for child processes)")
    args = parser.parse_args(argv)
    thread_counts = [1, args.threads]

    if args.url:
        job_id = args.job_id or seed(args.url, args.token)
        results = run_all(args.url, args.token, job_id, args.clients, thread_counts, args.duration, "external")
        if args.json:
            print(json.dumps([asdict(r) for r in results]))
        else:
            print_table(results)
        return

    from dbsync_emulator import start_emulator

    with start_emulator(token=args.token) as handle:
        job_id = seed(handle.url, handle.token)
        results = []
        if args.mode in ("in-process", "both"):
            results += run_all(
                handle.url, handle.token, job_id, args.clients, thread_counts, args.duration, "in-process"
            )
        if args.mode in ("process", "both"):
            results += run_in_child(handle.url, handle.token, job_id, args)
    print_table(sorted(results, key=lambda r: (r.endpoint, CLIENTS.index(r.client), r.mode, r.threads)))


if __name__ == "__main__":
    main()
