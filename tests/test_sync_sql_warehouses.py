"""SQL warehouses between two emulated workspaces: replicated stopped with their permissions, used by SQL
tasks on the target, adopted by name without duplicates.
"""

from __future__ import annotations

from conftest import Pair
from databricks.sdk import WorkspaceClient
from databricks.sdk.service import iam, jobs, sql


def _no_change(pair: Pair, kinds: list[str]) -> dict[str, dict[str, int]]:
    """Run a cycle that should change nothing: the API calls it made per side. Fails if it wrote to the target."""
    pair.reset_stats()
    reports = pair.sync(only=kinds)
    assert pair.target_writes() == 0
    assert all(r.created == r.updated == r.deleted == r.errors == 0 for r in reports.values()), reports
    return {
        # Without the credentials check (GET .../scim/v2/Me) every new `sync --once` process makes once per side.
        side: {
            k: v["count"] for k, v in handle.stats.document()["endpoints"].items() if " /api/" in k and "/Me" not in k
        }
        for side, handle in (("source", pair.source), ("target", pair.target))
    }


def _warehouse(w: WorkspaceClient, name: str = "BI warehouse") -> str:
    return w.warehouses.create(
        name=name,
        cluster_size="Small",
        min_num_clusters=1,
        max_num_clusters=3,
        auto_stop_mins=45,
        enable_photon=True,
        channel=sql.Channel(name=sql.ChannelName.CHANNEL_NAME_PREVIEW),
        tags=sql.EndpointTags(custom_tags=[sql.EndpointTagPair(key="team", value="bi")]),
    ).response.id


def _target_warehouse(pair: Pair, name: str = "BI warehouse") -> sql.GetWarehouseResponse:
    found = next(w for w in pair.dst.warehouses.list() if w.name == name)
    return pair.dst.warehouses.get(found.id)


def test_warehouses_are_replicated_stopped_with_their_permissions(pair: Pair) -> None:
    for w in (pair.src, pair.dst):
        w.groups.create(display_name="analysts")
    source_id = _warehouse(pair.src)
    pair.src.permissions.set(
        "warehouses",
        source_id,
        access_control_list=[
            iam.AccessControlRequest(group_name="analysts", permission_level=iam.PermissionLevel.CAN_USE)
        ],
    )
    assert pair.src.warehouses.get(source_id).state.value in ("STARTING", "RUNNING")

    reports = pair.sync(only=["groups", "sql_warehouses", "permissions"])
    assert reports["sql_warehouses"].created == 1 and reports["permissions"].errors == 0
    target = _target_warehouse(pair)
    assert target.id != source_id
    assert (target.cluster_size, target.min_num_clusters, target.max_num_clusters, target.auto_stop_mins) == (
        "Small",
        1,
        3,
        45,
    )
    assert target.channel.name == sql.ChannelName.CHANNEL_NAME_PREVIEW and target.enable_photon
    assert {(t.key, t.value) for t in target.tags.custom_tags} == {("team", "bi"), ("dbsync_source_id", source_id)}
    assert target.state.value in ("STOPPING", "STOPPED"), "a standby warehouse must not run"
    acl = pair.dst.permissions.get("warehouses", target.id).access_control_list
    assert any(a.group_name == "analysts" and a.all_permissions[0].permission_level.value == "CAN_USE" for a in acl)

    # Someone starts the standby copy; the next change on the source leaves it stopped again.
    pair.dst.warehouses.start(target.id)
    pair.src.warehouses.edit(source_id, name="BI warehouse", cluster_size="Large", auto_stop_mins=20)
    assert pair.sync(only=["sql_warehouses"])["sql_warehouses"].updated == 1
    target = _target_warehouse(pair)
    assert (target.cluster_size, target.auto_stop_mins) == ("Large", 20)
    assert target.state.value in ("STOPPING", "STOPPED")

    calls = _no_change(pair, ["sql_warehouses"])
    assert calls["source"] == {"GET /api/2.0/sql/warehouses": 1}  # the listing carries every field

    pair.src.warehouses.delete(source_id)
    # The only warehouse going is an empty listing: the delete guard holds it until an operator confirms.
    assert pair.sync(only=["sql_warehouses"])["sql_warehouses"].outcome == "delete_guard"
    assert pair.sync(only=["sql_warehouses"], force_deletes=True)["sql_warehouses"].deleted == 1
    assert list(pair.dst.warehouses.list()) == []


def test_a_sql_task_runs_on_the_target_warehouse(pair: Pair) -> None:
    source_id = _warehouse(pair.src)
    pair.src.jobs.create(
        name="nightly-kpis",
        tasks=[
            jobs.Task(
                task_key="kpis",
                sql_task=jobs.SqlTask(
                    warehouse_id=source_id, file=jobs.SqlTaskFile(path="/Shared/kpis.sql", source=jobs.Source.WORKSPACE)
                ),
            )
        ],
    )
    reports = pair.sync(only=["sql_warehouses", "jobs"])
    assert reports["jobs"].created == 1 and reports["jobs"].blocked == 0
    target_job = next(iter(pair.dst.jobs.list(expand_tasks=True)))
    assert target_job.settings.tasks[0].sql_task.warehouse_id == _target_warehouse(pair).id


def test_adoption_by_name_never_duplicates_a_warehouse(pair: Pair) -> None:
    _warehouse(pair.src)
    existing = _warehouse(pair.dst)  # made by hand on the standby, before dbsync ran
    pair.sync(only=["sql_warehouses"])
    assert [w.id for w in pair.dst.warehouses.list()] == [existing]
    assert pair.dst.warehouses.get(existing).state.value in ("STOPPING", "STOPPED")
