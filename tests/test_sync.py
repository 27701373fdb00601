"""The sync engine between two emulated workspaces: what a user would check on the target."""

from __future__ import annotations

import base64
import io

import pytest
from conftest import Pair, endpoint_count
from databricks.sdk.service import compute, iam, jobs
from databricks.sdk.service.workspace import ImportFormat, Language

from dbsync.engine import Engine
from dbsync.registry import Kind, kinds
from dbsync_emulator.apis import clusters

EXPORT = "GET /api/2.0/workspace/export"


def _notebook_bodies(w, root: str = "/") -> dict[str, bytes]:
    return {
        o.path: w.workspace.download(o.path).read()
        for o in w.workspace.list(root, recursive=True)
        if o.object_type and o.object_type.value == "NOTEBOOK"
    }


def _jobs_by_source_id(w) -> dict[str, jobs.Job]:
    out = {}
    for job in w.jobs.list(expand_tasks=True):
        tag = (job.settings.tags or {}).get("dbsync_source_job_id")
        if tag:
            out[tag] = w.jobs.get(job.job_id)
    return out


def test_initial_sync_reproduces_the_source(seeded_pair: Pair) -> None:
    # Secret values are read on a running source cluster, the way that works on a real workspace.
    ws = seeded_pair.source.workspace
    with ws.lock:
        spec = {"cluster_name": "secrets-reader", "spark_version": "15.4.x-scala2.12", "node_type_id": "i3.xlarge"}
        reader = clusters.create_cluster(ws, {**spec, "num_workers": 1}, state="RUNNING")
    reports = seeded_pair.sync(secrets={"values_from": "cluster", "cluster_id": reader})
    assert not [r for r in reports.values() if r.errors or r.blocked], reports
    assert reports["secrets"].created > 0

    src, dst = seeded_pair.src, seeded_pair.dst
    assert _notebook_bodies(src) == _notebook_bodies(dst)
    files = {o.path for o in src.workspace.list("/", recursive=True) if o.object_type.value == "FILE"}
    assert files == {o.path for o in dst.workspace.list("/", recursive=True) if o.object_type.value == "FILE"}
    # object ids differ per workspace: they must never be copied
    some = next(iter(files))
    assert src.workspace.get_status(some).object_id != dst.workspace.get_status(some).object_id

    assert sorted(p.name for p in src.cluster_policies.list()) == sorted(p.name for p in dst.cluster_policies.list())
    assert len(list(dst.instance_pools.list())) == len(list(src.instance_pools.list()))

    target_clusters = list(dst.clusters.list())
    assert len(target_clusters) == len(list(src.clusters.list()))
    assert all(c.state.value in ("TERMINATED", "TERMINATING") for c in target_clusters), "a standby cluster runs"

    target_jobs = _jobs_by_source_id(dst)
    assert len(target_jobs) == len(list(src.jobs.list()))
    for source_id, target_job in target_jobs.items():
        source_job = src.jobs.get(int(source_id))
        assert target_job.settings.name == source_job.settings.name
        assert len(target_job.settings.tasks) == len(source_job.settings.tasks)
        for trigger in (
            target_job.settings.schedule,
            target_job.settings.trigger,
            target_job.settings.continuous,
        ):
            if trigger is not None:
                assert trigger.pause_status.value == "PAUSED", "standby jobs must never run"


def test_job_references_point_at_target_ids(seeded_pair: Pair) -> None:
    seeded_pair.sync()
    dst = seeded_pair.dst
    target_clusters = {c.cluster_id for c in dst.clusters.list()}
    target_pools = {p.instance_pool_id for p in dst.instance_pools.list()}
    checked = 0
    for job in _jobs_by_source_id(dst).values():
        for task in job.settings.tasks:
            if task.existing_cluster_id:
                assert task.existing_cluster_id in target_clusters
                checked += 1
        for jc in job.settings.job_clusters or []:
            if jc.new_cluster.instance_pool_id:
                assert jc.new_cluster.instance_pool_id in target_pools
                checked += 1
    assert checked > 0


def test_no_change_cycle_writes_nothing_and_exports_nothing(seeded_pair: Pair) -> None:
    seeded_pair.sync()
    seeded_pair.reset_stats()
    reports = seeded_pair.sync()
    assert seeded_pair.target_writes() == 0
    assert endpoint_count(seeded_pair.source, EXPORT) == 0
    assert all(r.created == r.updated == r.deleted == 0 for r in reports.values())


def test_edit_rename_and_delete_of_a_notebook(pair: Pair) -> None:
    src, dst = pair.src, pair.dst
    src.workspace.mkdirs("/Shared/etl")
    for name in ("a", "b", "c"):
        src.workspace.upload(f"/Shared/etl/{name}.py", io.BytesIO(f"print('{name}')".encode()), overwrite=True)
    pair.sync()
    pair.reset_stats()

    src.workspace.upload("/Shared/etl/a.py", io.BytesIO(b"print('a v2')"), overwrite=True)
    body = src.workspace.download("/Shared/etl/b.py").read()  # "rename" = new path + delete old path
    src.workspace.upload(
        "/Shared/etl/b_renamed.py", io.BytesIO(body), format=ImportFormat.SOURCE, language=Language.PYTHON
    )
    src.workspace.delete("/Shared/etl/b.py")
    src.workspace.delete("/Shared/etl/c.py")
    pair.reset_stats()
    reports = pair.sync()

    assert b"a v2" in dst.workspace.download("/Shared/etl/a.py").read()
    paths = {o.path for o in dst.workspace.list("/Shared/etl")}
    assert paths == {"/Shared/etl/a.py", "/Shared/etl/b_renamed.py"}
    assert endpoint_count(pair.source, EXPORT) == 2  # exactly the two changed notebooks
    assert reports["notebooks"].deleted == 2


def test_unchanged_content_with_new_modified_at_is_not_reimported(pair: Pair) -> None:
    src = pair.src
    src.workspace.upload("/Shared/x.py", io.BytesIO(b"print(1)"), overwrite=True)
    pair.sync()
    src.workspace.upload("/Shared/x.py", io.BytesIO(b"print(1)"), overwrite=True)  # same bytes, new modified_at
    pair.reset_stats()
    reports = pair.sync()
    assert endpoint_count(pair.source, EXPORT) == 1
    assert pair.target_writes() == 0
    assert reports["notebooks"].updated == 0


def test_job_cluster_pool_and_policy_edits_reach_the_target(seeded_pair: Pair) -> None:
    src, dst = seeded_pair.src, seeded_pair.dst
    seeded_pair.sync()
    job = next(iter(src.jobs.list(expand_tasks=True)))
    job.settings.name = "renamed-on-source"
    job.settings.timeout_seconds = 3600
    src.jobs.reset(job.job_id, job.settings)
    pool = next(iter(src.instance_pools.list()))
    src.instance_pools.edit(pool.instance_pool_id, pool.instance_pool_name, pool.node_type_id, max_capacity=77)
    policy = next(p for p in src.cluster_policies.list() if not p.is_default)
    src.cluster_policies.edit(
        policy.policy_id, name=policy.name, definition=policy.definition, description="edited on source"
    )
    cluster = next(iter(src.clusters.list()))
    src.clusters.edit(
        cluster.cluster_id,
        spark_version=cluster.spark_version,
        cluster_name="renamed-cluster",
        node_type_id="i3.xlarge",
        num_workers=3,
        autotermination_minutes=45,
    )

    reports = seeded_pair.sync()
    assert {k: r.updated for k, r in reports.items() if r.updated} == {
        "jobs": 1,
        "instance_pools": 1,
        "cluster_policies": 1,
        "clusters": 1,
    }
    target_job = _jobs_by_source_id(dst)[str(job.job_id)]
    assert (target_job.settings.name, target_job.settings.timeout_seconds) == ("renamed-on-source", 3600)
    target_pool = next(
        p for p in dst.instance_pools.list() if p.custom_tags["dbsync_source_id"] == pool.instance_pool_id
    )
    assert target_pool.max_capacity == 77
    assert next(p for p in dst.cluster_policies.list() if p.name == policy.name).description == "edited on source"
    target_cluster = next(c for c in dst.clusters.list() if c.cluster_name == "renamed-cluster")
    assert target_cluster.num_workers == 3 and target_cluster.state.value in ("TERMINATED", "TERMINATING")


def test_job_deleted_on_source_is_deleted_on_target(seeded_pair: Pair) -> None:
    seeded_pair.sync()
    job = next(iter(seeded_pair.src.jobs.list()))
    seeded_pair.src.jobs.delete(job.job_id)
    reports = seeded_pair.sync()
    assert reports["jobs"].deleted == 1
    assert str(job.job_id) not in _jobs_by_source_id(seeded_pair.dst)


def test_job_on_a_new_cluster_and_notebook_in_one_cycle(pair: Pair) -> None:
    src, dst = pair.src, pair.dst
    src.workspace.mkdirs("/Shared/new")
    src.workspace.upload("/Shared/new/run.py", io.BytesIO(b"print('run')"), overwrite=True)
    cluster_id = src.clusters.create(
        cluster_name="fresh", spark_version="15.4.x-scala2.12", node_type_id="i3.xlarge", num_workers=1
    ).response.cluster_id
    job_id = src.jobs.create(
        name="uses-fresh-cluster",
        tasks=[
            jobs.Task(
                task_key="run",
                existing_cluster_id=cluster_id,
                notebook_task=jobs.NotebookTask(notebook_path="/Shared/new/run.py"),
            )
        ],
    ).job_id

    reports = pair.sync()
    assert reports["jobs"].created == 1 and reports["jobs"].blocked == 0
    target_cluster = next(c for c in dst.clusters.list() if c.cluster_name == "fresh")
    target_job = _jobs_by_source_id(dst)[str(job_id)]
    assert target_job.settings.tasks[0].existing_cluster_id == target_cluster.cluster_id
    assert dst.workspace.get_status("/Shared/new/run.py").object_type.value == "NOTEBOOK"


def test_job_whose_cluster_is_gone_gets_a_clear_recorded_error(pair: Pair) -> None:
    src = pair.src
    cluster_id = src.clusters.create(
        cluster_name="doomed", spark_version="15.4.x-scala2.12", node_type_id="i3.xlarge", num_workers=1
    ).response.cluster_id
    src.jobs.create(
        name="orphan",
        tasks=[
            jobs.Task(
                task_key="t",
                existing_cluster_id=cluster_id,
                notebook_task=jobs.NotebookTask(notebook_path="/x"),
            )
        ],
    )
    src.clusters.permanent_delete(cluster_id)
    reports = pair.sync()
    assert reports["jobs"].errors == 1
    ctx = pair.context()
    problem = ctx.store.problems("jobs")[0]
    assert "no longer exists on the source" in problem["last_error"] and cluster_id in problem["last_error"]
    assert reports["notebooks"].errors == 0  # one bad object never stops the cycle


def test_acl_with_a_principal_missing_on_the_target_is_skipped_and_recorded(pair: Pair) -> None:
    src, dst = pair.src, pair.dst
    src.users.create(user_name="only.source@example.com")
    dst.users.create(user_name="both@example.com")
    src.users.create(user_name="both@example.com")
    job_id = src.jobs.create(
        name="acl",
        tasks=[jobs.Task(task_key="t", environment_key="e", notebook_task=jobs.NotebookTask(notebook_path="/x"))],
        environments=[jobs.JobEnvironment(environment_key="e")],
    ).job_id
    src.permissions.update(
        "jobs",
        str(job_id),
        access_control_list=[
            iam.AccessControlRequest(
                user_name="only.source@example.com", permission_level=iam.PermissionLevel.CAN_VIEW
            ),
            iam.AccessControlRequest(user_name="both@example.com", permission_level=iam.PermissionLevel.CAN_MANAGE_RUN),
        ],
    )
    reports = pair.sync()
    assert reports["permissions"].errors == 0
    target_job_id = next(iter(_jobs_by_source_id(dst).values())).job_id
    acl = dst.permissions.get("jobs", str(target_job_id)).access_control_list
    direct = {(a.user_name, p.permission_level.value) for a in acl for p in a.all_permissions if not p.inherited}
    assert ("both@example.com", "CAN_MANAGE_RUN") in direct
    assert not any(name == "only.source@example.com" for name, _ in direct)
    partial = [e for e in pair.context().store.events(outcome="partial") if e["kind"] == "permissions"]
    assert any("only.source@example.com" in e["message"] for e in partial)  # written, that entry left out


def test_delete_guard_holds_a_mass_delete(seeded_pair: Pair) -> None:
    seeded_pair.sync()
    before = len(_notebook_bodies(seeded_pair.dst))
    # the source comes back empty (a broken listing, a restored backup, the wrong workspace behind a DNS name)
    seeded_pair.source.workspace.reset()
    reports = seeded_pair.sync()
    assert reports["notebooks"].deleted == 0 and reports["notebooks"].outcome == "delete_guard"
    assert len(_notebook_bodies(seeded_pair.dst)) == before
    assert len(list(seeded_pair.dst.jobs.list())) > 0
    held = seeded_pair.context().store.events(outcome="held")
    assert any("notebooks" in e["message"] for e in held)


def test_delete_guard_can_be_overridden_once(seeded_pair: Pair) -> None:
    seeded_pair.sync()
    seeded_pair.source.workspace.reset()
    reports = seeded_pair.sync(only=["notebooks"], force_deletes=True)
    assert reports["notebooks"].deleted > 0
    assert _notebook_bodies(seeded_pair.dst) == {}


def test_a_failing_listing_is_never_an_empty_listing(seeded_pair: Pair) -> None:
    seeded_pair.sync()
    seeded_pair.source.set_faults(rate_500=1.0, path_prefix="/api/2.0/workspace/list")
    reports = seeded_pair.sync(retry_timeout_seconds=2)
    assert reports["notebooks"].outcome == "listing_failed" and reports["notebooks"].deleted == 0
    seeded_pair.source.set_faults()
    assert _notebook_bodies(seeded_pair.src) == _notebook_bodies(seeded_pair.dst)


def test_lost_store_adopts_instead_of_duplicating(seeded_pair: Pair) -> None:
    seeded_pair.sync()
    counts = _target_counts(seeded_pair)
    seeded_pair.state_path.unlink()
    for suffix in ("-wal", "-shm"):
        seeded_pair.state_path.with_name(seeded_pair.state_path.name + suffix).unlink(missing_ok=True)
    reports = seeded_pair.sync()
    assert _target_counts(seeded_pair) == counts
    assert all(r.errors == 0 for r in reports.values())


def _target_counts(pair: Pair) -> dict[str, int]:
    dst = pair.dst
    return {
        "jobs": len(list(dst.jobs.list())),
        "clusters": len(list(dst.clusters.list())),
        "pools": len(list(dst.instance_pools.list())),
        "policies": len(list(dst.cluster_policies.list())),
    }


class _CrashAfterApply:
    """The real replicator, then a crash before the engine can record the result (like kill -9)."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.kind = inner.kind

    def apply(self, ctx, change):
        self.inner.apply(ctx, change)
        raise KeyboardInterrupt("process killed between create and record")

    def delete(self, ctx, change):
        return self.inner.delete(ctx, change)


def test_crash_between_create_and_record_leaves_no_duplicate(seeded_pair: Pair) -> None:
    crashing = tuple(
        Kind(k.name, k.watcher, _CrashAfterApply(k.replicator))
        if k.name in ("jobs", "clusters", "instance_pools")
        else k
        for k in kinds()
    )
    ctx = seeded_pair.context()
    with pytest.raises(KeyboardInterrupt):
        Engine(ctx, registry=crashing).cycle(["instance_pools", "clusters", "jobs"])
    ctx.store.close()
    seeded_pair.sync()
    src, dst = seeded_pair.src, seeded_pair.dst
    assert len(list(dst.instance_pools.list())) == len(list(src.instance_pools.list()))
    assert len(list(dst.clusters.list())) == len(list(src.clusters.list()))
    tags = [(j.settings.tags or {}).get("dbsync_source_job_id") for j in dst.jobs.list()]
    assert len(tags) == len(set(tags)) == len(list(src.jobs.list()))


def test_archive_mode_keeps_a_copy_of_deleted_notebooks(pair: Pair) -> None:
    pair.src.workspace.upload("/Shared/old.py", io.BytesIO(b"print('keep me')"), overwrite=True)
    pair.src.workspace.upload("/Shared/other.py", io.BytesIO(b"print(2)"), overwrite=True)
    pair.sync()
    pair.src.workspace.delete("/Shared/old.py")
    pair.sync(deletes={"mode": "archive"})
    archived = [o.path for o in pair.dst.workspace.list("/dbsync-archive", recursive=True)]
    assert len(archived) == 1 and archived[0].endswith("/Shared/old.py")
    assert b"keep me" in pair.dst.workspace.download(archived[0]).read()


def test_include_and_exclude_globs(pair: Pair) -> None:
    for path in ("/Shared/keep/a.py", "/Shared/skip/b.py"):
        pair.src.workspace.mkdirs(path.rsplit("/", 1)[0])
        pair.src.workspace.upload(path, io.BytesIO(b"print(1)"), overwrite=True)
    pair.sync(only=["directories", "notebooks"], kinds={"notebooks": {"exclude": ["/Shared/skip/*"]}})
    notebooks = set(_notebook_bodies(pair.dst))
    assert notebooks == {"/Shared/keep/a.py"}


def test_job_pause_state_is_kept_for_cutover(pair: Pair) -> None:
    src = pair.src
    task = [jobs.Task(task_key="t", environment_key="e", notebook_task=jobs.NotebookTask(notebook_path="/x"))]
    env = [jobs.JobEnvironment(environment_key="e")]
    on = src.jobs.create(
        name="on",
        tasks=task,
        environments=env,
        schedule=jobs.CronSchedule(
            quartz_cron_expression="0 0 * * * ?", timezone_id="UTC", pause_status=jobs.PauseStatus.UNPAUSED
        ),
    ).job_id
    off = src.jobs.create(
        name="off",
        tasks=task,
        environments=env,
        schedule=jobs.CronSchedule(
            quartz_cron_expression="0 0 * * * ?", timezone_id="UTC", pause_status=jobs.PauseStatus.PAUSED
        ),
    ).job_id
    pair.sync(only=["jobs"])
    store = pair.context().store
    assert store.prior("jobs", str(on)).source_meta["pause"] == {"schedule": "UNPAUSED"}
    assert store.prior("jobs", str(off)).source_meta["pause"] == {"schedule": "PAUSED"}
    # pausing on the source is not a change of the replicated payload
    settings = src.jobs.get(on).settings
    settings.schedule.pause_status = jobs.PauseStatus.PAUSED
    src.jobs.reset(on, settings)
    pair.reset_stats()
    assert pair.sync(only=["jobs"])["jobs"].updated == 0
    assert pair.context().store.prior("jobs", str(on)).source_meta["pause"] == {"schedule": "PAUSED"}


def test_plan_shows_changes_and_writes_nothing(seeded_pair: Pair) -> None:
    ctx = seeded_pair.context(dry_run=True)
    reports = Engine(ctx).cycle()
    planned = [c for r in reports for c in r.planned]
    assert {c.action for c in planned} == {"create"} and len(planned) > 100
    assert seeded_pair.target_writes() == 0
    assert ctx.store.status_counts() == {}


def test_source_objects_with_unicode_and_spaces(pair: Pair) -> None:
    path = "/Shared/Équipe données/rapport “final” 2026.py"
    pair.src.workspace.mkdirs(path.rsplit("/", 1)[0])
    pair.src.workspace.import_(
        path,
        content=base64.b64encode("print('é')".encode()).decode(),
        format=ImportFormat.SOURCE,
        language=Language.PYTHON,
    )
    pair.sync(only=["directories", "notebooks"])
    assert "é" in pair.dst.workspace.download(path).read().decode()


def test_cluster_with_policy_and_pool_refs(pair: Pair) -> None:
    src, dst = pair.src, pair.dst
    policy_id = src.cluster_policies.create(
        name="team", definition='{"spark_version": {"type": "unlimited"}}'
    ).policy_id
    pool_id = src.instance_pools.create(instance_pool_name="p", node_type_id="i3.xlarge").instance_pool_id
    src.clusters.create(
        cluster_name="c",
        spark_version="15.4.x-scala2.12",
        instance_pool_id=pool_id,
        policy_id=policy_id,
        num_workers=1,
        autoscale=None,
        data_security_mode=compute.DataSecurityMode.SINGLE_USER,
        single_user_name="admin@example.com",
    )
    pair.sync(only=["cluster_policies", "instance_pools", "clusters"])
    cluster = next(iter(dst.clusters.list()))
    assert cluster.policy_id == next(p.policy_id for p in dst.cluster_policies.list() if p.name == "team")
    assert cluster.instance_pool_id == next(iter(dst.instance_pools.list())).instance_pool_id


def test_target_edit_is_reported_as_drift_and_left_alone(seeded_pair: Pair) -> None:
    seeded_pair.sync()
    dst = seeded_pair.dst
    seeded_pair.sync()  # the first look after a write records each target object's baseline
    source_id, target_job = next(iter(_jobs_by_source_id(dst).items()))
    target_job.settings.name = "edited-by-hand-on-the-standby"
    dst.jobs.reset(target_job.job_id, target_job.settings)
    dst.workspace.upload("/Shared/hand-made.py", io.BytesIO(b"print(1)"), overwrite=True)

    reports = seeded_pair.sync()
    assert reports["jobs"].drifted == 1 and reports["jobs"].updated == 0
    assert dst.jobs.get(target_job.job_id).settings.name == "edited-by-hand-on-the-standby"
    ctx = seeded_pair.context()
    assert ctx.store.keys_with_status("jobs", "drifted") == [source_id]
    drift_events = [e for e in ctx.store.events(outcome="drifted") if e["kind"] == "jobs"]
    assert len(drift_events) == 1 and "changed outside dbsync" in drift_events[0]["message"]

    from dbsync.report import validate

    report = validate(ctx)
    assert not report.ready_for_cutover
    assert any("drift" in reason for reason in report.reasons)
    notebooks = next(k for k in report.kinds if k.kind == "notebooks")
    assert notebooks.extra == ["/Shared/hand-made.py"]
    assert seeded_pair.sync()["jobs"].drifted == 0  # counted once, not every cycle

    # the operator decides to heal after all: the edit reported earlier is rewritten from the source
    seeded_pair.sync(drift="heal")
    seeded_pair.sync(drift="heal")
    assert dst.jobs.get(target_job.job_id).settings.name == seeded_pair.src.jobs.get(int(source_id)).settings.name


def test_drift_heal_rewrites_the_target_from_the_source(seeded_pair: Pair) -> None:
    seeded_pair.sync()
    seeded_pair.sync()
    dst = seeded_pair.dst
    source_id, target_job = next(iter(_jobs_by_source_id(dst).items()))
    source_name = seeded_pair.src.jobs.get(int(source_id)).settings.name
    target_job.settings.name = "edited-by-hand"
    dst.jobs.reset(target_job.job_id, target_job.settings)
    notebook = next(iter(_notebook_bodies(dst)))
    dst.workspace.delete(notebook)

    first = seeded_pair.sync(drift="heal")
    assert first["jobs"].drifted == 1 and first["notebooks"].drifted == 1
    seeded_pair.sync(drift="heal")
    assert dst.jobs.get(target_job.job_id).settings.name == source_name
    assert notebook in _notebook_bodies(dst)
