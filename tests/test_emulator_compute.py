"""Clusters, instance pools and cluster policies of the emulator, driven over HTTP by the databricks-sdk."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import (
    BadRequest,
    InvalidParameterValue,
    InvalidState,
    NotFound,
    ResourceDoesNotExist,
)
from databricks.sdk.service.compute import (
    AutoScale,
    ClusterSource,
    EventType,
    GetEventsOrder,
    ListClustersFilterBy,
    ListClustersSortBy,
    ListClustersSortByDirection,
    ListClustersSortByField,
    ListSortColumn,
    State,
    UpdateClusterResource,
)
from freezegun import freeze_time
from freezegun.api import FrozenDateTimeFactory

from dbsync_emulator import EmulatorHandle
from dbsync_emulator.apis import clusters
from tests.conftest import endpoint_count

SPARK = "15.4.x-scala2.12"
NODE = "i3.xlarge"
ADMIN = "admin@example.com"


@pytest.fixture
def clock() -> Iterator[FrozenDateTimeFactory]:
    """Frozen time shared by the test and the emulator thread; tick() moves clusters along."""
    with freeze_time("2025-03-04 05:06:07") as frozen:
        yield frozen


def _seed(emulator: EmulatorHandle, spec: dict, **kwargs: object) -> str:
    ws = emulator.workspace
    with ws.lock:
        return clusters.create_cluster(ws, {"spark_version": SPARK, "node_type_id": NODE, **spec}, **kwargs)


# -- clusters: lifecycle ---------------------------------------------------------------------------------
def test_create_waits_until_running(w: WorkspaceClient, clock: FrozenDateTimeFactory) -> None:
    waiter = w.clusters.create(
        cluster_name="etl",
        spark_version=SPARK,
        node_type_id=NODE,
        num_workers=2,
        custom_tags={"team": "data"},
    )
    assert re.fullmatch(r"\d{4}-\d{6}-[a-z0-9]{8}", waiter.cluster_id)
    pending = w.clusters.get(waiter.cluster_id)
    assert pending.state == State.PENDING
    assert pending.driver is None and not pending.executors

    clock.tick(1)
    running = waiter.result()

    assert running.state == State.RUNNING
    assert running.cluster_source == ClusterSource.API
    assert running.creator_user_name == ADMIN
    assert running.custom_tags == {"team": "data"}
    assert running.default_tags == {
        "Vendor": "Databricks",
        "Creator": ADMIN,
        "ClusterName": "etl",
        "ClusterId": waiter.cluster_id,
    }
    assert running.driver is not None and len(running.executors or []) == 2
    assert running.cluster_memory_mb == 3 * 31232 and running.cluster_cores == 12.0
    assert running.spark_context_id and running.start_time
    assert running.spec is not None and running.spec.num_workers == 2 and running.spec.aws_attributes is None
    assert running.aws_attributes is not None and running.aws_attributes.first_on_demand == 1


def test_unknown_cluster_is_resource_does_not_exist(w: WorkspaceClient) -> None:
    with pytest.raises(ResourceDoesNotExist) as err:
        w.clusters.get("0101-000000-nothere1")
    assert isinstance(err.value, NotFound)
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"
    assert "Cluster 0101-000000-nothere1 does not exist" in str(err.value)
    with pytest.raises(InvalidParameterValue, match="does not exist"):
        w.clusters.start("0101-000000-nothere1")


def test_create_validates_the_spec(w: WorkspaceClient) -> None:
    with pytest.raises(InvalidParameterValue, match="spark_version"):
        w.api_client.do("POST", "/api/2.1/clusters/create", body={"node_type_id": NODE, "num_workers": 1})
    with pytest.raises(InvalidParameterValue, match=r"Node type x1\.huge is not supported"):
        w.clusters.create(spark_version=SPARK, node_type_id="x1.huge", num_workers=1)
    with pytest.raises(InvalidParameterValue, match="Invalid spark version"):
        w.clusters.create(spark_version="1.0.x-scala2.10", node_type_id=NODE, num_workers=1)
    with pytest.raises(InvalidParameterValue, match="max_workers"):
        w.clusters.create(spark_version=SPARK, node_type_id=NODE, autoscale=AutoScale(min_workers=4, max_workers=2))
    with pytest.raises(NotFound, match="instance pool"):
        w.clusters.create(spark_version=SPARK, instance_pool_id="0101-000000-nope1-pool-abcdefgh", num_workers=1)


def test_edit_needs_running_or_terminated(w: WorkspaceClient, clock: FrozenDateTimeFactory) -> None:
    cluster_id = w.clusters.create(spark_version=SPARK, node_type_id=NODE, num_workers=1).cluster_id
    with pytest.raises(InvalidState, match="unexpected state Pending"):
        w.clusters.edit(cluster_id, spark_version=SPARK, node_type_id=NODE, num_workers=3)

    clock.tick(1)
    w.clusters.edit(cluster_id, spark_version=SPARK, node_type_id=NODE, num_workers=3, cluster_name="bigger")
    restarting = w.clusters.get(cluster_id)
    assert restarting.state == State.RESTARTING and restarting.num_workers == 3
    clock.tick(1)
    running = w.clusters.get(cluster_id)
    assert running.state == State.RUNNING and len(running.executors or []) == 3
    assert running.cluster_name == "bigger" and running.default_tags["ClusterName"] == "bigger"


def test_terminate_then_permanent_delete(w: WorkspaceClient, clock: FrozenDateTimeFactory) -> None:
    cluster_id = w.clusters.create(spark_version=SPARK, node_type_id=NODE, num_workers=1).cluster_id
    clock.tick(1)
    waiter = w.clusters.delete(cluster_id)
    assert w.clusters.get(cluster_id).state == State.TERMINATING
    clock.tick(1)
    terminated = waiter.result()

    assert terminated.state == State.TERMINATED
    assert terminated.termination_reason is not None
    assert terminated.termination_reason.code.value == "USER_REQUEST"
    assert terminated.termination_reason.type.value == "SUCCESS"
    assert terminated.terminated_time and terminated.driver is None
    w.clusters.delete(cluster_id)  # already terminated: a no-op
    assert [c.cluster_id for c in w.clusters.list()] == [cluster_id]

    w.clusters.permanent_delete(cluster_id)
    with pytest.raises(ResourceDoesNotExist):
        w.clusters.get(cluster_id)
    assert list(w.clusters.list()) == []


def test_start_restart_resize_update(w: WorkspaceClient, clock: FrozenDateTimeFactory) -> None:
    cluster_id = w.clusters.create(spark_version=SPARK, node_type_id=NODE, num_workers=1).cluster_id
    clock.tick(1)
    first_context = w.clusters.get(cluster_id).spark_context_id

    w.clusters.restart(cluster_id)
    assert w.clusters.get(cluster_id).state == State.RESTARTING
    clock.tick(1)
    assert w.clusters.get(cluster_id).spark_context_id != first_context

    w.clusters.resize(cluster_id, autoscale=AutoScale(min_workers=2, max_workers=4))
    assert w.clusters.get(cluster_id).state == State.RESIZING
    clock.tick(1)
    resized = w.clusters.get(cluster_id)
    assert resized.state == State.RUNNING and len(resized.executors or []) == 2
    assert resized.autoscale is not None and resized.num_workers is None

    w.clusters.delete(cluster_id)
    clock.tick(1)
    w.clusters.update(
        cluster_id,
        update_mask="autoscale,num_workers,spark_conf",
        cluster=UpdateClusterResource(num_workers=5, spark_version=SPARK),
    )
    updated = w.clusters.get(cluster_id)
    assert updated.state == State.TERMINATED and updated.num_workers == 5 and updated.autoscale is None
    with pytest.raises(InvalidState):
        w.clusters.resize(cluster_id, num_workers=1)

    w.clusters.start(cluster_id)
    assert w.clusters.get(cluster_id).state == State.PENDING
    clock.tick(1)
    started = w.clusters.get(cluster_id)
    assert started.state == State.RUNNING and started.termination_reason is None


def test_internal_state_is_advanced_lazily(emulator: EmulatorHandle, clock: FrozenDateTimeFactory) -> None:
    cluster_id = _seed(emulator, {"num_workers": 0})
    ws = emulator.workspace
    assert clusters.cluster_state(ws, cluster_id) == "PENDING"
    clock.tick(1)
    assert clusters.cluster_state(ws, cluster_id) == "RUNNING"
    assert ws.table("clusters")[cluster_id]["state"] == "RUNNING"
    assert clusters.cluster_state(ws, "0101-000000-nothere1") is None


def test_job_clusters_cannot_be_edited_or_started(w: WorkspaceClient, emulator: EmulatorHandle) -> None:
    ws = emulator.workspace
    with ws.lock:
        cluster_id = clusters.create_job_cluster(
            ws, {"spark_version": SPARK, "node_type_id": NODE, "num_workers": 1}, job_id=7, run_id=42
        )
    details = w.clusters.get(cluster_id)
    assert details.cluster_source == ClusterSource.JOB and details.cluster_name == "job-7-run-42"
    assert details.default_tags["JobId"] == "7"
    with pytest.raises(InvalidParameterValue, match="job run"):
        w.clusters.edit(cluster_id, spark_version=SPARK, node_type_id=NODE, num_workers=2)
    with pytest.raises(BadRequest, match="does not exist"):
        w.clusters.change_owner(cluster_id, owner_username="nobody@example.com")


# -- clusters: list and events ---------------------------------------------------------------------------
def test_list_pages_with_filters_and_sorting(w: WorkspaceClient, emulator: EmulatorHandle) -> None:
    assert w.api_client.do("GET", "/api/2.1/clusters/list") == {}
    running = [_seed(emulator, {"cluster_name": f"run-{i}", "num_workers": 1}, state="RUNNING") for i in range(5)]
    stopped = _seed(emulator, {"cluster_name": "stopped"}, state="TERMINATED")
    job = _seed(emulator, {"cluster_name": "job-1-run-1"}, cluster_source="JOB", state="RUNNING")
    w.clusters.pin(stopped)

    before = endpoint_count(emulator, "GET /api/2.1/clusters/list")
    only_running = ListClustersFilterBy(cluster_states=[State.RUNNING], cluster_sources=[ClusterSource.API])
    listed = list(w.clusters.list(filter_by=only_running, page_size=2))
    assert sorted(c.cluster_id for c in listed) == sorted(running)
    assert endpoint_count(emulator, "GET /api/2.1/clusters/list") - before == 3

    first = w.api_client.do("GET", "/api/2.1/clusters/list", query={"page_size": 4})
    assert len(first["clusters"]) == 4 and "prev_page_token" not in first
    second = w.api_client.do("GET", "/api/2.1/clusters/list", query={"page_token": first["next_page_token"]})
    assert len(second["clusters"]) == 3 and "next_page_token" not in second and second["prev_page_token"]

    by_name = w.clusters.list(
        sort_by=ListClustersSortBy(
            field=ListClustersSortByField.CLUSTER_NAME, direction=ListClustersSortByDirection.DESC
        )
    )
    assert [c.cluster_name for c in by_name][:2] == ["stopped", "run-4"]
    pinned = list(w.clusters.list(filter_by=ListClustersFilterBy(is_pinned=True)))
    assert [c.cluster_id for c in pinned] == [stopped]
    jobs = list(w.clusters.list(filter_by=ListClustersFilterBy(cluster_sources=[ClusterSource.JOB])))
    assert [c.cluster_id for c in jobs] == [job]
    legacy = w.api_client.do("GET", "/api/2.0/clusters/list")
    assert len(legacy["clusters"]) == 7 and "next_page_token" not in legacy
    with pytest.raises(InvalidParameterValue):
        w.api_client.do("GET", "/api/2.1/clusters/list", query={"filter_by.cluster_states": "SLEEPING"})


def test_terminated_clusters_leave_the_list_after_30_days(w: WorkspaceClient, emulator: EmulatorHandle) -> None:
    with freeze_time("2025-01-01") as clock:
        old = _seed(emulator, {}, state="TERMINATED")
        clock.tick(31 * 24 * 3600)
        assert list(w.clusters.list()) == []
        assert w.clusters.get(old).state == State.TERMINATED
        clock.tick(30 * 24 * 3600)
        with pytest.raises(ResourceDoesNotExist):
            w.clusters.get(old)


def test_events_page_through_the_lifecycle(
    w: WorkspaceClient, emulator: EmulatorHandle, clock: FrozenDateTimeFactory
) -> None:
    cluster_id = w.clusters.create(spark_version=SPARK, node_type_id=NODE, num_workers=1).cluster_id
    clock.tick(1)
    w.clusters.edit(cluster_id, spark_version=SPARK, node_type_id=NODE, num_workers=2)
    clock.tick(1)
    w.clusters.pin(cluster_id)
    w.clusters.delete(cluster_id)
    clock.tick(1)
    expected = ["CREATING", "RUNNING", "EDITED", "RESTARTING", "RUNNING", "PINNED", "TERMINATING"]

    before = endpoint_count(emulator, "POST /api/2.1/clusters/events")
    legacy = list(w.clusters.events(cluster_id, order=GetEventsOrder.ASC, limit=3))
    assert [e.type.value for e in legacy] == expected
    assert endpoint_count(emulator, "POST /api/2.1/clusters/events") - before == 3
    assert legacy[0].details.cluster_size.num_workers == 1
    edited = legacy[2].details
    assert edited.previous_cluster_size.num_workers == 1 and edited.cluster_size.num_workers == 2
    assert edited.attributes.spark_version == SPARK and edited.user == ADMIN

    newest_first = list(w.clusters.events(cluster_id, page_size=2))
    assert [e.type.value for e in newest_first] == expected[::-1]
    page = w.api_client.do("POST", "/api/2.1/clusters/events", body={"cluster_id": cluster_id, "page_size": 5})
    assert page["total_count"] == 7 and page["next_page_token"] and len(page["events"]) == 5
    only_running = list(w.clusters.events(cluster_id, event_types=[EventType.RUNNING]))
    assert len(only_running) == 2


def test_catalog_endpoints(w: WorkspaceClient) -> None:
    assert w.clusters.select_spark_version(long_term_support=True) == "16.4.x-scala2.12"
    assert w.clusters.select_spark_version(long_term_support=True, ml=True) == "16.4.x-cpu-ml-scala2.12"
    assert w.clusters.select_node_type(local_disk=True, min_memory_gb=16) == "r5d.large"
    zones = w.clusters.list_zones()
    assert zones.default_zone in (zones.zones or [])
    legacy = w.api_client.do("GET", "/api/2.0/clusters/spark-versions")
    assert any(v["key"] == SPARK for v in legacy["versions"])


# -- cluster permissions ---------------------------------------------------------------------------------
def test_cluster_permissions(w: WorkspaceClient, emulator: EmulatorHandle) -> None:
    cluster_id = _seed(emulator, {}, state="RUNNING")
    acl = w.clusters.get_permissions(cluster_id)
    assert acl.object_type == "cluster" and acl.object_id == f"/clusters/{cluster_id}"
    by_principal = {(e.user_name or e.group_name): e.all_permissions[0] for e in acl.access_control_list}
    assert by_principal[ADMIN].permission_level.value == "CAN_MANAGE" and not by_principal[ADMIN].inherited
    assert by_principal["admins"].inherited
    levels = w.clusters.get_permission_levels(cluster_id).permission_levels
    assert [lv.permission_level.value for lv in levels] == ["CAN_ATTACH_TO", "CAN_RESTART", "CAN_MANAGE"]

    body = {"access_control_list": [{"group_name": "users", "permission_level": "IS_OWNER"}]}
    with pytest.raises(InvalidParameterValue, match="IS_OWNER"):
        w.api_client.do("PUT", f"/api/2.0/permissions/clusters/{cluster_id}", body=body)
    cleared = w.clusters.set_permissions(cluster_id, access_control_list=[])
    assert [e.group_name for e in cleared.access_control_list] == ["admins"]

    w.clusters.permanent_delete(cluster_id)
    with pytest.raises(NotFound):
        w.clusters.get_permissions(cluster_id)


# -- cluster policies ------------------------------------------------------------------------------------
def test_new_workspace_has_default_policies(w: WorkspaceClient) -> None:
    defaults = {p.name: p for p in w.cluster_policies.list()}
    assert set(defaults) == {
        "Personal Compute",
        "Shared Compute",
        "Power User Compute",
        "Job Compute",
        "Legacy Shared Compute",
    }
    personal = defaults["Personal Compute"]
    assert personal.is_default and personal.policy_family_id == "personal-vm"
    assert re.fullmatch(r"[0-9A-F]{16}", personal.policy_id)
    assert json.loads(personal.definition)["num_workers"] == {"type": "fixed", "value": 0, "hidden": True}
    with pytest.raises(InvalidParameterValue, match="cannot be deleted"):
        w.cluster_policies.delete(personal.policy_id)

    families = list(w.policy_families.list(max_results=2))
    assert len(families) == 5
    assert w.policy_families.get("job-cluster").name == "Job Compute"


def test_policy_definition_round_trips_as_a_string(w: WorkspaceClient) -> None:
    definition = '{\n  "autotermination_minutes": {"type": "fixed", "value": 30, "hidden": true}\n}'
    policy_id = w.cluster_policies.create(name="team", definition=definition, max_clusters_per_user=2).policy_id
    policy = w.cluster_policies.get(policy_id)
    assert policy.definition == definition
    assert policy.creator_user_name == ADMIN and policy.is_default is False and policy.created_at_timestamp

    w.cluster_policies.edit(policy_id, name="team-renamed", definition="{}")
    edited = w.cluster_policies.get(policy_id)
    assert edited.name == "team-renamed" and edited.definition == "{}" and edited.max_clusters_per_user is None
    by_name = [p.name for p in w.cluster_policies.list(sort_column=ListSortColumn.POLICY_NAME)]
    assert by_name == sorted(by_name, key=str.lower)

    w.cluster_policies.delete(policy_id)
    with pytest.raises(NotFound, match="Can't find a cluster policy"):
        w.cluster_policies.get(policy_id)


def test_policy_errors(w: WorkspaceClient) -> None:
    w.cluster_policies.create(name="dup", definition="{}")
    with pytest.raises(InvalidParameterValue, match="already exists"):
        w.cluster_policies.create(name="dup", definition="{}")
    with pytest.raises(InvalidParameterValue, match="Invalid JSON"):
        w.cluster_policies.create(name="broken", definition="{not json")
    with pytest.raises(InvalidParameterValue, match="cannot be used together"):
        w.cluster_policies.create(name="both", definition="{}", policy_family_id="personal-vm")
    overrides = '{"autotermination_minutes": {"type": "fixed", "value": 60}}'
    family_id = w.cluster_policies.create(
        name="personal-60", policy_family_id="personal-vm", policy_family_definition_overrides=overrides
    ).policy_id
    merged = json.loads(w.cluster_policies.get(family_id).definition)
    assert merged["autotermination_minutes"] == {"type": "fixed", "value": 60}
    assert merged["num_workers"]["value"] == 0


def test_policy_fixed_values_are_enforced(w: WorkspaceClient) -> None:
    definition = json.dumps(
        {
            "spark_version": {"type": "fixed", "value": SPARK},
            "autotermination_minutes": {"type": "fixed", "value": 30, "hidden": True},
            "num_workers": {"type": "range", "maxValue": 4, "defaultValue": 2},
            "custom_tags.team": {"type": "fixed", "value": "data"},
        }
    )
    policy_id = w.cluster_policies.create(name="fixed", definition=definition).policy_id
    with pytest.raises(InvalidParameterValue, match="Validation failed for spark_version"):
        w.clusters.create(spark_version="14.3.x-scala2.12", node_type_id=NODE, num_workers=1, policy_id=policy_id)
    with pytest.raises(InvalidParameterValue, match="Validation failed for num_workers"):
        w.clusters.create(spark_version=SPARK, node_type_id=NODE, num_workers=9, policy_id=policy_id)

    cluster_id = w.clusters.create(
        spark_version=SPARK, node_type_id=NODE, policy_id=policy_id, apply_policy_default_values=True
    ).cluster_id
    details = w.clusters.get(cluster_id)
    assert details.autotermination_minutes == 30 and details.num_workers == 2
    assert details.custom_tags == {"team": "data"} and details.policy_id == policy_id
    assert details.spec.autotermination_minutes is None and details.spec.apply_policy_default_values
    by_policy = list(w.clusters.list(filter_by=ListClustersFilterBy(policy_id=policy_id)))
    assert [c.cluster_id for c in by_policy] == [cluster_id]

    job_policy = next(p.policy_id for p in w.cluster_policies.list() if p.name == "Job Compute")
    with pytest.raises(InvalidParameterValue, match="cluster_type"):
        w.clusters.create(spark_version=SPARK, node_type_id=NODE, num_workers=1, policy_id=job_policy)
    with pytest.raises(NotFound):
        w.clusters.create(spark_version=SPARK, node_type_id=NODE, num_workers=1, policy_id="0000000000000000")


def test_policy_permissions(w: WorkspaceClient) -> None:
    policy_id = w.cluster_policies.create(name="perm", definition="{}").policy_id
    acl = w.cluster_policies.get_permissions(policy_id)
    assert acl.object_type == "cluster-policy"
    levels = w.cluster_policies.get_permission_levels(policy_id).permission_levels
    assert [lv.permission_level.value for lv in levels] == ["CAN_USE"]


# -- instance pools --------------------------------------------------------------------------------------
def test_pool_crud(w: WorkspaceClient, emulator: EmulatorHandle, clock: FrozenDateTimeFactory) -> None:
    assert list(w.instance_pools.list()) == []
    assert w.api_client.do("GET", "/api/2.0/instance-pools/list") == {}
    pool_id = w.instance_pools.create(
        instance_pool_name="shared",
        node_type_id="m5d.xlarge",
        min_idle_instances=1,
        max_capacity=10,
        idle_instance_autotermination_minutes=15,
        custom_tags={"team": "data"},
        preloaded_spark_versions=[SPARK],
    ).instance_pool_id
    assert re.fullmatch(r"\d{4}-\d{6}-[a-z]+\d+-pool-[a-z0-9]{8}", pool_id)
    pool = w.instance_pools.get(pool_id)
    assert pool.state.value == "ACTIVE" and pool.custom_tags == {"team": "data"}
    assert pool.default_tags["DatabricksInstancePoolId"] == pool_id and pool.default_tags["Vendor"] == "Databricks"
    assert pool.stats.idle_count == 1 and pool.stats.used_count == 0
    assert pool.preloaded_spark_versions == [SPARK]

    cluster_id = w.clusters.create(spark_version=SPARK, instance_pool_id=pool_id, num_workers=2).cluster_id
    clock.tick(1)
    assert w.clusters.get(cluster_id).node_type_id == "m5d.xlarge"
    assert w.instance_pools.get(pool_id).stats.used_count == 3

    w.instance_pools.edit(pool_id, instance_pool_name="shared-2", node_type_id="m5d.xlarge", min_idle_instances=0)
    edited = w.instance_pools.get(pool_id)
    assert edited.instance_pool_name == "shared-2" and edited.max_capacity is None and edited.custom_tags is None
    assert edited.preloaded_spark_versions == [SPARK]
    with pytest.raises(InvalidParameterValue, match="cannot be changed"):
        w.instance_pools.edit(pool_id, instance_pool_name="shared-2", node_type_id="i3.xlarge")
    assert [p.instance_pool_id for p in w.instance_pools.list()] == [pool_id]
    assert w.instance_pools.get_permissions(pool_id).object_type == "instance-pool"

    w.instance_pools.delete(pool_id)
    with pytest.raises(NotFound, match="Can't find an instance pool"):
        w.instance_pools.get(pool_id)
    with pytest.raises(NotFound):
        w.instance_pools.delete(pool_id)


def test_pool_create_validation(w: WorkspaceClient) -> None:
    with pytest.raises(InvalidParameterValue, match="instance_pool_name"):
        w.api_client.do("POST", "/api/2.0/instance-pools/create", body={"node_type_id": NODE})
    with pytest.raises(InvalidParameterValue, match="not supported"):
        w.instance_pools.create(instance_pool_name="bad", node_type_id="z9.mega")
    with pytest.raises(InvalidParameterValue, match="max_capacity"):
        w.instance_pools.create(instance_pool_name="bad", node_type_id=NODE, min_idle_instances=5, max_capacity=2)
