"""Clusters API 2.0 and 2.1: `/api/2.{0,1}/clusters/*`.

A cluster lives in table "clusters" keyed by cluster_id. Its record keeps the user-supplied `spec`,
the effective `attrs` (spec after policy, pool and cloud defaults), the read-only fields the service
reports, and `_pending`: the next state change `{"state", "at", "kind"}`. State changes happen lazily:
every read calls `_advance`, which applies a pending change once the clock (time.time, so freezegun
works) has passed its `at`. Other modules should read the state through `cluster_state(ws, id)`, which
advances first; the stored `state` field is otherwise only as fresh as the last request that touched it.
Events live in table "cluster_events": cluster_id → list of ClusterEvent in time order.
"""

from __future__ import annotations

import base64
import json
import random
import time
from typing import Any

from dbsync_emulator.apis import permissions, policies, pools, scim
from dbsync_emulator.errors import ApiError, invalid, invalid_state
from dbsync_emulator.router import Request, Routes
from dbsync_emulator.state import Workspace

routes = Routes()

TABLE = "clusters"
EVENTS = "cluster_events"
ZONES = ("us-west-2a", "us-west-2b", "us-west-2c")
DEFAULT_ZONE = ZONES[0]
STATES = ("PENDING", "RUNNING", "RESTARTING", "RESIZING", "TERMINATING", "TERMINATED", "ERROR", "UNKNOWN")
SOURCES = ("API", "UI", "JOB", "MODELS", "PIPELINE", "PIPELINE_MAINTENANCE", "SQL")
EVENT_TYPES = (
    "CREATING", "DID_NOT_EXPAND_DISK", "EXPANDED_DISK", "FAILED_TO_EXPAND_DISK", "INIT_SCRIPTS_STARTED",
    "INIT_SCRIPTS_FINISHED", "STARTING", "RESTARTING", "TERMINATING", "EDITED", "RUNNING", "RESIZING",
    "UPSIZE_COMPLETED", "NODES_LOST", "DRIVER_HEALTHY", "DRIVER_UNAVAILABLE", "SPARK_EXCEPTION",
    "DRIVER_NOT_RESPONDING", "DBFS_DOWN", "METASTORE_DOWN", "AUTOSCALING_STATS_REPORT", "NODE_BLACKLISTED",
    "PINNED", "UNPINNED", "NODE_EXCLUDED_DECOMMISSIONED", "DECOMMISSION_STARTED", "DECOMMISSION_ENDED",
    "AUTOMATIC_CLUSTER_UPDATE", "CLUSTER_MIGRATED", "ADD_NODES_FAILED", "AUTOSCALING_BACKOFF",
    "AUTOSCALING_FAILED", "UC_VOLUME_MISCONFIGURED", "DEFERRED_POLICY_ENFORCEMENT_SCHEDULED",
    "DEFERRED_POLICY_ENFORCEMENT_FAILED",
)  # fmt: skip
# Fields of ClusterSpec a create/edit request may set; read-only fields and unknown keys are ignored.
SPEC_FIELDS = (
    "apply_policy_default_values", "autoscale", "autotermination_minutes", "aws_attributes",
    "azure_attributes", "cluster_log_conf", "cluster_name", "custom_tags", "data_security_mode",
    "dependency_mode", "docker_image", "driver_instance_pool_id", "driver_node_type_flexibility",
    "driver_node_type_id", "enable_elastic_disk", "enable_local_disk_encryption", "gcp_attributes",
    "init_scripts", "instance_pool_id", "is_single_node", "kind", "node_type_id", "num_workers", "policy_id",
    "remote_disk_throughput", "runtime_engine", "single_user_name", "spark_conf", "spark_env_vars",
    "spark_version", "ssh_public_keys", "total_initial_remote_disk_size", "use_ml_runtime",
    "worker_node_type_flexibility", "workload_type",
)  # fmt: skip
DATA_SECURITY_MODES = (
    "NONE", "SINGLE_USER", "USER_ISOLATION", "LEGACY_TABLE_ACL", "LEGACY_PASSTHROUGH", "LEGACY_SINGLE_USER",
    "LEGACY_SINGLE_USER_STANDARD", "DATA_SECURITY_MODE_AUTO", "DATA_SECURITY_MODE_STANDARD",
    "DATA_SECURITY_MODE_DEDICATED",
)  # fmt: skip
_ACTIVE = ("PENDING", "RUNNING", "RESTARTING", "RESIZING")
_WITH_NODES = ("RUNNING", "RESIZING")
_AWS_AVAILABILITY = ("SPOT", "ON_DEMAND", "SPOT_WITH_FALLBACK")
_RESERVED_TAGS = ("Vendor", "Creator", "ClusterName", "ClusterId", "Name")
_MESSAGES = {
    "PENDING": "Finding instances for new nodes, acquiring more instances if necessary",
    "RESTARTING": "Restarting Spark",
    "RESIZING": "Resizing cluster",
    "TERMINATING": "Terminating the cluster",
    "RUNNING": "",
}
_DAY_MS = 24 * 3600 * 1000
_LIST_RETENTION_MS = 30 * _DAY_MS  # terminated clusters stay in list for 30 days unless pinned
_GET_RETENTION_MS = 60 * _DAY_MS  # and answer get for 60 days
_EVENTS_PAGE = 50


# -- catalog: node types, Spark versions -----------------------------------------------------------------
def _node(
    node_type_id: str,
    memory_mb: int,
    cores: int,
    category: str,
    disks: int,
    disk_gb: int,
    gpus: int = 0,
    graviton: bool = False,
    deprecated: bool = False,
) -> dict[str, Any]:
    instance: dict[str, Any] = {"instance_type_id": node_type_id}
    if disks:
        instance.update(
            local_disks=disks,
            local_disk_size_gb=disk_gb,
            local_nvme_disks=disks,
            local_nvme_disk_size_gb=disk_gb,
        )
    return {
        "node_type_id": node_type_id,
        "memory_mb": memory_mb,
        "num_cores": float(cores),
        "description": node_type_id,
        "instance_type_id": node_type_id,
        "is_deprecated": deprecated,
        "category": category,
        "support_ebs_volumes": True,
        "support_cluster_tags": True,
        "num_gpus": gpus,
        "node_instance_type": instance,
        "is_hidden": False,
        "support_port_forwarding": True,
        "is_io_cache_enabled": bool(disks),
        "photon_worker_capable": not (gpus or deprecated),
        "photon_driver_capable": not (gpus or deprecated),
        "is_graviton": graviton,
    }


NODE_TYPES: tuple[dict[str, Any], ...] = (
    _node("m5d.large", 8192, 2, "General Purpose", 1, 75),
    _node("m5d.xlarge", 16384, 4, "General Purpose", 1, 150),
    _node("m5d.2xlarge", 32768, 8, "General Purpose", 1, 300),
    _node("m5d.4xlarge", 65536, 16, "General Purpose", 2, 300),
    _node("m6gd.large", 8192, 2, "General Purpose", 1, 118, graviton=True),
    _node("m6gd.xlarge", 16384, 4, "General Purpose", 1, 237, graviton=True),
    _node("i3.xlarge", 31232, 4, "Storage Optimized", 1, 950),
    _node("i3.2xlarge", 62464, 8, "Storage Optimized", 1, 1900),
    _node("i3.4xlarge", 124928, 16, "Storage Optimized", 2, 1900),
    _node("r5d.large", 16384, 2, "Memory Optimized", 1, 75),
    _node("r5d.xlarge", 32768, 4, "Memory Optimized", 1, 150),
    _node("r5d.2xlarge", 65536, 8, "Memory Optimized", 1, 300),
    _node("c5d.xlarge", 8192, 4, "Compute Optimized", 1, 100),
    _node("c5d.2xlarge", 16384, 8, "Compute Optimized", 1, 200),
    _node("g4dn.xlarge", 16384, 4, "GPU Accelerated", 1, 125, gpus=1),
    _node("m4.large", 8192, 2, "General Purpose", 0, 0, deprecated=True),
)
_NODE_TYPES_BY_ID = {n["node_type_id"]: n for n in NODE_TYPES}

# (version, Apache Spark version, Scala, LTS)
_RUNTIMES = (
    ("17.1", "4.0.0", "2.13", False),
    ("17.0", "4.0.0", "2.13", False),
    ("16.4", "3.5.2", "2.12", True),
    ("16.3", "3.5.2", "2.12", False),
    ("16.2", "3.5.2", "2.12", False),
    ("15.4", "3.5.0", "2.12", True),
    ("14.3", "3.5.0", "2.12", True),
    ("13.3", "3.4.1", "2.12", True),
    ("12.2", "3.3.2", "2.12", True),
    ("11.3", "3.3.0", "2.12", True),
    ("10.4", "3.2.1", "2.12", True),
    ("9.1", "3.1.2", "2.12", True),
)


def _spark_versions() -> list[dict[str, str]]:
    versions = []
    for version, spark, scala, lts in _RUNTIMES:
        label = f"{version} LTS" if lts else version
        versions.append(
            {
                "key": f"{version}.x-scala{scala}",
                "name": f"{label} (includes Apache Spark {spark}, Scala {scala})",
            }
        )
        versions.append(
            {
                "key": f"{version}.x-cpu-ml-scala{scala}",
                "name": f"{label} ML (includes Apache Spark {spark}, Scala {scala})",
            }
        )
        versions.append(
            {
                "key": f"{version}.x-gpu-ml-scala{scala}",
                "name": f"{label} ML (includes Apache Spark {spark}, GPU, Scala {scala})",
            }
        )
        if version in ("10.4", "11.3", "12.2"):
            versions.append(
                {
                    "key": f"{version}.x-photon-scala{scala}",
                    "name": f"{label} Photon (includes Apache Spark {spark}, Scala {scala})",
                }
            )
    versions.append({"key": "16.4.x-scala2.13", "name": "16.4 LTS (includes Apache Spark 3.5.2, Scala 2.13)"})
    return versions


SPARK_VERSIONS: tuple[dict[str, str], ...] = tuple(_spark_versions())
_SPARK_VERSION_KEYS = {v["key"] for v in SPARK_VERSIONS}


def node_type(node_type_id: str) -> dict | None:
    """The list-node-types entry for a node type id, or None when the workspace does not offer it."""
    return _NODE_TYPES_BY_ID.get(node_type_id)


def is_spark_version(key: str) -> bool:
    """Whether `key` is a runtime listed by spark-versions."""
    return key in _SPARK_VERSION_KEYS


def resolve_spark_version(value: str) -> str:
    """Resolve a policy value such as `auto:latest-lts` / `auto:latest-ml` to a concrete runtime key."""
    if not value.startswith("auto:"):
        return value
    want_lts = "lts" in value
    want_ml = value.endswith("-ml")
    for version, _spark, scala, lts in _RUNTIMES:  # newest first
        if (want_lts and not lts) or scala != "2.12":
            continue
        return f"{version}.x-cpu-ml-scala{scala}" if want_ml else f"{version}.x-scala{scala}"
    return value


# -- permissions ----------------------------------------------------------------------------------------
def _exists(ws: Workspace, cluster_id: str) -> bool:
    return get_cluster(ws, cluster_id) is not None


permissions.register("clusters", "cluster", ("CAN_ATTACH_TO", "CAN_RESTART", "CAN_MANAGE"), _exists)


# -- internal API (seeder, jobs, commands) ---------------------------------------------------------------
def cluster_not_found(cluster_id: str) -> ApiError:
    """What the service answers for an unknown cluster id: 400, which the SDK maps to ResourceDoesNotExist."""
    return invalid(f"Cluster {cluster_id} does not exist")


def get_cluster(ws: Workspace, cluster_id: str) -> dict | None:
    """The stored record with pending state changes applied, or None (unknown or purged)."""
    record = ws.table(TABLE).get(cluster_id)
    if record is None:
        return None
    _advance(ws, record)
    if _purged(record, ws.now_ms()):
        return None
    return record


def cluster_state(ws: Workspace, cluster_id: str) -> str | None:
    """The current state ("RUNNING", ...) of a cluster, or None when it does not exist."""
    record = get_cluster(ws, cluster_id)
    return record["state"] if record else None


def cluster_details(ws: Workspace, cluster_id: str) -> dict:
    """ClusterDetails as clusters/get answers it; raises the service's error for unknown ids."""
    return _details(ws, _load(ws, cluster_id))


def create_cluster(
    ws: Workspace,
    spec: dict,
    cluster_source: str = "API",
    state: str | None = None,
    creator: str | None = None,
    extra_default_tags: dict[str, str] | None = None,
) -> str:
    """Validate and create a cluster like clusters/create; returns its id.

    `state=None` starts it (PENDING, RUNNING after ws.cluster_start_seconds); "RUNNING" or "TERMINATED"
    create it directly in that state, for seeding.
    """
    if cluster_source not in SOURCES:
        raise ValueError(f"unknown cluster_source {cluster_source}")
    user_spec, attrs = _resolve_spec(ws, spec, cluster_source)
    now = ws.now_ms()
    cluster_id = _new_cluster_id(ws)
    record: dict[str, Any] = {
        "cluster_id": cluster_id,
        "spec": user_spec,
        "attrs": attrs,
        "cluster_source": cluster_source,
        "creator_user_name": creator or ws.admin_user,
        "start_time": now,
        "pinned": False,
        "current_workers": 0,
        "extra_default_tags": dict(extra_default_tags or {}),
        "_created_ms": now,
    }
    _set_state(record, "PENDING")
    ws.table(TABLE)[cluster_id] = record
    ws.table(EVENTS)[cluster_id] = []
    _event(ws, cluster_id, "CREATING", {"cluster_size": _size(attrs), "user": record["creator_user_name"]}, now)
    record["_pending"] = {"state": "RUNNING", "at": now + _delay_ms(ws, "start"), "kind": "start"}
    permissions.grant_creator(ws, "clusters", cluster_id, record["creator_user_name"])
    if state in ("RUNNING", "TERMINATED"):
        record["_pending"]["at"] = now
        _advance(ws, record)
    if state == "TERMINATED":
        terminate_cluster(ws, cluster_id)
        record["_pending"]["at"] = now
        _advance(ws, record)
    return cluster_id


def create_job_cluster(ws: Workspace, spec: dict, job_id: int | None, run_id: int, run_name: str = "") -> str:
    """Start the ephemeral cluster of a job run (cluster_source JOB, named like the service does)."""
    spec = dict(spec)
    spec.setdefault("cluster_name", f"job-{job_id}-run-{run_id}" if job_id else f"run-{run_id}")
    tags = {"JobId": str(job_id or ""), "RunName": run_name} if job_id else {"RunName": run_name}
    return create_cluster(ws, spec, cluster_source="JOB", extra_default_tags=tags)


def terminate_cluster(
    ws: Workspace,
    cluster_id: str,
    code: str = "USER_REQUEST",
    reason_type: str = "SUCCESS",
    user: str | None = None,
    parameters: dict[str, str] | None = None,
) -> None:
    """Start terminating a cluster (a no-op when already TERMINATING/TERMINATED)."""
    record = _load(ws, cluster_id)
    if record["state"] in ("TERMINATING", "TERMINATED"):
        return
    user = user or ws.admin_user
    if parameters is None:
        parameters = {"username": user} if code == "USER_REQUEST" else {}
    reason: dict[str, Any] = {"code": code, "type": reason_type}
    if parameters:
        reason["parameters"] = parameters
    record["termination_reason"] = reason
    _set_state(record, "TERMINATING")
    now = ws.now_ms()
    _event(ws, cluster_id, "TERMINATING", {"reason": reason, "user": user}, now)
    record["_pending"] = {"state": "TERMINATED", "at": now + _delay_ms(ws, "terminate"), "kind": "terminate"}


def pool_usage(ws: Workspace, pool_id: str) -> int:
    """How many instances of a pool running clusters hold (drivers and workers)."""
    used = 0
    for cluster_id in list(ws.table(TABLE)):
        record = get_cluster(ws, cluster_id)
        if record is None or record["state"] not in _WITH_NODES:
            continue
        attrs = record["attrs"]
        if attrs.get("instance_pool_id") == pool_id:
            used += record["current_workers"]
        if (attrs.get("driver_instance_pool_id") or attrs.get("instance_pool_id")) == pool_id:
            used += 1
    return used


# -- lifecycle -------------------------------------------------------------------------------------------
def _delay_ms(ws: Workspace, kind: str) -> int:
    """How long a start, restart, resize or terminate takes, by the workspace's timing profile."""
    return int(ws.timing.cluster_seconds(ws.cluster_start_seconds, kind, ws.draw(f"cluster:{kind}")) * 1000)


def _set_state(record: dict, state: str, message: str | None = None) -> None:
    record["state"] = state
    record["state_message"] = _MESSAGES.get(state, "") if message is None else message


def _advance(ws: Workspace, record: dict) -> None:
    pending = record.get("_pending")
    if not pending or ws.now_ms() < pending["at"]:
        return
    record["_pending"] = None
    if pending["state"] == "RUNNING":
        _enter_running(ws, record, pending["at"], pending["kind"])
    elif pending["state"] == "TERMINATED":
        _enter_terminated(record, pending["at"])


def _enter_running(ws: Workspace, record: dict, at: int, kind: str) -> None:
    previous_workers = record["current_workers"]
    target = _target_workers(record["attrs"])
    rng = random.Random(f"nodes:{ws.workspace_id}:{record['cluster_id']}:{at}")
    if kind != "resize" or "driver" not in record:
        record["driver"] = _spark_node(rng, at)
        record["spark_context_id"] = rng.randint(10**18, 9 * 10**18)
        record["last_restarted_time"] = at
    executors = [e for e in record.get("executors", []) if kind == "resize"][:target]
    executors += [_spark_node(rng, at) for _ in range(target - len(executors))]
    record["executors"] = executors
    record["current_workers"] = target
    _set_state(record, "RUNNING")
    details = {"current_num_workers": target, "target_num_workers": target}
    if kind == "resize":
        if target > previous_workers:
            _event(ws, record["cluster_id"], "UPSIZE_COMPLETED", details, at)
    else:
        _event(ws, record["cluster_id"], "RUNNING", details, at)


def _enter_terminated(record: dict, at: int) -> None:
    for key in ("driver", "executors", "spark_context_id"):
        record.pop(key, None)
    record["current_workers"] = 0
    record["terminated_time"] = at
    reason = record.get("termination_reason") or {}
    message = "Terminated by user" if reason.get("code") == "USER_REQUEST" else reason.get("code", "")
    _set_state(record, "TERMINATED", message)


def _target_workers(attrs: dict) -> int:
    if "autoscale" in attrs:
        return int(attrs["autoscale"].get("min_workers", 0))
    return int(attrs.get("num_workers", 0))


def _spark_node(rng: random.Random, at: int) -> dict:
    ip = f"10.0.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
    return {
        "private_ip": ip,
        "public_dns": "",
        "node_id": "".join(rng.choice("0123456789abcdef") for _ in range(32)),
        "instance_id": "i-0" + "".join(rng.choice("0123456789abcdef") for _ in range(16)),
        "start_timestamp": at,
        "node_aws_attributes": {"is_spot": False},
        "host_private_ip": f"10.0.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
    }


def _purged(record: dict, now: int) -> bool:
    ended = record.get("terminated_time")
    return record["state"] == "TERMINATED" and not record["pinned"] and bool(ended) and now - ended > _GET_RETENTION_MS


def _event(ws: Workspace, cluster_id: str, event_type: str, details: dict, timestamp: int) -> None:
    event = {"cluster_id": cluster_id, "timestamp": timestamp, "type": event_type, "details": details}
    ws.table(EVENTS).setdefault(cluster_id, []).append(event)


def _new_cluster_id(ws: Workspace) -> str:
    # MMDD-HHMMSS-xxxxxxxx like the service; seeded by workspace id so workspaces never collide.
    while True:
        seq = ws.next_id("cluster_ids")
        rng = random.Random(f"cluster:{ws.workspace_id}:{seq}")
        stamp = time.strftime("%m%d-%H%M%S", time.gmtime(ws.now_ms() / 1000))
        suffix = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(8))
        cluster_id = f"{stamp}-{suffix}"
        if cluster_id not in ws.table(TABLE):
            return cluster_id


# -- spec validation -------------------------------------------------------------------------------------
def _cluster_type(cluster_source: str) -> str:
    return {"JOB": "job", "PIPELINE": "dlt", "PIPELINE_MAINTENANCE": "dlt"}.get(cluster_source, "all-purpose")


def _resolve_spec(ws: Workspace, body: dict, cluster_source: str) -> tuple[dict, dict]:
    """(the user spec as kept in `spec`, the effective attributes) for a create/edit request."""
    spec = {k: body[k] for k in SPEC_FIELDS if body.get(k) is not None}
    attrs = json.loads(json.dumps(spec))
    if spec.get("policy_id"):
        apply_defaults = bool(spec.get("apply_policy_default_values"))
        attrs = policies.enforce(ws, spec["policy_id"], attrs, _cluster_type(cluster_source), apply_defaults)
    version = attrs.get("spark_version")
    if not version:
        raise invalid("Missing required field: spark_version")
    if not is_spark_version(version):
        raise invalid(f"Invalid spark version {version}.")
    _check_size(attrs)
    _check_nodes(ws, attrs)
    _check_options(attrs)
    return spec, attrs


def _check_size(attrs: dict) -> None:
    autoscale = attrs.get("autoscale")
    num_workers = attrs.get("num_workers")
    if autoscale is not None:
        if num_workers:
            raise invalid("Only one of num_workers or autoscale can be specified")
        attrs.pop("num_workers", None)  # clients such as terraform send num_workers=0 next to autoscale
        low, high = autoscale.get("min_workers"), autoscale.get("max_workers")
        if not isinstance(low, int) or not isinstance(high, int) or low < 0:
            raise invalid("autoscale requires min_workers and max_workers as non-negative integers")
        if high < max(low, 1):
            raise invalid("autoscale.max_workers must be at least 1 and not less than autoscale.min_workers")
        return
    if num_workers is None:
        attrs["num_workers"] = 0
    elif not isinstance(num_workers, int) or isinstance(num_workers, bool) or num_workers < 0:
        raise invalid(f"num_workers must be a non-negative integer, got {num_workers!r}")


def _check_nodes(ws: Workspace, attrs: dict) -> None:
    pool_id = attrs.get("instance_pool_id")
    driver_pool_id = attrs.get("driver_instance_pool_id")
    if driver_pool_id and not pool_id:
        raise invalid("driver_instance_pool_id requires instance_pool_id to be set")
    if pool_id:
        pool = pools.get_pool(ws, pool_id)
        if pool is None:
            raise pools.pool_not_found(pool_id)
        attrs["node_type_id"] = pool["node_type_id"]
    if driver_pool_id:
        driver_pool = pools.get_pool(ws, driver_pool_id)
        if driver_pool is None:
            raise pools.pool_not_found(driver_pool_id)
        attrs["driver_node_type_id"] = driver_pool["node_type_id"]
    node_type_id = attrs.get("node_type_id")
    if not node_type_id:
        raise invalid("Missing required field: node_type_id")
    for field in ("node_type_id", "driver_node_type_id"):
        value = attrs.get(field)
        if value is not None and node_type(value) is None:
            raise invalid(f"Node type {value} is not supported")
    attrs.setdefault("driver_node_type_id", node_type_id)
    if not pool_id and "azure_attributes" not in attrs and "gcp_attributes" not in attrs:
        defaults = {
            "first_on_demand": 1,
            "availability": "SPOT_WITH_FALLBACK",
            "zone_id": DEFAULT_ZONE,
            "spot_bid_price_percent": 100,
        }
        attrs["aws_attributes"] = {**defaults, **(attrs.get("aws_attributes") or {})}
    aws = attrs.get("aws_attributes") or {}
    if aws.get("availability") is not None and aws["availability"] not in _AWS_AVAILABILITY:
        raise invalid(f"Invalid aws_attributes.availability: {aws['availability']}")
    if aws.get("zone_id") is not None and aws["zone_id"] not in (*ZONES, "auto"):
        raise invalid(f"Invalid aws_attributes.zone_id: {aws['zone_id']} is not an availability zone of this region")


def _check_options(attrs: dict) -> None:
    minutes = attrs.get("autotermination_minutes")
    if minutes is not None and (not isinstance(minutes, int) or not (minutes == 0 or 10 <= minutes <= 10000)):
        raise invalid("autotermination_minutes must be 0 (never) or between 10 and 10000")
    mode = attrs.get("data_security_mode")
    if mode is not None and mode not in DATA_SECURITY_MODES:
        raise invalid(f"Invalid data_security_mode: {mode}")
    engine = attrs.get("runtime_engine")
    if engine is not None and engine not in ("STANDARD", "PHOTON", "NULL"):
        raise invalid(f"Invalid runtime_engine: {engine}")
    for field in ("custom_tags", "spark_conf", "spark_env_vars"):
        value = attrs.get(field)
        if value is not None and not isinstance(value, dict):
            raise invalid(f"{field} must be a map of strings")
    reserved = [k for k in attrs.get("custom_tags") or {} if k in _RESERVED_TAGS]
    if reserved:
        raise invalid(f"Custom tags cannot use the reserved keys {', '.join(reserved)}")


def _size(attrs: dict) -> dict:
    if "autoscale" in attrs:
        return {"autoscale": attrs["autoscale"]}
    return {"num_workers": attrs.get("num_workers", 0)}


# -- documents -------------------------------------------------------------------------------------------
def _details(ws: Workspace, record: dict) -> dict:
    attrs = record["attrs"]
    doc: dict[str, Any] = {k: v for k, v in attrs.items() if k != "apply_policy_default_values"}
    doc["cluster_id"] = record["cluster_id"]
    doc["creator_user_name"] = record["creator_user_name"]
    doc["cluster_source"] = record["cluster_source"]
    doc["default_tags"] = {
        "Vendor": "Databricks",
        "Creator": record["creator_user_name"],
        "ClusterName": attrs.get("cluster_name", ""),
        "ClusterId": record["cluster_id"],
        **record["extra_default_tags"],
    }
    if record["pinned"]:  # the pinning user's id, as the service names it (clusters pinned before: the admin's)
        doc["pinned_by_user_name"] = record.get("pinned_by") or _caller_id(ws)
    doc["state"] = record["state"]
    doc["state_message"] = record["state_message"]
    for key in ("start_time", "terminated_time", "last_restarted_time", "last_state_loss_time"):
        if record.get(key) is not None:
            doc[key] = record[key]
    if record["state"] in ("TERMINATING", "TERMINATED") and record.get("termination_reason"):
        doc["termination_reason"] = record["termination_reason"]
    if record.get("spark_context_id") is not None:
        doc["spark_context_id"] = record["spark_context_id"]
    doc["jdbc_port"] = 10000
    if record["state"] in _WITH_NODES:
        doc["driver"] = record["driver"]
        if record["executors"]:
            doc["executors"] = record["executors"]
        doc.update(_capacity(attrs, record["current_workers"]))
    doc["spec"] = record["spec"]
    return doc


def _capacity(attrs: dict, workers: int) -> dict:
    worker = node_type(attrs["node_type_id"]) or {}
    driver = node_type(attrs.get("driver_node_type_id", attrs["node_type_id"])) or worker
    memory = driver.get("memory_mb", 0) + workers * worker.get("memory_mb", 0)
    cores = driver.get("num_cores", 0.0) + workers * worker.get("num_cores", 0.0)
    return {"cluster_memory_mb": memory, "cluster_cores": cores}


def _load(ws: Workspace, cluster_id: Any) -> dict:
    if not cluster_id:
        raise invalid("Missing required field: cluster_id")
    record = get_cluster(ws, str(cluster_id))
    if record is None:
        raise cluster_not_found(str(cluster_id))
    return record


def _both(op: str) -> tuple[str, str]:
    return (f"/api/2.0/clusters/{op}", f"/api/2.1/clusters/{op}")


def _unexpected_state(record: dict) -> ApiError:
    return invalid_state(f"Cluster {record['cluster_id']} is in unexpected state {record['state'].capitalize()}.")


# -- HTTP: read ------------------------------------------------------------------------------------------
@routes.get(*_both("get"))
def get(ws: Workspace, req: Request) -> dict:
    return _details(ws, _load(ws, req.param("cluster_id")))


@routes.get(*_both("list"))
def list_clusters(ws: Workspace, req: Request) -> dict:
    """All listable clusters, filtered and sorted; token pages only when page_size/page_token is given."""
    now = ws.now_ms()
    records = [r for cid in list(ws.table(TABLE)) if (r := get_cluster(ws, cid)) is not None]
    records = [r for r in records if _listed(r, now)]
    records = _filtered(req, records)
    records = _sorted(req, records)
    page_size = req.int_arg("page_size")
    token = req.arg("page_token")
    body: dict[str, Any] = {}
    if page_size is None and not token:
        page = records
    else:
        if page_size is not None and page_size < 0:
            raise invalid("page_size must be non-negative")
        offset, size = _decode_token(token) if token else (0, 0)
        size = page_size or size or 100
        page = records[offset : offset + size]
        if offset + size < len(records):
            body["next_page_token"] = _encode_token(offset + size, size)
        if offset > 0:
            body["prev_page_token"] = _encode_token(max(0, offset - size), size)
    if page:
        body["clusters"] = [_details(ws, r) for r in page]
    return body


def _listed(record: dict, now: int) -> bool:
    ended = record.get("terminated_time")
    if record["state"] != "TERMINATED" or record["pinned"] or not ended:
        return True
    return now - ended <= _LIST_RETENTION_MS


def _values(req: Request, name: str, allowed: tuple[str, ...]) -> list[str]:
    values = [v for raw in req.args(name) for v in raw.split(",") if v]
    for value in values:
        if value not in allowed:
            raise invalid(f"Invalid value for {name}: {value}")
    return values


def _filtered(req: Request, records: list[dict]) -> list[dict]:
    states = _values(req, "filter_by.cluster_states", STATES)
    sources = _values(req, "filter_by.cluster_sources", SOURCES)
    pinned = req.arg("filter_by.is_pinned")
    policy_id = req.arg("filter_by.policy_id")
    if states:
        records = [r for r in records if r["state"] in states]
    if sources:
        records = [r for r in records if r["cluster_source"] in sources]
    if pinned:
        if pinned.lower() not in ("true", "false", "1", "0"):
            raise invalid(f"Invalid value for filter_by.is_pinned: {pinned}")
        want = pinned.lower() in ("true", "1")
        records = [r for r in records if r["pinned"] == want]
    if policy_id:
        records = [r for r in records if r["attrs"].get("policy_id") == policy_id]
    return records


def _sorted(req: Request, records: list[dict]) -> list[dict]:
    field = req.arg("sort_by.field") or "DEFAULT"
    direction = req.arg("sort_by.direction") or "ASC"
    if field not in ("DEFAULT", "CLUSTER_NAME"):
        raise invalid(f"Invalid value for sort_by.field: {field}")
    if direction not in ("ASC", "DESC"):
        raise invalid(f"Invalid value for sort_by.direction: {direction}")
    if field == "CLUSTER_NAME":

        def key(r: dict) -> tuple:
            return (r["attrs"].get("cluster_name", "").lower(), r["cluster_id"])
    else:
        # Active clusters first (newest first), then terminated ones, most recently terminated first.
        def key(r: dict) -> tuple:
            if r["state"] in ("TERMINATING", "TERMINATED"):
                return (1, -(r.get("terminated_time") or r["_created_ms"]), r["cluster_id"])
            return (0, -r["_created_ms"], r["cluster_id"])

    return sorted(records, key=key, reverse=direction == "DESC")


def _encode_token(offset: int, size: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset, "size": size}).encode()).decode()


def _decode_token(token: str) -> tuple[int, int]:
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        offset, size = int(data["offset"]), int(data["size"])
    except (ValueError, KeyError, TypeError):
        raise invalid(f"Invalid page token: {token}") from None
    if offset < 0 or size < 0:
        raise invalid(f"Invalid page token: {token}")
    return offset, size


@routes.get(*_both("spark-versions"))
def spark_versions(ws: Workspace, req: Request) -> dict:
    return {"versions": [dict(v) for v in SPARK_VERSIONS]}


@routes.get(*_both("list-node-types"))
def list_node_types(ws: Workspace, req: Request) -> dict:
    return {"node_types": [dict(n, display_order=i) for i, n in enumerate(NODE_TYPES)]}


@routes.get(*_both("list-zones"))
def list_zones(ws: Workspace, req: Request) -> dict:
    return {"zones": list(ZONES), "default_zone": DEFAULT_ZONE}


# -- HTTP: lifecycle -------------------------------------------------------------------------------------
@routes.post(*_both("create"))
def create(ws: Workspace, req: Request) -> dict:
    body = dict(req.json)
    clone = body.pop("clone_from", None)
    if clone:
        source = _load(ws, clone.get("source_cluster_id") if isinstance(clone, dict) else None)
        body = {**source["spec"], **body}
    return {"cluster_id": create_cluster(ws, body)}


@routes.post(*_both("start"))
def start(ws: Workspace, req: Request) -> dict:
    """TERMINATED → PENDING → RUNNING; any other state is a no-op, job clusters cannot be started."""
    record = _load(ws, req.param("cluster_id"))
    if record["cluster_source"] == "JOB":
        raise invalid(f"Cluster {record['cluster_id']} was launched by a job run and cannot be started")
    if record["state"] != "TERMINATED":
        return {}
    now = ws.now_ms()
    for key in ("termination_reason", "terminated_time"):
        record.pop(key, None)
    record["start_time"] = now
    _set_state(record, "PENDING")
    _event(ws, record["cluster_id"], "STARTING", {"user": ws.admin_user}, now)
    record["_pending"] = {"state": "RUNNING", "at": now + _delay_ms(ws, "start"), "kind": "start"}
    return {}


@routes.post(*_both("restart"))
def restart(ws: Workspace, req: Request) -> dict:
    """RUNNING → RESTARTING → RUNNING with a new Spark context; other states are a no-op."""
    record = _load(ws, req.param("cluster_id"))
    if record["state"] != "RUNNING":
        return {}
    _restart(ws, record, req.param("restart_user") or ws.admin_user)
    return {}


def _restart(ws: Workspace, record: dict, user: str) -> None:
    now = ws.now_ms()
    _set_state(record, "RESTARTING")
    _event(ws, record["cluster_id"], "RESTARTING", {"user": user}, now)
    record["_pending"] = {"state": "RUNNING", "at": now + _delay_ms(ws, "restart"), "kind": "restart"}


@routes.post(*_both("resize"))
def resize(ws: Workspace, req: Request) -> dict:
    record = _load(ws, req.param("cluster_id"))
    if record["state"] not in _WITH_NODES:
        raise _unexpected_state(record)
    num_workers, autoscale = req.param("num_workers"), req.param("autoscale")
    if (num_workers is None) == (autoscale is None):
        raise invalid("Exactly one of num_workers or autoscale must be specified")
    size = {"num_workers": num_workers} if autoscale is None else {"autoscale": autoscale}
    spec = {k: v for k, v in record["spec"].items() if k not in ("num_workers", "autoscale")}
    user_spec, attrs = _resolve_spec(ws, {**spec, **size}, record["cluster_source"])
    record["spec"], record["attrs"] = user_spec, attrs
    now = ws.now_ms()
    target = _target_workers(attrs)
    details = {
        "current_num_workers": record["current_workers"],
        "target_num_workers": target,
        "cause": "USER_REQUEST",
        "user": ws.admin_user,
    }
    _event(ws, record["cluster_id"], "RESIZING", details, now)
    _set_state(record, "RESIZING")
    record["_pending"] = {"state": "RUNNING", "at": now + _delay_ms(ws, "resize"), "kind": "resize"}
    return {}


@routes.post(*_both("edit"))
def edit(ws: Workspace, req: Request) -> dict:
    """Full replace of the spec; RUNNING clusters restart, TERMINATED ones stay terminated."""
    record = _load(ws, req.param("cluster_id"))
    req.require("spark_version")
    _replace_spec(ws, record, dict(req.json))
    return {}


@routes.post("/api/2.1/clusters/update")
def update(ws: Workspace, req: Request) -> dict:
    """Partial update: fields named in update_mask are taken from `cluster` (absent there → removed)."""
    record = _load(ws, req.param("cluster_id"))
    mask = req.require("update_mask")
    cluster = req.param("cluster") or {}
    if not isinstance(mask, str) or not isinstance(cluster, dict):
        raise invalid("update_mask must be a comma-separated string and cluster an object")
    spec = json.loads(json.dumps(record["spec"]))
    for path in (p.strip() for p in mask.split(",") if p.strip()):
        if path == "*":
            spec = {k: v for k, v in cluster.items() if k in SPEC_FIELDS}
            continue
        top = path.split(".")[0]
        if top not in SPEC_FIELDS:
            raise invalid(f"Invalid update_mask field: {path}")
        _apply_mask_path(spec, cluster, path.split("."))
    _replace_spec(ws, record, spec)
    return {}


def _apply_mask_path(spec: dict, source: dict, segments: list[str]) -> None:
    head, rest = segments[0], segments[1:]
    if not rest:
        if head in source:
            spec[head] = source[head]
        else:
            spec.pop(head, None)
        return
    child_source = source.get(head) if isinstance(source.get(head), dict) else {}
    child = spec.setdefault(head, {})
    if isinstance(child, dict):
        _apply_mask_path(child, child_source, rest)


def _replace_spec(ws: Workspace, record: dict, body: dict) -> None:
    if record["cluster_source"] == "JOB":
        raise invalid(f"Cluster {record['cluster_id']} was launched by a job run and cannot be edited")
    if record["state"] not in ("RUNNING", "TERMINATED"):
        raise _unexpected_state(record)
    previous = record["attrs"]
    user_spec, attrs = _resolve_spec(ws, body, record["cluster_source"])
    record["spec"], record["attrs"] = user_spec, attrs
    details = {
        "attributes": _public(attrs),
        "previous_attributes": _public(previous),
        "cluster_size": _size(attrs),
        "previous_cluster_size": _size(previous),
        "user": ws.admin_user,
    }
    _event(ws, record["cluster_id"], "EDITED", details, ws.now_ms())
    if record["state"] == "RUNNING":
        _restart(ws, record, ws.admin_user)


def _public(attrs: dict) -> dict:
    # ClusterAttributes carry no size: the event reports it separately as cluster_size.
    return {k: v for k, v in attrs.items() if k not in ("apply_policy_default_values", "num_workers", "autoscale")}


@routes.post(*_both("delete"))
def delete(ws: Workspace, req: Request) -> dict:
    """Terminate: TERMINATING → TERMINATED; the cluster stays visible."""
    record = _load(ws, req.param("cluster_id"))
    terminate_cluster(ws, record["cluster_id"])
    return {}


@routes.post(*_both("permanent-delete"))
def permanent_delete(ws: Workspace, req: Request) -> dict:
    record = _load(ws, req.param("cluster_id"))
    cluster_id = record["cluster_id"]
    del ws.table(TABLE)[cluster_id]
    ws.table(EVENTS).pop(cluster_id, None)
    permissions.forget(ws, "clusters", cluster_id)
    return {}


@routes.post(*_both("pin"))
def pin(ws: Workspace, req: Request) -> dict:
    return _set_pinned(ws, req, True)


@routes.post(*_both("unpin"))
def unpin(ws: Workspace, req: Request) -> dict:
    return _set_pinned(ws, req, False)


def _set_pinned(ws: Workspace, req: Request, pinned: bool) -> dict:
    record = _load(ws, req.param("cluster_id"))
    if record["pinned"] != pinned:
        record["pinned"] = pinned
        record["pinned_by"] = _caller_id(ws) if pinned else None
        _event(ws, record["cluster_id"], "PINNED" if pinned else "UNPINNED", {"user": ws.admin_user}, ws.now_ms())
    return {}


def _caller_id(ws: Workspace) -> str | None:
    """The SCIM id of the caller (the admin user): a pinned cluster names its pinner by id, not by name."""
    user = scim.find_user(ws, ws.admin_user)
    return user["id"] if user else None


@routes.post(*_both("change-owner"))
def change_owner(ws: Workspace, req: Request) -> dict:
    """Admins only, on a TERMINATED cluster; the new owner is a user name or an SP application id."""
    record = _load(ws, req.param("cluster_id"))
    owner = req.require("owner_username")
    exists = permissions.principal_exists(ws, "user_name", owner) or permissions.principal_exists(
        ws, "service_principal_name", owner
    )
    if not exists:
        raise invalid(f"User {owner} does not exist")
    if record["state"] != "TERMINATED":
        raise _unexpected_state(record)
    previous = record["creator_user_name"]
    record["creator_user_name"] = owner
    acl = [e for e in permissions.direct_acl(ws, "clusters", record["cluster_id"]) if e["principal"] != previous]
    kind = "user_name" if "@" in owner else "service_principal_name"
    acl.insert(0, {"principal_type": kind, "principal": owner, "level": "CAN_MANAGE"})
    ws.table("acls")[("clusters", record["cluster_id"])] = acl
    return {}


# -- HTTP: events ----------------------------------------------------------------------------------------
@routes.post(*_both("events"))
def events(ws: Workspace, req: Request) -> dict:
    """Events newest first by default; legacy limit/offset paging or page_size/page_token paging."""
    body = req.json
    record = _load(ws, body.get("cluster_id"))
    order = body.get("order") or "DESC"
    if order not in ("ASC", "DESC"):
        raise invalid(f"Invalid order: {order}")
    types = body.get("event_types") or []
    for event_type in types:
        if event_type not in EVENT_TYPES:
            raise invalid(f"Invalid event type: {event_type}")
    start_time, end_time = body.get("start_time"), body.get("end_time")
    matching = [
        e
        for e in ws.table(EVENTS).get(record["cluster_id"], [])
        if (not types or e["type"] in types)
        and (start_time is None or e["timestamp"] >= start_time)
        and (end_time is None or e["timestamp"] <= end_time)
    ]
    matching.sort(key=lambda e: e["timestamp"])  # stable: same-millisecond events keep their order
    if order == "DESC":
        matching.reverse()
    filters = {k: body[k] for k in ("cluster_id", "start_time", "end_time", "order", "event_types") if k in body}
    if body.get("page_size") is not None or body.get("page_token"):
        return _token_page(matching, filters, body)
    return _offset_page(matching, filters, body)


def _offset_page(matching: list[dict], filters: dict, body: dict) -> dict:
    limit, offset = body.get("limit", _EVENTS_PAGE), body.get("offset", 0)
    if not isinstance(limit, int) or not 1 <= limit <= 500:
        raise invalid("limit must be between 1 and 500")
    if not isinstance(offset, int) or offset < 0:
        raise invalid("offset must be non-negative")
    result: dict[str, Any] = {"total_count": len(matching)}
    page = matching[offset : offset + limit]
    if page:
        result["events"] = page
    if offset + limit < len(matching):
        result["next_page"] = {**filters, "offset": offset + limit, "limit": limit}
    return result


def _token_page(matching: list[dict], filters: dict, body: dict) -> dict:
    page_size = body.get("page_size") or 0
    if not isinstance(page_size, int) or not 0 <= page_size <= 500:
        raise invalid("page_size must be between 0 and 500")
    token = body.get("page_token")
    offset, size = _decode_token(token) if token else (0, 0)
    size = page_size or size or _EVENTS_PAGE
    result: dict[str, Any] = {"total_count": len(matching)}
    page = matching[offset : offset + size]
    if page:
        result["events"] = page
    if offset + size < len(matching):
        next_token = _encode_token(offset + size, size)
        result["next_page_token"] = next_token
        result["next_page"] = {**filters, "page_size": size, "page_token": next_token}
    if offset > 0:
        result["prev_page_token"] = _encode_token(max(0, offset - size), size)
    return result
