"""Cluster policies: keyed by policy_id, matched on the target by name (unique per workspace)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from databricks.sdk.service.compute import ClusterPoliciesAPI

from dbsync.context import SyncContext
from dbsync.declaration import Declaration
from dbsync.model import canonical_json
from dbsync.watchers.listed import ListedWatcher, keep, writable_fields
from dbsync.workspace import Workspace

FIELDS = writable_fields(ClusterPoliciesAPI.create)


def canonical_definition(text: str | None) -> str | None:
    """A policy definition is a JSON string: key order and spacing are not a change."""
    if not text:
        return text
    try:
        return canonical_json(json.loads(text))
    except ValueError:
        return text


class ClusterPolicyWatcher(ListedWatcher):
    declaration = Declaration(interval=120, link="{host}/#setting/clusters/cluster-policies/view/{key}")

    def items(self, ws: Workspace) -> Iterator[tuple[str, str, dict[str, Any]]]:
        for policy in ws.client.cluster_policies.list():
            yield policy.policy_id or "", policy.name or "", policy.as_dict()

    def normalize(self, ctx: SyncContext, raw: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        payload = keep(raw, FIELDS)
        if payload.get("policy_family_id"):
            payload.pop("definition", None)  # derived from the family and the overrides
        for field in ("definition", "policy_family_definition_overrides"):
            if field in payload:
                payload[field] = canonical_definition(payload[field])
        return payload, {"is_default": bool(raw.get("is_default"))}


def watcher_for(kind: str) -> ClusterPolicyWatcher:
    return ClusterPolicyWatcher(kind, "cluster-policies")
