"""Unity Catalog securables on the target: found by name (adopted) or created, then PATCHed; deleted if created.

Storage credentials before external locations (a location names its credential) before catalogs (a
managed storage root must lie under an external location). The owner is set with each securable's PATCH
(the way UC changes owners); one the target lacks is left out and waited for (`partial`). A delete never
forces: a catalog still holding schemas, or a credential an external location uses, is kept.
"""

from __future__ import annotations

from typing import Any

from databricks.sdk.errors import DatabricksError, NotFound

from dbsync.context import SyncContext
from dbsync.errors import Blocked, Kept, Permanent
from dbsync.mapping import ANY, waiting_ref
from dbsync.model import Applied, Delete, Upsert
from dbsync.principals import principal_on_target
from dbsync.replicators.base import Replicator
from dbsync.replicators.common import deleted, sdk_call
from dbsync.watchers.unity_catalog import FOREIGN_CATALOG_TYPES, IDENTITY_FIELDS, SECRET_IDENTITIES, UNMAPPED

_LABEL = {"storage_credentials": "storage credential", "external_locations": "external location", "catalogs": "catalog"}


class UnityCatalogReplicator(Replicator):
    """One replicator for the three kinds: they differ in their API and in what a create needs."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.label = _LABEL[kind]

    def _api(self, ctx: SyncContext) -> Any:
        return getattr(ctx.target.client, self.kind)

    def apply(self, ctx: SyncContext, change: Upsert) -> Applied:
        resource = change.resource
        unmapped = resource.source_meta.get(UNMAPPED)
        if unmapped:
            raise Blocked(
                f"{self.label} {resource.key}: storage URL {unmapped} matches no prefix of mapping.storage; "
                "add one (source prefix → the standby's storage)"
            )
        payload = ctx.idmap.resolve(resource.payload)  # Blocked until the credential it names is there
        owner, waiting = _owner(ctx, payload.pop("owner", None))
        name = payload["name"]
        current = self._current(ctx, name)
        found = current is not None and change.target_key is None
        try:
            ours = change.prior is not None and change.prior.origin == "created"
            if current is None:
                self._create(ctx, resource.source_meta, payload)
            self._patch(ctx, payload, owner, current, ours)
        except DatabricksError as err:
            if err.error_code in ("INVALID_PARAMETER_VALUE", "PRINCIPAL_DOES_NOT_EXIST"):
                raise Permanent(f"the target rejected {self.label} {name!r}: {err}") from err
            raise
        adopted = True if found else (False if current is None else None)
        note = f"owner {waiting[0].split(':', 1)[1]} does not exist on the target; owner kept" if waiting else None
        return Applied(name, note=note, waiting_on=waiting, adopted=adopted)

    def _current(self, ctx: SyncContext, name: str) -> dict[str, Any] | None:
        try:
            return self._api(ctx).get(name).as_dict()
        except NotFound:
            return None

    def _create(self, ctx: SyncContext, meta: dict[str, Any], payload: dict[str, Any]) -> None:
        body = {k: v for k, v in payload.items() if k not in ("identity", "isolation_mode")}
        if self.kind == "storage_credentials":
            ((kind, identity),) = (payload.get("identity") or {"databricks_gcp_service_account": {}}).items()
            if kind in SECRET_IDENTITIES:
                raise Blocked(
                    f"storage credential {payload['name']} uses {kind}, whose secret the API never returns: create "
                    "it on the target (with the standby's identity); dbsync then keeps its comment and owner"
                )
            body[kind] = identity
        if self.kind == "catalogs" and meta.get("catalog_type") in FOREIGN_CATALOG_TYPES:
            raise Blocked(
                f"catalog {payload['name']} is a {meta['catalog_type']}: create it on the target from its "
                "connection or share; dbsync then keeps its comment and owner"
            )
        sdk_call(self._api(ctx).create, body)

    def _patch(
        self, ctx: SyncContext, payload: dict[str, Any], owner: str | None, current: dict | None, ours: bool
    ) -> None:
        """PATCH what differs from the target's (just created: the owner and isolation a create cannot set)."""
        if current is None:
            body = {k: v for k, v in (("owner", owner), ("isolation_mode", payload.get("isolation_mode"))) if v}
        else:
            body = {k: v for k, v in payload.items() if k not in ("identity", "storage_root", "name")}
            if owner:
                body["owner"] = owner
            body = {k: v for k, v in body.items() if current.get(k) != v}
            if self.kind == "storage_credentials" and ours:  # an adopted credential keeps the team's identity
                body.update(_changed_identity(payload.get("identity") or {}, current))
        if body:
            sdk_call(self._api(ctx).update, body, name=payload["name"])

    def delete(self, ctx: SyncContext, change: Delete) -> None:
        try:
            deleted(lambda: self._api(ctx).delete(change.target_key or ""))
        except DatabricksError as err:
            if err.error_code in ("INVALID_STATE", "INVALID_PARAMETER_VALUE"):
                raise Kept(f"{self.label} {change.target_key} is kept on the target: {err}") from None
            raise


def _owner(ctx: SyncContext, owner: str | None) -> tuple[str | None, list[str]]:
    """The owner to set, or (None, waiting) when the target lacks that principal (it keeps its current owner)."""
    if not owner or principal_on_target(ctx, ANY, owner):
        return owner, []
    if ctx.settings.principals_missing == "fail":
        raise Permanent(f"owner {owner} does not exist on the target: provision it there first")
    return None, [waiting_ref(ANY, owner)]


def _changed_identity(identity: dict[str, dict[str, Any]], current: dict[str, Any]) -> dict[str, Any]:
    """The identity to PATCH on a credential dbsync created, when its fields differ from the target's."""
    for kind, fields in identity.items():
        live = current.get(kind) or {}
        if any(live.get(f) != fields.get(f) for f in IDENTITY_FIELDS[kind]):
            return {kind: fields}
    return {}


def replicator_for(kind: str) -> Replicator:
    return UnityCatalogReplicator(kind)
