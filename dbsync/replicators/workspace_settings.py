"""Workspace settings on the target: allow-listed workspace-conf keys, and IP access lists.

workspace_conf: a key whose target value already equals the source's is adopted without a write;
otherwise one PATCH. A key never set on the source (null) puts the target's back to its default ("").
Two changes that would lock dbsync out of the standby are refused with the reason: turning personal
access tokens off while dbsync reaches the target with one, and the service's own refusal of IP access
list enforcement that would block dbsync's address.

ip_access_lists: adopted by label, created (then disabled if the source list is), replaced in full on
change, deleted when gone from the source. The service refuses a list that would block the caller's
address while enforcement is on: that is an error naming the fix, never a retry loop.
"""

from __future__ import annotations

from databricks.sdk.errors import DatabricksError, NotFound

from dbsync.context import SyncContext
from dbsync.errors import Permanent
from dbsync.model import Applied, Delete, Upsert
from dbsync.replicators.base import Replicator
from dbsync.replicators.common import TargetIndex
from dbsync.sdk import Service
from dbsync.watchers.workspace_settings import WORKSPACE_CONF, conf_values

sdk_settings = Service("settings")  # imported when this kind first uses it (dbsync/sdk.py)

LOCKOUT_FIX = (
    "add the address dbsync reaches the standby from to an allow list on the source, or exclude the "
    "ip_access_lists kind / the enableIpAccessLists key"
)


class WorkspaceConfReplicator(Replicator):
    kind = "workspace_conf"
    unrecorded_origin = "created"  # its delete writes nothing

    def apply(self, ctx: SyncContext, change: Upsert) -> Applied:
        resource = change.resource
        key, value = resource.payload["key"], resource.payload["value"]
        if conf_values(ctx, ctx.target).get(key) == value:
            return Applied(key)  # already so on the target: nothing to write
        if key == "enableTokensConfig" and value == "false" and ctx.target.client.config.auth_type == "pat":
            raise Permanent(
                "enableTokensConfig is false on the source, but dbsync reaches the target with a personal access "
                "token: applying it would lock dbsync out. Use OAuth for the target, or drop the key from "
                "workspace_conf.keys"
            )
        try:
            ctx.target.client.workspace_conf.set_status({key: value if value is not None else ""})
        except DatabricksError as err:
            if err.error_code == "INVALID_STATE":
                raise Permanent(f"the target refused {key}={value}: {err}; {LOCKOUT_FIX}") from err
            if err.error_code == "INVALID_PARAMETER_VALUE":
                raise Permanent(f"the target rejected {key}={value!r}: {err}") from err
            raise
        finally:
            ctx.invalidate(WORKSPACE_CONF.part(ctx.target.side))  # the drift check must see the new value
        return Applied(key)

    def delete(self, ctx: SyncContext, change: Delete) -> None:
        """A key dropped from the allow-list is left as it is on the target (there is no unset)."""


BY_LABEL = TargetIndex(
    "ip_access_lists",
    lambda ctx: ((item.label or "", item.list_id or "") for item in ctx.target.client.ip_access_lists.list()),
)


class IpAccessListReplicator(Replicator):
    kind = "ip_access_lists"

    def apply(self, ctx: SyncContext, change: Upsert) -> Applied:
        resource = change.resource
        payload = resource.payload
        lists = ctx.target.client.ip_access_lists
        found = None if change.target_key else BY_LABEL.get(ctx, payload["label"])
        list_id = change.target_key or found
        list_type = sdk_settings.ListType(payload["list_type"])
        try:
            if list_id is not None and self._replace(ctx, list_id, payload, list_type):
                return Applied(list_id, adopted=True if found else None)
            created = lists.create(payload["label"], list_type, ip_addresses=payload["ip_addresses"])
            list_id = created.ip_access_list.list_id if created.ip_access_list else ""
            BY_LABEL.add(ctx, payload["label"], list_id or "")
            if not payload["enabled"]:
                lists.update(list_id or "", enabled=False)
        except DatabricksError as err:
            if err.error_code == "INVALID_STATE":
                raise Permanent(
                    f"the target refused IP access list {payload['label']!r}: {err}; {LOCKOUT_FIX}"
                ) from err
            if err.error_code in ("INVALID_PARAMETER_VALUE", "QUOTA_EXCEEDED"):
                raise Permanent(f"the target rejected IP access list {payload['label']!r}: {err}") from err
            raise
        return Applied(list_id, adopted=False)

    @staticmethod
    def _replace(ctx: SyncContext, list_id: str, payload: dict, list_type: sdk_settings.ListType) -> bool:
        """Replace the whole list; False when it is gone from the target (it is created again)."""
        try:
            ctx.target.client.ip_access_lists.replace(
                list_id, payload["label"], list_type, payload["enabled"], ip_addresses=payload["ip_addresses"]
            )
        except NotFound:
            return False
        return True

    def delete(self, ctx: SyncContext, change: Delete) -> None:
        try:
            ctx.target.client.ip_access_lists.delete(change.target_key or "")
        except NotFound:
            pass
        except DatabricksError as err:
            if err.error_code == "INVALID_STATE":
                raise Permanent(f"the target refused to delete an IP access list: {err}; {LOCKOUT_FIX}") from err
            raise


def replicator_for(kind: str) -> Replicator:
    return WorkspaceConfReplicator() if kind == "workspace_conf" else IpAccessListReplicator()
