"""Instance Pools API 2.0: `/api/2.0/instance-pools/{list,get,create,edit,delete}`.

Pools live in table "instance_pools" keyed by instance_pool_id; a record holds the writable spec as
sent plus `_created_ms`. Read-only fields (state, stats, status, default_tags) are computed on read.
"""

from __future__ import annotations

import random
import time
from typing import Any

from dbsync_emulator.apis import permissions
from dbsync_emulator.errors import invalid, not_found
from dbsync_emulator.router import Request, Routes
from dbsync_emulator.state import Workspace

routes = Routes()

TABLE = "instance_pools"

# Fields a create request may set; anything else (read-only fields, typos) is ignored like the service does.
CREATE_FIELDS = (
    "instance_pool_name",
    "node_type_id",
    "min_idle_instances",
    "max_capacity",
    "idle_instance_autotermination_minutes",
    "custom_tags",
    "aws_attributes",
    "azure_attributes",
    "gcp_attributes",
    "disk_spec",
    "enable_elastic_disk",
    "preloaded_spark_versions",
    "preloaded_docker_images",
    "node_type_flexibility",
    "remote_disk_throughput",
    "total_initial_remote_disk_size",
)
# Fields edit replaces (absent → cleared); the rest of the spec is immutable after create.
EDIT_FIELDS = (
    "min_idle_instances",
    "max_capacity",
    "idle_instance_autotermination_minutes",
    "custom_tags",
    "remote_disk_throughput",
    "total_initial_remote_disk_size",
)
_AWS_POOL_DEFAULTS = {"availability": "SPOT", "spot_bid_price_percent": 100}
_AWS_AVAILABILITY = ("SPOT", "ON_DEMAND")
_ID_WORDS = ("brick", "pier", "oak", "flint", "lane", "mast", "quay", "reed", "tarn", "wharf")


def _exists(ws: Workspace, pool_id: str) -> bool:
    return pool_id in ws.table(TABLE)


permissions.register("instance-pools", "instance-pool", ("CAN_ATTACH_TO", "CAN_MANAGE"), _exists)


# -- internal API (clusters module and the seeder) ---------------------------------------------------
def get_pool(ws: Workspace, pool_id: str) -> dict | None:
    """The stored pool record (writable spec) or None."""
    return ws.table(TABLE).get(pool_id)


def pool_not_found(pool_id: str) -> Exception:
    """The error the service answers for an unknown instance pool id."""
    return not_found(f"Can't find an instance pool with id: {pool_id}")


def create_pool(ws: Workspace, spec: dict) -> str:
    """Validate `spec` like POST /instance-pools/create and store the pool; returns its id."""
    record = {k: spec[k] for k in CREATE_FIELDS if spec.get(k) is not None}
    for name in ("instance_pool_name", "node_type_id"):
        if not record.get(name):
            raise invalid(f"Missing required field: {name}")
    _validate(record)
    _validate_create_only(record)
    on_aws = "azure_attributes" not in record and "gcp_attributes" not in record
    if on_aws or "aws_attributes" in record:
        from dbsync_emulator.apis import clusters

        aws = {**_AWS_POOL_DEFAULTS, "zone_id": clusters.DEFAULT_ZONE, **record.get("aws_attributes", {})}
        record["aws_attributes"] = aws
    pool_id = _new_pool_id(ws)
    record["instance_pool_id"] = pool_id
    record["_created_ms"] = ws.now_ms()
    record["_creator"] = ws.admin_user
    ws.table(TABLE)[pool_id] = record
    permissions.grant_creator(ws, "instance-pools", pool_id)
    return pool_id


def _validate(record: dict) -> None:
    from dbsync_emulator.apis import clusters

    if clusters.node_type(record["node_type_id"]) is None:
        raise invalid(f"Node type {record['node_type_id']} is not supported")
    min_idle = _non_negative(record, "min_idle_instances")
    max_capacity = record.get("max_capacity")
    if max_capacity is not None:
        if not isinstance(max_capacity, int) or max_capacity < 1:
            raise invalid("max_capacity must be a positive integer")
        if min_idle is not None and max_capacity < min_idle:
            raise invalid("max_capacity must be greater than or equal to min_idle_instances")
    minutes = _non_negative(record, "idle_instance_autotermination_minutes")
    if minutes is not None and minutes > 10000:
        raise invalid("idle_instance_autotermination_minutes must be between 0 and 10000")
    tags = record.get("custom_tags")
    if tags is not None and not isinstance(tags, dict):
        raise invalid("custom_tags must be a map of strings")


def _validate_create_only(record: dict) -> None:
    from dbsync_emulator.apis import clusters

    versions = record.get("preloaded_spark_versions") or []
    if len(versions) > 1:
        raise invalid("At most one preloaded Spark version can be specified")
    for version in versions:
        if not clusters.is_spark_version(version):
            raise invalid(f"Invalid spark version {version}.")
    availability = (record.get("aws_attributes") or {}).get("availability")
    if availability is not None and availability not in _AWS_AVAILABILITY:
        raise invalid(f"Invalid availability {availability} for an instance pool: use SPOT or ON_DEMAND")


def _non_negative(record: dict, name: str) -> int | None:
    value = record.get(name)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise invalid(f"{name} must be a non-negative integer")
    return value


def _new_pool_id(ws: Workspace) -> str:
    # Seeded by workspace id so two emulated workspaces never hand out the same ids.
    seq = ws.next_id("instance_pool_ids")
    rng = random.Random(f"pool:{ws.workspace_id}:{seq}")
    stamp = time.strftime("%m%d-%H%M%S", time.gmtime(ws.now_ms() / 1000))
    suffix = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(8))
    return f"{stamp}-{rng.choice(_ID_WORDS)}{rng.randint(1, 999)}-pool-{suffix}"


def pool_document(ws: Workspace, record: dict) -> dict:
    """GetInstancePool / InstancePoolAndStats as the service answers it."""
    doc = {k: v for k, v in record.items() if not k.startswith("_")}
    doc["default_tags"] = {
        "Vendor": "Databricks",
        "DatabricksInstancePoolCreatorId": _creator_id(ws, record.get("_creator", ws.admin_user)),
        "DatabricksInstancePoolId": record["instance_pool_id"],
    }
    doc["state"] = "ACTIVE"
    doc["stats"] = _stats(ws, record)
    doc["status"] = {}
    return doc


def _creator_id(ws: Workspace, user_name: str) -> str:
    from dbsync_emulator.apis import scim

    user = scim.find_user(ws, user_name)
    if user and user.get("id"):
        return str(user["id"])
    return str(random.Random(f"user:{ws.workspace_id}:{user_name}").randint(10**15, 10**16 - 1))


def _stats(ws: Workspace, record: dict) -> dict:
    from dbsync_emulator.apis import clusters

    pool_id = record["instance_pool_id"]
    used = clusters.pool_usage(ws, pool_id)
    idle = record.get("min_idle_instances", 0)
    capacity = record.get("max_capacity")
    if capacity is not None:
        idle = max(0, min(idle, capacity - used))
    return {"used_count": used, "idle_count": idle, "pending_used_count": 0, "pending_idle_count": 0}


def _load(ws: Workspace, pool_id: Any) -> dict:
    if not pool_id:
        raise invalid("Missing required field: instance_pool_id")
    record = get_pool(ws, str(pool_id))
    if record is None:
        raise pool_not_found(str(pool_id))
    return record


# -- HTTP handlers ------------------------------------------------------------------------------------
@routes.get("/api/2.0/instance-pools/list")
def list_pools(ws: Workspace, req: Request) -> dict:
    records = sorted(ws.table(TABLE).values(), key=lambda r: (r["_created_ms"], r["instance_pool_id"]))
    pools = [pool_document(ws, r) for r in records]
    return {"instance_pools": pools} if pools else {}


@routes.get("/api/2.0/instance-pools/get")
def get(ws: Workspace, req: Request) -> dict:
    return pool_document(ws, _load(ws, req.param("instance_pool_id")))


@routes.post("/api/2.0/instance-pools/create")
def create(ws: Workspace, req: Request) -> dict:
    return {"instance_pool_id": create_pool(ws, req.json)}


@routes.post("/api/2.0/instance-pools/edit")
def edit(ws: Workspace, req: Request) -> dict:
    """Replace the editable fields; name and node type are required and the node type is immutable."""
    record = _load(ws, req.param("instance_pool_id"))
    body = req.json
    name = req.require("instance_pool_name")
    node_type_id = req.require("node_type_id")
    if node_type_id != record["node_type_id"]:
        raise invalid(
            f"Node type of instance pool {record['instance_pool_id']} cannot be changed "
            f"from {record['node_type_id']} to {node_type_id}"
        )
    updated = {k: v for k, v in record.items() if k not in EDIT_FIELDS}
    updated["instance_pool_name"] = name
    updated.update({k: body[k] for k in EDIT_FIELDS if body.get(k) is not None})
    _validate(updated)
    ws.table(TABLE)[record["instance_pool_id"]] = updated
    return {}


@routes.post("/api/2.0/instance-pools/delete")
def delete(ws: Workspace, req: Request) -> dict:
    """Permanent: the pool disappears from get and list at once."""
    record = _load(ws, req.param("instance_pool_id"))
    del ws.table(TABLE)[record["instance_pool_id"]]
    permissions.forget(ws, "instance-pools", record["instance_pool_id"])
    return {}
