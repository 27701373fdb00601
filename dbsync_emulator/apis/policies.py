"""Cluster Policies API 2.0 (`/api/2.0/policies/clusters/*`) and Policy Families (`/api/2.0/policy-families`).

Policies live in table "cluster_policies" keyed by policy_id. `definition` is kept as the exact JSON
string the client sent; family-based policies store the family definition merged with the overrides.
A new workspace has the built-in default policies, one per family (`init`). `enforce(...)` applies a
policy to a cluster spec the way the clusters service does: fixed values are set or checked, limits are
checked, defaults are applied when `apply_policy_default_values` is true.
"""

from __future__ import annotations

import base64
import json
import random
import re
from typing import Any

from dbsync_emulator.apis import permissions
from dbsync_emulator.errors import invalid, not_found
from dbsync_emulator.router import Request, Routes
from dbsync_emulator.state import Workspace

routes = Routes()

TABLE = "cluster_policies"

_HIDDEN_FIXED = {"type": "fixed", "hidden": True}
FAMILIES: tuple[dict[str, Any], ...] = (
    {
        "policy_family_id": "personal-vm",
        "name": "Personal Compute",
        "description": "Use with small-to-medium data or libraries like pandas and scikit-learn. "
        "Spark runs in local mode.",
        "definition": {
            "node_type_id": {
                "type": "allowlist",
                "values": ["m5d.large", "m5d.xlarge", "i3.xlarge", "r5d.large", "r5d.xlarge", "c5d.xlarge"],
                "defaultValue": "m5d.large",
            },
            "spark_version": {"type": "unlimited", "defaultValue": "auto:latest-ml"},
            "runtime_engine": {"type": "unlimited", "defaultValue": "STANDARD", "isOptional": True},
            "num_workers": {**_HIDDEN_FIXED, "value": 0},
            "spark_conf.spark.databricks.cluster.profile": {**_HIDDEN_FIXED, "value": "singleNode"},
            "spark_conf.spark.master": {**_HIDDEN_FIXED, "value": "local[*, 4]"},
            "custom_tags.ResourceClass": {**_HIDDEN_FIXED, "value": "SingleNode"},
            "data_security_mode": {
                "type": "allowlist",
                "values": ["SINGLE_USER", "LEGACY_SINGLE_USER", "LEGACY_SINGLE_USER_STANDARD"],
                "defaultValue": "SINGLE_USER",
                "isOptional": True,
                "hidden": True,
            },
            "driver_instance_pool_id": {"type": "forbidden", "hidden": True},
            "instance_pool_id": {"type": "forbidden", "hidden": True},
            "cluster_type": {"type": "fixed", "value": "all-purpose"},
        },
    },
    {
        "policy_family_id": "shared-compute",
        "name": "Shared Compute",
        "description": "Use for multiple users sharing the same compute with isolation between users.",
        "definition": {
            "data_security_mode": {**_HIDDEN_FIXED, "value": "USER_ISOLATION"},
            "spark_version": {"type": "unlimited", "defaultValue": "auto:latest-lts"},
            "autotermination_minutes": {"type": "unlimited", "defaultValue": 120, "isOptional": True},
            "cluster_type": {"type": "fixed", "value": "all-purpose"},
        },
    },
    {
        "policy_family_id": "power-user",
        "name": "Power User Compute",
        "description": "Use for larger workloads that require multiple nodes and autoscaling.",
        "definition": {
            "data_security_mode": {
                "type": "allowlist",
                "values": ["SINGLE_USER", "USER_ISOLATION"],
                "defaultValue": "SINGLE_USER",
                "isOptional": True,
            },
            "spark_version": {"type": "unlimited", "defaultValue": "auto:latest-ml"},
            "autoscale.max_workers": {"type": "range", "maxValue": 10, "defaultValue": 4, "isOptional": True},
            "autotermination_minutes": {
                "type": "range",
                "maxValue": 4320,
                "defaultValue": 120,
                "isOptional": True,
            },
            "cluster_type": {"type": "fixed", "value": "all-purpose"},
        },
    },
    {
        "policy_family_id": "job-cluster",
        "name": "Job Compute",
        "description": "Use for running scheduled workflows and automated jobs.",
        "definition": {
            "cluster_type": {"type": "fixed", "value": "job"},
            "spark_version": {"type": "unlimited", "defaultValue": "auto:latest-lts"},
            "num_workers": {"type": "unlimited", "defaultValue": 4, "isOptional": True},
            "data_security_mode": {
                "type": "allowlist",
                "values": ["SINGLE_USER", "USER_ISOLATION", "NONE"],
                "defaultValue": "SINGLE_USER",
                "isOptional": True,
            },
        },
    },
    {
        "policy_family_id": "shared-data-science",
        "name": "Legacy Shared Compute",
        "description": "Use for multiple users sharing compute without Unity Catalog isolation.",
        "definition": {
            "data_security_mode": {**_HIDDEN_FIXED, "value": "NONE"},
            "spark_version": {"type": "unlimited", "defaultValue": "auto:latest-lts"},
            "autotermination_minutes": {"type": "unlimited", "defaultValue": 120, "isOptional": True},
            "cluster_type": {"type": "fixed", "value": "all-purpose"},
        },
    },
)
_FAMILIES_BY_ID = {f["policy_family_id"]: f for f in FAMILIES}
# Attributes whose remaining path is a map key that may itself contain dots (spark_conf.spark.master).
_MAP_ATTRIBUTES = ("spark_conf", "spark_env_vars", "custom_tags")
# Attributes that exist only in policies; computed from the cluster, or not modelled.
_VIRTUAL = ("cluster_type", "dbus_per_hour")
_LIMITING = ("allowlist", "blocklist", "regex", "range")
_WRITABLE = (
    "name",
    "definition",
    "description",
    "max_clusters_per_user",
    "policy_family_id",
    "policy_family_definition_overrides",
    "libraries",
)


def _exists(ws: Workspace, policy_id: str) -> bool:
    return policy_id in ws.table(TABLE)


permissions.register("cluster-policies", "cluster-policy", ("CAN_USE",), _exists)


def init(ws: Workspace) -> None:
    """A new workspace has one default policy per policy family (is_default, no creator)."""
    for family in FAMILIES:
        policy_id = _new_policy_id(ws)
        ws.table(TABLE)[policy_id] = {
            "policy_id": policy_id,
            "name": family["name"],
            "description": family["description"],
            "definition": _family_definition(family["policy_family_id"], None),
            "policy_family_id": family["policy_family_id"],
            "created_at_timestamp": ws.now_ms(),
            "is_default": True,
        }


# -- internal API -------------------------------------------------------------------------------------
def policy_not_found(policy_id: str) -> Exception:
    """The error the service answers for an unknown policy id."""
    return not_found(f"Can't find a cluster policy with id: {policy_id}")


def get_policy(ws: Workspace, policy_id: str) -> dict | None:
    """The stored policy record or None."""
    return ws.table(TABLE).get(policy_id)


def create_policy(ws: Workspace, spec: dict) -> str:
    """Validate `spec` like POST /policies/clusters/create and store the policy; returns its id."""
    fields = _validated(ws, spec, policy_id=None)
    policy_id = _new_policy_id(ws)
    ws.table(TABLE)[policy_id] = {
        "policy_id": policy_id,
        **fields,
        "creator_user_name": ws.admin_user,
        "created_at_timestamp": ws.now_ms(),
        "is_default": False,
    }
    return policy_id


def _validated(ws: Workspace, spec: dict, policy_id: str | None) -> dict:
    """The writable fields of a create/edit request, checked; `definition` filled from the family."""
    fields = {k: spec[k] for k in _WRITABLE if spec.get(k) not in (None, "")}
    name = fields.get("name")
    if not name:
        raise invalid("Missing required field: name")
    if not isinstance(name, str) or len(name) > 100:
        raise invalid("Cluster policy name must be a string of 1 to 100 characters")
    for other in ws.table(TABLE).values():
        if other["name"] == name and other["policy_id"] != policy_id:
            raise invalid(f"Cluster Policy with name {name} already exists")
    family_id = fields.get("policy_family_id")
    overrides = fields.get("policy_family_definition_overrides")
    if family_id is not None:
        if "definition" in fields:
            raise invalid("policy_family_id and definition cannot be used together")
        if family_id not in _FAMILIES_BY_ID:
            raise invalid(f"Policy family {family_id} does not exist")
        _parse_json(overrides, "policy_family_definition_overrides", require_object=True)
        fields["definition"] = _family_definition(family_id, overrides)
    elif overrides is not None:
        raise invalid("policy_family_definition_overrides can only be used together with policy_family_id")
    else:
        # The service only checks that the definition parses; a non-object fails later, at cluster create.
        _parse_json(fields.get("definition"), "definition", require_object=False)
        fields.setdefault("definition", "{}")
    limit = fields.get("max_clusters_per_user")
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
        raise invalid("max_clusters_per_user must be a positive integer")
    if "libraries" in fields and not isinstance(fields["libraries"], list):
        raise invalid("libraries must be a list")
    return fields


def _parse_json(text: Any, field: str, require_object: bool) -> Any:
    if text is None:
        return {}
    if not isinstance(text, str):
        raise invalid(f"{field} must be a JSON document passed as a string")
    try:
        value = json.loads(text)
    except ValueError as err:
        raise invalid(f"Invalid JSON in {field}: {err}") from None
    if require_object and not isinstance(value, dict):
        raise invalid(f"{field} must be a JSON object")
    return value


def _family_definition(family_id: str, overrides: str | None) -> str:
    merged = dict(_FAMILIES_BY_ID[family_id]["definition"])
    if overrides:
        merged.update(json.loads(overrides))
    return json.dumps(merged)


def _new_policy_id(ws: Workspace) -> str:
    # 16 upper-case hex digits like the service; seeded by workspace id so workspaces never collide.
    seq = ws.next_id("cluster_policy_ids")
    rng = random.Random(f"policy:{ws.workspace_id}:{seq}")
    return "".join(rng.choice("0123456789ABCDEF") for _ in range(16))


# -- enforcement (called by the clusters module) ---------------------------------------------------------
def enforce(ws: Workspace, policy_id: str, spec: dict, cluster_type: str, apply_defaults: bool) -> dict:
    """`spec` with the policy applied: fixed values set, defaults set when asked; violations → 400."""
    policy = get_policy(ws, policy_id)
    if policy is None:
        raise policy_not_found(policy_id)
    try:
        rules = json.loads(policy["definition"])
    except ValueError:
        rules = None
    if not isinstance(rules, dict):
        raise invalid(
            f"Requests for the policy {policy_id} cannot be satisfied due to the malformed policy "
            "definition. Please contact your administrator to correct the policy definition."
        )
    result = json.loads(json.dumps(spec))
    violations: list[str] = []
    for path, rule in rules.items():
        if not isinstance(rule, dict) or _not_applicable(path, result):
            continue
        if path in _VIRTUAL:
            if path == "cluster_type":
                _check(path, rule, True, cluster_type, violations)
            continue
        found, value = _lookup(result, path)
        if found:
            _check(path, rule, found, _resolve(path, value), violations)
        elif rule.get("type") == "fixed":
            _assign(result, path, _resolve(path, rule.get("value")))
        elif apply_defaults and "defaultValue" in rule:
            _assign(result, path, _resolve(path, rule["defaultValue"]))
        elif rule.get("type") in _LIMITING and not rule.get("isOptional", False):
            violations.append(f"Validation failed for {path}, the value must be present")
    if violations:
        raise invalid("; ".join(violations))
    return result


def _not_applicable(path: str, spec: dict) -> bool:
    # A fixed-size cluster has no autoscale.* attributes to check, and an autoscaling one no num_workers.
    if path == "num_workers":
        return "autoscale" in spec
    if path.startswith("autoscale."):
        return "autoscale" not in spec and "num_workers" in spec
    return False


def _resolve(path: str, value: Any) -> Any:
    if path == "spark_version" and isinstance(value, str) and value.startswith("auto:"):
        from dbsync_emulator.apis import clusters

        return clusters.resolve_spark_version(value)
    return value


def _check(path: str, rule: dict, found: bool, value: Any, violations: list[str]) -> None:
    kind = rule.get("type")
    shown = json.dumps(value)
    if kind == "fixed":
        expected = _resolve(path, rule.get("value"))
        if not _same(value, expected):
            violations.append(f"Validation failed for {path}, the value must be {expected} (is {shown})")
    elif kind == "forbidden":
        violations.append(f"Validation failed for {path}, the attribute is forbidden by the policy")
    elif kind == "allowlist" and not any(_same(value, v) for v in rule.get("values", [])):
        violations.append(f"Validation failed for {path}, the value must be one of {rule.get('values')}")
    elif kind == "blocklist" and any(_same(value, v) for v in rule.get("values", [])):
        violations.append(f"Validation failed for {path}, the value must not be one of {rule.get('values')}")
    elif kind == "regex" and not re.fullmatch(str(rule.get("pattern", "")), str(value)):
        violations.append(f"Validation failed for {path}, the value must match {rule.get('pattern')} (is {shown})")
    elif kind == "range":
        _check_range(path, rule, value, violations)


def _check_range(path: str, rule: dict, value: Any, violations: list[str]) -> None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        violations.append(f"Validation failed for {path}, the value must be a number (is {json.dumps(value)})")
        return
    if "minValue" in rule and number < float(rule["minValue"]):
        violations.append(f"Validation failed for {path}, the value must be at least {rule['minValue']}")
    if "maxValue" in rule and number > float(rule["maxValue"]):
        violations.append(f"Validation failed for {path}, the value must be at most {rule['maxValue']}")


def _same(actual: Any, expected: Any) -> bool:
    # Policies compare loosely: "true" matches true, "0" matches 0.
    return actual == expected or str(actual).lower() == str(expected).lower()


def _lookup(spec: dict, path: str) -> tuple[bool, Any]:
    head, _, rest = path.partition(".")
    if head in _MAP_ATTRIBUTES and rest:
        mapping = spec.get(head)
        return (isinstance(mapping, dict) and rest in mapping), (mapping or {}).get(rest)
    node: Any = spec
    for segment in path.split("."):
        if isinstance(node, dict) and segment in node:
            node = node[segment]
        elif isinstance(node, list) and segment.isdigit() and int(segment) < len(node):
            node = node[int(segment)]
        else:
            return False, None
    return True, node


def _assign(spec: dict, path: str, value: Any) -> None:
    head, _, rest = path.partition(".")
    if head in _MAP_ATTRIBUTES and rest:
        spec.setdefault(head, {})[rest] = value
        return
    segments = path.split(".")
    node: Any = spec
    for segment in segments[:-1]:
        if segment.isdigit() or segment == "*" or not isinstance(node, dict):
            return  # list elements are never created from a policy
        node = node.setdefault(segment, {})
    if isinstance(node, dict):
        node[segments[-1]] = value


# -- HTTP: policies --------------------------------------------------------------------------------------
def _load(ws: Workspace, policy_id: Any) -> dict:
    if not policy_id:
        raise invalid("Missing required field: policy_id")
    policy = get_policy(ws, str(policy_id))
    if policy is None:
        raise policy_not_found(str(policy_id))
    return policy


@routes.get("/api/2.0/policies/clusters/list")
def list_policies(ws: Workspace, req: Request) -> dict:
    column = req.arg("sort_column") or "POLICY_CREATION_TIME"
    order = req.arg("sort_order") or "ASC"
    if column not in ("POLICY_CREATION_TIME", "POLICY_NAME"):
        raise invalid(f"Invalid sort_column: {column}")
    if order not in ("ASC", "DESC"):
        raise invalid(f"Invalid sort_order: {order}")
    policies = list(ws.table(TABLE).values())
    if column == "POLICY_NAME":
        policies.sort(key=lambda p: p["name"].lower(), reverse=order == "DESC")
    else:
        policies.sort(key=lambda p: p["created_at_timestamp"], reverse=order == "DESC")
    if not policies:
        return {"total_count": 0}
    return {"policies": [dict(p) for p in policies], "total_count": len(policies)}


@routes.get("/api/2.0/policies/clusters/get")
def get(ws: Workspace, req: Request) -> dict:
    return dict(_load(ws, req.param("policy_id")))


@routes.post("/api/2.0/policies/clusters/create")
def create(ws: Workspace, req: Request) -> dict:
    return {"policy_id": create_policy(ws, req.json)}


@routes.post("/api/2.0/policies/clusters/edit")
def edit(ws: Workspace, req: Request) -> dict:
    """Full replace of the writable fields; id, creator, creation time and is_default are kept."""
    policy = _load(ws, req.param("policy_id"))
    fields = _validated(ws, req.json, policy_id=policy["policy_id"])
    if policy.get("is_default") and fields.get("policy_family_id") != policy.get("policy_family_id"):
        raise invalid(
            "Changing policy_family_id is forbidden for default cluster policies. "
            "Clone this policy to change the policy family."
        )
    # Built-in policies have no creator; keep only what the record has.
    kept = {
        k: policy[k] for k in ("policy_id", "creator_user_name", "created_at_timestamp", "is_default") if k in policy
    }
    ws.table(TABLE)[policy["policy_id"]] = {**kept, **fields}
    return {}


@routes.post("/api/2.0/policies/clusters/delete")
def delete(ws: Workspace, req: Request) -> dict:
    policy = _load(ws, req.param("policy_id"))
    if policy.get("is_default"):
        raise invalid(f"Default cluster policy {policy['name']} cannot be deleted")
    del ws.table(TABLE)[policy["policy_id"]]
    permissions.forget(ws, "cluster-policies", policy["policy_id"])
    return {}


# -- HTTP: policy families -------------------------------------------------------------------------------
def _family_document(family: dict) -> dict:
    return {
        "policy_family_id": family["policy_family_id"],
        "name": family["name"],
        "description": family["description"],
        "definition": json.dumps(family["definition"]),
    }


@routes.get("/api/2.0/policy-families")
def list_families(ws: Workspace, req: Request) -> dict:
    max_results = req.int_arg("max_results", 20) or 20
    if max_results < 1:
        raise invalid("max_results must be positive")
    offset = _decode_token(req.arg("page_token"))
    page = FAMILIES[offset : offset + max_results]
    body: dict[str, Any] = {}
    if page:
        body["policy_families"] = [_family_document(f) for f in page]
    if offset + max_results < len(FAMILIES):
        body["next_page_token"] = _encode_token(offset + max_results)
    return body


@routes.get("/api/2.0/policy-families/{policy_family_id}")
def get_family(ws: Workspace, req: Request) -> dict:
    family = _FAMILIES_BY_ID.get(req.path_params["policy_family_id"])
    if family is None:
        raise not_found(f"Policy family {req.path_params['policy_family_id']} does not exist")
    return _family_document(family)


def _encode_token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def _decode_token(token: str | None) -> int:
    if not token:
        return 0
    try:
        offset = json.loads(base64.urlsafe_b64decode(token.encode()))["offset"]
    except (ValueError, KeyError, TypeError):
        raise invalid(f"Invalid page_token: {token}") from None
    if not isinstance(offset, int) or offset < 0:
        raise invalid(f"Invalid page_token: {token}")
    return offset
