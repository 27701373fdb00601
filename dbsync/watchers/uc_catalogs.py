"""Unity Catalog connections, catalogs, volumes and functions, read through the UC REST API.

- **connections** (`name`): type, readable options, comment, properties, read-only. The service never answers
  secret options (a password, a client secret, a token): they come from `secrets.values_from` `env` or `file`,
  as the pseudo-scope `connections` with the key `<connection>/<option>` (variable
  `DBSYNC_SECRET__CONNECTIONS__<CONNECTION>_<OPTION>`); the payload keeps an HMAC of each (a rotated value is a
  change), never the value. Without such a source the connection is `blocked` naming the variable.
- **catalogs** (`name`): comment, properties, isolation mode, the storage root through `mapping.storage_urls`
  (none: the metastore's default storage; unmapped: `blocked`), a foreign catalog's connection (a reference)
  and options, a shared catalog's share and provider. System, sample and Hive catalogs are never replicated.
- **volumes** (`catalog.schema.volume`): type, comment; an external volume's storage location mapped (unmapped:
  `blocked`); a managed one's storage is the target's own.
- **functions** (`catalog.schema.function`): the whole definition as `functions/create` takes it.

Volumes and functions are listed per schema of each replicated managed catalog (one `schemas` listing per
catalog, shared by both kinds, then one listing per schema); the target is not listed for drift (that would
double those calls every cycle): a difference is found when the source changes, or by `dbsync validate`.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Iterable
from typing import Any

from dbsync import secret_values
from dbsync.context import SyncContext
from dbsync.declaration import Declaration
from dbsync.errors import Blocked, DbsyncError
from dbsync.model import ref
from dbsync.sdk import Service
from dbsync.secret_values import SecretValue, env_name, hmac_key, value_hmac
from dbsync.watchers.uc_common import BLOCKED, UcWatcher, catalogs, mapped_url, owner_of, schemas
from dbsync.workspace import Workspace

sdk_catalog = Service("catalog")  # imported when this kind first uses it (dbsync/sdk.py)

CONNECTIONS = "connections"
SCOPE = CONNECTIONS  # the pseudo-scope of connection secrets in secrets.values_from
# Secret options by connection type, when the readable options do not say (a client_id means client_secret).
_TYPE_SECRETS = {
    "DATABRICKS": "personalAccessToken",
    "BIGQUERY": "GoogleServiceAccountKeyJson",
    "HTTP": "bearer_token",
    "GLUE": None,
}


@functools.cache
def function_fields() -> tuple[str, ...]:
    """What `functions/create` takes (read at the first call: the SDK's catalog module loads then)."""
    return tuple(p for p in inspect.signature(sdk_catalog.CreateFunction).parameters)


def secret_options(connection_type: str, readable: dict[str, str]) -> list[str]:
    """The secret options a connection needs that its GET does not answer."""
    if any(k.lower() == "client_id" for k in readable):
        return ["client_secret"]
    if any(k.lower() == "user" for k in readable):
        return ["password"]
    secret = _TYPE_SECRETS.get(connection_type.upper(), "password")
    return [secret] if secret and secret not in readable else []


def secret_key(connection: str, option: str) -> str:
    """The key of one connection secret in the values source: `<connection>/<option>`."""
    return f"{connection}/{option}"


def read_secret(ctx: SyncContext, connection: str, option: str) -> SecretValue:
    """One connection secret from `secrets.values_from` (env or file); Blocked naming the setting otherwise."""
    source = secret_values.value_source(ctx)
    key = secret_key(connection, option)
    if not source.local:
        raise Blocked(
            f"the {option} of connection {connection} cannot be read from the API: set secrets.values_from to env "
            f"({env_name(SCOPE, key)}) or file ({SCOPE}: {{{key}: ...}})"
        )
    return source.read(ctx, SCOPE, key)


class ConnectionsWatcher(UcWatcher):
    kind = CONNECTIONS
    uc_securable = "CONNECTION"
    declaration = Declaration(interval=600, link="{host}/explore/connections/{key}")

    def raw_items(self, ctx: SyncContext, ws: Workspace) -> Iterable[dict[str, Any]]:
        return (info.as_dict() for info in ws.client.connections.list())

    def read_one(self, ws: Workspace, key: str) -> object:
        return ws.client.connections.get(key)

    def normalize(self, ctx: SyncContext, ws: Workspace, raw: dict[str, Any]) -> dict[str, Any]:
        name = str(raw.get("name") or "").lower()
        kind = str(raw.get("connection_type") or "")
        readable = dict(raw.get("options") or {})
        payload: dict[str, Any] = {
            "name": name,
            "connection_type": kind,
            "options": readable,
            "comment": raw.get("comment") or "",
            "properties": raw.get("properties") or {},
            "read_only": bool(raw.get("read_only", True)),
            "owner": owner_of(ctx, raw),
            "secrets": {},
            BLOCKED: None,
        }
        needed = secret_options(kind, readable)
        if ws.side != "source" or not needed:
            return payload  # the target's secrets are never read
        key = hmac_key(ctx)  # listing runs on the thread that owns the store, where the key may be made
        try:
            payload["secrets"] = {
                o: value_hmac(key, SCOPE, secret_key(name, o), read_secret(ctx, name, o)) for o in needed
            }
        except DbsyncError as err:  # Blocked, or a value missing from the file or environment
            payload[BLOCKED] = str(err)
        return payload


class CatalogsWatcher(UcWatcher):
    kind = "catalogs"
    uc_securable = "CATALOG"
    declaration = Declaration(interval=600, link="{host}/explore/data/{key}")

    def raw_items(self, ctx: SyncContext, ws: Workspace) -> Iterable[dict[str, Any]]:
        return catalogs(ctx, ws)

    def read_one(self, ws: Workspace, key: str) -> object:
        return ws.client.catalogs.get(key)

    def normalize(self, ctx: SyncContext, ws: Workspace, raw: dict[str, Any]) -> dict[str, Any]:
        name = str(raw.get("name") or "").lower()
        root, blocked = mapped_url(ctx, f"catalog {name}'s storage root", raw.get("storage_root"))
        payload: dict[str, Any] = {
            "name": name,
            "catalog_type": raw.get("catalog_type") or "MANAGED_CATALOG",
            "comment": raw.get("comment") or "",
            "properties": raw.get("properties") or {},
            "isolation_mode": raw.get("isolation_mode") or "OPEN",
            "storage_root": root,
            "owner": owner_of(ctx, raw),
            BLOCKED: blocked,
        }
        if raw.get("connection_name"):
            payload["connection_name"] = ref(CONNECTIONS, str(raw["connection_name"]).lower())
            payload["options"] = raw.get("options") or {}
        for field in ("share_name", "provider_name"):
            if raw.get(field):
                payload[field] = raw[field]
        return payload


class VolumesWatcher(UcWatcher):
    kind = "volumes"
    uc_securable = "VOLUME"
    drift_check = False  # listing the target costs one call per schema
    declaration = Declaration(interval=600)

    def raw_items(self, ctx: SyncContext, ws: Workspace) -> Iterable[dict[str, Any]]:
        for catalog, schema in schemas(ctx, ws):
            for info in ws.client.volumes.list(catalog_name=catalog, schema_name=schema):
                yield info.as_dict()

    def read_one(self, ws: Workspace, key: str) -> object:
        return ws.client.volumes.read(key)

    def normalize(self, ctx: SyncContext, ws: Workspace, raw: dict[str, Any]) -> dict[str, Any]:
        full_name = self.key(raw)
        volume_type = str(raw.get("volume_type") or "MANAGED")
        location, blocked = None, None
        if volume_type == "EXTERNAL":
            location, blocked = mapped_url(ctx, f"external volume {full_name}", raw.get("storage_location"))
        return {
            "catalog_name": str(raw.get("catalog_name") or "").lower(),
            "schema_name": str(raw.get("schema_name") or "").lower(),
            "name": str(raw.get("name") or "").lower(),
            "volume_type": volume_type,
            "storage_location": location,
            "comment": raw.get("comment") or "",
            "owner": owner_of(ctx, raw),
            BLOCKED: blocked,
        }


class FunctionsWatcher(UcWatcher):
    kind = "functions"
    uc_securable = "FUNCTION"
    drift_check = False  # listing the target costs one call per schema
    declaration = Declaration(interval=600)

    def raw_items(self, ctx: SyncContext, ws: Workspace) -> Iterable[dict[str, Any]]:
        for catalog, schema in schemas(ctx, ws):
            for info in ws.client.functions.list(catalog_name=catalog, schema_name=schema):
                yield info.as_dict()

    def read_one(self, ws: Workspace, key: str) -> object:
        return ws.client.functions.get(key)

    def normalize(self, ctx: SyncContext, ws: Workspace, raw: dict[str, Any]) -> dict[str, Any]:
        return {"definition": definition(raw), "owner": owner_of(ctx, raw), BLOCKED: None}


def definition(raw: dict[str, Any]) -> dict[str, Any]:
    """A function as `functions/create` takes it (what the service made itself left out)."""
    out = {k: raw[k] for k in function_fields() if raw.get(k) is not None}
    for field in ("name", "catalog_name", "schema_name"):
        out[field] = str(out.get(field) or "").lower()
    out.setdefault("input_params", {})
    return out


_WATCHERS = {
    CONNECTIONS: ConnectionsWatcher,
    "catalogs": CatalogsWatcher,
    "volumes": VolumesWatcher,
    "functions": FunctionsWatcher,
}


def watcher_for(kind: str) -> UcWatcher:
    return _WATCHERS[kind]()
