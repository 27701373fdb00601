"""Instance profiles on the target: adopt by (rewritten) ARN, add, edit the role fields, remove.

`add` asks the service to validate the profile against AWS (a dry-run launch) unless
`instance_profiles.skip_validation` is true. Validation stays on by default: a standby whose
profile its AWS account cannot use would only fail when a cluster starts, in the middle of a
disaster. The role must exist in the target's account (the one `mapping.aws_account_id` names).
"""

from __future__ import annotations

from typing import Any

from databricks.sdk.errors import DatabricksError, ResourceConflict

from dbsync.apierrors import is_gone
from dbsync.context import SyncContext
from dbsync.errors import Permanent
from dbsync.model import Applied, Delete, Upsert
from dbsync.replicators.base import Replicator
from dbsync.runcache import CacheKey

EDITABLE = ("iam_role_arn", "is_meta_instance_profile")


TARGET_PROFILES: CacheKey[dict[str, dict[str, Any]]] = CacheKey("instance-profiles:target")


def target_profiles(ctx: SyncContext) -> dict[str, dict[str, Any]]:
    """ARN → profile as the target lists it, read once per run."""
    return ctx.cached(
        TARGET_PROFILES,
        lambda: {p.instance_profile_arn or "": p.as_dict() for p in ctx.target.client.instance_profiles.list()},
    )


def _differs(current: dict[str, Any], payload: dict[str, Any]) -> bool:
    # An absent field, None and False all mean "not set".
    return any((current.get(f) or None) != (payload.get(f) or None) for f in EDITABLE)


class InstanceProfileReplicator(Replicator):
    kind = "instance_profiles"

    def apply(self, ctx: SyncContext, change: Upsert) -> Applied:
        resource = change.resource
        payload = resource.payload
        arn = payload["instance_profile_arn"]
        profiles = ctx.target.client.instance_profiles
        current = target_profiles(ctx).get(arn)
        adopted = current is not None  # registered on the target before dbsync: never removed by it
        try:
            if current is None:
                current, adopted = self._add(ctx, payload)
            if _differs(current, payload):
                profiles.edit(
                    arn,
                    iam_role_arn=payload.get("iam_role_arn"),
                    is_meta_instance_profile=payload.get("is_meta_instance_profile", False),
                )
        except DatabricksError as err:
            if err.error_code == "INVALID_PARAMETER_VALUE" and not is_gone(err):
                raise Permanent(
                    f"the target rejected instance profile {arn}: {err}. The role must exist in the target's "
                    "AWS account (mapping.aws_account_id rewrites the account); instance_profiles.skip_validation: "
                    "true registers it without the AWS check"
                ) from err
            raise
        target_profiles(ctx)[arn] = {"instance_profile_arn": arn, **{f: payload.get(f) for f in EDITABLE}}
        return Applied(arn, adopted=adopted if change.target_key is None else None)

    def _add(self, ctx: SyncContext, payload: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """Register the profile (False); one registered meanwhile (a crashed run) is adopted (True) and compared."""
        arn = payload["instance_profile_arn"]
        try:
            ctx.target.client.instance_profiles.add(
                arn,
                iam_role_arn=payload.get("iam_role_arn"),
                is_meta_instance_profile=payload.get("is_meta_instance_profile"),
                skip_validation=ctx.settings.instance_profiles.skip_validation,
            )
        except DatabricksError as err:
            # Legacy 2.0 services answer "already exists" with 400 as often as with 409.
            if not isinstance(err, ResourceConflict) and "already exists" not in str(err).lower():
                raise
            ctx.invalidate(TARGET_PROFILES)
            return target_profiles(ctx).get(arn) or {"instance_profile_arn": arn}, True
        return {"instance_profile_arn": arn, **{f: payload.get(f) for f in EDITABLE}}, False

    def delete(self, ctx: SyncContext, change: Delete) -> None:
        try:
            ctx.target.client.instance_profiles.remove(change.target_key or change.key)
        except DatabricksError as err:
            if not is_gone(err):
                raise


def replicator_for(kind: str) -> Replicator:
    return InstanceProfileReplicator()
