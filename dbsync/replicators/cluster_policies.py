"""Cluster policies on the target: adopt by name, create, edit (full replace), delete what dbsync created."""

from __future__ import annotations

from databricks.sdk.errors import DatabricksError

from dbsync.apierrors import is_gone
from dbsync.context import SyncContext
from dbsync.errors import Permanent
from dbsync.mapping import SourceForm
from dbsync.model import Applied, Delete, Prior, Resource, Upsert
from dbsync.replicators.base import Replicator
from dbsync.replicators.common import TargetIndex, deleted, edited, edited_or_created, sdk_call

BY_NAME = TargetIndex(
    "cluster_policies",
    lambda ctx: ((p.name or "", p.policy_id or "") for p in ctx.target.client.cluster_policies.list()),
)


class ClusterPolicyReplicator(Replicator):
    kind = "cluster_policies"
    restores_source = True

    def apply(self, ctx: SyncContext, change: Upsert) -> Applied:
        resource = change.resource
        payload = resource.payload
        policies = ctx.target.client.cluster_policies
        found = None if change.target_key else BY_NAME.get(ctx, payload["name"])
        policy_id = change.target_key or found
        try:
            if policy_id is not None and edited(lambda: sdk_call(policies.edit, payload, policy_id=policy_id)):
                return Applied(policy_id, adopted=True if found else None)
            policy_id = sdk_call(policies.create, payload).policy_id or ""
            BY_NAME.add(ctx, payload["name"], policy_id)
        except DatabricksError as err:
            if err.error_code == "INVALID_PARAMETER_VALUE" and not is_gone(err):
                raise Permanent(f"the target rejected policy {payload['name']!r}: {err}") from err
            raise
        return Applied(policy_id, adopted=False)

    def delete(self, ctx: SyncContext, change: Delete) -> None:
        if change.prior and change.prior.source_meta.get("is_default"):
            return  # built-in policies exist in every workspace and cannot be deleted
        deleted(lambda: ctx.target.client.cluster_policies.delete(change.target_key or ""))

    def write_source(self, ctx: SyncContext, resource: Resource, prior: Prior | None, form: SourceForm) -> str:
        """The kept policy back on the source policy (a full replace), re-created when gone from the source."""
        payload = form.payload(resource.payload)
        policies = ctx.source.client.cluster_policies
        return edited_or_created(
            resource.key,
            lambda: sdk_call(policies.edit, payload, policy_id=resource.key),
            lambda: sdk_call(policies.create, payload).policy_id or "",
        )


def replicator_for(kind: str) -> Replicator:
    return ClusterPolicyReplicator()
