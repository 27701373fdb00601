"""Serving endpoints on the target: created or updated by name, scaled to zero on the standby, deleted.

An endpoint's name is its identity on both sides. One found on the target by name is dbsync's own when
it carries the tag `dbsync_source_id` (a lost store), else the DR team's (adopted, never deleted).
Every served entity that may scale to zero does on the standby (not an external model, nor one with
provisioned throughput or concurrency, which the service does not scale to zero), so a standby endpoint
costs nothing while idle. The config is PUT only when it differs from the target's (a PUT redeploys);
tags are PATCHed by difference (dbsync's own and the team's are kept), the AI gateway PUT when present.
A config update still deploying on the target is retried later, as the service refuses a second one.
"""

from __future__ import annotations

import copy
from typing import Any

from databricks.sdk.errors import DatabricksError, NotFound, ResourceConflict

from dbsync.context import SyncContext
from dbsync.errors import Permanent, RetryLater
from dbsync.model import Applied, Delete, Upsert
from dbsync.replicators.base import Replicator
from dbsync.replicators.common import deleted, sdk_call
from dbsync.sdk import Service
from dbsync.tags import SOURCE_ID_TAG
from dbsync.watchers.serving_endpoints import ENTITY_CLASSES, normalize_config

sdk_serving = Service("serving")  # imported when this kind first uses it (dbsync/sdk.py)

# Served entities the service keeps warm whatever scale_to_zero says: left as the source has them.
_PROVISIONED = (
    "min_provisioned_throughput",
    "max_provisioned_throughput",
    "min_provisioned_concurrency",
    "max_provisioned_concurrency",
    "provisioned_model_units",
)


def standby_config(config: dict[str, Any]) -> dict[str, Any]:
    """The config with every entity that allows it scaled to zero (the standby serves nothing)."""
    out = copy.deepcopy(config)
    for key in ENTITY_CLASSES:
        for entity in out.get(key) or []:
            if not entity.get("external_model") and not any(entity.get(f) for f in _PROVISIONED):
                entity["scale_to_zero_enabled"] = True
    return out


class ServingEndpointReplicator(Replicator):
    kind = "serving_endpoints"

    def apply(self, ctx: SyncContext, change: Upsert) -> Applied:
        payload = ctx.idmap.resolve(change.payload)  # Blocked until the served models are on the target
        name = payload["name"]
        config = standby_config(payload["config"])
        current = _current(ctx, name)
        try:
            if current is None:
                _create(ctx, payload, config, change.key)
                return Applied(name, adopted=False)
            _update(ctx, payload, config, current)
        except ResourceConflict as err:
            raise RetryLater(f"serving endpoint {name} is deploying a config on the target: {err}", 120) from None
        except DatabricksError as err:
            if err.error_code in ("INVALID_PARAMETER_VALUE", "RESOURCE_DOES_NOT_EXIST"):
                raise Permanent(f"the target rejected serving endpoint {name!r}: {err}") from err
            raise
        if change.target_key is not None:
            return Applied(name)
        ours = any(t.get("key") == SOURCE_ID_TAG for t in current.get("tags") or [])
        return Applied(name, adopted=not ours)

    def delete(self, ctx: SyncContext, change: Delete) -> None:
        deleted(lambda: ctx.target.client.serving_endpoints.delete(change.target_key or ""))


def _current(ctx: SyncContext, name: str) -> dict[str, Any] | None:
    try:
        return ctx.target.client.serving_endpoints.get(name).as_dict()
    except NotFound:
        return None


def _create(ctx: SyncContext, payload: dict[str, Any], config: dict[str, Any], source_key: str) -> None:
    body = {k: v for k, v in payload.items() if k not in ("config", "tags")}
    body["config"] = config
    body["tags"] = [*payload.get("tags", []), {"key": SOURCE_ID_TAG, "value": source_key}]
    sdk_call(ctx.target.client.serving_endpoints.create, body)  # the deployment goes on without dbsync waiting


def _update(ctx: SyncContext, payload: dict[str, Any], config: dict[str, Any], current: dict[str, Any]) -> None:
    api = ctx.target.client.serving_endpoints
    name = payload["name"]
    deployed = current.get("pending_config") or current.get("config") or {}
    if _comparable(normalize_config(ctx, deployed, refs=False)) != _comparable(config):
        sdk_call(api.update_config, config, name=name)
    wanted = {t["key"]: t.get("value") or "" for t in payload.get("tags", [])}
    present = {t["key"]: t.get("value") or "" for t in current.get("tags") or []}
    add = [sdk_serving.EndpointTag(key=k, value=v) for k, v in wanted.items() if present.get(k) != v]
    # Only tags the source dropped go: dbsync's own tag stays, and the target keeps no other source.
    drop = [k for k in present if k not in wanted and not k.startswith("dbsync_")]
    if add or drop:
        api.patch(name, add_tags=add or None, delete_tags=drop or None)
    if payload.get("ai_gateway") and payload["ai_gateway"] != current.get("ai_gateway"):
        sdk_call(api.put_ai_gateway, payload["ai_gateway"], name=name)


def _comparable(config: dict[str, Any]) -> dict[str, Any]:
    """A config as both sides answer it: served entity names and defaults the service fills in included."""
    out = copy.deepcopy(config)
    for key in ENTITY_CLASSES:
        for entity in out.get(key) or []:
            entity.setdefault("scale_to_zero_enabled", False)
            for field in ("entity_version", "model_version"):
                if entity.get(field) is not None:
                    entity[field] = str(entity[field])
    return out


def replicator_for(kind: str) -> Replicator:
    return ServingEndpointReplicator()
