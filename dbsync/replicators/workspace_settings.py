"""Workspace settings on the target: allow-listed workspace-conf keys, and IP access lists.

workspace_conf: a key whose target value already equals the source's is adopted without a write;
otherwise one PATCH. A key never set on the source (null) puts the target's back to its default ("").
Two changes that would lock dbsync out of the standby are refused with the reason: turning personal
access tokens off while dbsync reaches the target with one, and the service's own refusal of IP access
list enforcement that would block dbsync's address.

ip_access_lists: adopted by label (never a list that is another source list's copy: labels need not be
unique), created (then disabled if the source list is), replaced in full on change, deleted when gone from
the source. The service refuses a list that would block the caller's address while enforcement is on: that
is an error naming the fix, never a retry loop.
"""

from __future__ import annotations

from databricks.sdk.errors import DatabricksError, NotFound

from dbsync.context import SyncContext
from dbsync.errors import Permanent
from dbsync.model import Applied, Delete, Upsert
from dbsync.replicators.base import Replicator
from dbsync.replicators.common import claim
from dbsync.runcache import CacheKey
from dbsync.sdk import Service
from dbsync.watchers.workspace_settings import WORKSPACE_CONF, conf_values

sdk_settings = Service("settings")  # imported when this kind first uses it (dbsync/sdk.py)
KIND = "ip_access_lists"

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


TARGET_LISTS: CacheKey[list[sdk_settings.IpAccessListInfo]] = CacheKey("ip-access-lists:target")


def _target_lists(ctx: SyncContext) -> list[sdk_settings.IpAccessListInfo]:
    """The target's lists, read once per run; the lists this run creates are added."""
    return ctx.cached(TARGET_LISTS, lambda: list(ctx.target.client.ip_access_lists.list()))


def _same_content(target: sdk_settings.IpAccessListInfo, payload: dict) -> bool:
    kind = target.list_type.value if target.list_type else None
    return kind == payload["list_type"] and sorted(target.ip_addresses or []) == sorted(payload["ip_addresses"])


def _adoptable(ctx: SyncContext, source_key: str, payload: dict) -> str | None:
    """The target list this source list takes over, if any.

    Labels need not be unique. The list of that label when the target has only one; when it has several, one
    whose type and addresses already equal the source's (after a kill -9 between two creates and their record:
    each source list finds its own copy). Never a list that is another source list's copy (`claim`).
    """
    labelled = [x for x in _target_lists(ctx) if x.label == payload["label"]]
    candidates = labelled if len(labelled) == 1 else [x for x in labelled if _same_content(x, payload)]
    return next((x.list_id for x in candidates if x.list_id and claim(ctx, KIND, x.list_id, source_key)), None)


class IpAccessListReplicator(Replicator):
    kind = KIND

    def apply(self, ctx: SyncContext, change: Upsert) -> Applied:
        resource = change.resource
        payload = resource.payload
        lists = ctx.target.client.ip_access_lists
        found = None if change.target_key else _adoptable(ctx, resource.key, payload)
        list_id = change.target_key or found
        list_type = sdk_settings.ListType(payload["list_type"])
        try:
            if list_id is not None and self._replace(ctx, list_id, payload, list_type):
                return Applied(list_id, adopted=True if found else None)
            created = lists.create(payload["label"], list_type, ip_addresses=payload["ip_addresses"])
            copy = created.ip_access_list or sdk_settings.IpAccessListInfo()
            list_id = copy.list_id or ""
            claim(ctx, KIND, list_id, resource.key)  # never adopted by another source list of the same label
            known = ctx.peek(TARGET_LISTS)  # read before this create: it is added (a later read has it)
            if known is not None:
                known.append(copy)
            if not payload["enabled"]:
                lists.update(list_id, enabled=False)
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
