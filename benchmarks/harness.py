"""What the chaos, scale, head-to-head and rate-limit benchmarks share.

- `Emulator`: a `dbsync emulator` subprocess (restartable on the same port, killable), its admin surface
  (faults, stats, seed) and an SDK client for it;
- `run_dbsync` / `start_dbsync`: the `dbsync` command as a subprocess, with its wall time and peak RSS;
- `compare`: an independent source-vs-target check (it uses the SDK, not dbsync's code) that counts
  what is missing, extra, different or duplicated.

Nothing here is a test: the scripts print figures for BENCHMARKS.md.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from databricks.sdk import WorkspaceClient
from databricks.sdk.core import Config
from databricks.sdk.errors import NotFound
from databricks.sdk.service.workspace import ExportFormat

for _name in [n for n in os.environ if n.startswith("DATABRICKS_")]:
    del os.environ[_name]  # the SDK must see only what the benchmark configures

SOURCE_ID_TAG = "dbsync_source_id"
SOURCE_JOB_TAG = "dbsync_source_job_id"
INTERACTIVE = ("UI", "API")
BUILTIN_DIRS = {"/Users", "/Shared", "/Repos"}
TREE_TYPES = ("DIRECTORY", "NOTEBOOK", "FILE")


def load() -> str:
    """The 1-minute load average, printed next to every figure (the machine is shared)."""
    return f"load {os.getloadavg()[0]:.2f}"


def steal_seconds() -> float:
    """CPU time the hypervisor gave other guests since boot (all CPUs, /proc/stat): on a VM, a run that lost some
    ran slower through no fault of its own, so the head to head prints what each run lost."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    return int(fields[8]) / os.sysconf("SC_CLK_TCK") if len(fields) > 8 else 0.0


def proc_rss_mb(pid: int) -> tuple[float, float]:
    """(current, peak) resident set size of a running process in MB, from /proc (VmRSS, VmHWM)."""
    status = Path(f"/proc/{pid}/status").read_text()
    current = re.search(r"VmRSS:\s+(\d+) kB", status)
    peak = re.search(r"VmHWM:\s+(\d+) kB", status)
    return (int(current.group(1)) / 1024 if current else 0.0, int(peak.group(1)) / 1024 if peak else 0.0)


def proc_cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) a running process has used so far, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime: fields 14 and 15


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile of `values` (nearest rank); NaN when there are none."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def cycle_times(state: Path, since: float) -> list[tuple[str, int, float, float]]:
    """Per kind, the daemon's cycles from the store: how many, mean and longest seconds (where the time went)."""
    conn = sqlite3.connect(state)
    try:
        return conn.execute(
            "SELECT kind, COUNT(*), AVG(finished_at - started_at), MAX(finished_at - started_at) FROM cycles "
            "WHERE started_at >= ? AND finished_at IS NOT NULL GROUP BY kind ORDER BY kind",
            [since],
        ).fetchall()
    finally:
        conn.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- emulators ----------------------------------------------------------------------------------------
class Emulator:
    """One `dbsync emulator` process; `restart()` brings it back on the same port (same workspace id)."""

    def __init__(
        self,
        token: str,
        seed_objects: int = 0,
        seed: int = 11,
        rate_limit: float | None = None,
        latency_ms: float = 0.0,
        port: int | None = None,
        options: tuple[str, ...] = (),
    ) -> None:
        self.token = token
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[str] | None = None
        self.options = options  # more `dbsync emulator` flags (e.g. --audit-delay-seconds 60), kept on restart
        self.start(seed_objects, seed, rate_limit, latency_ms)

    def start(self, seed_objects: int = 0, seed: int = 11, rate_limit: float | None = None, latency_ms=0.0) -> None:
        command = [sys.executable, "-m", "dbsync.cli", "emulator", "--port", str(self.port), "--token", self.token]
        command += ["--seed-objects", str(seed_objects), "--seed", str(seed), "--cluster-start-seconds", "0.5"]
        # Both tools copy secret values over secrets/get here (a real workspace refuses it: see README).
        command += ["--allow-secrets-get", *self.options]
        if rate_limit:
            command += ["--rate-limit", str(rate_limit)]
        if latency_ms:
            command += ["--latency-ms", str(latency_ms)]
        self.proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        if "serving" not in line:
            raise SystemExit(f"emulator on port {self.port} did not start: {line!r}")

    def stop(self, kill: bool = False) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        if kill:
            self.proc.kill()
        else:
            self.proc.terminate()
        self.proc.wait(timeout=30)

    def restart(self, seed_objects: int = 0) -> None:
        """Stop and start again, empty (or seeded), on the same port: clients see the same workspace id."""
        self.stop(kill=True)
        self.start(seed_objects)

    # -- admin surface --------------------------------------------------------------------------
    def admin(self, method: str, path: str, json: Any = None, timeout: float = 600) -> Any:
        answer = httpx.request(
            method,
            f"{self.url}/_emulator/{path}",
            json=json,
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=timeout,
        )
        answer.raise_for_status()
        return answer.json()

    def faults(self, **settings: Any) -> None:
        """PUT /_emulator/faults (unnamed settings go back to their defaults; rate_limit=None lifts it)."""
        self.admin("PUT", "faults", settings)

    def stats(self) -> dict[str, Any]:
        return self.admin("GET", "stats")

    def reset_stats(self) -> None:
        self.admin("POST", "stats/reset")

    def per_second(self) -> tuple[list[int], int]:
        """dbsync's requests in each second of the clock since the last stats reset, a second with none counted as
        0 (the driver's token, `driver_client`, taken out), and the 429s over every endpoint."""
        stats = self.stats()
        counts = {int(k): v for k, v in stats.get("per_second", {}).items()}
        driver = {int(k): v for k, v in stats.get("per_second_other_tokens", {}).items()}
        seconds = range(min(counts), max(counts) + 1) if counts else range(0)
        return [counts.get(s, 0) - driver.get(s, 0) for s in seconds], statuses(stats).get("429", 0)

    def client(self, retry_timeout_seconds: int = 600, token: str | None = None) -> WorkspaceClient:
        """A client with the start-up token (dbsync's), or `token`: the emulator counts requests made with another
        token apart (`per_second_other_tokens` in its stats), so a benchmark's own edits are told from dbsync's."""
        config = Config(
            host=self.url, token=token or self.token, auth_type="pat", retry_timeout_seconds=retry_timeout_seconds
        )
        return WorkspaceClient(config=config)

    def driver_client(self) -> WorkspaceClient:
        """A client with a token of its own (made through the token API), for a benchmark's driver."""
        made = self.client().tokens.create(comment="benchmark driver", lifetime_seconds=7 * 86_400)
        return self.client(token=made.token_value)

    def writes(self) -> int:
        """Requests that could change the workspace (anything but GET) since the last stats reset."""
        return sum(v["count"] for k, v in self.stats()["endpoints"].items() if not k.startswith("GET"))

    def calls(self, endpoint: str) -> int:
        return int(self.stats()["endpoints"].get(endpoint, {}).get("count", 0))


def statuses(stats: dict[str, Any]) -> Counter[str]:
    """HTTP statuses over every endpoint of a stats document."""
    out: Counter[str] = Counter()
    for entry in stats["endpoints"].values():
        out.update({k: int(v) for k, v in entry["statuses"].items()})
    return out


# -- the dbsync command -------------------------------------------------------------------------------
def dbsync_env(source: Emulator, target: Emulator, state_path: Path, **extra: str) -> dict[str, str]:
    """Environment for a `dbsync` subprocess replicating `source` into `target`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DBSYNC_", "DATABRICKS_"))}
    env.update(
        {
            "DBSYNC_SOURCE__HOST": source.url,
            "DBSYNC_SOURCE__TOKEN": source.token,
            "DBSYNC_TARGET__HOST": target.url,
            "DBSYNC_TARGET__TOKEN": target.token,
            "DBSYNC_STATE_PATH": str(state_path),
            "DBSYNC_IDENTITIES__CREATE_USERS": "true",  # the emulated target has no identity provider
            "DBSYNC_LOG_LEVEL": "WARNING",
            "DBSYNC_SECRETS__VALUES_FROM": "api",  # the emulators run with --allow-secrets-get
        }
    )
    env.update(extra)
    return env


@dataclass
class Run:
    """A finished `dbsync` subprocess."""

    returncode: int
    stdout: str
    stderr: str
    seconds: float
    peak_rss_mb: float
    cpu_seconds: float = 0.0  # user + system time of the process


def start_dbsync(*args: str, env: dict[str, str], cwd: Path | None = None, **popen: Any) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "dbsync.cli", *args],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )


def wait_dbsync(proc: subprocess.Popen[str], started: float, timeout: float = 7200) -> Run:
    """Wait for a dbsync process started with `start_dbsync`; its peak RSS comes from wait4()."""
    import threading

    out: dict[str, str] = {}

    def drain(name: str, stream: Any) -> None:
        out[name] = stream.read() if stream else ""

    readers = [threading.Thread(target=drain, args=(n, s)) for n, s in (("o", proc.stdout), ("e", proc.stderr))]
    for reader in readers:
        reader.start()
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    finally:
        timer.cancel()
    seconds = time.monotonic() - started
    for reader in readers:
        reader.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    cpu = usage.ru_utime + usage.ru_stime
    return Run(proc.returncode, out.get("o", ""), out.get("e", ""), seconds, usage.ru_maxrss / 1024, cpu)


def run_dbsync(*args: str, env: dict[str, str], cwd: Path | None = None, timeout: float = 7200) -> Run:
    """Run `dbsync <args>` to the end: exit code, output, wall seconds, peak RSS (MB)."""
    started = time.monotonic()
    return wait_dbsync(start_dbsync(*args, env=env, cwd=cwd), started, timeout)


def run_command(argv: list[str], timeout: float = 7200) -> Run:
    """Any command to the end, measured like `run_dbsync` (the baseline tool, say)."""
    started = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return wait_dbsync(proc, started, timeout)


def kill9(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)


# -- an independent comparison of the two workspaces ----------------------------------------------------
@dataclass
class Comparison:
    """What differs between source and target, by category; empty `differences` = equal."""

    differences: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    duplicates: dict[str, int] = field(default_factory=dict)
    running_target_clusters: int = 0

    @property
    def equal(self) -> bool:
        return not self.differences and not any(self.duplicates.values()) and not self.running_target_clusters

    def summary(self) -> str:
        counted = ", ".join(f"{k} {v}" for k, v in self.counts.items())
        dupes = sum(self.duplicates.values())
        verdict = "EQUAL" if self.equal else f"{len(self.differences)} DIFFERENCES"
        text = f"{verdict}: {counted}; duplicates {dupes}; running target clusters {self.running_target_clusters}"
        if self.differences:
            text += "\n    " + "\n    ".join(self.differences[:15])
        return text


Row = tuple[str, str, str | None, int]


def tree(w: WorkspaceClient, threads: int = 8) -> list[Row]:
    """(path, object type, language, object id) of every directory, notebook and file (not dbsync's archive)."""
    rows: list[Row] = []
    level = ["/"]

    def children(path: str) -> list[Any]:
        try:
            return list(w.workspace.list(path))
        except NotFound:
            return []

    with ThreadPoolExecutor(threads) as pool:
        while level:
            following = []
            for listing in pool.map(children, level):
                for o in listing:
                    kind = o.object_type.value if o.object_type else ""
                    if kind not in TREE_TYPES or (o.path or "").startswith("/dbsync-archive"):
                        continue  # repos and dashboards are kinds of their own, not compared here
                    rows.append((o.path or "", kind, o.language.value if o.language else None, o.object_id or 0))
                    if kind == "DIRECTORY":
                        following.append(o.path or "")
            level = following
    return rows


def _digest(w: WorkspaceClient, path: str, kind: str) -> str:
    fmt = ExportFormat.SOURCE if kind == "NOTEBOOK" else ExportFormat.AUTO
    return hashlib.sha256(w.workspace.download(path, format=fmt).read()).hexdigest()


def _every(items: list[Any], sample: float) -> list[Any]:
    """An evenly spread `sample` fraction of `items` (all at 1, none at 0)."""
    if sample >= 1:
        return items
    if sample <= 0:
        return []
    step = max(1, round(1 / max(sample, 1e-9)))
    return items[::step]


def compare(
    src: WorkspaceClient,
    dst: WorkspaceClient,
    content_sample: float = 1.0,
    acl_sample: float = 1.0,
    threads: int = 8,
) -> Comparison:
    """Source vs target as a user would check them, kind by kind (mapping-free pairs only)."""
    result = Comparison()
    notebooks = _compare_tree(src, dst, result, content_sample, threads)
    jobs = _compare_tagged(
        result,
        "jobs",
        {str(j.job_id): j for j in src.jobs.list(expand_tasks=True, limit=100)},
        dst.jobs.list(expand_tasks=True, limit=100),
        lambda j: (j.settings.tags or {}).get(SOURCE_JOB_TAG) if j.settings else None,
        lambda j: (j.settings.name, len(j.settings.tasks or [])) if j.settings else None,
        lambda j: str(j.job_id),
    )
    clusters = _compare_tagged(
        result,
        "clusters",
        {
            c.cluster_id or "": c
            for c in src.clusters.list()
            if (c.cluster_source.value if c.cluster_source else "UI") in INTERACTIVE
        },
        list(dst.clusters.list()),
        lambda c: (c.custom_tags or {}).get(SOURCE_ID_TAG),
        lambda c: c.cluster_name,
        lambda c: c.cluster_id or "",
    )
    result.running_target_clusters = sum(
        1 for c in dst.clusters.list() if c.state and c.state.value not in ("TERMINATED", "TERMINATING")
    )
    _compare_tagged(
        result,
        "instance_pools",
        {p.instance_pool_id or "": p for p in src.instance_pools.list()},
        dst.instance_pools.list(),
        lambda p: (p.custom_tags or {}).get(SOURCE_ID_TAG),
        lambda p: p.instance_pool_name,
        lambda p: p.instance_pool_id or "",
    )
    _compare_names(result, "cluster_policies", [p.name or "" for p in src.cluster_policies.list()],
                   [p.name or "" for p in dst.cluster_policies.list()])  # fmt: skip
    _compare_identities(src, dst, result)
    _compare_secrets(src, dst, result)
    objects = [("jobs", s, t) for s, t in jobs.items()] + [("clusters", s, t) for s, t in clusters.items()]
    objects += [("notebooks", s, t) for s, t in notebooks.values()]
    _compare_acls(src, dst, result, objects, acl_sample, threads)
    return result


def _compare_tree(
    src: WorkspaceClient, dst: WorkspaceClient, result: Comparison, sample: float, threads: int
) -> dict[str, tuple[str, str]]:
    """Paths, types, languages and contents; returns {notebook path: (source id, target id)}."""
    source, target = tree(src, threads), tree(dst, threads)
    for name, rows in (("source", source), ("target", target)):
        result.duplicates[f"paths on {name}"] = len(rows) - len({row[0] for row in rows})
    src_map = {p: (k, lang) for p, k, lang, _ in source}
    dst_map = {p: (k, lang) for p, k, lang, _ in target}
    target_ids = {p: oid for p, _, _, oid in target}
    notebooks = {p: (str(oid), str(target_ids[p])) for p, k, _, oid in source if k == "NOTEBOOK" and p in target_ids}
    result.counts["workspace objects"] = len(src_map)
    for path in sorted(set(src_map) - set(dst_map)):
        result.differences.append(f"workspace: {path} missing on the target")
    for path in sorted(set(dst_map) - set(src_map) - BUILTIN_DIRS):
        result.differences.append(f"workspace: {path} on the target only")
    for path in sorted(set(src_map) & set(dst_map)):
        if src_map[path] != dst_map[path]:
            result.differences.append(f"workspace: {path} is {dst_map[path]} on the target, {src_map[path]} on source")
    bodies = _every(sorted(p for p, (k, _) in src_map.items() if k in ("NOTEBOOK", "FILE") and p in dst_map), sample)

    def differs(path: str) -> bool:
        kind = src_map[path][0]
        return _digest(src, path, kind) != _digest(dst, path, kind)

    with ThreadPoolExecutor(threads) as pool:
        for path, different in zip(bodies, pool.map(differs, bodies), strict=True):
            if different:
                result.differences.append(f"workspace: content of {path} differs")
    result.counts["bodies compared"] = len(bodies)
    return notebooks


def _compare_tagged(
    result: Comparison,
    kind: str,
    source: dict[str, Any],
    target: Iterable[Any],
    tag: Callable[[Any], str | None],
    facts: Callable[[Any], Any],
    target_id: Callable[[Any], str],
) -> dict[str, str]:
    """Objects adopted by a dbsync tag: one target object per source object, same facts. {source id: target id}."""
    by_tag: dict[str, list[Any]] = {}
    untagged = 0
    for obj in target:
        key = tag(obj)
        if key is None:
            untagged += 1
        else:
            by_tag.setdefault(key, []).append(obj)
    result.counts[kind] = len(source)
    result.duplicates[f"{kind} by tag"] = sum(len(v) - 1 for v in by_tag.values())
    mapping = {}
    for source_id, obj in source.items():
        copies = by_tag.get(source_id)
        if not copies:
            result.differences.append(f"{kind}: {source_id} missing on the target")
            continue
        mapping[source_id] = target_id(copies[0])
        if facts(copies[0]) != facts(obj):
            seen, want = facts(copies[0]), facts(obj)
            result.differences.append(f"{kind}: {source_id} is {seen} on the target, {want} on the source")
    for key in set(by_tag) - set(source):
        result.differences.append(f"{kind}: target copy of {key} has no source object")
    if untagged:
        result.differences.append(f"{kind}: {untagged} target objects without the dbsync tag")
    return mapping


def _compare_names(result: Comparison, kind: str, source: list[str], target: list[str]) -> None:
    result.counts[kind] = len(source)
    result.duplicates[f"{kind} by name"] = len(target) - len(set(target))
    for name in sorted(set(source) - set(target)):
        result.differences.append(f"{kind}: {name!r} missing on the target")
    for name in sorted(set(target) - set(source)):
        result.differences.append(f"{kind}: {name!r} on the target only")


def _compare_identities(src: WorkspaceClient, dst: WorkspaceClient, result: Comparison) -> None:
    def groups(w: WorkspaceClient) -> dict[str, set[str]]:
        names = {g.id: g.display_name for g in w.groups.list(attributes="id,displayName")}
        users = {u.id: u.user_name for u in w.users.list(attributes="id,userName")}
        sps = {s.id: s.application_id for s in w.service_principals.list(attributes="id,applicationId")}
        every = {**names, **users, **sps}
        return {
            g.display_name or "": {every.get(m.value, m.value) or "" for m in g.members or []}
            for g in w.groups.list(attributes="id,displayName,members")
            if g.display_name not in ("users", "admins")
        }

    source_groups, target_groups = groups(src), groups(dst)
    _compare_names(result, "groups", list(source_groups), list(target_groups))
    for name in sorted(set(source_groups) & set(target_groups)):
        if source_groups[name] != target_groups[name]:
            result.differences.append(f"groups: members of {name!r} differ")
    _compare_names(
        result,
        "users",
        [u.user_name or "" for u in src.users.list(attributes="userName")],
        [u.user_name or "" for u in dst.users.list(attributes="userName")],
    )
    _compare_names(
        result,
        "service_principals",
        [s.application_id or "" for s in src.service_principals.list(attributes="applicationId")],
        [s.application_id or "" for s in dst.service_principals.list(attributes="applicationId")],
    )


def _compare_secrets(src: WorkspaceClient, dst: WorkspaceClient, result: Comparison) -> None:
    source = {s.name or "" for s in src.secrets.list_scopes()}
    _compare_names(result, "secret_scopes", sorted(source), [s.name or "" for s in dst.secrets.list_scopes()])
    for scope in sorted(source):
        keys = sorted(k.key or "" for k in src.secrets.list_secrets(scope))
        try:
            copied = sorted(k.key or "" for k in dst.secrets.list_secrets(scope))
        except NotFound:
            continue  # reported as a missing scope
        if keys != copied:
            result.differences.append(f"secrets: keys of scope {scope!r} differ")


def _direct_groups(w: WorkspaceClient, request_type: str, object_id: str) -> set[tuple[str, str]]:
    """(group, level) of the direct, non-admins group entries: what the seed grants and dbsync copies."""
    acl = w.permissions.get(request_type, object_id).access_control_list or []
    return {
        (a.group_name, p.permission_level.value if p.permission_level else "")
        for a in acl
        if a.group_name and a.group_name != "admins"
        for p in a.all_permissions or []
        if not p.inherited
    }


def _compare_acls(
    src: WorkspaceClient,
    dst: WorkspaceClient,
    result: Comparison,
    objects: list[tuple[str, str, str]],
    sample: float,
    threads: int,
) -> None:
    """Direct group grants of (permissions type, source id, target id) objects, a sample of them."""
    pairs = _every(objects, sample)

    def differs(item: tuple[str, str, str]) -> bool:
        kind, source_id, target_id = item
        return _direct_groups(src, kind, source_id) != _direct_groups(dst, kind, target_id)

    with ThreadPoolExecutor(threads) as pool:
        for item, different in zip(pairs, pool.map(differs, pairs), strict=True):
            if different:
                result.differences.append(f"permissions: ACL of {item[0]} {item[1]} differs")
    result.counts["ACLs compared"] = len(pairs)


def notebook_paths(w: WorkspaceClient) -> list[str]:
    return sorted(row[0] for row in tree(w) if row[1] == "NOTEBOOK")


def parent(path: str) -> str:
    return posixpath.dirname(path)
