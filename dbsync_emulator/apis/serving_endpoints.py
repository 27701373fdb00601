"""Model serving endpoints: `/api/2.0/serving-endpoints` (create, get, list, delete, config, tags,
rate limits, AI gateway). Shapes follow databricks-sdk `service/serving.py` (`ServingEndpointsAPI`).

Records live in table "serving_endpoints" (name → record). A config is deployed on the emulator clock:
create or `PUT /{name}/config` puts it in `pending_config` (state.config_update IN_PROGRESS, served
entities DEPLOYMENT_CREATING) and after the deploy time (the cluster start time of the timing profile)
it becomes `config` (NOT_UPDATING, ready READY). The SDK's `*_and_wait` calls poll for NOT_UPDATING.

- name: letters, digits, dashes and underscores, unique (409 RESOURCE_ALREADY_EXISTS).
- served entities (or the older served models, not both; at most ten): a workspace Model Registry model
  must exist with that version in the emulator's MLflow registry (404 RESOURCE_DOES_NOT_EXIST otherwise,
  checked before anything is created, as the service validates the config on create and update);
  Unity Catalog models (three-part names) are refused, there is no UC model registry here; an
  `external_model` entity needs no version. `workload_size` Small/Medium/Large, `workload_type` from the
  SDK's enum, `scale_to_zero_enabled` (default false). `environment_vars` values may be secret references
  `{{secrets/<scope>/<key>}}`: the scope must exist; GET answers the reference, never the value.
- traffic_config: routes name served entities and sum to 100; one entity gets 100% by default.
- config update while one is in progress: 409 RESOURCE_CONFLICT.
- tags PATCH (`add_tags`, `delete_tags`), ai-gateway PUT (stored, answered in GET's `ai_gateway`),
  rate-limits PUT (the deprecated endpoint limits: stored, answered by the PUT only, as
  `ServingEndpointDetailed` has no `rate_limits`).
Permissions: type "serving-endpoints" keyed by the endpoint `id` (CAN_VIEW, CAN_QUERY, CAN_MANAGE).

Not modelled: querying, logs, metrics, provisioned throughput (`/pt`) endpoints, foundation models,
inference tables being written, failed deployments, the endpoint's URL serving anything.
"""

from __future__ import annotations

import re
from typing import Any

from dbsync_emulator.apis import mlflow, permissions, secrets
from dbsync_emulator.apis._paging import new_uuid
from dbsync_emulator.errors import ApiError, already_exists, invalid, not_found
from dbsync_emulator.router import Request, Routes
from dbsync_emulator.state import Workspace

routes = Routes()

ENDPOINTS = "serving_endpoints"
PREFIX = "/api/2.0/serving-endpoints"
LEVELS = ("CAN_VIEW", "CAN_QUERY", "CAN_MANAGE")
MAX_ENTITIES = 10
WORKLOAD_SIZES = ("Small", "Medium", "Large")
WORKLOAD_TYPES = (
    "CPU",
    "CPU_LARGE",
    "CPU_MEDIUM",
    "GPU_LARGE",
    "GPU_MEDIUM",
    "GPU_SMALL",
    "GPU_XLARGE",
    "GPU_XLARGE_8",
    "MULTIGPU_MEDIUM",
)
RENEWAL_PERIODS = ("minute",)
RATE_KEYS = ("user", "endpoint")
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,63}$")
_SECRET_REF = re.compile(r"^\{\{secrets/([^/{}]+)/([^/{}]+)\}\}$")


def _exists(ws: Workspace, endpoint_id: str) -> bool:
    return any(r["id"] == endpoint_id for r in ws.table(ENDPOINTS).values())


permissions.register("serving-endpoints", "serving-endpoint", LEVELS, _exists)


def _load(ws: Workspace, name: str) -> dict:
    record = ws.table(ENDPOINTS).get(name)
    if record is None:
        raise not_found(f"Endpoint with name '{name}' does not exist.")
    _settle(ws, record)
    return record


def _settle(ws: Workspace, record: dict) -> None:
    """Promote a pending config whose deploy time has passed (states follow the emulator clock)."""
    pending = record.get("pending")
    if pending is not None and ws.now_ms() >= pending["ready_ms"]:
        record["config"] = {k: v for k, v in pending.items() if k not in ("ready_ms", "start_time")}
        record["pending"] = None


# -- config validation ----------------------------------------------------------------------------
def _check_env(ws: Workspace, env: Any, who: str) -> dict:
    if env is None:
        return {}
    if not isinstance(env, dict) or not all(isinstance(v, str) for v in env.values()):
        raise invalid(f"environment_vars of served entity '{who}' must map names to strings")
    for key, value in env.items():
        if not value.startswith("{{secrets/"):
            continue
        m = _SECRET_REF.match(value)
        if m is None:
            raise invalid(f"environment_vars.{key}: secret references look like {{{{secrets/<scope>/<key>}}}}")
        if m.group(1) not in ws.table(secrets.SCOPES):
            raise invalid(f"environment_vars.{key}: secret scope '{m.group(1)}' does not exist")
    return dict(env)


def _check_version(ws: Workspace, model: str, version: Any) -> None:
    if model.count(".") == 2:
        raise not_found(f"Unity Catalog model '{model}' does not exist (the emulator has no UC model registry).")
    if model not in ws.table(mlflow.MODELS):
        raise not_found(f"Registered model '{model}' does not exist.")
    if (model, str(version)) not in ws.table(mlflow.VERSIONS):
        raise not_found(f"Model version {version} of registered model '{model}' does not exist.")


def _entity(ws: Workspace, item: Any, legacy: bool) -> dict:
    """One validated served entity (or served model, when `legacy`)."""
    if not isinstance(item, dict):
        raise invalid("served_entities[] must be an object")
    name_key, version_key = ("model_name", "model_version") if legacy else ("entity_name", "entity_version")
    model = item.get(name_key)
    if not isinstance(model, str) or not model:
        raise invalid(f"{name_key} is required for every served entity")
    version = item.get(version_key)
    if item.get("external_model") is None:
        if version in (None, ""):
            raise invalid(f"{version_key} is required for served entity '{model}'")
        _check_version(ws, model, version)
    out = {k: v for k, v in item.items() if v is not None}
    out.setdefault("name", f"{model.replace('.', '-')}-{version}" if version else model.replace(".", "-"))
    size = item.get("workload_size")
    provisioned = (
        item.get("min_provisioned_concurrency") is not None or item.get("max_provisioned_concurrency") is not None
    )
    if item.get("external_model") is None and size is None and not provisioned:
        raise invalid(f"workload_size is required for served entity '{out['name']}'")
    if size is not None and size not in WORKLOAD_SIZES:
        raise invalid(f"Invalid workload_size '{size}': use one of {', '.join(WORKLOAD_SIZES)}")
    if item.get("workload_type") is not None and item["workload_type"] not in WORKLOAD_TYPES:
        raise invalid(f"Invalid workload_type '{item['workload_type']}'")
    if legacy and item.get("scale_to_zero_enabled") is None:
        raise invalid(f"scale_to_zero_enabled is required for served model '{out['name']}'")
    out["scale_to_zero_enabled"] = bool(item.get("scale_to_zero_enabled", False))
    if "environment_vars" in item:
        out["environment_vars"] = _check_env(ws, item["environment_vars"], out["name"])
    if version is not None:
        out[version_key] = str(version)
    return out


def _traffic(config: dict, names: list[str]) -> dict:
    traffic = config.get("traffic_config")
    if traffic is None:
        if len(names) > 1:
            raise invalid("traffic_config is required when an endpoint serves more than one entity")
        return {"routes": [{"served_model_name": n, "served_entity_name": n, "traffic_percentage": 100} for n in names]}
    routes_in = traffic.get("routes") or []
    total = 0
    for route in routes_in:
        target = route.get("served_entity_name") or route.get("served_model_name")
        if target not in names:
            raise invalid(f"traffic_config routes to '{target}', which is not a served entity of this config")
        total += int(route.get("traffic_percentage", 0))
    if names and total != 100:
        raise invalid(f"traffic_config percentages must add up to 100 (they add up to {total})")
    return {"routes": [dict(r) for r in routes_in]}


def _config(ws: Workspace, body: dict) -> dict:
    """A validated core config (served entities or served models, traffic, auto capture)."""
    entities, models = body.get("served_entities"), body.get("served_models")
    if entities and models:
        raise invalid("Set served_entities or served_models, not both")
    legacy = bool(models)
    items = models if legacy else (entities or [])
    if not isinstance(items, list):
        raise invalid("served_entities must be a list")
    if len(items) > MAX_ENTITIES:
        raise invalid(f"An endpoint serves at most {MAX_ENTITIES} entities ({len(items)} given)")
    served = [_entity(ws, item, legacy) for item in items]
    names = [e["name"] for e in served]
    if len(set(names)) != len(names):
        raise invalid(f"Served entity names must be unique: {names}")
    config: dict[str, Any] = {
        "served_models" if legacy else "served_entities": served,
        "traffic_config": _traffic(body, names),
    }
    if body.get("auto_capture_config") is not None:
        config["auto_capture_config"] = body["auto_capture_config"]
    return config


def _deploy(ws: Workspace, record: dict, config: dict) -> None:
    version = (record.get("config") or {}).get("config_version", 0) + 1
    seconds = ws.timing.cluster_seconds(ws.cluster_start_seconds, "start", ws.draw("serving-deploy"))
    now = ws.now_ms()
    record["pending"] = {**config, "config_version": version, "start_time": now, "ready_ms": now + int(seconds * 1000)}
    record["last_updated_timestamp"] = now


# -- rendering -----------------------------------------------------------------------------------------
def _served_out(record: dict, config: dict, deployment: str) -> dict:
    out = {k: v for k, v in config.items() if k not in ("ready_ms", "start_time")}
    for key in ("served_entities", "served_models"):
        if key in out:
            out[key] = [
                {
                    **e,
                    "creator": record["creator"],
                    "creation_timestamp": record["creation_timestamp"],
                    "state": {"deployment": deployment, "deployment_state_message": ""},
                }
                for e in out[key]
            ]
    return out


def _state(record: dict) -> dict:
    return {
        "ready": "READY" if record.get("config") else "NOT_READY",
        "config_update": "IN_PROGRESS" if record.get("pending") else "NOT_UPDATING",
    }


def render(record: dict) -> dict:
    out: dict[str, Any] = {
        "name": record["name"],
        "id": record["id"],
        "creator": record["creator"],
        "creation_timestamp": record["creation_timestamp"],
        "last_updated_timestamp": record["last_updated_timestamp"],
        "state": _state(record),
        "permission_level": "CAN_MANAGE",
        "task": "llm/v1/chat" if _external(record) else None,
    }
    if record.get("config"):
        out["config"] = _served_out(record, record["config"], "DEPLOYMENT_READY")
    if record.get("pending"):
        out["pending_config"] = _served_out(record, record["pending"], "DEPLOYMENT_CREATING")
        out["pending_config"]["start_time"] = record["pending"]["start_time"]
    for key in ("description", "tags", "ai_gateway", "route_optimized", "budget_policy_id"):
        if record.get(key) not in (None, [], {}):
            out[key] = record[key]
    if record.get("email_notifications"):
        out["email_notifications"] = record["email_notifications"]
    return {k: v for k, v in out.items() if v is not None}


def _external(record: dict) -> bool:
    config = record.get("config") or record.get("pending") or {}
    return any(e.get("external_model") for e in config.get("served_entities", []))


def _summary(record: dict) -> dict:
    out = render(record)
    out.pop("pending_config", None)
    out.pop("permission_level", None)
    if "config" in out:
        key = "served_models" if "served_models" in out["config"] else "served_entities"
        keep = ("name", "entity_name", "entity_version", "model_name", "model_version", "external_model", "state")
        out["config"] = {key: [{k: v for k, v in e.items() if k in keep} for e in out["config"][key]]}
    return out


# -- tags and limits --------------------------------------------------------------------------------
def _check_tags(tags: Any) -> list[dict]:
    if tags is None:
        return []
    if not isinstance(tags, list) or not all(isinstance(t, dict) and t.get("key") for t in tags):
        raise invalid("tags must be a list of {key, value}")
    return [{k: v for k, v in t.items() if k in ("key", "value")} for t in tags]


def _check_rate_limits(limits: Any) -> list[dict]:
    if limits is None:
        return []
    if not isinstance(limits, list):
        raise invalid("rate_limits must be a list")
    for limit in limits:
        if not isinstance(limit, dict) or not isinstance(limit.get("calls"), int) or limit["calls"] < 0:
            raise invalid("rate_limits[].calls must be a non-negative integer")
        if limit.get("renewal_period") not in RENEWAL_PERIODS:
            raise invalid(f"rate_limits[].renewal_period must be one of {', '.join(RENEWAL_PERIODS)}")
        if limit.get("key", "endpoint") not in RATE_KEYS:
            raise invalid(f"rate_limits[].key must be one of {', '.join(RATE_KEYS)}")
    return [dict(limit) for limit in limits]


# -- routes ---------------------------------------------------------------------------------------------
@routes.post(PREFIX)
def create(ws: Workspace, req: Request) -> dict:
    body = req.json
    name = body.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise invalid(f"Invalid endpoint name {name!r}: use letters, digits, dashes and underscores (at most 63)")
    if name in ws.table(ENDPOINTS):
        raise already_exists(f"Endpoint with name '{name}' already exists.", status=409)
    config = _config(ws, body["config"]) if body.get("config") else None
    now = ws.now_ms()
    record: dict[str, Any] = {
        "name": name,
        "id": new_uuid(ws).hex,
        "creator": ws.admin_user,
        "creation_timestamp": now,
        "last_updated_timestamp": now,
        "config": None,
        "pending": None,
        "description": body.get("description"),
        "tags": _check_tags(body.get("tags")),
        "rate_limits": _check_rate_limits(body.get("rate_limits")),
        "ai_gateway": body.get("ai_gateway"),
        "route_optimized": body.get("route_optimized"),
        "budget_policy_id": body.get("budget_policy_id"),
        "email_notifications": body.get("email_notifications"),
    }
    if config is not None:
        _deploy(ws, record, config)
    ws.table(ENDPOINTS)[name] = record
    permissions.grant_creator(ws, "serving-endpoints", record["id"])
    return render(record)


@routes.get(PREFIX)
def list_endpoints(ws: Workspace, req: Request) -> dict:
    records = sorted(ws.table(ENDPOINTS).values(), key=lambda r: r["creation_timestamp"])
    for record in records:
        _settle(ws, record)
    return {"endpoints": [_summary(r) for r in records]}


@routes.get(f"{PREFIX}/{{name}}")
def get(ws: Workspace, req: Request) -> dict:
    return render(_load(ws, req.path_params["name"]))


@routes.delete(f"{PREFIX}/{{name}}")
def delete(ws: Workspace, req: Request) -> dict:
    record = _load(ws, req.path_params["name"])
    del ws.table(ENDPOINTS)[record["name"]]
    permissions.forget(ws, "serving-endpoints", record["id"])
    return {}


@routes.put(f"{PREFIX}/{{name}}/config")
def update_config(ws: Workspace, req: Request) -> dict:
    record = _load(ws, req.path_params["name"])
    if record.get("pending"):
        raise ApiError(
            409,
            "RESOURCE_CONFLICT",
            f"Endpoint '{record['name']}' is already updating its config: wait for NOT_UPDATING and retry",
        )
    _deploy(ws, record, _config(ws, req.json))
    return render(record)


@routes.patch(f"{PREFIX}/{{name}}/tags")
def patch_tags(ws: Workspace, req: Request) -> dict:
    record = _load(ws, req.path_params["name"])
    body = req.json
    removed = set(body.get("delete_tags") or [])
    added = _check_tags(body.get("add_tags"))
    added_keys = {t["key"] for t in added}
    tags = [t for t in record["tags"] if t["key"] not in removed and t["key"] not in added_keys]
    record["tags"] = tags + added
    record["last_updated_timestamp"] = ws.now_ms()
    return {"tags": record["tags"]}


@routes.put(f"{PREFIX}/{{name}}/rate-limits")
def put_rate_limits(ws: Workspace, req: Request) -> dict:
    record = _load(ws, req.path_params["name"])
    record["rate_limits"] = _check_rate_limits(req.json.get("rate_limits"))
    return {"rate_limits": record["rate_limits"]}


@routes.put(f"{PREFIX}/{{name}}/ai-gateway")
def put_ai_gateway(ws: Workspace, req: Request) -> dict:
    record = _load(ws, req.path_params["name"])
    body = req.json
    keys = ("guardrails", "inference_table_config", "rate_limits", "usage_tracking_config", "fallback_config")
    unknown = set(body) - set(keys)
    if unknown:
        raise invalid(f"Unknown AI gateway field(s): {', '.join(sorted(unknown))}")
    if body.get("rate_limits") is not None and not isinstance(body["rate_limits"], list):
        raise invalid("ai_gateway.rate_limits must be a list")
    record["ai_gateway"] = {k: v for k, v in body.items() if v is not None}
    return record["ai_gateway"]
