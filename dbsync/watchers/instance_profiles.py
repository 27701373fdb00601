"""Instance profiles (AWS): keyed by the source ARN; the payload carries the ARN rewritten for the target.

`mapping.aws_account_id` rewrites the account of the instance-profile and IAM role ARNs, for a
standby in another AWS account. The listing carries everything (no pagination), so the version hint
is the payload's fingerprint.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from dbsync.context import SyncContext
from dbsync.declaration import Declaration
from dbsync.watchers.listed import ListedWatcher
from dbsync.workspace import Workspace


class InstanceProfileWatcher(ListedWatcher):
    declaration = Declaration(interval=600, key_names_aws_account=True)

    def items(self, ws: Workspace) -> Iterator[tuple[str, str, dict[str, Any]]]:
        for profile in ws.client.instance_profiles.list():
            arn = profile.instance_profile_arn or ""
            yield arn, arn.rsplit("/", 1)[-1], profile.as_dict()

    def normalize(self, ctx: SyncContext, raw: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        payload: dict[str, Any] = {"instance_profile_arn": ctx.principals.arn(raw["instance_profile_arn"])}
        if raw.get("iam_role_arn"):
            payload["iam_role_arn"] = ctx.principals.arn(raw["iam_role_arn"])
        if raw.get("is_meta_instance_profile"):
            payload["is_meta_instance_profile"] = True
        return payload, {}


def watcher_for(kind: str) -> InstanceProfileWatcher:
    return InstanceProfileWatcher(kind, None)
