"""Unity Catalog securables over REST (`/api/2.1/unity-catalog/...`): catalogs, schemas, storage
credentials, external locations, functions, connections, grants and effective permissions.

Shapes follow databricks-sdk `service/catalog.py` (CatalogsAPI, SchemasAPI, StorageCredentialsAPI,
ExternalLocationsAPI, FunctionsAPI, ConnectionsAPI, GrantsAPI).

**One metastore.** Catalogs and schemas are the SQL engine's (tables "sql_catalogs" / "sql_schemas"), so
`CREATE CATALOG` in SQL and `POST /catalogs` see the same objects, `ALTER ... OWNER TO` and `PATCH
{owner}` change the same owner, and grants on catalogs, schemas and tables live in the SQL engine's
"sql_grants" (privileges stored as SQL writes them, `USE CATALOG`; REST answers `USE_CATALOG`), so
`SHOW GRANTS` and `GET /permissions` agree. `hive_metastore` is not a Unity Catalog catalog here (404),
as for volumes. Volumes stay in `volumes` (table "uc_volumes"); this module adds their grants. The other
securables live in "uc_storage_credentials", "uc_external_locations", "uc_functions" and
"uc_connections"; their grants in "uc_grants" ((TYPE, full name) → [{"principal", "action_type"}]).

- names are stored lower-case; duplicates are 409 <KIND>_ALREADY_EXISTS, missing objects 404
  <KIND>_DOES_NOT_EXIST (the SDK maps both by status).
- lists: without `max_results` everything in one answer; `max_results=0` (what the SDK sends) pages
  at the server's page size with `next_page_token`; a negative value is a 400.
- a catalog's or schema's `storage_root` and an external location's `url` must be cloud URLs; a storage
  root must lie under an external location; two external locations may not overlap; an external
  location names an existing storage credential.
- secrets are write-only: storage credentials never answer `client_secret` / `secret_access_key`;
  connections answer their options without the secret ones (password, client_secret, tokens, keys).
- grants: `GET/PATCH /permissions/{type}/{full_name}` (`changes: [{principal, add, remove}]`), privileges
  checked against the securable type, principals must exist (user name, group display name or service
  principal application id; 404 PRINCIPAL_DOES_NOT_EXIST); `/effective-permissions/...` adds what the
  schema and catalog grant, with `inherited_from_type` / `inherited_from_name`. Owners change through
  each securable's PATCH `owner` (the owner is not a grant, as in the service).
- delete: a non-empty catalog or schema, or a credential used by an external location, is refused
  unless `force=true`.

Not modelled: renaming (`new_name` is refused), tables over REST, metastores and metastore
assignments, workspace bindings (`isolation_mode` is stored only), credential validation, BROWSE
filtering, foreign catalogs' remote objects, registered models in Unity Catalog.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from dbsync_emulator import sqlengine
from dbsync_emulator.apis import permissions, volumes
from dbsync_emulator.apis._paging import page
from dbsync_emulator.errors import ApiError, invalid, invalid_state
from dbsync_emulator.router import Request, Routes
from dbsync_emulator.state import Workspace

routes = Routes()

P = "/api/2.1/unity-catalog"
CREDENTIALS = "uc_storage_credentials"
LOCATIONS = "uc_external_locations"
FUNCTIONS = "uc_functions"
CONNECTIONS = "uc_connections"
GRANTS = "uc_grants"
SERVER_PAGE = 50
GRANTS_MIN_PAGE = 150
CLOUD_SCHEMES = ("s3://", "abfss://", "gs://", "r2://")
SYSTEM_SCHEMAS = ("information_schema",)
SECRET_OPTIONS = (
    "password",
    "client_secret",
    "pem_private_key",
    "pem_private_key_password",
    "personalaccesstoken",
    "access_token",
    "refresh_token",
    "token",
    "googleserviceaccountkeyjson",
)
CREDENTIAL_KINDS = (
    "aws_iam_role",
    "azure_managed_identity",
    "azure_service_principal",
    "databricks_gcp_service_account",
    "cloudflare_api_token",
)
CREDENTIAL_SECRETS = {"azure_service_principal": "client_secret", "cloudflare_api_token": "secret_access_key"}
CONNECTION_TYPES = (
    "BIGQUERY",
    "DATABRICKS",
    "GLUE",
    "HIVE_METASTORE",
    "HTTP",
    "MYSQL",
    "ORACLE",
    "POSTGRESQL",
    "REDSHIFT",
    "SALESFORCE",
    "SNOWFLAKE",
    "SQLDW",
    "SQLSERVER",
    "TERADATA",
)
_DATA = ("APPLY_TAG", "BROWSE", "EXECUTE", "MANAGE", "MODIFY", "READ_VOLUME", "REFRESH", "SELECT", "WRITE_VOLUME")
_CREATES = ("CREATE_FUNCTION", "CREATE_MATERIALIZED_VIEW", "CREATE_MODEL", "CREATE_TABLE", "CREATE_VOLUME")
PRIVILEGES: dict[str, tuple[str, ...]] = {
    "CATALOG": ("ALL_PRIVILEGES", "USE_CATALOG", "USE_SCHEMA", "CREATE_SCHEMA", *_CREATES, *_DATA),
    "SCHEMA": ("ALL_PRIVILEGES", "USE_SCHEMA", *_CREATES, *_DATA),
    "TABLE": ("ALL_PRIVILEGES", "APPLY_TAG", "MANAGE", "MODIFY", "SELECT"),
    "VOLUME": ("ALL_PRIVILEGES", "APPLY_TAG", "MANAGE", "READ_VOLUME", "WRITE_VOLUME"),
    "FUNCTION": ("ALL_PRIVILEGES", "EXECUTE", "MANAGE"),
    "STORAGE_CREDENTIAL": (
        "ALL_PRIVILEGES",
        "CREATE_EXTERNAL_LOCATION",
        "CREATE_EXTERNAL_TABLE",
        "MANAGE",
        "READ_FILES",
        "WRITE_FILES",
    ),
    "EXTERNAL_LOCATION": (
        "ALL_PRIVILEGES",
        "BROWSE",
        "CREATE_EXTERNAL_TABLE",
        "CREATE_EXTERNAL_VOLUME",
        "CREATE_MANAGED_STORAGE",
        "MANAGE",
        "READ_FILES",
        "WRITE_FILES",
    ),
    "CONNECTION": ("ALL_PRIVILEGES", "CREATE_FOREIGN_CATALOG", "MANAGE", "USE_CONNECTION"),
}


# -- shared helpers ---------------------------------------------------------------------------------
def _missing(kind: str, name: str) -> ApiError:
    return ApiError(404, f"{kind}_DOES_NOT_EXIST", f"{kind.replace('_', ' ').title()} '{name}' does not exist.")


def _taken(kind: str, name: str) -> ApiError:
    return ApiError(409, f"{kind}_ALREADY_EXISTS", f"{kind.replace('_', ' ').title()} '{name}' already exists.")


def _metastore_id(ws: Workspace) -> str:
    # A test may give two workspaces one metastore id (`ws.metastore_id`): the ids match, the objects stay apart.
    assigned = getattr(ws, "metastore_id", None)
    return assigned or str(uuid.uuid5(uuid.NAMESPACE_URL, f"dbsync-emulator/{ws.workspace_id}/metastore"))


def _new_id(ws: Workspace, kind: str, name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"dbsync-emulator/{ws.workspace_id}/{kind}/{name}/{ws.now_ms()}"))


def _name(value: Any, field: str = "name") -> str:
    if not isinstance(value, str) or not value.strip():
        raise invalid(f"Missing required field: {field}")
    if "." in value or "/" in value:
        raise invalid(f"Invalid {field} '{value}': names cannot contain '.' or '/'")
    return value.lower()


def _no_rename(body: dict, current: str) -> None:
    if body.get("new_name") not in (None, "", current):
        raise invalid("Renaming is not supported by this emulator: create the new object and move what it holds")


def _check_owner(ws: Workspace, owner: Any) -> str:
    if not isinstance(owner, str) or not _principal_exists(ws, owner):
        raise ApiError(404, "PRINCIPAL_DOES_NOT_EXIST", f"Could not find principal with name {owner}")
    return owner


def _principal_exists(ws: Workspace, name: str) -> bool:
    return any(permissions.principal_exists(ws, kind, name) for kind in permissions.PRINCIPAL_TYPES)


def _stamp(ws: Workspace, record: dict, created: bool = False) -> None:
    now = ws.now_ms()
    if created:
        record["created_at"], record["created_by"] = now, ws.admin_user
    record["updated_at"], record["updated_by"] = now, ws.admin_user


def _lookup(ws: Workspace, table: str, securable: str, name: str) -> dict:
    """A top-level securable by name (names are case-insensitive), or its 404."""
    record = ws.table(table).get(name.lower())
    if record is None:
        raise _missing(securable, name)
    return record


def _keep_new(ws: Workspace, table: str, record: dict, body: dict) -> dict:
    """Store a securable just created: its comment when one was given, its created/updated stamps."""
    if body.get("comment"):
        record["comment"] = body["comment"]
    _stamp(ws, record, created=True)
    ws.table(table)[record["name"]] = record
    return record


def _patch(ws: Workspace, record: dict, body: dict, fields: tuple[str, ...] = (), maps: tuple[str, ...] = ()) -> None:
    """What every securable's PATCH takes alike: no rename, an owner that exists, plain fields and maps given."""
    _no_rename(body, record["name"])
    if body.get("owner") is not None:
        record["owner"] = _check_owner(ws, body["owner"])
    for key in fields:
        if body.get(key) is not None:
            record[key] = body[key]
    for key in maps:
        if body.get(key) is not None:
            record[key] = dict(body[key])


def _list_table(ws: Workspace, req: Request, table: str, render: Any, key: str) -> dict:
    """A top-level securable's listing: every record rendered, by name, paged as UC pages."""
    records = ws.table(table)
    return _list_page(req, [render(ws, records[n]) for n in sorted(records)], key)


def _drop(ws: Workspace, table: str, securable: str, key: str) -> dict:
    """Delete a securable and the grants on it."""
    del ws.table(table)[key]
    ws.table(GRANTS).pop((securable, key), None)
    return {}


def _list_page(req: Request, items: list[Any], key: str) -> dict:
    """UC list paging: no max_results → all; 0 → server page; > 0 → min(value, server page)."""
    size = req.int_arg("max_results")
    if size is not None and size < 0:
        raise invalid("max_results must be greater than or equal to 0")
    if size is None and not req.arg("page_token"):
        return {key: items}
    size = SERVER_PAGE if not size else min(size, SERVER_PAGE)
    chunk, token = page(items, size, req.arg("page_token"))
    body: dict[str, Any] = {key: chunk}
    if token:
        body["next_page_token"] = token
    return body


def _cloud_url(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value.startswith(CLOUD_SCHEMES):
        raise invalid(f"{field} must be a cloud storage URL ({', '.join(CLOUD_SCHEMES)}): {value!r}")
    return value.rstrip("/")


def _under(url: str, root: str) -> bool:
    return url == root or url.startswith(root.rstrip("/") + "/")


def _check_storage_root(ws: Workspace, root: Any, field: str = "storage_root") -> str:
    url = _cloud_url(root, field)
    if not any(_under(url, loc["url"]) for loc in ws.table(LOCATIONS).values()):
        raise invalid(f"{field} {url} is not under any external location: create the external location first")
    return url


# -- catalogs (the SQL engine's records) ----------------------------------------------------------------
def _catalog(ws: Workspace, name: str) -> dict:
    sqlengine.init_metastore(ws)
    record = ws.table(sqlengine.CATALOGS).get(name.lower())
    if record is None or name.lower() == sqlengine.HIVE_METASTORE:
        raise _missing("CATALOG", name)
    return record


def render_catalog(ws: Workspace, record: dict) -> dict:
    out: dict[str, Any] = {
        "name": record["name"],
        "full_name": record["name"],
        "owner": record.get("owner"),
        "catalog_type": record.get("type") or "MANAGED_CATALOG",
        "isolation_mode": record.get("isolation_mode", "OPEN"),
        "metastore_id": _metastore_id(ws),
        "securable_type": "CATALOG",
        "browse_only": False,
        "created_at": record.get("created_at"),
        "created_by": record.get("created_by", record.get("owner")),
        "updated_at": record.get("updated_at", record.get("created_at")),
        "updated_by": record.get("updated_by", record.get("owner")),
        "properties": record.get("properties") or {},
    }
    for key in ("comment", "storage_root", "connection_name", "share_name", "provider_name", "options"):
        if record.get(key):
            out[key] = record[key]
    if record.get("storage_root"):
        out["storage_location"] = f"{record['storage_root']}/__unitystorage/catalogs/{record.get('id', '')}"
    return {k: v for k, v in out.items() if v is not None}


@routes.post(f"{P}/catalogs")
def create_catalog(ws: Workspace, req: Request) -> dict:
    body = req.json
    name = _name(body.get("name"))
    sqlengine.init_metastore(ws)
    if name in ws.table(sqlengine.CATALOGS):
        raise _taken("CATALOG", name)
    kind = "MANAGED_CATALOG"
    extras: dict[str, Any] = {"id": _new_id(ws, "catalog", name), "properties": dict(body.get("properties") or {})}
    if body.get("storage_root"):
        extras["storage_root"] = _check_storage_root(ws, body["storage_root"])
    if body.get("connection_name"):
        _connection(ws, str(body["connection_name"]))
        kind, extras["connection_name"] = "FOREIGN_CATALOG", str(body["connection_name"]).lower()
        extras["options"] = dict(body.get("options") or {})
    elif body.get("share_name"):
        kind = "DELTASHARING_CATALOG"
        extras["share_name"], extras["provider_name"] = body["share_name"], body.get("provider_name")
    # The SQL engine's own constructors keep one record shape for SQL- and REST-created catalogs.
    record = sqlengine._put_catalog(ws, name, kind, ws.admin_user, body.get("comment"))
    record.update(extras)
    _stamp(ws, record, created=True)
    sqlengine._put_schema(ws, name, "default", ws.admin_user, "Default schema (auto-created)")
    sqlengine._put_schema(ws, name, "information_schema", "System user", "Information schema")
    return render_catalog(ws, record)


@routes.get(f"{P}/catalogs")
def list_catalogs(ws: Workspace, req: Request) -> dict:
    sqlengine.init_metastore(ws)
    names = sorted(n for n in ws.table(sqlengine.CATALOGS) if n != sqlengine.HIVE_METASTORE)
    items = [render_catalog(ws, ws.table(sqlengine.CATALOGS)[n]) for n in names]
    return _list_page(req, items, "catalogs")


@routes.get(f"{P}/catalogs/{{name}}")
def get_catalog(ws: Workspace, req: Request) -> dict:
    return render_catalog(ws, _catalog(ws, req.path_params["name"]))


@routes.patch(f"{P}/catalogs/{{name}}")
def update_catalog(ws: Workspace, req: Request) -> dict:
    record = _catalog(ws, req.path_params["name"])
    body = req.json
    if body.get("isolation_mode") not in (None, "OPEN", "ISOLATED"):
        raise invalid("isolation_mode must be OPEN or ISOLATED")
    _patch(ws, record, body, fields=("comment", "isolation_mode"), maps=("properties", "options"))
    _stamp(ws, record)
    return render_catalog(ws, record)


def _schema_objects(ws: Workspace, catalog: str, schema: str) -> int:
    relations = len(ws.table(sqlengine.RELATIONS).get((catalog, schema), {}))
    prefix = f"{catalog}.{schema}."
    held = [k for t in (volumes.VOLUMES, FUNCTIONS) for k in ws.table(t) if k.startswith(prefix)]
    return relations + len(held)


def _drop_schema(ws: Workspace, catalog: str, schema: str) -> None:
    from dbsync_emulator.apis import files

    prefix = f"{catalog}.{schema}."
    for key in [k for k in ws.table(volumes.VOLUMES) if k.startswith(prefix)]:
        files.drop_volume(ws, ws.table(volumes.VOLUMES).pop(key))
        ws.table(GRANTS).pop(("VOLUME", key), None)
    for key in [k for k in ws.table(FUNCTIONS) if k.startswith(prefix)]:
        del ws.table(FUNCTIONS)[key]
        ws.table(GRANTS).pop(("FUNCTION", key), None)
    grants = ws.table(sqlengine.GRANTS)
    for name in ws.table(sqlengine.RELATIONS).pop((catalog, schema), {}):
        grants.pop(("TABLE", catalog, schema, name), None)
    grants.pop(("DATABASE", catalog, schema, None), None)
    ws.table(sqlengine.SCHEMAS).get(catalog, {}).pop(schema, None)


@routes.delete(f"{P}/catalogs/{{name}}")
def delete_catalog(ws: Workspace, req: Request) -> dict:
    record = _catalog(ws, req.path_params["name"])
    name = record["name"]
    schemas = list(ws.table(sqlengine.SCHEMAS).get(name, {}))
    busy = [s for s in schemas if s not in ("default", *SYSTEM_SCHEMAS)] or _schema_objects(ws, name, "default")
    if busy and not req.bool_arg("force"):
        raise invalid_state(f"Catalog '{name}' is not empty: delete what it holds first, or pass force=true")
    for schema in schemas:
        _drop_schema(ws, name, schema)
    ws.table(sqlengine.GRANTS).pop(("CATALOG", name, None, None), None)
    ws.table(sqlengine.SCHEMAS).pop(name, None)
    del ws.table(sqlengine.CATALOGS)[name]
    return {}


# -- schemas --------------------------------------------------------------------------------------------
def _split(full_name: str, parts: int, kind: str) -> list[str]:
    names = full_name.lower().split(".")
    if len(names) != parts or not all(names):
        raise invalid(f"Invalid {kind.lower()} full name '{full_name}': expected {parts} dot-separated parts")
    return names


def _schema(ws: Workspace, full_name: str) -> dict:
    catalog, schema = _split(full_name, 2, "SCHEMA")
    _catalog(ws, catalog)
    record = ws.table(sqlengine.SCHEMAS).get(catalog, {}).get(schema)
    if record is None:
        raise _missing("SCHEMA", full_name)
    return record


def render_schema(ws: Workspace, record: dict) -> dict:
    catalog = ws.table(sqlengine.CATALOGS)[record["catalog"]]
    out: dict[str, Any] = {
        "name": record["name"],
        "catalog_name": record["catalog"],
        "full_name": f"{record['catalog']}.{record['name']}",
        "owner": record.get("owner"),
        "catalog_type": catalog.get("type") or "MANAGED_CATALOG",
        "metastore_id": _metastore_id(ws),
        "schema_id": record.get("id") or str(uuid.uuid5(uuid.NAMESPACE_URL, f"{record['catalog']}.{record['name']}")),
        "properties": record.get("properties") or {},
        "created_at": record.get("created_at"),
        "created_by": record.get("created_by", record.get("owner")),
        "updated_at": record.get("updated_at", record.get("created_at")),
        "updated_by": record.get("updated_by", record.get("owner")),
        "browse_only": False,
    }
    if record.get("comment"):
        out["comment"] = record["comment"]
    if record.get("storage_root"):
        out["storage_root"] = record["storage_root"]
        out["storage_location"] = f"{record['storage_root']}/__unitystorage/schemas/{out['schema_id']}"
    return {k: v for k, v in out.items() if v is not None}


@routes.post(f"{P}/schemas")
def create_schema(ws: Workspace, req: Request) -> dict:
    body = req.json
    catalog = _catalog(ws, str(req.require("catalog_name")))["name"]
    name = _name(body.get("name"))
    if name in ws.table(sqlengine.SCHEMAS).get(catalog, {}):
        raise _taken("SCHEMA", f"{catalog}.{name}")
    root = _check_storage_root(ws, body["storage_root"]) if body.get("storage_root") else None
    record = sqlengine._put_schema(
        ws, catalog, name, ws.admin_user, body.get("comment"), properties=dict(body.get("properties") or {})
    )
    record.update(id=_new_id(ws, "schema", f"{catalog}.{name}"), storage_root=root)
    _stamp(ws, record, created=True)
    return render_schema(ws, record)


@routes.get(f"{P}/schemas")
def list_schemas(ws: Workspace, req: Request) -> dict:
    catalog = _catalog(ws, str(req.require("catalog_name")))["name"]
    records = ws.table(sqlengine.SCHEMAS).get(catalog, {})
    return _list_page(req, [render_schema(ws, records[n]) for n in sorted(records)], "schemas")


@routes.get(f"{P}/schemas/{{full_name}}")
def get_schema(ws: Workspace, req: Request) -> dict:
    return render_schema(ws, _schema(ws, req.path_params["full_name"]))


@routes.patch(f"{P}/schemas/{{full_name}}")
def update_schema(ws: Workspace, req: Request) -> dict:
    record = _schema(ws, req.path_params["full_name"])
    _patch(ws, record, req.json, fields=("comment",), maps=("properties",))
    _stamp(ws, record)
    return render_schema(ws, record)


@routes.delete(f"{P}/schemas/{{full_name}}")
def delete_schema(ws: Workspace, req: Request) -> dict:
    record = _schema(ws, req.path_params["full_name"])
    catalog, name = record["catalog"], record["name"]
    if name in SYSTEM_SCHEMAS:
        raise invalid(f"Schema '{catalog}.{name}' is a system schema and cannot be deleted")
    if _schema_objects(ws, catalog, name) and not req.bool_arg("force"):
        raise invalid_state(f"Schema '{catalog}.{name}' is not empty: delete what it holds first, or pass force=true")
    _drop_schema(ws, catalog, name)
    return {}


# -- storage credentials ------------------------------------------------------------------------------------
def _credential(ws: Workspace, name: str) -> dict:
    return _lookup(ws, CREDENTIALS, "STORAGE_CREDENTIAL", name)


def _identity(ws: Workspace, body: dict, name: str) -> tuple[str, dict]:
    kinds = [k for k in CREDENTIAL_KINDS if body.get(k) is not None]
    if len(kinds) != 1:
        raise invalid(f"A storage credential needs exactly one of {', '.join(CREDENTIAL_KINDS)}")
    kind, identity = kinds[0], dict(body[kinds[0]])
    required = {
        "aws_iam_role": ("role_arn",),
        "azure_managed_identity": ("access_connector_id",),
        "azure_service_principal": ("directory_id", "application_id", "client_secret"),
        "cloudflare_api_token": ("account_id", "access_key_id", "secret_access_key"),
    }.get(kind, ())
    for field in required:
        if not identity.get(field):
            raise invalid(f"{kind}.{field} is required")
    if kind == "aws_iam_role":
        identity.setdefault("external_id", str(uuid.uuid5(uuid.NAMESPACE_URL, f"{ws.workspace_id}/{name}")))
        identity.setdefault("unity_catalog_iam_arn", "arn:aws:iam::414351767826:role/unity-catalog-emulator")
    if kind == "databricks_gcp_service_account":
        identity.setdefault("email", f"db-uc-{ws.random_hex(8)}@uc-emulator.iam.gserviceaccount.com")
    return kind, identity


def render_credential(ws: Workspace, record: dict) -> dict:
    out = {k: v for k, v in record.items() if k not in ("identity_kind", "identity")}
    identity = dict(record["identity"])
    identity.pop(CREDENTIAL_SECRETS.get(record["identity_kind"], ""), None)  # write-only
    out[record["identity_kind"]] = identity
    out["metastore_id"] = _metastore_id(ws)
    out["full_name"] = record["name"]
    return out


@routes.post(f"{P}/storage-credentials")
def create_credential(ws: Workspace, req: Request) -> dict:
    body = req.json
    name = _name(body.get("name"))
    if name in ws.table(CREDENTIALS):
        raise _taken("STORAGE_CREDENTIAL", name)
    kind, identity = _identity(ws, body, name)
    record = {
        "name": name,
        "id": _new_id(ws, "credential", name),
        "owner": ws.admin_user,
        "read_only": bool(body.get("read_only", False)),
        "isolation_mode": "ISOLATION_MODE_OPEN",
        "identity_kind": kind,
        "identity": identity,
    }
    return render_credential(ws, _keep_new(ws, CREDENTIALS, record, body))


@routes.get(f"{P}/storage-credentials")
def list_credentials(ws: Workspace, req: Request) -> dict:
    return _list_table(ws, req, CREDENTIALS, render_credential, "storage_credentials")


@routes.get(f"{P}/storage-credentials/{{name}}")
def get_credential(ws: Workspace, req: Request) -> dict:
    return render_credential(ws, _credential(ws, req.path_params["name"]))


@routes.patch(f"{P}/storage-credentials/{{name}}")
def update_credential(ws: Workspace, req: Request) -> dict:
    record = _credential(ws, req.path_params["name"])
    body = req.json
    _patch(ws, record, body, fields=("comment", "read_only"))
    if any(body.get(k) is not None for k in CREDENTIAL_KINDS):
        record["identity_kind"], record["identity"] = _identity(ws, body, record["name"])
    _stamp(ws, record)
    return render_credential(ws, record)


@routes.delete(f"{P}/storage-credentials/{{name}}")
def delete_credential(ws: Workspace, req: Request) -> dict:
    record = _credential(ws, req.path_params["name"])
    users = sorted(n for n, loc in ws.table(LOCATIONS).items() if loc["credential_name"] == record["name"])
    if users and not req.bool_arg("force"):
        raise invalid_state(
            f"Storage credential '{record['name']}' is used by external location(s) {', '.join(users)}: "
            "delete them first, or pass force=true"
        )
    return _drop(ws, CREDENTIALS, "STORAGE_CREDENTIAL", record["name"])


# -- external locations ------------------------------------------------------------------------------------
def _location(ws: Workspace, name: str) -> dict:
    return _lookup(ws, LOCATIONS, "EXTERNAL_LOCATION", name)


def _check_overlap(ws: Workspace, url: str, skip: str | None = None) -> None:
    for other in ws.table(LOCATIONS).values():
        if other["name"] != skip and (_under(url, other["url"]) or _under(other["url"], url)):
            raise invalid(f"Input path url '{url}' overlaps with an existing external location '{other['name']}'")


def render_location(ws: Workspace, record: dict) -> dict:
    credential = ws.table(CREDENTIALS).get(record["credential_name"])
    out = dict(record)
    out["credential_id"] = credential["id"] if credential else None
    out["metastore_id"] = _metastore_id(ws)
    out["browse_only"] = False
    return {k: v for k, v in out.items() if v is not None}


@routes.post(f"{P}/external-locations")
def create_location(ws: Workspace, req: Request) -> dict:
    body = req.json
    name = _name(body.get("name"))
    if name in ws.table(LOCATIONS):
        raise _taken("EXTERNAL_LOCATION", name)
    url = _cloud_url(body.get("url"), "url")
    credential = _credential(ws, str(req.require("credential_name")))
    _check_overlap(ws, url)
    record = {
        "name": name,
        "url": url,
        "credential_name": credential["name"],
        "owner": ws.admin_user,
        "read_only": bool(body.get("read_only", False)),
        "fallback": bool(body.get("fallback", False)),
        "isolation_mode": "ISOLATION_MODE_OPEN",
    }
    return render_location(ws, _keep_new(ws, LOCATIONS, record, body))


@routes.get(f"{P}/external-locations")
def list_locations(ws: Workspace, req: Request) -> dict:
    return _list_table(ws, req, LOCATIONS, render_location, "external_locations")


@routes.get(f"{P}/external-locations/{{name}}")
def get_location(ws: Workspace, req: Request) -> dict:
    return render_location(ws, _location(ws, req.path_params["name"]))


@routes.patch(f"{P}/external-locations/{{name}}")
def update_location(ws: Workspace, req: Request) -> dict:
    record = _location(ws, req.path_params["name"])
    body = req.json
    _patch(ws, record, body, fields=("comment", "read_only", "fallback"))
    if body.get("url") is not None:
        url = _cloud_url(body["url"], "url")
        _check_overlap(ws, url, skip=record["name"])
        record["url"] = url
    if body.get("credential_name") is not None:
        record["credential_name"] = _credential(ws, str(body["credential_name"]))["name"]
    _stamp(ws, record)
    return render_location(ws, record)


@routes.delete(f"{P}/external-locations/{{name}}")
def delete_location(ws: Workspace, req: Request) -> dict:
    record = _location(ws, req.path_params["name"])
    return _drop(ws, LOCATIONS, "EXTERNAL_LOCATION", record["name"])


# -- functions -----------------------------------------------------------------------------------------
FUNCTION_REQUIRED = (
    "name",
    "catalog_name",
    "schema_name",
    "input_params",
    "data_type",
    "full_data_type",
    "routine_body",
    "routine_definition",
    "parameter_style",
    "is_deterministic",
    "sql_data_access",
    "is_null_call",
    "security_type",
    "specific_name",
)


def _function(ws: Workspace, full_name: str) -> dict:
    key = ".".join(_split(full_name, 3, "FUNCTION"))
    record = ws.table(FUNCTIONS).get(key)
    if record is None:
        raise _missing("FUNCTION", full_name)
    return record


@routes.post(f"{P}/functions")
def create_function(ws: Workspace, req: Request) -> dict:
    info = req.json.get("function_info")
    if not isinstance(info, dict):
        raise invalid("Missing required field: function_info")
    for field in FUNCTION_REQUIRED:
        if info.get(field) is None:
            raise invalid(f"Missing required field: function_info.{field}")
    if info["routine_body"] not in ("SQL", "EXTERNAL"):
        raise invalid("routine_body must be SQL or EXTERNAL")
    schema = _schema(ws, f"{info['catalog_name']}.{info['schema_name']}")
    name = _name(info["name"])
    key = f"{schema['catalog']}.{schema['name']}.{name}"
    if key in ws.table(FUNCTIONS):
        raise _taken("FUNCTION", key)
    record = {
        **info,
        "name": name,
        "catalog_name": schema["catalog"],
        "schema_name": schema["name"],
        "full_name": key,
        "function_id": _new_id(ws, "function", key),
        "owner": ws.admin_user,
        "metastore_id": _metastore_id(ws),
    }
    _stamp(ws, record, created=True)
    ws.table(FUNCTIONS)[key] = record
    return record


@routes.get(f"{P}/functions")
def list_functions(ws: Workspace, req: Request) -> dict:
    schema = _schema(ws, f"{req.require('catalog_name')}.{req.require('schema_name')}")
    prefix = f"{schema['catalog']}.{schema['name']}."
    items = [v for k, v in sorted(ws.table(FUNCTIONS).items()) if k.startswith(prefix)]
    return _list_page(req, items, "functions")


@routes.get(f"{P}/functions/{{name}}")
def get_function(ws: Workspace, req: Request) -> dict:
    return _function(ws, req.path_params["name"])


@routes.patch(f"{P}/functions/{{name}}")
def update_function(ws: Workspace, req: Request) -> dict:
    record = _function(ws, req.path_params["name"])
    if req.json.get("owner") is not None:
        record["owner"] = _check_owner(ws, req.json["owner"])
    _stamp(ws, record)
    return record


@routes.delete(f"{P}/functions/{{name}}")
def delete_function(ws: Workspace, req: Request) -> dict:
    record = _function(ws, req.path_params["name"])
    return _drop(ws, FUNCTIONS, "FUNCTION", record["full_name"])


# -- connections ------------------------------------------------------------------------------------------
def _connection(ws: Workspace, name: str) -> dict:
    return _lookup(ws, CONNECTIONS, "CONNECTION", name)


def _check_options(options: Any) -> dict:
    if not isinstance(options, dict) or not all(isinstance(v, str) for v in options.values()):
        raise invalid("options is required and must map option names to strings")
    return dict(options)


def render_connection(ws: Workspace, record: dict) -> dict:
    """A connection as GET answers it: secret options (passwords, tokens, keys) left out."""
    out = {k: v for k, v in record.items() if k != "options"}
    out["options"] = {k: v for k, v in record["options"].items() if k.lower() not in SECRET_OPTIONS}
    out["metastore_id"] = _metastore_id(ws)
    return out


@routes.post(f"{P}/connections")
def create_connection(ws: Workspace, req: Request) -> dict:
    body = req.json
    name = _name(body.get("name"))
    if name in ws.table(CONNECTIONS):
        raise _taken("CONNECTION", name)
    kind = str(req.require("connection_type")).upper()
    if kind not in CONNECTION_TYPES:
        raise invalid(f"Invalid connection_type '{kind}': use one of {', '.join(CONNECTION_TYPES)}")
    record = {
        "name": name,
        "full_name": name,
        "connection_id": _new_id(ws, "connection", name),
        "connection_type": kind,
        "credential_type": "USERNAME_PASSWORD",
        "options": _check_options(body.get("options")),
        "owner": ws.admin_user,
        "read_only": bool(body.get("read_only", True)),
        "securable_type": "CONNECTION",
        "properties": dict(body.get("properties") or {}),
    }
    return render_connection(ws, _keep_new(ws, CONNECTIONS, record, body))


@routes.get(f"{P}/connections")
def list_connections(ws: Workspace, req: Request) -> dict:
    return _list_table(ws, req, CONNECTIONS, render_connection, "connections")


@routes.get(f"{P}/connections/{{name}}")
def get_connection(ws: Workspace, req: Request) -> dict:
    return render_connection(ws, _connection(ws, req.path_params["name"]))


@routes.patch(f"{P}/connections/{{name}}")
def update_connection(ws: Workspace, req: Request) -> dict:
    record = _connection(ws, req.path_params["name"])
    options = _check_options(req.json.get("options"))  # required: secret options are sent again
    _patch(ws, record, req.json)
    record["options"] = options
    _stamp(ws, record)
    return render_connection(ws, record)


@routes.delete(f"{P}/connections/{{name}}")
def delete_connection(ws: Workspace, req: Request) -> dict:
    record = _connection(ws, req.path_params["name"])
    return _drop(ws, CONNECTIONS, "CONNECTION", record["name"])


# -- grants ------------------------------------------------------------------------------------------------
class _Securable:
    """Where one securable's grants live and what it inherits from."""

    def __init__(self, kind: str, name: str, sql_key: tuple | None, parents: list[tuple[str, str]]):
        self.kind, self.name, self.sql_key, self.parents = kind, name, sql_key, parents

    def entries(self, ws: Workspace) -> list[dict]:
        if self.sql_key is not None:
            rows = ws.table(sqlengine.GRANTS).get(self.sql_key, [])
            return [{"principal": r["principal"], "action_type": r["action_type"].replace(" ", "_")} for r in rows]
        return [dict(r) for r in ws.table(GRANTS).get((self.kind, self.name), [])]

    def save(self, ws: Workspace, entries: list[dict]) -> None:
        if self.sql_key is not None:
            rows = [{"principal": e["principal"], "action_type": e["action_type"].replace("_", " ")} for e in entries]
            table, key = ws.table(sqlengine.GRANTS), self.sql_key
        else:
            rows, table, key = entries, ws.table(GRANTS), (self.kind, self.name)
        if rows:
            table[key] = rows
        else:
            table.pop(key, None)


def _table_securable(ws: Workspace, full_name: str) -> _Securable:
    catalog, schema, name = _split(full_name, 3, "TABLE")
    _schema(ws, f"{catalog}.{schema}")
    if name not in ws.table(sqlengine.RELATIONS).get((catalog, schema), {}):
        raise _missing("TABLE", full_name)
    key = f"{catalog}.{schema}.{name}"
    return _Securable("TABLE", key, ("TABLE", catalog, schema, name), _above(catalog, schema))


def _above(catalog: str, schema: str) -> list[tuple[str, str]]:
    return [("SCHEMA", f"{catalog}.{schema}"), ("CATALOG", catalog)]


def _volume_securable(ws: Workspace, full_name: str) -> _Securable:
    catalog, schema, name = _split(full_name, 3, "VOLUME")
    if volumes.find(ws, catalog, schema, name) is None:
        raise ApiError(404, "VOLUME_DOES_NOT_EXIST", f"Volume '{full_name}' does not exist.")
    return _Securable("VOLUME", f"{catalog}.{schema}.{name}", None, _above(catalog, schema))


def _resolve(ws: Workspace, kind: str, full_name: str) -> _Securable:
    """The securable of a permissions path (404 when it does not exist)."""
    kind = kind.upper()
    if kind == "CATALOG":
        name = _catalog(ws, full_name)["name"]
        return _Securable(kind, name, ("CATALOG", name, None, None), [])
    if kind == "SCHEMA":
        record = _schema(ws, full_name)
        return _Securable(
            kind,
            f"{record['catalog']}.{record['name']}",
            ("DATABASE", record["catalog"], record["name"], None),
            [("CATALOG", record["catalog"])],
        )
    resolvers: dict[str, Callable[[], _Securable]] = {
        "TABLE": lambda: _table_securable(ws, full_name),
        "VOLUME": lambda: _volume_securable(ws, full_name),
        "FUNCTION": lambda: _Securable(
            kind, _function(ws, full_name)["full_name"], None, _above(*_split(full_name, 3, kind)[:2])
        ),
        "STORAGE_CREDENTIAL": lambda: _Securable(kind, _credential(ws, full_name)["name"], None, []),
        "EXTERNAL_LOCATION": lambda: _Securable(kind, _location(ws, full_name)["name"], None, []),
        "CONNECTION": lambda: _Securable(kind, _connection(ws, full_name)["name"], None, []),
    }
    if kind not in resolvers:
        raise invalid(f"Unsupported securable type '{kind.lower()}'")
    return resolvers[kind]()


def _assignments(entries: list[dict], principal: str | None) -> list[dict]:
    by_principal: dict[str, list[str]] = {}
    for e in entries:
        if principal is None or e["principal"] == principal:
            by_principal.setdefault(e["principal"], []).append(e["action_type"])
    return [{"principal": p, "privileges": sorted(set(v))} for p, v in sorted(by_principal.items())]


def _grants_page(req: Request, assignments: list[dict]) -> dict:
    """Grants paging: no max_results → all; 0 → server page; 1..149 refused; ≥150 → min with the server's."""
    size = req.int_arg("max_results")
    if size is not None and (size < 0 or 0 < size < GRANTS_MIN_PAGE):
        raise invalid(f"max_results must be 0 or at least {GRANTS_MIN_PAGE}")
    if size is None and not req.arg("page_token"):
        return {"privilege_assignments": assignments}
    size = GRANTS_MIN_PAGE if not size else min(size, 1000)
    chunk, token = page(assignments, size, req.arg("page_token"))
    body: dict[str, Any] = {"privilege_assignments": chunk}
    if token:
        body["next_page_token"] = token
    return body


@routes.get(f"{P}/permissions/{{type}}/{{full_name}}")
def get_permissions(ws: Workspace, req: Request) -> dict:
    securable = _resolve(ws, req.path_params["type"], req.path_params["full_name"])
    return _grants_page(req, _assignments(securable.entries(ws), req.arg("principal")))


@routes.patch(f"{P}/permissions/{{type}}/{{full_name}}")
def update_permissions(ws: Workspace, req: Request) -> dict:
    securable = _resolve(ws, req.path_params["type"], req.path_params["full_name"])
    changes = req.json.get("changes") or []
    if not isinstance(changes, list):
        raise invalid("changes must be a list")
    allowed = PRIVILEGES[securable.kind]
    entries = securable.entries(ws)
    for change in changes:
        principal = change.get("principal") if isinstance(change, dict) else None
        if not isinstance(principal, str) or not principal:
            raise invalid("Every change needs a principal")
        if not _principal_exists(ws, principal):
            raise ApiError(404, "PRINCIPAL_DOES_NOT_EXIST", f"Could not find principal with name {principal}")
        for privilege in [*(change.get("add") or []), *(change.get("remove") or [])]:
            if privilege not in allowed:
                raise invalid(f"Privilege {privilege} is not applicable to this entity [{securable.kind.lower()}]")
        removed = set(change.get("remove") or [])
        entries = [e for e in entries if not (e["principal"] == principal and e["action_type"] in removed)]
        for privilege in change.get("add") or []:
            if not any(e["principal"] == principal and e["action_type"] == privilege for e in entries):
                entries.append({"principal": principal, "action_type": privilege})
    securable.save(ws, entries)
    if req.json.get("omit_permissions_in_response"):
        return {}
    return {"privilege_assignments": _assignments(entries, None)}


@routes.get(f"{P}/effective-permissions/{{type}}/{{full_name}}")
def get_effective(ws: Workspace, req: Request) -> dict:
    securable = _resolve(ws, req.path_params["type"], req.path_params["full_name"])
    principal = req.arg("principal")
    by_principal: dict[str, list[dict]] = {}
    sources = [(securable, None)] + [(_resolve(ws, kind, name), (kind, name)) for kind, name in securable.parents]
    for source, inherited in sources:
        for e in source.entries(ws):
            if principal is not None and e["principal"] != principal:
                continue
            privilege: dict[str, Any] = {"privilege": e["action_type"]}
            if inherited:
                privilege["inherited_from_type"], privilege["inherited_from_name"] = inherited
            by_principal.setdefault(e["principal"], []).append(privilege)
    assignments = [{"principal": p, "privileges": v} for p, v in sorted(by_principal.items())]
    return _grants_page(req, assignments)
