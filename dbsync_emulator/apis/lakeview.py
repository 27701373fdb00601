"""Lakeview (AI/BI) dashboards: `/api/2.0/lakeview/dashboards` (draft CRUD, trash, publish).

A dashboard is also a workspace object: DASHBOARD at `<parent_path>/<display_name>.lvdash.json`, whose
`resource_id` is the dashboard id (workspace list / get-status answer it), so a name already taken in
the folder is refused and a rename moves the object. Records live in table "lakeview_dashboards".

- create: `display_name` required; `parent_path` defaults to the caller's home and must exist;
  `serialized_dashboard` must be a JSON document (a one-page default otherwise); `warehouse_id` must name
  an existing warehouse. The answer carries a fresh `etag`.
- update (PATCH): the fields given change; an `etag` that is not the current one is refused (409 ABORTED),
  so a writer that read an old version cannot overwrite a newer one. `parent_path` cannot change here.
- list: `page_size` (default 100, at most 1000 ≈), `page_token`, `show_trashed`; list items omit `etag`,
  `parent_path`, `path`, `serialized_dashboard` and `update_time`, as the reference says.
- trash (DELETE): `lifecycle_state` TRASHED, the workspace object leaves its folder; GET still answers.
  Deleting the workspace object (or its folder) through the Workspace API trashes the dashboard too.
- publish / get published / unpublish: `/published`.
Permissions: type "dashboards"; a dashboard inherits the ACLs of its folders like a notebook.

Schedules and subscriptions are served by `lakeview_schedules`.

Not modelled: `migrate`, `revert`, dataset_catalog / dataset_schema
rewriting, restoring from the trash, importing a `.lvdash.json` through workspace/import.
"""

from __future__ import annotations

import json
import posixpath
from typing import Any

from dbsync_emulator.apis import permissions, sql, workspace
from dbsync_emulator.apis._paging import iso, new_uuid, page, page_size
from dbsync_emulator.errors import ApiError, already_exists, invalid, not_found
from dbsync_emulator.router import Request, Routes
from dbsync_emulator.state import Workspace

routes = Routes()

DASHBOARDS = "lakeview_dashboards"
PAGE_DEFAULT, PAGE_MAX = 100, 1000
LEVELS = ("CAN_READ", "CAN_RUN", "CAN_EDIT", "CAN_MANAGE")
EXTENSION = ".lvdash.json"


def _exists(ws: Workspace, dashboard_id: str) -> bool:
    return dashboard_id in ws.table(DASHBOARDS)


def _folders(ws: Workspace, dashboard_id: str) -> list[tuple[str, str]]:
    """The folders a dashboard inherits ACL entries from (those of its workspace object)."""
    record = ws.table(DASHBOARDS).get(dashboard_id)
    if record is None or record["lifecycle_state"] != "ACTIVE":
        return []
    return workspace._ancestors(ws, str(record["object_id"]))


permissions.register("dashboards", "dashboard", LEVELS, _exists, "/dashboards/", parents=_folders)


def _path(record: dict) -> str:
    return posixpath.join(record["parent_path"], record["display_name"] + EXTENSION)


def _check_serialized(value: Any) -> str:
    if not isinstance(value, str):
        raise invalid("serialized_dashboard must be a string holding a JSON document")
    try:
        document = json.loads(value)
    except ValueError:
        raise invalid("serialized_dashboard is not valid JSON") from None
    if not isinstance(document, dict):
        raise invalid("serialized_dashboard must be a JSON object")
    return value


def _check_warehouse(ws: Workspace, warehouse_id: Any) -> Any:
    if warehouse_id not in (None, "") and warehouse_id not in ws.table(sql.WAREHOUSES):
        raise invalid(f"Warehouse {warehouse_id} does not exist")
    return warehouse_id or None


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise invalid("display_name is required")
    if "/" in name:
        raise invalid("display_name cannot contain '/'")
    return name


def _place(ws: Workspace, record: dict, object_id: int | None = None) -> None:
    """Create the dashboard's workspace object at its path (refused when the name is taken)."""
    path = _path(record)
    if workspace.get_object(ws, path) is not None:
        raise already_exists(f"Node named '{posixpath.basename(path)}' already exists")
    obj = workspace.create_object(ws, path, "DASHBOARD", object_id=object_id, resource_id=record["dashboard_id"])
    record["object_id"] = obj["object_id"]


def create_dashboard(ws: Workspace, spec: dict) -> str:
    """Create a draft dashboard like POST /lakeview/dashboards; returns its id."""
    parent = spec.get("parent_path") or f"/Users/{ws.admin_user}"
    folder = workspace.normalize_path(parent)
    obj = workspace.get_object(ws, folder)
    if obj is None or obj["object_type"] not in ("DIRECTORY", "REPO"):
        raise not_found(f"Path ({folder}) doesn't exist.")
    serialized = spec.get("serialized_dashboard")
    if serialized is None:
        serialized = json.dumps({"pages": [{"name": ws.random_hex(8), "displayName": "Untitled page"}]})
    dashboard_id = new_uuid(ws).hex
    now = ws.now_ms()
    record = {
        "dashboard_id": dashboard_id,
        "display_name": _check_name(spec.get("display_name")),
        "parent_path": folder,
        "warehouse_id": _check_warehouse(ws, spec.get("warehouse_id")),
        "serialized_dashboard": _check_serialized(serialized),
        "lifecycle_state": "ACTIVE",
        "create_time": now,
        "update_time": now,
        "revision": 1,
        "published": None,
        "seq": ws.next_id("lakeview_seq"),
    }
    _place(ws, record)
    ws.table(DASHBOARDS)[dashboard_id] = record
    permissions.grant_creator(ws, "dashboards", dashboard_id)
    return dashboard_id


def _etag(record: dict) -> str:
    return str(record["revision"])


def render(record: dict, listing: bool = False) -> dict:
    out: dict[str, Any] = {
        "dashboard_id": record["dashboard_id"],
        "display_name": record["display_name"],
        "lifecycle_state": record["lifecycle_state"],
        "create_time": iso(record["create_time"]),
    }
    if record.get("warehouse_id"):
        out["warehouse_id"] = record["warehouse_id"]
    if listing:
        return out
    out.update(
        etag=_etag(record),
        parent_path=record["parent_path"],
        path=_path(record),
        serialized_dashboard=record["serialized_dashboard"],
        update_time=iso(record["update_time"]),
    )
    return out


def _follow_tree(ws: Workspace, record: dict) -> dict:
    """A dashboard whose workspace object was deleted (its folder went, or workspace/delete) is trashed."""
    if record["lifecycle_state"] == "ACTIVE":
        obj = workspace.get_object(ws, _path(record))
        if obj is None or obj.get("resource_id") != record["dashboard_id"]:
            record["lifecycle_state"], record["published"] = "TRASHED", None
    return record


def _load(ws: Workspace, dashboard_id: str, active: bool = True) -> dict:
    record = ws.table(DASHBOARDS).get(dashboard_id)
    if record is not None:
        _follow_tree(ws, record)
    if record is None or (active and record["lifecycle_state"] != "ACTIVE"):
        raise not_found(f"Unable to find dashboard [{dashboard_id}]")
    return record


@routes.get("/api/2.0/lakeview/dashboards")
def list_dashboards(ws: Workspace, req: Request) -> dict:
    size = page_size(req.int_arg("page_size"), PAGE_DEFAULT, PAGE_MAX)
    trashed = req.bool_arg("show_trashed")
    current = [_follow_tree(ws, r) for r in ws.table(DASHBOARDS).values()]
    records = sorted((r for r in current if trashed or r["lifecycle_state"] == "ACTIVE"), key=lambda r: r["seq"])
    chunk, token = page(records, size, req.arg("page_token"))
    body: dict[str, Any] = {}
    if chunk:
        body["dashboards"] = [render(r, listing=True) for r in chunk]
    if token:
        body["next_page_token"] = token
    return body


@routes.post("/api/2.0/lakeview/dashboards")
def create(ws: Workspace, req: Request) -> dict:
    return render(ws.table(DASHBOARDS)[create_dashboard(ws, req.json)])


@routes.get("/api/2.0/lakeview/dashboards/{id}")
def get(ws: Workspace, req: Request) -> dict:
    return render(_load(ws, req.path_params["id"], active=False))


@routes.patch("/api/2.0/lakeview/dashboards/{id}")
def update(ws: Workspace, req: Request) -> dict:
    record = _load(ws, req.path_params["id"])
    body = req.json
    etag = body.get("etag")
    if etag not in (None, "") and str(etag) != _etag(record):
        raise ApiError(409, "ABORTED", "The dashboard was modified since it was read: get it again and retry")
    changes: dict[str, Any] = {}
    if body.get("display_name") is not None:
        changes["display_name"] = _check_name(body["display_name"])
    if body.get("serialized_dashboard") is not None:
        changes["serialized_dashboard"] = _check_serialized(body["serialized_dashboard"])
    if "warehouse_id" in body:
        changes["warehouse_id"] = _check_warehouse(ws, body["warehouse_id"])
    if changes.get("display_name", record["display_name"]) != record["display_name"]:
        moved = {**record, **changes}  # a rename moves the workspace object, keeping its object_id
        if workspace.get_object(ws, _path(moved)) is not None:
            raise already_exists(f"Node named '{posixpath.basename(_path(moved))}' already exists")
        workspace.delete_object(ws, _path(record))
        _place(ws, moved, object_id=record["object_id"])
    record.update(changes)
    record["revision"] += 1
    record["update_time"] = max(ws.now_ms(), record["update_time"] + 1)
    return render(record)


@routes.delete("/api/2.0/lakeview/dashboards/{id}")
def trash(ws: Workspace, req: Request) -> dict:
    record = _load(ws, req.path_params["id"])
    if workspace.get_object(ws, _path(record)) is not None:
        workspace.delete_object(ws, _path(record))  # trashed dashboards leave their folder
    record["lifecycle_state"] = "TRASHED"
    record["published"] = None
    record["update_time"] = max(ws.now_ms(), record["update_time"] + 1)
    return {}


def _render_published(record: dict) -> dict:
    published = record["published"]
    out = {
        "display_name": record["display_name"],
        "embed_credentials": published["embed_credentials"],
        "revision_create_time": iso(published["time"]),
    }
    if published.get("warehouse_id"):
        out["warehouse_id"] = published["warehouse_id"]
    return out


@routes.post("/api/2.0/lakeview/dashboards/{id}/published")
def publish(ws: Workspace, req: Request) -> dict:
    record = _load(ws, req.path_params["id"])
    body = req.json
    embed = body.get("embed_credentials", True)
    if not isinstance(embed, bool):
        raise invalid("embed_credentials must be a boolean")
    warehouse = _check_warehouse(ws, body.get("warehouse_id")) or record.get("warehouse_id")
    if not warehouse:
        raise invalid("A warehouse is required to publish: set warehouse_id on the dashboard or in the request")
    record["published"] = {"embed_credentials": embed, "warehouse_id": warehouse, "time": ws.now_ms()}
    return _render_published(record)


@routes.get("/api/2.0/lakeview/dashboards/{id}/published")
def get_published(ws: Workspace, req: Request) -> dict:
    record = _load(ws, req.path_params["id"])
    if record["published"] is None:
        raise not_found(f"Dashboard [{record['dashboard_id']}] is not published")
    return _render_published(record)


@routes.delete("/api/2.0/lakeview/dashboards/{id}/published")
def unpublish(ws: Workspace, req: Request) -> dict:
    record = _load(ws, req.path_params["id"])
    if record["published"] is None:
        raise not_found(f"Dashboard [{record['dashboard_id']}] is not published")
    record["published"] = None
    return {}
