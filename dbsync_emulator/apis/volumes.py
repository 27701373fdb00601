"""Unity Catalog volumes (`/api/2.1/unity-catalog/volumes`), the minimum the Files API needs.

A volume lives in a catalog and schema of the emulator's SQL metastore (`main.default` exists on a new
workspace; `CREATE CATALOG` / `CREATE SCHEMA` add more); Hive metastore schemas hold no volumes. Shapes
follow databricks-sdk `service/catalog.py` (`VolumesAPI`, `VolumeInfo`). Records live in table
"uc_volumes" (full name `catalog.schema.volume`, lower-case → VolumeInfo); their files are the Files API's.

Updates (PATCH owner, comment) are served here; grants through `unity_catalog`.

Not modelled: `CREATE VOLUME` in SQL, renaming volumes, external locations behind EXTERNAL
volumes (any `storage_location` is accepted), paging of the list (one page).
"""

from __future__ import annotations

import uuid
from typing import Any

from dbsync_emulator import sqlengine
from dbsync_emulator.errors import ApiError, invalid
from dbsync_emulator.router import Request, Routes
from dbsync_emulator.state import Workspace

routes = Routes()

PREFIX = "/api/2.1/unity-catalog/volumes"
VOLUMES = "uc_volumes"


def find(ws: Workspace, catalog: str, schema: str, name: str) -> dict | None:
    """The VolumeInfo of `catalog.schema.name` (case-insensitive), or None."""
    return ws.table(VOLUMES).get(f"{catalog}.{schema}.{name}".lower())


def _check_schema(ws: Workspace, catalog: str, schema: str) -> None:
    sqlengine.init_metastore(ws)
    if catalog.lower() not in ws.table(sqlengine.CATALOGS) or catalog.lower() == sqlengine.HIVE_METASTORE:
        raise ApiError(404, "CATALOG_DOES_NOT_EXIST", f"Catalog '{catalog}' does not exist.")
    if schema.lower() not in ws.table(sqlengine.SCHEMAS).get(catalog.lower(), {}):
        raise ApiError(404, "SCHEMA_DOES_NOT_EXIST", f"Schema '{catalog}.{schema}' does not exist.")


def _require(ws: Workspace, full_name: str) -> dict:
    record = ws.table(VOLUMES).get(full_name.lower())
    if record is None:
        raise ApiError(404, "VOLUME_DOES_NOT_EXIST", f"Volume '{full_name}' does not exist.")
    return record


@routes.post(PREFIX)
def create(ws: Workspace, req: Request) -> dict:
    """Create a MANAGED or EXTERNAL volume in an existing Unity Catalog schema."""
    catalog, schema, name = (str(req.require(k)) for k in ("catalog_name", "schema_name", "name"))
    volume_type = str(req.require("volume_type")).upper()
    if volume_type not in ("MANAGED", "EXTERNAL"):
        raise invalid(f"Invalid volume_type: {volume_type} (MANAGED or EXTERNAL)")
    if volume_type == "EXTERNAL" and not req.param("storage_location"):
        raise invalid("An EXTERNAL volume needs a storage_location")
    _check_schema(ws, catalog, schema)
    full_name = f"{catalog}.{schema}.{name}".lower()
    if full_name in ws.table(VOLUMES):
        raise ApiError(409, "VOLUME_ALREADY_EXISTS", f"Volume '{full_name}' already exists.")
    now = ws.now_ms()
    volume_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"dbsync-emulator/{ws.workspace_id}/volume/{full_name}/{now}"))
    record: dict[str, Any] = {
        "catalog_name": catalog.lower(),
        "schema_name": schema.lower(),
        "name": name.lower(),
        "full_name": full_name,
        "volume_type": volume_type,
        "volume_id": volume_id,
        "owner": ws.admin_user,
        "created_at": now,
        "created_by": ws.admin_user,
        "updated_at": now,
        "updated_by": ws.admin_user,
        "storage_location": req.param("storage_location") or f"s3://emulator-metastore/volumes/{volume_id}",
    }
    if req.param("comment"):
        record["comment"] = str(req.param("comment"))
    ws.table(VOLUMES)[full_name] = record
    return record


@routes.get(PREFIX)
def list_volumes(ws: Workspace, req: Request) -> dict:
    """The volumes of one schema (`catalog_name` and `schema_name` are required)."""
    catalog, schema = str(req.require("catalog_name")), str(req.require("schema_name"))
    _check_schema(ws, catalog, schema)
    prefix = f"{catalog}.{schema}.".lower()
    return {"volumes": [v for k, v in sorted(ws.table(VOLUMES).items()) if k.startswith(prefix)]}


@routes.get(f"{PREFIX}/{{name}}")
def get(ws: Workspace, req: Request) -> dict:
    """One VolumeInfo by full name."""
    return _require(ws, req.path_params["name"])


@routes.delete(f"{PREFIX}/{{name}}")
def delete(ws: Workspace, req: Request) -> dict:
    """Delete a volume and every file in it."""
    from dbsync_emulator.apis import files

    record = _require(ws, req.path_params["name"])
    files.drop_volume(ws, record)
    del ws.table(VOLUMES)[record["full_name"]]
    return {}


@routes.patch(f"{PREFIX}/{{name}}")
def update(ws: Workspace, req: Request) -> dict:
    """Change a volume's owner or comment (renaming is not modelled: `new_name` is refused)."""
    from dbsync_emulator.apis import permissions

    record = _require(ws, req.path_params["name"])
    body = req.json
    if body.get("new_name") not in (None, "", record["name"]):
        raise invalid("Renaming a volume is not supported by this emulator")
    owner = body.get("owner")
    if owner is not None:
        if not any(permissions.principal_exists(ws, kind, str(owner)) for kind in permissions.PRINCIPAL_TYPES):
            raise ApiError(404, "PRINCIPAL_DOES_NOT_EXIST", f"Could not find principal with name {owner}")
        record["owner"] = owner
    if body.get("comment") is not None:
        record["comment"] = str(body["comment"])
    record["updated_at"], record["updated_by"] = ws.now_ms(), ws.admin_user
    return record
