"""Grants on the Unity Catalog securables dbsync replicates over REST, through the UC permissions API.

Storage credentials and external locations have no SQL `SHOW GRANTS` side dbsync reads, so their grants
come from `GET /unity-catalog/permissions/{type}/{name}`; a catalog's too when `table_acls` does not copy
them with SQL (the catalog is not in `metastore.catalogs`, or `table_acls` is off). Listed from the
store (objects on the target), one GET per securable on the source: the API has no bulk read and no
version, so the fingerprint of the direct grants (principals mapped, sorted) decides. Keys are
`<kind>:<name>`, like the permissions kind's.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from databricks.sdk.errors import NotFound

from dbsync.context import SyncContext
from dbsync.declaration import Declaration
from dbsync.errors import RetryLater
from dbsync.model import Resource
from dbsync.watchers.base import Watcher
from dbsync.workspace import Workspace

SECURABLE_TYPES = {
    "storage_credentials": "storage_credential",
    "external_locations": "external_location",
    "catalogs": "catalog",
}


def _sql_covers(ctx: SyncContext, object_kind: str, name: str) -> bool:
    """A catalog whose grants `table_acls` copies with SQL (SHOW GRANTS / GRANT): not this kind's."""
    if object_kind != "catalogs":
        return False
    return ctx.settings.kind("table_acls").enabled and name in ctx.settings.metastore.catalogs


def grants(ctx: SyncContext, ws: Workspace, securable_type: str, name: str) -> list[dict[str, Any]]:
    """The securable's direct grants as [{principal, privileges}], principals mapped, sorted."""
    answer = ws.client.grants.get(securable_type, name).as_dict()
    out = []
    for item in answer.get("privilege_assignments") or []:
        privileges = sorted(str(p) for p in item.get("privileges") or [])
        if item.get("principal") and privileges:
            out.append({"principal": ctx.principals.any_principal(item["principal"]), "privileges": privileges})
    return sorted(out, key=lambda a: a["principal"])


class UcGrantsWatcher(Watcher):
    kind = "uc_grants"
    drift_check = False
    declaration = Declaration(interval=900, target_listed=False, reverse_key="object")

    def list(self, ctx: SyncContext, ws: Workspace) -> Iterator[Resource]:
        for object_kind, securable_type in SECURABLE_TYPES.items():
            listed = ctx.listed.get(object_kind)  # None when the kind was not listed in this run
            for prior in ctx.history.priors(object_kind, payloads=False):
                if prior.target_key is None or (listed is not None and prior.key not in listed):
                    continue
                if _sql_covers(ctx, object_kind, prior.key):
                    continue
                meta = {"object_kind": object_kind, "securable_type": securable_type, "target_key": prior.target_key}
                yield Resource(self.kind, f"{object_kind}:{prior.key}", prior.key, None, source_meta=meta)

    def fetch(self, ctx: SyncContext, ws: Workspace, stub: Resource) -> Resource:
        meta = stub.source_meta
        try:
            assignments = grants(ctx, ws, meta["securable_type"], stub.name)
        except NotFound:
            raise RetryLater(f"{meta['object_kind']} {stub.name} is gone from the source") from None
        stub.payload = {
            "securable_type": meta["securable_type"],
            "target_key": meta["target_key"],
            "assignments": assignments,
        }
        return stub


def watcher_for(kind: str) -> UcGrantsWatcher:
    return UcGrantsWatcher()
