"""Steady state at scale: `dbsync serve` on a 100,000-object source under a request budget.

Issue #16's goal: "a steady-state daemon under a 50 req/s budget keeps every object within its max_staleness, RSS ≤
200 MB". Two `dbsync emulator` processes (the source seeded with `--seed-objects N`), an initial `dbsync sync
--once` with no budget and no latency (at 50 req/s the initial sync alone would take over an hour: it is not the
steady state), then `dbsync serve` on the same store with `source/target.max_requests_per_second` = the budget and
`--latency-ms` added on both emulators, while a driver edits one notebook every `--edit-every` seconds. The
workspace tree is listed by need (interval 120 s, `max_staleness` 1800 s: a slice of the 7,000 directories per
cycle, each within 30 minutes; the initial sync uses the same settings, so its listing is the schedule's first);
permissions every 60 s (the ACL sweep in slices on a worker of its own, the overdue read first in each slice;
its whole passes and how many ACLs were overdue, and by how long, sampled from the daemon's store, printed at the
end); each dashboard's schedules by need within an hour (`--schedules-max-staleness`; a full
read every 15 minutes was ~5,000 calls). After the initial sync it prints what that schedule asks of the budget (at
900 s for the tree, the tree and the ACL sweep alone need more than 90 % of 50 requests/s). Every 30 s the benchmark
scrapes the daemon's /metrics: `dbsync_staleness_seconds{kind}` against `dbsync_staleness_target_seconds{kind}`, and
reads the daemon's RSS from /proc. At the end: each kind's largest staleness against its target and whether the
staleness alert (`DbsyncStalenessAboveTarget`: over target for 15 minutes in a row) would have fired, requests per
second on each side from the emulators' own per-second counts (the driver's own requests taken out), 429s, the
edits' change-to-target times, and the daemon's cycles per kind (how many, mean and longest seconds) from its store.

    python benchmarks/steady_state.py [--objects 100000] [--budget 50] [--minutes 75] [--latency-ms 100]
"""

from __future__ import annotations

import argparse
import base64
import itertools
import json
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from databricks.sdk.service.workspace import ImportFormat, Language

sys.path.insert(0, str(Path(__file__).parent))
from harness import (
    Emulator,
    cycle_times,
    dbsync_env,
    free_port,
    load,
    notebook_paths,
    percentile,
    proc_cpu_seconds,
    proc_rss_mb,
    run_dbsync,
)

from dbsync.pacing import HEADROOM

RSS_GOAL_MB = 200
SAMPLE_EVERY = 30.0
BACKLOG_S = 600.0  # the first minutes of the daemon hold the initial sync's backlog: reported apart
SERIES = re.compile(r'^(dbsync_staleness(?:_target)?_seconds)\{kind="([^"]+)"\} (\S+)$')


def staleness(metrics_url: str) -> dict[str, tuple[float, float]]:
    """kind → (staleness seconds, target seconds) from one scrape."""
    values: dict[str, dict[str, float]] = {}
    for line in httpx.get(metrics_url, timeout=60).text.splitlines():
        match = SERIES.match(line)
        if match:
            values.setdefault(match.group(2), {})[match.group(1)] = float(match.group(3))
    return {
        kind: (v.get("dbsync_staleness_seconds", 0.0), v.get("dbsync_staleness_target_seconds", 0.0))
        for kind, v in values.items()
    }


class Editor(threading.Thread):
    """Edits one source notebook every `every` seconds; measures when the target shows it."""

    def __init__(self, source: Emulator, target: Emulator, paths: list[str], every: float, deadline: float) -> None:
        super().__init__(daemon=True)
        # Tokens of its own: the emulators count the driver's requests apart from dbsync's.
        self.src, self.dst = source.driver_client(), target.driver_client()
        self.paths, self.every, self.deadline = paths, every, deadline
        self.lags: list[float] = []
        self.missed = 0
        self.stop = threading.Event()

    def run(self) -> None:
        i = 0
        while not self.stop.wait(self.every):
            path = self.paths[(i * 7919) % len(self.paths)]
            marker = f"steady-{i}-{time.time()}".encode()
            self.src.workspace.import_(
                path,
                content=base64.b64encode(b"print('%s')\n" % marker).decode(),
                format=ImportFormat.SOURCE,
                language=Language.PYTHON,
                overwrite=True,
            )
            threading.Thread(target=self._measure, args=(path, marker, time.monotonic()), daemon=True).start()
            i += 1

    def _measure(self, path: str, marker: bytes, edited: float) -> None:
        while time.monotonic() - edited < self.deadline:
            try:
                if marker in self.dst.workspace.download(path).read():
                    self.lags.append(time.monotonic() - edited)
                    return
            except Exception:  # not there yet, or a transient error: look again
                pass
            time.sleep(10)
        self.missed += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--objects", type=int, default=100_000)
    parser.add_argument("--budget", type=float, default=50.0, help="max_requests_per_second on each side")
    parser.add_argument("--minutes", type=float, default=75.0, help="minutes of steady state (≥ max_staleness)")
    parser.add_argument("--latency-ms", type=float, default=100.0, help="added to every request in steady state")
    parser.add_argument("--edit-every", type=float, default=20.0, help="seconds between two notebook edits")
    parser.add_argument(
        "--workspace-interval",
        type=float,
        default=120.0,
        help="kinds.{directories,notebooks,files}.interval (a full tree listing at 100k is ~7,000 requests)",
    )
    parser.add_argument(
        "--workspace-max-staleness",
        type=float,
        default=1800.0,
        help="kinds.{directories,notebooks,files}.max_staleness: the tree listed by need, a slice per cycle (0: "
        "the whole tree every cycle); at 900 s the tree and the ACL sweep alone need more than the budget",
    )
    parser.add_argument(
        "--acl-interval",
        type=float,
        default=60.0,
        help="kinds.permissions.interval: the sweep's slices (on a worker of their own) and its margin (2 cycles)",
    )
    parser.add_argument(
        "--acl-max-staleness",
        type=float,
        default=3600.0,
        help="kinds.permissions.max_staleness: every ACL read within it; at 100,000 objects and 50 requests/s an "
        "hour asks more than the budget leaves beside the rest (the daemon says so at start)",
    )
    parser.add_argument(
        "--schedules-max-staleness",
        type=float,
        default=3600.0,
        help="kinds.dashboard_schedules.max_staleness: each dashboard's schedules read by need (0: all every cycle)",
    )
    parser.add_argument("--samples-json", metavar="FILE", help="write every scrape's staleness per kind here")
    args = parser.parse_args()

    source = Emulator("src-token", seed_objects=args.objects)
    target = Emulator("tgt-token")
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp) / "state.db"
        print(f"dbsync steady state: {args.objects:,} objects, {time.strftime('%Y-%m-%d %H:%M')} UTC, {load()}")
        tree = {
            f"DBSYNC_KINDS__{k}__{setting}": str(value)
            for k in ("DIRECTORIES", "NOTEBOOKS", "FILES")
            for setting, value in (
                ("INTERVAL", args.workspace_interval),
                ("MAX_STALENESS", args.workspace_max_staleness),
            )
        }
        tree["DBSYNC_KINDS__PERMISSIONS__INTERVAL"] = str(args.acl_interval)
        tree["DBSYNC_KINDS__PERMISSIONS__MAX_STALENESS"] = str(args.acl_max_staleness)
        tree["DBSYNC_KINDS__DASHBOARD_SCHEDULES__MAX_STALENESS"] = str(args.schedules_max_staleness)
        # The initial sync with the tree's settings: its listing is the schedule's first (each directory's visit
        # spread over the window), so the daemon's first cycle lists a slice, not the whole tree again.
        initial = run_dbsync("sync", "--once", env=dbsync_env(source, target, state, **tree))
        print(
            f"initial sync (no budget, no latency): exit {initial.returncode}, {initial.seconds:.0f} s, "
            f"peak RSS {initial.peak_rss_mb:.0f} MB ({load()})"
        )
        print_needs(args, state)
        paths = notebook_paths(source.client())
        for emulator in (source, target):
            emulator.faults(latency_ms=args.latency_ms)
            emulator.reset_stats()
        port = free_port()
        env = dbsync_env(
            source,
            target,
            state,
            DBSYNC_SOURCE__MAX_REQUESTS_PER_SECOND=str(args.budget),
            DBSYNC_TARGET__MAX_REQUESTS_PER_SECOND=str(args.budget),
            DBSYNC_SERVER__PORT=str(port),
            **tree,
        )
        log_path = Path(tmp) / "serve.log"
        with log_path.open("w") as log:
            daemon = subprocess.Popen([sys.executable, "-m", "dbsync.cli", "serve"], env=env, stderr=log)
            editor = Editor(
                source,
                target,
                paths,
                args.edit_every,
                deadline=args.workspace_max_staleness + 2 * args.workspace_interval + 600,
            )
            samples: list[tuple[float, dict[str, tuple[float, float]], float]] = []
            passes: dict[float, float] = {}  # the ACL sweep's whole passes: when each ended -> its length
            overdue: list[tuple[float, int, float]] = []  # (seconds in, ACLs overdue, the most overdue's wait)
            started, started_wall = time.monotonic(), time.time()
            try:
                time.sleep(10)
                editor.start()
                while time.monotonic() - started < args.minutes * 60:
                    if daemon.poll() is not None:
                        raise SystemExit(f"the daemon exited with {daemon.returncode}: see {log_path}")
                    try:
                        samples.append(
                            (
                                time.monotonic() - started,
                                staleness(f"http://127.0.0.1:{port}/metrics"),
                                proc_rss_mb(daemon.pid)[0],
                            )
                        )
                    except httpx.HTTPError as err:
                        print(f"  scrape failed: {err}")
                    passes.update(sweep_passes(state))
                    overdue.append((time.monotonic() - started, *overdue_acls(state)))
                    if len(samples) % 10 == 1:
                        t, kinds, rss = samples[-1]
                        worst = max(kinds.items(), key=lambda kv: kv[1][0] / (kv[1][1] or 1), default=("-", (0, 0)))
                        print(
                            f"  {t / 60:5.1f} min: RSS {rss:.0f} MB, "
                            f"worst {worst[0]} {worst[1][0]:.0f}/{worst[1][1]:.0f} s ({load()})"
                        )
                    time.sleep(SAMPLE_EVERY)
                editor.stop.set()
                peak = proc_rss_mb(daemon.pid)[1]
                cpu = proc_cpu_seconds(daemon.pid)  # start-up reconcile included (the initial sync ran before)
            finally:
                daemon.terminate()
                daemon.wait(timeout=120)
        report(args, samples, peak, editor, source, target)
        ran = time.monotonic() - started
        print(f"daemon CPU: {cpu:.0f} s in {ran / 60:.0f} minutes, {100 * cpu / ran:.1f} % of a core")
        print_endpoints(source, seconds=ran)
        print("daemon cycles (kind: count, mean s, longest s; the workers: tree, sweeps, dashboards, jobs, the first):")
        for kind, count, mean, longest in cycle_times(state, started_wall):
            print(f"  {kind:<28}{count:>5}{mean:>9.1f}{longest:>9.1f}")
        print_rss_steps(state, samples, started_wall)
        print_sweep_passes([length for _, length in sorted(passes.items())])
        print_overdue(overdue)
        print(f"(daemon log: {sum(1 for _ in log_path.open())} lines; last: {log_path.read_text().splitlines()[-1:]})")
    source.stop()
    target.stop()


def print_endpoints(source: Emulator, seconds: float, top: int = 14) -> None:
    """Where the source's requests went: the busiest endpoints (method and route) in requests per second over the
    daemon's run, from the emulator's own counters (the driver's notebook imports, one per --edit-every, included)."""
    endpoints = sorted(((v["count"], k) for k, v in source.stats()["endpoints"].items()), reverse=True)
    total = sum(count for count, _ in endpoints)
    print(f"source requests by endpoint ({total / seconds:.1f}/s over {seconds / 60:.0f} min):")
    for count, endpoint in endpoints[:top]:
        print(f"  {count / seconds:6.2f}/s  {count:>8,}  {endpoint}")


def print_needs(args: argparse.Namespace, state: Path) -> None:
    """What the revisit schedule asks of the source's budget in steady state, from the store after the initial sync:
    each ACL read once per (max_staleness - its margin: two cycles), each directory listed once per the tree's."""
    store = sqlite3.connect(f"file:{state}?mode=ro", uri=True)
    acls = store.execute("SELECT COUNT(*) FROM resources WHERE kind = 'permissions'").fetchone()[0]
    folders = store.execute("SELECT COUNT(*) FROM visits WHERE kind = 'workspace_tree'").fetchone()[0]
    store.close()
    acl_rate = acls / (args.acl_max_staleness - min(2 * args.acl_interval, args.acl_max_staleness / 3))
    tree, cycle = args.workspace_max_staleness, args.workspace_interval
    tree_rate = folders / (tree - min(2 * cycle, tree / 3)) if tree else folders / cycle
    print(
        f"the schedule needs, on the source: {acl_rate:.1f} ACL reads/s ({acls:,} ACLs), {tree_rate:.1f} directory "
        f"listings/s ({folders:,} directories), plus dashboards and the listed kinds, of {0.9 * args.budget:.0f} "
        f"paced ({args.budget:.0f} x 90 %)"
    )


def sweep_passes(state: Path) -> dict[float, float]:
    """The ACL sweep's last whole pass (when it ended -> its length), as the daemon's store holds it; sampled every
    30 s, so a pass is recorded once, by when it ended."""
    store = sqlite3.connect(f"file:{state}?mode=ro", uri=True, timeout=10)
    try:
        rows = dict(
            store.execute(
                "SELECT key, value FROM meta WHERE key IN ('sweep_start:permissions', 'sweep_pass:permissions')"
            ).fetchall()
        )
    finally:
        store.close()
    if "sweep_pass:permissions" not in rows:
        return {}
    return {float(rows["sweep_start:permissions"]): float(rows["sweep_pass:permissions"])}


def overdue_acls(state: Path) -> tuple[int, float]:
    """How many ACLs are past their revisit now, and how long the most overdue has been (0 when none): a sweep that
    keeps up reads them within a slice or two."""
    now = time.time()
    store = sqlite3.connect(f"file:{state}?mode=ro", uri=True, timeout=10)
    try:
        count, oldest = store.execute(
            "SELECT COUNT(*), MIN(next_visit) FROM visits WHERE kind = 'permissions' AND next_visit > 0 "
            "AND next_visit <= ?",
            [now],
        ).fetchone()
    finally:
        store.close()
    return count, (now - oldest) if oldest is not None else 0.0


def print_overdue(overdue: list[tuple[float, int, float]]) -> None:
    """ACLs past their revisit (due two intervals before their max_staleness), from minute 10 (the initial backlog)."""
    late = [(count, wait) for t, count, wait in overdue if t >= BACKLOG_S]
    if not late:
        return
    counts, waits = [c for c, _ in late], [w for _, w in late]
    print(
        f"ACLs overdue from minute {BACKLOG_S / 60:.0f} (samples every {SAMPLE_EVERY:.0f} s): mean "
        f"{statistics.mean(counts):,.0f}, most {max(counts):,}; the most overdue waited at most {max(waits):.0f} s "
        f"(mean {statistics.mean(waits):.0f} s)"
    )


def print_sweep_passes(passes: list[float]) -> None:
    """The ACL sweep's whole passes over its slices (sampled every 30 s: a pass shorter than that may be missed):
    how long a walk round every ACL takes (the ACLs never read, those whose object was written, the deletes)."""
    if passes:
        print(
            f"ACL sweep passes: {len(passes)}, mean {statistics.mean(passes):.0f} s, longest {max(passes):.0f} s, "
            f"last {passes[-1]:.0f} s"
        )
    else:
        print("ACL sweep passes: none ended")


def print_rss_steps(state: Path, samples: list, started_wall: float, top: int = 6) -> None:
    """The largest rises of the daemon's RSS between two scrapes, with the cycles that ran in between: where the
    peak comes from (Python rarely gives memory back, so a rise is what a cycle held at its height)."""
    store = sqlite3.connect(f"file:{state}?mode=ro", uri=True)
    cycles = store.execute(
        "SELECT kind, started_at, finished_at FROM cycles WHERE started_at >= ? AND finished_at IS NOT NULL",
        [started_wall],
    ).fetchall()
    store.close()
    steps = []
    for (t0, _, rss0), (t1, _, rss1) in itertools.pairwise(samples):
        a, b = started_wall + t0, started_wall + t1
        running = sorted({kind for kind, start, end in cycles if start < b and end > a})
        steps.append((rss1 - rss0, t1 / 60, rss1, running))
    print(f"largest RSS rises between two scrapes ({SAMPLE_EVERY:.0f} s apart), with the cycles that ran then:")
    for rise, minute, rss, running in sorted(steps, reverse=True)[:top]:
        print(f"  +{rise:5.1f} MB to {rss:5.0f} MB at {minute:5.1f} min: {', '.join(running) or '-'}")


def alert_would_fire(series: list[tuple[float, float, float]], hold: float = 15 * 60) -> bool:
    """DbsyncStalenessAboveTarget's rule on the samples: staleness over target for `hold` seconds in a row."""
    since: float | None = None
    for at, stale, target in series:
        if target and stale > target:
            since = at if since is None else since
            if at - since >= hold:
                return True
        else:
            since = None
    return False


def _worst_and_over(series: list[tuple[float, float, float]]) -> tuple[float, float]:
    """The largest staleness of (minute, staleness, target) samples, and the % of samples over their target."""
    return max(s for _, s, _ in series), 100 * sum(1 for _, s, t in series if t and s > t) / len(series)


def report(args, samples, peak, editor: Editor, source: Emulator, target: Emulator) -> None:
    kinds = sorted({k for _, ks, _ in samples for k in ks})
    print(
        f"\n== steady state: {args.minutes:.0f} min at {args.budget:.0f} req/s, "
        f"{args.latency_ms:.0f} ms latency ({load()})"
    )
    print(
        f"{'kind':<28}{'target s':>9}{'max s':>8}{'% samples over':>16}"
        f"{'max s after':>13}{'% over after':>14}  alert would fire   (after: from minute {BACKLOG_S / 60:.0f} on)"
    )
    fired = []
    for kind in kinds:
        series = [(t, *ks[kind]) for t, ks, _ in samples if kind in ks]
        target_s = max(t for _, _, t in series)
        worst, over = _worst_and_over(series)
        settled = [sample for sample in series if sample[0] >= BACKLOG_S]
        worst_after, over_after = _worst_and_over(settled) if settled else (0.0, 0.0)
        fires = alert_would_fire(series)
        if fires:
            fired.append(kind)
        print(
            f"{kind:<28}{target_s:>9.0f}{worst:>8.0f}{over:>15.0f}%{worst_after:>13.0f}{over_after:>13.0f}%  "
            f"{'YES' if fires else 'no'}"
        )
    for name, emulator in (("source", source), ("target", target)):
        counts, refused = emulator.per_second()
        paced = int(args.budget * HEADROOM)
        print(
            f"{name}: {statistics.fmean(counts or [0]):.1f} requests/s on average, highest second "
            f"{max(counts, default=0)} (budget {args.budget:.0f}), seconds above the paced {paced}: "
            f"{sum(n > paced for n in counts)}, above the budget: {sum(n > args.budget for n in counts)} "
            f"(of {len(counts)}), {refused} x 429"
        )
    rss_series = [r for _, _, r in samples]
    print(f"daemon RSS: {statistics.fmean(rss_series):.0f} MB mean, peak {peak:.0f} MB (goal ≤ {RSS_GOAL_MB})")
    print(
        f"edits: {len(editor.lags)} replicated, {editor.missed} missed; change-to-target p50 "
        f"{percentile(editor.lags, 50):.0f} s, p99 {percentile(editor.lags, 99):.0f} s "
        f"(workspace interval {args.workspace_interval:.0f} s, max_staleness {args.workspace_max_staleness:.0f} s)"
    )
    print(
        f"staleness alert would fire for: {', '.join(fired) or 'no kind'}; "
        f"RSS goal: {'met' if peak <= RSS_GOAL_MB else 'NOT met'}"
    )
    if args.samples_json:
        Path(args.samples_json).write_text(json.dumps([[t, ks, r] for t, ks, r in samples]))


if __name__ == "__main__":
    main()
