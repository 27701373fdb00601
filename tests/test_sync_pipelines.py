"""Pipelines (Delta Live Tables) between two emulated workspaces: the spec replicated with its references
remapped, nothing running on the standby, and `dbsync cutover` starting exactly the continuous pipelines
that ran on the source (undone by `--rollback`).

What the service does that these tests rely on: a continuous pipeline starts an update when it is created
and restarts on every edit (terraform-provider-databricks `resource_pipeline.go` waits for RUNNING after
create and update when `continuous` is set; databricks/cli#6745: every deploy of a continuous pipeline
cancels its active update and starts a new one). So a standby copy must be written `continuous: false`.
"""

from __future__ import annotations

import base64
from typing import Any

from conftest import Pair
from databricks.sdk import WorkspaceClient
from databricks.sdk.service import jobs
from databricks.sdk.service import pipelines as dlt
from databricks.sdk.service.workspace import ImportFormat, Language

from dbsync.cutover import Runbook, open_cutover_context
from dbsync.store import Store
from dbsync_emulator.apis import scim

NOTEBOOK = "/Users/ana@old.example/dlt/bronze"
MAPPED_NOTEBOOK = "/Users/ana@new.example/dlt/bronze"
MAPPING = {"mapping": {"emails": {"@old.example": "@new.example"}}}
KINDS = ["cluster_policies", "instance_pools", "pipelines", "jobs"]
READY = {"identities": {"create_users": True}, **MAPPING}


def _notebook(w: WorkspaceClient, path: str) -> None:
    w.workspace.mkdirs(path.rsplit("/", 1)[0])
    source = base64.b64encode(b"import dlt\n").decode()
    w.workspace.import_(path, content=source, format=ImportFormat.SOURCE, language=Language.PYTHON)


def _pipeline(w: WorkspaceClient, name: str, continuous: bool, **spec: Any) -> str:
    created = w.pipelines.create(
        name=name,
        continuous=continuous,
        libraries=[dlt.PipelineLibrary(notebook=dlt.NotebookLibrary(path=NOTEBOOK))],
        configuration={"source": "s3://raw/orders"},
        target="bronze",
        **spec,
    )
    return created.pipeline_id or ""


def _running(w: WorkspaceClient) -> set[str]:
    """Names of the pipelines with an update starting or running."""
    return {p.name or "" for p in w.pipelines.list_pipelines() if p.state and p.state.value in ("STARTING", "RUNNING")}


def _target(pair: Pair, name: str) -> dlt.GetPipelineResponse:
    pipeline_id = next(p.pipeline_id for p in pair.dst.pipelines.list_pipelines() if p.name == name)
    return pair.dst.pipelines.get(pipeline_id or "")


def _source_setup(pair: Pair) -> dict[str, str]:
    src = pair.src
    _notebook(src, NOTEBOOK)
    policy = src.cluster_policies.create(name="dlt-policy", definition='{"spark_version": {"type": "unlimited"}}')
    pool = src.instance_pools.create(instance_pool_name="dlt-pool", node_type_id="i3.xlarge")
    cluster = dlt.PipelineCluster(
        label="default", num_workers=2, policy_id=policy.policy_id, instance_pool_id=pool.instance_pool_id
    )
    stream = _pipeline(
        src,
        "orders-stream",
        continuous=True,
        clusters=[cluster],
        notifications=[dlt.Notifications(email_recipients=["ana@old.example"], alerts=["on-update-failure"])],
    )
    nightly = _pipeline(src, "orders-nightly", continuous=False)
    job = src.jobs.create(
        name="refresh",
        tasks=[jobs.Task(task_key="dlt", pipeline_task=jobs.PipelineTask(pipeline_id=nightly))],
    )
    return {
        "stream": stream,
        "nightly": nightly,
        "policy": policy.policy_id or "",
        "pool": pool.instance_pool_id or "",
        "job": str(job.job_id),
    }


def test_pipelines_reach_the_standby_remapped_and_never_running(pair: Pair) -> None:
    ids = _source_setup(pair)
    assert _running(pair.src) == {"orders-stream"}  # the service started the continuous pipeline on create

    reports = pair.sync(only=KINDS, **MAPPING)
    assert reports["pipelines"].created == 2 and reports["pipelines"].errors == 0
    assert _running(pair.dst) == set(), "a standby runs no pipeline"

    stream = _target(pair, "orders-stream")
    spec = stream.spec
    assert spec is not None and spec.continuous is False
    assert spec.tags == {"dbsync_source_id": ids["stream"]}
    assert spec.libraries[0].notebook.path == MAPPED_NOTEBOOK
    assert spec.notifications[0].email_recipients == ["ana@new.example"]
    cluster = spec.clusters[0]
    target_policy = next(p.policy_id for p in pair.dst.cluster_policies.list() if p.name == "dlt-policy")
    target_pool = next(p.instance_pool_id for p in pair.dst.instance_pools.list() if p.instance_pool_name == "dlt-pool")
    assert (cluster.policy_id, cluster.instance_pool_id) == (target_policy, target_pool)
    assert spec.storage == f"dbfs:/pipelines/{stream.pipeline_id}"  # the target's own default, not the source's

    nightly = _target(pair, "orders-nightly")
    job = next(j for j in pair.dst.jobs.list(expand_tasks=True) if j.settings.name == "refresh")
    assert job.settings.tasks[0].pipeline_task.pipeline_id == nightly.pipeline_id

    store = Store(pair.state_path)
    assert store.prior("pipelines", ids["stream"]).source_meta["continuous"] is True
    assert store.prior("pipelines", ids["nightly"]).source_meta["continuous"] is False
    assert store.prior("pipelines", ids["stream"]).origin == "created"
    store.close()

    # no change: one GET per source pipeline (the listing has no version), nothing written to the target
    pair.reset_stats()
    reports = pair.sync(only=["pipelines"], **MAPPING)
    assert reports["pipelines"].created == reports["pipelines"].updated == 0
    assert pair.target_writes() == 0
    gets = pair.source.stats.document()["endpoints"]
    assert sum(v["count"] for k, v in gets.items() if k.startswith("GET /api/2.0/pipelines/")) == 2

    # a change on the source is an edit on the target, which still does not start the copy
    pair.src.pipelines.update(
        ids["stream"],
        name="orders-stream",
        continuous=True,
        libraries=[dlt.PipelineLibrary(notebook=dlt.NotebookLibrary(path=NOTEBOOK))],
        configuration={"source": "s3://raw/orders-v2"},
        target="bronze",
        clusters=[dlt.PipelineCluster(label="default", num_workers=4)],
    )
    reports = pair.sync(only=["pipelines"], **MAPPING)
    assert reports["pipelines"].updated == 1
    spec = _target(pair, "orders-stream").spec
    assert spec.configuration == {"source": "s3://raw/orders-v2"} and spec.continuous is False
    assert _running(pair.dst) == set()

    # a pipeline deleted on the source is deleted on the target (dbsync created it)
    pair.src.pipelines.delete(ids["nightly"])
    reports = pair.sync(only=["pipelines"], **MAPPING)
    assert reports["pipelines"].deleted == 1
    assert {p.name for p in pair.dst.pipelines.list_pipelines()} == {"orders-stream"}


def test_a_lost_store_adopts_its_own_copies_and_keeps_the_teams(pair: Pair) -> None:
    _notebook(pair.src, NOTEBOOK)
    _pipeline(pair.src, "orders-stream", continuous=True)
    pair.src.pipelines.create(name="theirs", libraries=[dlt.PipelineLibrary(notebook=dlt.NotebookLibrary(path="/x"))])
    pair.dst.pipelines.create(name="theirs", libraries=[dlt.PipelineLibrary(notebook=dlt.NotebookLibrary(path="/x"))])
    pair.sync(only=["pipelines"], **MAPPING)
    pair.state_path.unlink()

    reports = pair.sync(only=["pipelines"], **MAPPING)
    assert reports["pipelines"].errors == 0  # both found on the target and recorded, none created again
    assert sorted(p.name for p in pair.dst.pipelines.list_pipelines()) == ["orders-stream", "theirs"]
    names = {p.pipeline_id: p.name for p in pair.src.pipelines.list_pipelines()}
    store = Store(pair.state_path)
    origins = {names[p.key]: p.origin for p in store.priors("pipelines")}
    store.close()
    # dbsync's own copy (its tag) stays deletable; the team's pipeline of the same name is never deleted
    assert origins == {"orders-stream": "created", "theirs": "adopted"}


def test_cutover_starts_exactly_the_continuous_pipelines_and_rollback_restores_both(pair: Pair) -> None:
    _source_setup(pair)
    pair.sync(**READY)
    assert _running(pair.dst) == set()

    ctx = open_cutover_context(pair.settings(**READY))
    lines = Runbook(ctx).plan()
    ctx.store.close()
    assert any("orders-stream" in line for line in lines), lines

    ctx = open_cutover_context(pair.settings(**READY))
    Runbook(ctx).run()
    ctx.store.close()
    assert _running(pair.dst) == {"orders-stream"}, "the copy of the continuous pipeline runs on the new primary"
    assert _target(pair, "orders-stream").spec.continuous is True
    assert _target(pair, "orders-nightly").spec.continuous is False
    assert _running(pair.src) == set(), "the source's continuous pipeline is stopped"
    source_stream = next(p.pipeline_id for p in pair.src.pipelines.list_pipelines() if p.name == "orders-stream")
    assert pair.src.pipelines.get(source_stream or "").spec.continuous is False

    ctx = open_cutover_context(pair.settings(**READY))
    Runbook(ctx).rollback()
    ctx.store.close()
    assert _running(pair.dst) == set() and _target(pair, "orders-stream").spec.continuous is False
    assert _running(pair.src) == {"orders-stream"}
    assert pair.src.pipelines.get(source_stream or "").spec.continuous is True


def test_the_owner_set_by_the_permissions_kind_is_not_drift(pair: Pair) -> None:
    """The target copy's owner (and so its `run_as_user_name`) follows the source's IS_OWNER through the
    permissions kind, after the pipelines kind recorded its baseline: that is dbsync's write, not a hand edit."""
    for handle in (pair.source, pair.target):
        with handle.workspace.lock:
            scim.create_user(handle.workspace, "bob@example.com", "Bob")
    _notebook(pair.src, NOTEBOOK)
    pipeline_id = _pipeline(pair.src, "orders", continuous=False)
    owner = dlt.PipelineAccessControlRequest(
        user_name="bob@example.com", permission_level=dlt.PipelinePermissionLevel.IS_OWNER
    )
    pair.src.pipelines.set_permissions(pipeline_id, access_control_list=[owner])
    pair.sync(only=["pipelines", "permissions"])
    assert _target(pair, "orders").run_as_user_name == "bob@example.com"

    reports = pair.sync(only=["pipelines", "permissions"])
    assert reports["pipelines"].drifted == 0


def test_two_source_pipelines_of_one_name_never_share_a_copy(pair: Pair) -> None:
    """The source allows a name twice (`allow_duplicate_names`); the target copy of one is never overwritten by
    the other (it was: the second found the first's copy by name and took it over). The second is an error."""
    _notebook(pair.src, NOTEBOOK)
    first = _pipeline(pair.src, "orders", continuous=False)
    second = _pipeline(pair.src, "orders", continuous=False, allow_duplicate_names=True)
    pair.src.pipelines.update(
        second, name="orders", configuration={"source": "s3://raw/second"}, allow_duplicate_names=True
    )

    report = pair.sync(only=["pipelines"], concurrency=1, **MAPPING)["pipelines"]

    assert report.errors == 1, report
    (copy,) = [p for p in pair.dst.pipelines.list_pipelines() if p.name == "orders"]
    spec = pair.dst.pipelines.get(copy.pipeline_id or "").spec
    assert spec is not None and spec.tags is not None
    source = {first: "s3://raw/orders", second: "s3://raw/second"}
    assert spec.configuration == {"source": source[spec.tags["dbsync_source_id"]]}  # its own source's spec
    store = Store(pair.state_path)
    try:
        targets = [p.target_key for p in store.priors("pipelines") if p.target_key]
    finally:
        store.close()
    assert targets == [copy.pipeline_id]
