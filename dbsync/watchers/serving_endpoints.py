"""Model serving endpoints: served entities / models, traffic, tags, AI gateway; keyed by endpoint name.

The listing carries each endpoint's `last_updated_timestamp`, tags, AI gateway and served entity names
and versions, so its fingerprint (without the deployment state) is the version hint: an unchanged endpoint
costs no GET. A changed one is read once (GET): its newest config (`pending_config` while a deployment is
in progress, else `config`), only the writable fields. A workspace Model Registry model becomes a Ref to
`registered_models` (same name and version numbers on the target), so an endpoint waits for its model.
Environment variables are kept as written: a secret reference `{{secrets/scope/key}}` stays a reference.
The deprecated endpoint `rate_limits` are write-only in the API (no GET answers them) and are not copied;
the AI gateway's rate limits are. ACLs go through `permissions` (type `serving-endpoints`, by endpoint id).
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Iterator
from typing import Any

from databricks.sdk.errors import DatabricksError, NotFound

from dbsync import planner
from dbsync.context import SyncContext
from dbsync.declaration import Declaration
from dbsync.errors import ListingError, RetryLater
from dbsync.model import Resource, fingerprint, ref
from dbsync.sdk import Service
from dbsync.tags import without_dbsync_tags
from dbsync.watchers.base import Watcher
from dbsync.workspace import Workspace

sdk_serving = Service("serving")  # imported when this kind first uses it (dbsync/sdk.py)

ENTITY_CLASSES = {"served_entities": "ServedEntityInput", "served_models": "ServedModelInput"}  # key -> SDK input


@functools.cache
def entity_fields(key: str) -> frozenset[str]:
    """The fields the SDK's input class for `key` takes (read at the first call: the serving module loads then)."""
    return frozenset(getattr(sdk_serving, ENTITY_CLASSES[key]).__dataclass_fields__)


NAME_FIELD = {"served_entities": "entity_name", "served_models": "model_name"}
ENDPOINT_FIELDS = ("description", "route_optimized", "budget_policy_id")
ENDPOINT_ID = "endpoint_id"  # source_meta: the id the Permissions API knows the endpoint by


def _registry_model(ctx: SyncContext, entity: dict[str, Any], name_field: str) -> bool:
    """A workspace registry model the registered_models kind copies (not UC, not an external model)."""
    name = entity.get(name_field) or ""
    if entity.get("external_model") or name.count(".") == 2:
        return False
    models = ctx.settings.kind("registered_models")
    return models.enabled and planner.selected(models, name)


def _entity(ctx: SyncContext, entity: dict[str, Any], key: str, refs: bool) -> dict[str, Any]:
    out = {k: copy.deepcopy(v) for k, v in entity.items() if k in entity_fields(key) and v not in (None, {}, [])}
    name_field = NAME_FIELD[key]
    if refs and _registry_model(ctx, out, name_field):
        out[name_field] = ref("registered_models", out[name_field])
    if out.get("instance_profile_arn"):
        out["instance_profile_arn"] = ctx.principals.arn(out["instance_profile_arn"])
    return out


def normalize_config(ctx: SyncContext, config: dict[str, Any], refs: bool = True) -> dict[str, Any]:
    """The writable core config: served entities (or models), traffic and auto capture.

    With `refs`, a registry model is a Ref (the source's payload); without, as the workspace names it.
    """
    out: dict[str, Any] = {}
    for key in ENTITY_CLASSES:
        if config.get(key):
            out[key] = [_entity(ctx, e, key, refs) for e in config[key]]
    for key in ("traffic_config", "auto_capture_config"):
        if config.get(key):
            out[key] = copy.deepcopy(config[key])
    return out


def endpoint_tags(tags: list[dict[str, Any]] | None) -> list[dict[str, str]]:
    """The endpoint's tags without dbsync's own, sorted by key."""
    kept = without_dbsync_tags({t["key"]: t.get("value") or "" for t in tags or [] if t.get("key")})
    return [{"key": k, "value": v} for k, v in sorted(kept.items())]


def _stable(listed: dict[str, Any], with_config: bool) -> dict[str, Any]:
    """The listing without its deployment state: the version hint (a deployment finishing is no change).

    The served entities listed appear only once a deployment is done: on the source they make a finished
    deployment one more read (no write); on the target they are left out, so it never looks like drift.
    """
    out = {k: v for k, v in listed.items() if k not in ("state", "tags")}
    out["tags"] = endpoint_tags(listed.get("tags"))
    if not with_config:
        out.pop("config", None)
        return out
    for key in ENTITY_CLASSES:
        entities = (out.get("config") or {}).get(key)
        if entities:
            out["config"] = {key: [{k: v for k, v in e.items() if k != "state"} for e in entities]}
    return out


class ServingEndpointWatcher(Watcher):
    kind = "serving_endpoints"
    acl_type = "serving-endpoints"
    declaration = Declaration(interval=300, link="{host}/ml/endpoints/{key}")

    def list(self, ctx: SyncContext, ws: Workspace) -> Iterator[Resource]:
        try:
            for endpoint in ws.client.serving_endpoints.list():
                listed = endpoint.as_dict()
                name = listed.get("name", "")
                meta = {ENDPOINT_ID: listed.get("id")}
                yield Resource(
                    self.kind,
                    name,
                    name,
                    fingerprint(_stable(listed, with_config=ws.side == "source")),
                    source_meta=meta,
                )
        except DatabricksError as err:
            raise ListingError(f"{ws.side}: cannot list serving endpoints: {err}") from err

    def fetch(self, ctx: SyncContext, ws: Workspace, stub: Resource) -> Resource:
        try:
            got = ws.client.serving_endpoints.get(stub.key).as_dict()
        except NotFound:
            raise RetryLater(f"serving endpoint {stub.key} disappeared from the source while it was read") from None
        stub.payload = normalize_endpoint(ctx, got)
        stub.source_meta = {ENDPOINT_ID: got.get("id")}
        return stub

    def acl_object_id(self, ctx: SyncContext, ws: Workspace, key: str, meta: dict) -> str | None:
        """The Permissions API knows an endpoint by its id: the source's is kept, the target's is read."""
        if meta.get(ENDPOINT_ID):
            return str(meta[ENDPOINT_ID])
        try:
            return ws.client.serving_endpoints.get(key).id
        except NotFound:
            return None


def normalize_endpoint(ctx: SyncContext, got: dict[str, Any]) -> dict[str, Any]:
    """An endpoint's replicated part: its newest config, tags, AI gateway and endpoint settings."""
    payload: dict[str, Any] = {"name": got.get("name")}
    config = got.get("pending_config") or got.get("config") or {}
    payload["config"] = normalize_config(ctx, config)
    payload["tags"] = endpoint_tags(got.get("tags"))
    if got.get("ai_gateway"):
        payload["ai_gateway"] = copy.deepcopy(got["ai_gateway"])
    for key in ENDPOINT_FIELDS:
        if got.get(key) not in (None, ""):
            payload[key] = got[key]
    emails = got.get("email_notifications") or {}
    if emails:
        payload["email_notifications"] = {k: [ctx.principals.user(a) for a in v] for k, v in emails.items() if v}
    return payload


def watcher_for(kind: str) -> ServingEndpointWatcher:
    return ServingEndpointWatcher()
