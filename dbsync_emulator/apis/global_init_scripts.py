"""Global Init Scripts API 2.0: `/api/2.0/global-init-scripts[/{script_id}]`.

Scripts live in table "global_init_scripts" keyed by script id; their run order is the list
`ws.table("global_init_script_order")["order"]` (position = index). Positions follow the documented
rules: a new script without a position goes last; a position past the end means last; a position
taken by another script inserts there and shifts that script and the later ones by one; a delete closes
the gap. Only the script a request names gets a new `updated_at` / `updated_by`.

Not modelled: running the scripts on cluster start, the admin-only check (the caller is an admin),
any cap on the number of scripts.
"""

from __future__ import annotations

import base64
import binascii
import random
import re
from typing import Any

from dbsync_emulator.errors import invalid, not_found
from dbsync_emulator.router import Request, Routes
from dbsync_emulator.state import Workspace

routes = Routes()

TABLE = "global_init_scripts"
ORDER = "global_init_script_order"
MAX_SCRIPT_BYTES = 64 * 1024  # the service refuses larger script bodies
_NAME = re.compile(r"^[a-zA-Z0-9_\-. ]*$")
_PATH = "/api/2.0/global-init-scripts"


def _order(ws: Workspace) -> list[str]:
    return ws.table(ORDER).setdefault("order", [])


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not name:
        raise invalid("Missing required field: name")
    if len(name) > 100:
        raise invalid("The script name must be at most 100 characters")
    if not _NAME.match(name):
        raise invalid(f"Invalid script name '{name}': only letters, digits, spaces, '_', '-' and '.' are allowed")
    return name


def _check_script(script: Any) -> str:
    if not isinstance(script, str) or not script:
        raise invalid("Missing required field: script")
    try:
        content = base64.b64decode(script, validate=True)
    except (binascii.Error, ValueError):
        raise invalid("The script must be Base64-encoded") from None
    if len(content) > MAX_SCRIPT_BYTES:
        raise invalid(f"The script is {len(content)} bytes; global init scripts are limited to 64 KB")
    return script


def _check_position(position: Any) -> int | None:
    if position is None:
        return None
    if not isinstance(position, int) or isinstance(position, bool) or position < 0:
        raise invalid(f"Invalid position {position!r}: must be a non-negative integer")
    return position


def _check_enabled(enabled: Any) -> bool | None:
    if enabled is not None and not isinstance(enabled, bool):
        raise invalid(f"Invalid value for enabled: {enabled!r} is not a boolean")
    return enabled


def _place(ws: Workspace, script_id: str, position: int | None) -> None:
    """Put a script at `position` (None or past the end: last); scripts from there shift by one."""
    order = _order(ws)
    if script_id in order:
        order.remove(script_id)
    index = len(order) if position is None else min(position, len(order))
    order.insert(index, script_id)


def _load(ws: Workspace, script_id: str) -> dict:
    record = ws.table(TABLE).get(script_id)
    if record is None:
        raise not_found(f"The global init script with ID {script_id} does not exist.")
    return record


def _details(ws: Workspace, record: dict, with_content: bool) -> dict:
    out = {
        "script_id": record["script_id"],
        "name": record["name"],
        "position": _order(ws).index(record["script_id"]),
        "enabled": record["enabled"],
        "created_by": record["created_by"],
        "created_at": record["created_at"],
        "updated_by": record["updated_by"],
        "updated_at": record["updated_at"],
    }
    if with_content:
        out["script"] = record["script"]
    return out


def _new_script_id(ws: Workspace) -> str:
    # Seeded by the workspace id: two workspaces never hand out the same script id.
    while True:
        rng = random.Random(f"global-init-script:{ws.workspace_id}:{ws.next_id('global_init_script_ids')}")
        script_id = "".join(rng.choice("0123456789ABCDEF") for _ in range(16))
        if script_id not in ws.table(TABLE):
            return script_id


# -- internal API (seeder, tests) -----------------------------------------------------------------------
def create_script(
    ws: Workspace, name: str, script: str, enabled: bool | None = None, position: int | None = None
) -> str:
    """Validate and create a global init script like POST /global-init-scripts; returns its id."""
    record = {
        "name": _check_name(name),
        "script": _check_script(script),
        "enabled": bool(_check_enabled(enabled)),  # the service's default is disabled
    }
    position = _check_position(position)
    script_id = _new_script_id(ws)
    now = ws.now_ms()
    ws.table(TABLE)[script_id] = {
        "script_id": script_id,
        **record,
        "created_by": ws.admin_user,
        "created_at": now,
        "updated_by": ws.admin_user,
        "updated_at": now,
    }
    _place(ws, script_id, position)
    return script_id


def update_script(ws: Workspace, script_id: str, fields: dict[str, Any]) -> None:
    """PATCH semantics: only the fields given change; the others keep their value."""
    record = _load(ws, script_id)
    changes: dict[str, Any] = {}
    if fields.get("name") is not None:
        changes["name"] = _check_name(fields["name"])
    if fields.get("script") is not None:
        changes["script"] = _check_script(fields["script"])
    if fields.get("enabled") is not None:
        changes["enabled"] = _check_enabled(fields["enabled"])
    position = _check_position(fields.get("position"))
    record.update(changes)
    if position is not None:
        _place(ws, script_id, position)
    record["updated_by"], record["updated_at"] = ws.admin_user, ws.now_ms()


# -- routes ---------------------------------------------------------------------------------------------
@routes.get(_PATH)
def list_scripts(ws: Workspace, req: Request) -> dict:
    """Every script in run order, without contents; `{}` when there are none."""
    scripts = [_details(ws, ws.table(TABLE)[i], with_content=False) for i in _order(ws)]
    return {"scripts": scripts} if scripts else {}


@routes.post(_PATH)
def create(ws: Workspace, req: Request) -> dict:
    body = req.json
    script_id = create_script(ws, body.get("name"), body.get("script"), body.get("enabled"), body.get("position"))
    return {"script_id": script_id}


@routes.get(_PATH + "/{script_id}")
def get(ws: Workspace, req: Request) -> dict:
    return _details(ws, _load(ws, req.path_params["script_id"]), with_content=True)


@routes.patch(_PATH + "/{script_id}")
def update(ws: Workspace, req: Request) -> dict:
    update_script(ws, req.path_params["script_id"], req.json)
    return {}


@routes.delete(_PATH + "/{script_id}")
def delete(ws: Workspace, req: Request) -> dict:
    record = _load(ws, req.path_params["script_id"])
    del ws.table(TABLE)[record["script_id"]]
    _order(ws).remove(record["script_id"])
    return {}
