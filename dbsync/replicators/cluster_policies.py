"""Cluster policies on the target: adopt by name, create, edit (full replace), delete what dbsync created."""

from __future__ import annotations

from typing import Any

from dbsync.context import SyncContext
from dbsync.model import Delete, Resource
from dbsync.replicators.base import Replicator
from dbsync.replicators.common import TargetIndex
from dbsync.replicators.in_place import EditedInPlace

BY_NAME = TargetIndex(
    "cluster_policies",
    lambda ctx: ((p.name or "", p.policy_id or "") for p in ctx.target.client.cluster_policies.list()),
)


class ClusterPolicyReplicator(EditedInPlace):
    kind = "cluster_policies"
    service, id_field, noun, index = "cluster_policies", "policy_id", "policy", BY_NAME

    def index_key(self, resource: Resource, payload: dict[str, Any]) -> str:
        return payload["name"]  # adopted by name: a policy the DR team made with that name is used, not doubled

    def delete(self, ctx: SyncContext, change: Delete) -> None:
        if change.prior and change.prior.source_meta.get("is_default"):
            return  # built-in policies exist in every workspace and cannot be deleted
        super().delete(ctx, change)


def replicator_for(kind: str) -> Replicator:
    return ClusterPolicyReplicator()
