"""RPO benchmark: how long a source edit takes to reach the target under `dbsync serve`, ACLs read by need.

Two in-process emulators (the source seeded with notebooks in directories, each notebook shared with a group),
one in-process daemon (dbsync.scheduler.Daemon) replicating groups, directories, notebooks and permissions, and
a driver that edits at a steady rate, 80 % of the edits in 10 % of the directories ("hot"): half rewrite a
notebook, half change only its ACL (nothing in any listing shows that: the revisit schedule or an audit-log hint
must find it). Each edit's change-to-target time is read from the target emulator's own audit log (the first
import or ACL write of that notebook after the edit). Run twice: the schedule alone, then with audit-log hints
(a source SQL warehouse and a delivery delay). Also prints the daemon's source requests per second (mean and the
highest second) and the ACL GETs per permissions cycle.

Scaled down from issue #16's scenario (10,000 notebooks, 100 ms latency, 15 min, 1 h max_staleness) to fit a
shared 2-core machine: every duration is divided by --scale (default 10) and the object count is --notebooks.

    python benchmarks/rpo.py [--notebooks 1000] [--dirs 100] [--minutes 3] [--latency-ms 20] [--scale 10]
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import logging
import os
import random
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from databricks.sdk import WorkspaceClient
from databricks.sdk.core import Config
from databricks.sdk.service import iam
from databricks.sdk.service.workspace import ImportFormat, Language

from dbsync.config import Settings
from dbsync.context import open_context
from dbsync.engine import Engine
from dbsync.registry import kind_names
from dbsync.scheduler import Daemon
from dbsync_emulator.server import EmulatorHandle, start_emulator

KINDS = ("groups", "directories", "notebooks", "permissions")
LEVELS = (iam.PermissionLevel.CAN_READ, iam.PermissionLevel.CAN_RUN, iam.PermissionLevel.CAN_EDIT)


def client(handle: EmulatorHandle) -> WorkspaceClient:
    return WorkspaceClient(config=Config(host=handle.url, token=handle.token, auth_type="pat"))


@dataclass
class Edit:
    kind: str  # "content" or "acl"
    path: str
    hot: bool
    at: float  # wall clock of the edit


@dataclass
class Run:
    label: str
    edits: list[Edit] = field(default_factory=list)
    rates: list[int] = field(default_factory=list)  # the daemon's source requests in each second of the run


def seed(src: WorkspaceClient, notebooks: int, dirs: int) -> list[list[str]]:
    """Directories of notebooks, each notebook shared with `readers`; the paths per directory."""
    src.groups.create(display_name="readers")
    layout: list[list[str]] = []
    for d in range(dirs):
        folder = f"/Shared/rpo/d{d:03d}"
        src.workspace.mkdirs(folder)
        layout.append([])
        for n in range(notebooks // dirs):
            path = f"{folder}/nb{n:03d}"
            upload(src, path, "print(0)\n")
            grant(src, path, LEVELS[0])
            layout[-1].append(path)
    return layout


def upload(w: WorkspaceClient, path: str, body: str) -> None:
    w.workspace.upload(
        path, io.BytesIO(body.encode()), format=ImportFormat.SOURCE, language=Language.PYTHON, overwrite=True
    )


def grant(w: WorkspaceClient, path: str, level: iam.PermissionLevel) -> None:
    object_id = str(w.workspace.get_status(path).object_id)
    acl = [iam.AccessControlRequest(group_name="readers", permission_level=level)]
    w.permissions.set("notebooks", object_id, access_control_list=acl)


def settings(src: EmulatorHandle, dst: EmulatorHandle, state: Path, args: Any, warehouse: str | None) -> Settings:
    scale = args.scale
    kinds: dict[str, Any] = {name: {"enabled": name in KINDS} for name in kind_names()}
    for name in ("directories", "notebooks", "files"):
        kinds[name] = {"enabled": name in KINDS, "interval": 60 / scale}
    kinds["permissions"] = {"interval": 300 / scale, "max_staleness": 3600 / scale}
    document: dict[str, Any] = {
        "source": {"host": src.url, "token": src.token},
        "target": {"host": dst.url, "token": dst.token},
        "state_path": str(state),
        "kinds": kinds,
        "identities": {"create_users": True},
        "log_level": "WARNING",
        "audit_hints": {"interval": max(1.0, 30 / scale)},
    }
    if warehouse:
        document["metastore"] = {"source_warehouse_id": warehouse}
    return Settings(**document)


def drive(src: WorkspaceClient, layout: list[list[str]], run: Run, seconds: float, every: float, ctx: Any) -> None:
    """Edits at a steady rate (80 % in the hot tenth of the directories); samples the daemon's source calls."""
    rng = random.Random(7)
    levels: dict[str, int] = {}  # each ACL edit sets a level the notebook does not have
    hot = max(1, len(layout) // 10)
    end = time.monotonic() + seconds
    last_calls, next_sample, i = ctx.source.total_calls(), time.monotonic() + 1, 0
    while time.monotonic() < end:
        in_hot = rng.random() < 0.8
        folder = layout[rng.randrange(hot)] if in_hot else layout[rng.randrange(hot, len(layout))]
        path = rng.choice(folder)
        kind = "content" if i % 2 == 0 else "acl"
        at = time.time()
        if kind == "content":
            upload(src, path, f"print({i})\n")
        else:
            levels[path] = (levels.get(path, 0) + 1) % len(LEVELS)
            grant(src, path, LEVELS[levels[path]])
        run.edits.append(Edit(kind, path, in_hot, at))
        i += 1
        while time.monotonic() < next_sample:
            time.sleep(min(every, max(0.0, next_sample - time.monotonic())))
        calls = ctx.source.total_calls()
        run.rates.append(calls - last_calls)
        last_calls, next_sample = calls, next_sample + 1


def target_writes(dst: EmulatorHandle, dst_client: WorkspaceClient) -> dict[tuple[str, str], list[float]]:
    """(content | acl, path) -> times the target received a write of that notebook (from its audit log)."""
    ids = {
        str(o.object_id): o.path
        for o in dst_client.workspace.list("/Shared/rpo", recursive=True)
        if o.object_type and o.object_type.value == "NOTEBOOK"
    }
    out: dict[tuple[str, str], list[float]] = {}
    with dst.workspace.lock:
        rows = list(dst.workspace.table("audit_log").values())
    for row in rows:
        params = json.loads(row["request_params"])
        at = dt.datetime.fromisoformat(row["event_time"].replace("Z", "+00:00")).timestamp()
        if row["action_name"] == "importNotebook" and "path" in params:
            out.setdefault(("content", params["path"]), []).append(at)
        elif row["action_name"] == "changeWorkspaceAcl":
            object_id = params["aclChangeResourceName"].partition("/")[2]
            if object_id in ids:
                out.setdefault(("acl", ids[object_id]), []).append(at)
    return {k: sorted(v) for k, v in out.items()}


def lags(run: Run, writes: dict[tuple[str, str], list[float]]) -> dict[str, list[float | None]]:
    """Change-to-target seconds per edit class (None: not on the target by the end of the run)."""
    out: dict[str, list[float | None]] = {}
    for edit in run.edits:
        landed = next((t for t in writes.get((edit.kind, edit.path), []) if t >= edit.at - 0.002), None)
        lag = None if landed is None else max(0.0, landed - edit.at)
        out.setdefault(f"{edit.kind} {'hot' if edit.hot else 'cold'}", []).append(lag)
    return out


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def one_run(args: Any, hints: bool) -> None:
    label = "with audit-log hints" if hints else "schedule only (no hints)"
    src = start_emulator(latency_ms=args.latency_ms, cluster_start_seconds=0.1, audit_delay_seconds=60 / args.scale)
    dst = start_emulator(latency_ms=args.latency_ms, cluster_start_seconds=0.1, token="dapi-target-rpo")
    try:
        src_client, dst_client = client(src), client(dst)
        started = time.monotonic()
        layout = seed(src_client, args.notebooks, args.dirs)
        warehouse = None
        if hints:
            warehouse = src_client.warehouses.create(name="rpo", cluster_size="2X-Small", auto_stop_mins=0).response.id
        with tempfile.TemporaryDirectory() as tmp:
            ctx = open_context(settings(src, dst, Path(tmp) / "rpo.db", args, warehouse))
            Engine(ctx).cycle(list(KINDS))  # the initial sync, before the clock of the run starts
            seeded = time.monotonic() - started
            daemon = Daemon(ctx)
            daemon.start()
            run = Run(label)
            try:
                drive(src_client, layout, run, args.minutes * 60, args.edit_every, ctx)
                drain = 3600 / args.scale + 300 / args.scale + 15
                time.sleep(drain)  # the last edits' revisits come due
            finally:
                daemon.shutdown(timeout=60)
        report(run, lags(run, target_writes(dst, dst_client)), args, seeded, drain)
    finally:
        src.stop()
        dst.stop()


def report(run: Run, by_class: dict[str, list[float | None]], args: Any, seeded: float, drain: float) -> None:
    max_staleness = 3600 / args.scale
    print(f"\n== {run.label}: seed + initial sync {seeded:.0f} s, {len(run.edits)} edits, then {drain:.0f} s drain")
    print(f"{'edits':<14}{'count':>7}{'p50 s':>8}{'p99 s':>8}{'max s':>8}{'missed':>8}")
    everything: list[float] = []
    for name in sorted(by_class):
        landed = [v for v in by_class[name] if v is not None]
        everything += landed
        missed = len(by_class[name]) - len(landed)
        print(
            f"{name:<14}{len(by_class[name]):>7}{percentile(landed, 50):>8.1f}{percentile(landed, 99):>8.1f}"
            f"{max(landed, default=float('nan')):>8.1f}{missed:>8}"
        )
    print(f"{'all':<14}{len(everything):>7}{percentile(everything, 50):>8.1f}{percentile(everything, 99):>8.1f}")
    rates = run.rates or [0]
    print(
        f"daemon source requests/s: mean {sum(rates) / len(rates):.1f}, highest second {max(rates)}; "
        f"max_staleness {max_staleness:.0f} s, permissions interval {300 / args.scale:.0f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--notebooks", type=int, default=1000)
    parser.add_argument("--dirs", type=int, default=100)
    parser.add_argument("--minutes", type=float, default=3.0, help="minutes of edits")
    parser.add_argument("--edit-every", type=float, default=1.0, help="seconds between two edits")
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--scale", type=float, default=10.0, help="divide every interval and delay by this")
    parser.add_argument("--only", choices=("schedule", "hints"), help="run one of the two configurations")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    print(
        f"dbsync RPO benchmark: {args.notebooks} notebooks in {args.dirs} directories, {args.latency_ms:.0f} ms "
        f"latency, durations / {args.scale:g}, {time.strftime('%Y-%m-%d')}, load average {os.getloadavg()[0]:.1f}"
    )
    for hints in (False, True):
        if args.only and args.only != ("hints" if hints else "schedule"):
            continue
        one_run(args, hints)
    sys.stdout.flush()


if __name__ == "__main__":
    threading.excepthook = lambda hook: None  # a worker stopped by the shutdown is not a benchmark failure
    main()
