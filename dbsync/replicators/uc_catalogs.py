"""Connections, catalogs, volumes and functions on the target: adopted by name, created, updated, deleted.

- a connection's secret options are read from `secrets.values_from` only when it is written, sent and dropped
  (never stored, logged or quoted in an error); its type cannot change in place (an error naming the fix).
- a catalog is created with its mapped storage root (or none: the target metastore's default), then PATCHed
  with its isolation mode and owner; its storage root cannot move (an error naming the fix). A catalog is
  deleted only when dbsync created it and the service finds it empty (never with `force`): else it is kept.
- a volume waits (`blocked`) for its schema, which the `schemas` kind creates (add the catalog to
  `metastore.catalogs`); its type and storage location cannot change in place. **A managed volume is never
  deleted** (its files would go, as a managed table's data); an external one is (its files stay).
- a function whose definition changed is created again when dbsync created it (the API cannot edit one); an
  adopted one is an error naming the fix.
"""

from __future__ import annotations

from typing import Any

from databricks.sdk.errors import DatabricksError

from dbsync.context import SyncContext
from dbsync.errors import Blocked, Kept, Permanent
from dbsync.model import Applied, Delete, Upsert
from dbsync.replicators.base import Replicator
from dbsync.replicators.common import sdk_call
from dbsync.replicators.uc_common import (
    applied,
    check_blocked,
    check_metastore,
    delete_created,
    differs,
    existing,
    immutable,
    set_owner,
)
from dbsync.sdk import Service
from dbsync.watchers.uc_catalogs import CONNECTIONS, SCOPE, definition, read_secret, secret_key
from dbsync.watchers.uc_common import BLOCKED

sdk_catalog = Service("catalog")  # imported when this kind first uses it (dbsync/sdk.py)


class _UcReplicator(Replicator):
    def preview(self, ctx: SyncContext, change: Upsert) -> str | None:
        return change.payload.get(BLOCKED)


class ConnectionsReplicator(_UcReplicator):
    kind = CONNECTIONS

    def apply(self, ctx: SyncContext, change: Upsert) -> Applied:
        check_blocked(change)
        payload, name = change.payload, change.key
        api = ctx.target.client.connections
        found = existing(lambda: api.get(name))
        check_metastore(change, found, f"connection {name}")
        options = dict(payload["options"])
        for option in payload["secrets"]:
            options[option] = read_secret(ctx, name, option).text(SCOPE, secret_key(name, option))
        try:
            if found is None:
                info = api.create(
                    name,
                    sdk_catalog.ConnectionType(payload["connection_type"]),
                    options,
                    comment=payload["comment"] or None,
                    properties=payload["properties"] or None,
                    read_only=payload["read_only"],
                ).as_dict()
            else:
                immutable(f"connection {name}", "connection_type", payload["connection_type"], found["connection_type"])
                info = api.update(name, options).as_dict()
        except DatabricksError as err:  # the request held secrets: only the service's first line is kept
            raise Permanent(f"the target refused connection {name}: {str(err).splitlines()[0][:200]}") from None
        owner = set_owner(
            ctx, lambda o: api.update(name, options, owner=o), f"connection {name}", payload["owner"], info.get("owner")
        )
        notes = []
        if found is not None and differs(found, {"comment": payload["comment"], "properties": payload["properties"]}):
            notes.append("the API cannot change a connection's comment or properties: the target keeps its own")
        return applied(name, False if found is None else (True if change.target_key is None else None), owner, notes)

    def delete(self, ctx: SyncContext, change: Delete) -> None:
        api = ctx.target.client.connections
        delete_created(change, "connection", lambda: api.delete(change.target_key or change.key))


class CatalogsReplicator(_UcReplicator):
    kind = "catalogs"

    def apply(self, ctx: SyncContext, change: Upsert) -> Applied:
        check_blocked(change)
        payload, name = ctx.idmap.resolve(change.payload), change.key
        api = ctx.target.client.catalogs
        found = existing(lambda: api.get(name))
        check_metastore(change, found, f"catalog {name}")
        if found is None:
            body = {
                k: payload.get(k) or None
                for k in (
                    "comment",
                    "properties",
                    "storage_root",
                    "connection_name",
                    "options",
                    "share_name",
                    "provider_name",
                )
            }
            found = sdk_call(api.create, body, name=name).as_dict()
            adopted: bool | None = False
        else:
            immutable(f"catalog {name}", "storage_root", payload["storage_root"], found.get("storage_root"))
            adopted = True if change.target_key is None else None
        info = found
        if _differs(found, payload, ("comment", "properties", "isolation_mode")):
            body = {
                "comment": payload["comment"],
                "properties": payload["properties"],
                "isolation_mode": payload["isolation_mode"],
            }
            info = sdk_call(api.update, body, name=name).as_dict()
        owner = set_owner(
            ctx, lambda o: api.update(name, owner=o), f"catalog {name}", payload["owner"], info.get("owner")
        )
        return applied(name, adopted, owner)

    def delete(self, ctx: SyncContext, change: Delete) -> None:
        api = ctx.target.client.catalogs
        delete_created(change, "catalog", lambda: api.delete(change.target_key or change.key))


def _differs(found: dict[str, Any], payload: dict[str, Any], fields: tuple[str, ...]) -> bool:
    defaults: dict[str, Any] = {"comment": "", "properties": {}, "isolation_mode": "OPEN"}
    return any((found.get(f) or defaults[f]) != (payload.get(f) or defaults[f]) for f in fields)


def wait_for_schema(ctx: SyncContext, catalog: str, schema: str, what: str) -> None:
    """Blocked while the schema is not on the target (a GET: a create refused there would still be a write)."""
    if existing(lambda: ctx.target.client.schemas.get(f"{catalog}.{schema}")) is None:
        raise Blocked(
            f"{what} waits for schema {catalog}.{schema} on the target (the schemas kind creates it when its "
            "catalog is in metastore.catalogs)"
        )


class VolumesReplicator(_UcReplicator):
    kind = "volumes"

    def apply(self, ctx: SyncContext, change: Upsert) -> Applied:
        check_blocked(change)
        payload, name = change.payload, change.key
        api = ctx.target.client.volumes
        found = existing(lambda: api.read(name))
        check_metastore(change, found, f"volume {name}")
        if found is None:
            wait_for_schema(ctx, payload["catalog_name"], payload["schema_name"], f"volume {name}")
            info = api.create(
                payload["catalog_name"],
                payload["schema_name"],
                payload["name"],
                sdk_catalog.VolumeType(payload["volume_type"]),
                comment=payload["comment"] or None,
                storage_location=payload["storage_location"],
            ).as_dict()
            adopted: bool | None = False
        else:
            immutable(f"volume {name}", "volume_type", payload["volume_type"], found.get("volume_type"))
            if payload["volume_type"] == "EXTERNAL":
                immutable(
                    f"volume {name}", "storage_location", payload["storage_location"], found.get("storage_location")
                )
            info = found
            if (found.get("comment") or "") != payload["comment"]:
                info = api.update(name, comment=payload["comment"]).as_dict()
            adopted = True if change.target_key is None else None
        owner = set_owner(
            ctx, lambda o: api.update(name, owner=o), f"volume {name}", payload["owner"], info.get("owner")
        )
        return applied(name, adopted, owner)

    def delete(self, ctx: SyncContext, change: Delete) -> None:
        if (change.prior.payload or {}).get("volume_type", "MANAGED") != "EXTERNAL":
            raise Kept(f"managed volume {change.key} is kept on the target: deleting it would delete its files")
        api = ctx.target.client.volumes
        delete_created(change, "volume", lambda: api.delete(change.target_key or change.key))


class FunctionsReplicator(_UcReplicator):
    kind = "functions"

    def apply(self, ctx: SyncContext, change: Upsert) -> Applied:
        payload, name = change.payload, change.key
        api = ctx.target.client.functions
        found = existing(lambda: api.get(name))
        check_metastore(change, found, f"function {name}")
        recorded = change.target_key is not None
        adopted: bool | None = None if recorded else found is not None
        if found is not None and definition(found) != payload["definition"]:
            if not recorded or change.prior is None or change.prior.origin != "created":
                raise Permanent(
                    f"function {name} differs on the target and dbsync did not create it: drop it there (dbsync "
                    "creates it again) or make it equal by hand"
                )
            api.delete(name)  # the API cannot edit a function: dbsync's own copy is created again
            found = None
        if found is None:
            found = self._create(ctx, api, payload, name)
            adopted = False
        owner = set_owner(
            ctx, lambda o: api.update(name, owner=o), f"function {name}", payload["owner"], found.get("owner")
        )
        return applied(name, adopted, owner)

    @staticmethod
    def _create(ctx: SyncContext, api: Any, payload: dict[str, Any], name: str) -> dict[str, Any]:
        info = payload["definition"]
        wait_for_schema(ctx, info["catalog_name"], info["schema_name"], f"function {name}")
        return api.create(sdk_catalog.CreateFunction.from_dict(info)).as_dict()

    def delete(self, ctx: SyncContext, change: Delete) -> None:
        api = ctx.target.client.functions
        delete_created(change, "function", lambda: api.delete(change.target_key or change.key))


_REPLICATORS: dict[str, type[Replicator]] = {
    CONNECTIONS: ConnectionsReplicator,
    "catalogs": CatalogsReplicator,
    "volumes": VolumesReplicator,
    "functions": FunctionsReplicator,
}


def replicator_for(kind: str) -> Replicator:
    return _REPLICATORS[kind]()
