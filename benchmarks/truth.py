"""Truth: does what dbsync says match what the standby holds, cycle after cycle?

Two `dbsync emulator` processes; the source has users the target lacks (`identities.create_users: false`,
as with an IdP) who own jobs and hold notebook ACLs. Then 10 cycles of random edits on both sides (3 a
cycle, 30 in all: notebook edits, new notebooks and job renames on the source, notebook edits on the
target), with the missing users provisioned on the target a few at a time. Each cycle:

  1. `dbsync validate --format json` before the sync: its `pending` per kind against an independent SDK
     comparison of the two workspaces (objects whose source differs from the target, leaving out those
     edited on the target, which are drift and not pending);
  2. `dbsync sync --once`, then `dbsync validate`: exit codes;
  3. drift events so far (from the store) for objects never edited on the target: false drift;
  4. the source ACL entries (job owners, viewers, notebook editors) whose user exists on the target now,
     and how many of them the target holds: skipped entries applied once their principal exists.

    python benchmarks/truth.py [--cycles 10] [--edits 3] [--seed 7]

It measures only; exit status 1 when a figure is off (false drift, an entry not applied one cycle after its
principal appeared, pending != the independent count).
"""

from __future__ import annotations

import argparse
import io
import json
import random
import sqlite3
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from databricks.sdk import WorkspaceClient
from databricks.sdk.service import iam, jobs
from databricks.sdk.service.workspace import ExportFormat, ImportFormat, Language

sys.path.insert(0, str(Path(__file__).parent))
from harness import SOURCE_JOB_TAG, Emulator, dbsync_env, load, run_dbsync

KINDS = "groups,service_principals,users,group_members,directories,notebooks,jobs,permissions"
FOLDER = "/Shared/truth"
USERS = [f"late.user{i}@example.com" for i in range(12)]


@dataclass
class World:
    """The benchmark's own record of what it did: the independent side of every comparison."""

    src: WorkspaceClient
    dst: WorkspaceClient
    rng: random.Random
    notebooks: list[str] = field(default_factory=list)
    jobs: list[int] = field(default_factory=list)
    target_edited: set[str] = field(default_factory=set)  # notebook paths edited on the target, ever
    dirty: set[str] = field(default_factory=set)  # edited on the target and not rewritten from the source since
    provisioned: list[str] = field(default_factory=list)  # late users the target has now


def build_source(world: World, notebooks: int = 20, job_count: int = 10) -> None:
    """Late users, notebooks they edit, jobs they own and view."""
    src, rng = world.src, world.rng
    for user in USERS:
        src.users.create(user_name=user)
    src.workspace.mkdirs(FOLDER)
    for i in range(notebooks):
        path = f"{FOLDER}/nb{i:02d}"
        _upload(src, path, f"print({i})\n")
        world.notebooks.append(path)
        status = src.workspace.get_status(path)
        _acl(src, "notebooks", str(status.object_id), [(rng.choice(USERS), "CAN_EDIT")])
    for i in range(job_count):
        job_id = src.jobs.create(
            name=f"truth-job-{i}",
            tasks=[
                jobs.Task(
                    task_key="t", environment_key="e", notebook_task=jobs.NotebookTask(notebook_path=f"{FOLDER}/nb00")
                )
            ],
            environments=[jobs.JobEnvironment(environment_key="e")],
        ).job_id
        owner, viewer = rng.sample(USERS, 2)
        _acl(src, "jobs", str(job_id), [(owner, "IS_OWNER"), (viewer, "CAN_VIEW")])
        world.jobs.append(job_id or 0)


def _upload(w: WorkspaceClient, path: str, text: str) -> None:
    w.workspace.upload(
        path, io.BytesIO(text.encode()), format=ImportFormat.SOURCE, language=Language.PYTHON, overwrite=True
    )


def _acl(w: WorkspaceClient, request_type: str, object_id: str, entries: list[tuple[str, str]]) -> None:
    w.permissions.set(
        request_type,
        object_id,
        access_control_list=[
            iam.AccessControlRequest(user_name=u, permission_level=iam.PermissionLevel(level)) for u, level in entries
        ],
    )


def edit(world: World, cycle: int, number: int) -> str:
    """One random edit on either side; returns what it did."""
    rng, src, dst = world.rng, world.src, world.dst
    choice = rng.choice(["src_notebook", "src_notebook", "new_notebook", "job_rename", "dst_notebook"])
    if choice == "src_notebook":
        path = rng.choice(world.notebooks)
        _upload(src, path, f"print('cycle {cycle} edit {number}')\n")
        world.dirty.discard(path)  # the next sync rewrites it from the source
        return f"source: edited {path}"
    if choice == "new_notebook":
        path = f"{FOLDER}/new_{cycle}_{number}"
        _upload(src, path, "print('new')\n")
        world.notebooks.append(path)
        return f"source: created {path}"
    if choice == "job_rename":
        job_id = rng.choice(world.jobs)
        settings = src.jobs.get(job_id).settings
        assert settings is not None
        settings.name = f"truth-job-{job_id}-c{cycle}e{number}"
        src.jobs.reset(job_id, jobs.JobSettings.from_dict(settings.as_dict()))
        return f"source: renamed job {job_id}"
    synced = [p for p in world.notebooks if _exists(dst, p)]
    path = rng.choice(synced)
    _upload(dst, path, f"print('hand edit on the standby, cycle {cycle}')\n")
    world.target_edited.add(path)
    world.dirty.add(path)
    return f"target: edited {path} (real drift)"


def _exists(w: WorkspaceClient, path: str) -> bool:
    try:
        w.workspace.get_status(path)
        return True
    except Exception:
        return False


def _content(w: WorkspaceClient, path: str) -> bytes | None:
    try:
        return w.workspace.export(path, format=ExportFormat.SOURCE).content.encode()
    except Exception:
        return None


def independent_pending(world: World) -> dict[str, int]:
    """Objects whose source differs from the target (not counting target-side edits), by SDK only."""
    notebooks = sum(
        1
        for path in world.notebooks
        if path not in world.dirty and _content(world.src, path) != _content(world.dst, path)
    )
    by_tag = {
        (j.settings.tags or {}).get(SOURCE_JOB_TAG): j.settings.name
        for j in world.dst.jobs.list(limit=100)
        if j.settings
    }
    source_jobs = {str(j.job_id): j.settings.name for j in world.src.jobs.list(limit=100) if j.settings}
    job_count = sum(1 for key, name in source_jobs.items() if by_tag.get(key) != name)
    return {"notebooks": notebooks, "jobs": job_count}


def acl_entries(world: World) -> tuple[int, int]:
    """(source ACL entries naming a late user the target has, how many of them the target holds)."""
    dst_jobs = {
        (j.settings.tags or {}).get(SOURCE_JOB_TAG): j.job_id for j in world.dst.jobs.list(limit=100) if j.settings
    }
    objects = [("jobs", str(j), str(dst_jobs.get(str(j)) or "")) for j in world.jobs]
    for path in world.notebooks:
        if _exists(world.dst, path):
            source_id = world.src.workspace.get_status(path).object_id
            objects.append(("notebooks", str(source_id), str(world.dst.workspace.get_status(path).object_id)))
    wanted = applied = 0
    for request_type, source_id, target_id in objects:
        entries = _user_entries(world.src, request_type, source_id) & {
            (u, lvl) for u in world.provisioned for lvl in LEVELS
        }
        if not entries or not target_id:
            wanted += len(entries)
            continue
        wanted += len(entries)
        applied += len(entries & _user_entries(world.dst, request_type, target_id))
    return wanted, applied


LEVELS = ("IS_OWNER", "CAN_VIEW", "CAN_EDIT", "CAN_MANAGE", "CAN_RUN", "CAN_MANAGE_RUN", "CAN_READ")


def _user_entries(w: WorkspaceClient, request_type: str, object_id: str) -> set[tuple[str, str]]:
    acl = w.permissions.get(request_type, object_id).access_control_list or []
    return {
        (a.user_name, p.permission_level.value)
        for a in acl
        if a.user_name
        for p in a.all_permissions or []
        if not p.inherited and p.permission_level
    }


def drift_keys(state_path: Path) -> set[str]:
    """Source keys of every drift event in the store (read-only)."""
    if not state_path.exists():
        return set()
    with sqlite3.connect(f"file:{state_path}?mode=ro", uri=True) as db:
        return {
            row[0]
            for row in db.execute("SELECT source_key FROM events WHERE action = 'drift' AND source_key IS NOT NULL")
        }


def validate(env: dict[str, str]) -> tuple[int, dict[str, Any]]:
    run = run_dbsync("validate", "--kinds", KINDS, "--format", "json", env=env, timeout=600)
    try:
        return run.returncode, json.loads(run.stdout)
    except json.JSONDecodeError:
        return run.returncode, {"kinds": [], "reasons": [run.stderr.strip()[-300:]]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cycles", type=int, default=10)
    parser.add_argument("--edits", type=int, default=3, help="random edits per cycle")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    source, target = Emulator("dapi-truth-source"), Emulator("dapi-truth-target")
    try:
        with tempfile.TemporaryDirectory(prefix="dbsync-truth-") as tmp:
            return run(args, source, target, Path(tmp) / "dbsync.db")
    finally:
        source.stop()
        target.stop()


def run(args: argparse.Namespace, source: Emulator, target: Emulator, state_path: Path) -> int:
    world = World(source.client(), target.client(), random.Random(args.seed))
    build_source(world)
    env = dbsync_env(source, target, state_path, DBSYNC_IDENTITIES__CREATE_USERS="false")
    first = run_dbsync("sync", "--once", "--kinds", KINDS, env=env, timeout=1200)
    print(
        f"truth: {len(USERS)} users only on the source, {len(world.notebooks)} notebooks, "
        f"{len(world.jobs)} jobs; {load()}"
    )
    print(f"cycle 0: initial sync exit {first.returncode}")
    failures: list[str] = []
    late = list(USERS)
    world.rng.shuffle(late)
    for cycle in range(1, args.cycles + 1):
        did = [edit(world, cycle, n) for n in range(args.edits)]
        if cycle % 2 == 0 and late:  # the target's IdP provisions a few users
            for user in late[:3]:
                world.dst.users.create(user_name=user)
                world.provisioned.append(user)
            late = late[3:]
        code_before, report = validate(env)
        pending = {k["kind"]: k.get("pending", "n/a") for k in report.get("kinds", [])}
        independent = independent_pending(world)
        agree = all(pending.get(k) == v for k, v in independent.items())
        sync = run_dbsync("sync", "--once", "--kinds", KINDS, env=env, timeout=1200)
        code_after, after = validate(env)
        false_drift = drift_keys(state_path) - world.target_edited
        wanted, applied = acl_entries(world)
        print(
            f"cycle {cycle}: {'; '.join(did)}\n"
            f"  validate before sync: exit {code_before}, pending notebooks {pending.get('notebooks')} jobs "
            f"{pending.get('jobs')} | independent notebooks {independent['notebooks']} jobs {independent['jobs']} "
            f"-> {'AGREE' if agree else 'DISAGREE'}\n"
            f"  sync --once exit {sync.returncode}; validate after: exit {code_after} "
            f"(ready {after.get('ready_for_cutover')}); false drift so far {len(false_drift)}; "
            f"ACL entries of provisioned users applied {applied}/{wanted}"
        )
        if not agree:
            failures.append(f"cycle {cycle}: pending {pending} != independent {independent}")
        if false_drift:
            failures.append(f"cycle {cycle}: false drift on {sorted(false_drift)[:5]}")
        if applied != wanted:
            failures.append(f"cycle {cycle}: {wanted - applied} ACL entries of provisioned users not applied")
    print("\nsummary:")
    print(
        f"  false drift: {len(drift_keys(state_path) - world.target_edited)} "
        f"(real target edits: {len(world.target_edited)})"
    )
    wanted, applied = acl_entries(world)
    print(f"  skipped ACL entries applied once their user exists: {applied}/{wanted}")
    print(f"  cycles where validate's pending != the independent count: {sum('pending' in f for f in failures)}")
    for failure in failures:
        print(f"  FAIL {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
