"""Workspace settings: `/api/2.0/workspace-conf` and IP access lists (`/api/2.0/ip-access-lists`).

workspace-conf: GET `?keys=a,b` answers `{key: value}` (values are strings; a key never set answers its
default, null when it has none); an unknown key is a 400. PATCH takes `{key: "value"}`: `enable*` /
`enforce*` keys take "true"/"false", `maxTokenLifetimeDays` a whole number of days 0..730 (0 = no
limit); "" puts a key back to its default. The token lifetime policy is this key: the Token API reads
it (not emulated here).

IP access lists: create (POST, `{label, list_type, ip_addresses}`, enabled on creation), get, list,
replace (PUT, every field), update (PATCH, the fields given), delete. Addresses are IPv4 addresses or
CIDR ranges; all lists together hold at most 1000 values (400 QUOTA_EXCEEDED). Labels need not be unique.
When the feature is on (`enableIpAccessLists` "true"), a change that would block the caller's own IP
is refused with 400 INVALID_STATE, and so is turning the feature on under such lists (≈: the reference
documents it for list changes). The caller's IP is the first `X-Forwarded-For` address, or the
loopback address the emulator serves on.

Not modelled: enforcing the lists on requests, the newer `/api/2.0/settings/types/...` settings API.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from dbsync_emulator.apis._paging import new_uuid
from dbsync_emulator.errors import ApiError, invalid, not_found
from dbsync_emulator.router import Request, Routes
from dbsync_emulator.state import Workspace

routes = Routes()

CONF = "workspace_conf"
LISTS = "ip_access_lists"
LIST_TYPES = ("ALLOW", "BLOCK")
MAX_VALUES = 1000
MAX_TOKEN_DAYS = 730
# Known keys and the default a new workspace answers (None: not set).
CONF_DEFAULTS: dict[str, str | None] = {
    "enableTokensConfig": "true",
    "maxTokenLifetimeDays": None,
    "enableIpAccessLists": "false",
    "enableJobViewAcls": "true",
    "enforceClusterViewAcls": "false",
    "enforceWorkspaceViewAcls": "false",
    "enableHlsRuntime": "false",
    "enableProjectTypeInWorkspace": "true",
    "enableWorkspaceFilesystem": "true",
    "enableProjectsAllowList": "false",
    "projectsAllowList": None,
    "enable-X-Frame-Options": "true",
    "enable-X-Content-Type-Options": "true",
    "enable-X-XSS-Protection": "true",
    "enableResultsDownloading": "true",
    "enableUploadDataUis": "true",
    "enableExportNotebook": "true",
    "enableNotebookGitVersioning": "true",
    "enableNotebookTableClipboard": "true",
    "enableWebTerminal": "false",
    "enableDbfsFileBrowser": "false",
    "enableDatabricksAutologgingAdminConf": "true",
    "enableDeprecatedGlobalInitScripts": "false",
    "enableDeprecatedClusterNamedInitScripts": "false",
    "enableVerboseAuditLogs": "false",
    "enforceUserIsolation": "false",
    "mlflowRunArtifactDownloadEnabled": "true",
    "mlflowModelServingEndpointCreationEnabled": "true",
    "mlflowModelRegistryEmailNotificationsEnabled": "true",
    "storeInteractiveNotebookResultsInCustomerAccount": "false",
    "rStudioUserDefaultHomeBase": None,
}


# -- workspace-conf -----------------------------------------------------------------------------------------
def conf_value(ws: Workspace, key: str) -> str | None:
    """The current value of a workspace-conf key (its default when never set)."""
    return ws.table(CONF).get(key, CONF_DEFAULTS.get(key))


def _check_keys(keys: list[str]) -> None:
    unknown = [k for k in keys if k not in CONF_DEFAULTS]
    if unknown:
        raise invalid(f"Invalid keys: {', '.join(unknown)}")


def _normalize(key: str, value: Any) -> str | None:
    """The stored form of a PATCH value; None puts the key back to its default."""
    if not isinstance(value, str):
        raise invalid(f"Invalid value for {key}: workspace-conf values are strings")
    if value == "":
        return None
    if key.startswith(("enable", "enforce", "mlflow")):
        if value.lower() not in ("true", "false"):
            raise invalid(f'Invalid value for {key}: {value!r} (expected "true" or "false")')
        return value.lower()
    if key == "maxTokenLifetimeDays":
        if not value.isdigit() or int(value) > MAX_TOKEN_DAYS:
            raise invalid(f"maxTokenLifetimeDays must be a whole number of days from 0 to {MAX_TOKEN_DAYS}")
        return str(int(value))
    return value


def set_conf(ws: Workspace, values: dict[str, Any], caller_ip: str = "127.0.0.1") -> None:
    """PATCH /workspace-conf: validate every key first, then apply them all."""
    _check_keys(list(values))
    normalized = {key: _normalize(key, value) for key, value in values.items()}
    if normalized.get("enableIpAccessLists") == "true" and _blocks(ws, caller_ip, enabled=True):
        raise ApiError(
            400,
            "INVALID_STATE",
            f"Your current IP {caller_ip} will not be allowed to access the workspace under the current IP access "
            "lists: add it to an allow list before turning the feature on",
        )
    table = ws.table(CONF)
    for key, value in normalized.items():
        if value is None:
            table.pop(key, None)
        else:
            table[key] = value


@routes.get("/api/2.0/workspace-conf")
def get_conf(ws: Workspace, req: Request) -> dict:
    keys = [k.strip() for k in (req.arg("keys") or "").split(",") if k.strip()]
    _check_keys(keys)
    return {key: conf_value(ws, key) for key in keys}


@routes.patch("/api/2.0/workspace-conf")
def patch_conf(ws: Workspace, req: Request) -> dict:
    set_conf(ws, req.json, _caller_ip(req))
    return {}


# -- IP access lists -------------------------------------------------------------------------------------------
def _caller_ip(req: Request) -> str:
    forwarded = (req.headers.get("x-forwarded-for") or "").split(",")[0].strip()
    return forwarded or "127.0.0.1"


def _check_addresses(values: Any) -> list[str]:
    if values is None:
        return []
    if not isinstance(values, list):
        raise invalid("ip_addresses must be a list of IPv4 addresses or CIDR ranges")
    out = []
    for value in values:
        try:
            network = ipaddress.ip_network(str(value), strict=False)
        except ValueError:
            raise invalid(f"Invalid IP address or CIDR range: {value}") from None
        if network.version != 4:
            raise invalid(f"Only IPv4 addresses are supported: {value}")
        out.append(str(value))
    return out


def _check_type(value: Any) -> str:
    if value not in LIST_TYPES:
        raise invalid(f"Invalid list_type: {value}. Supported values: ALLOW, BLOCK")
    return value


def _check_label(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise invalid("label is required and cannot be empty")
    return value


def _blocks(ws: Workspace, ip: str, lists: list[dict] | None = None, enabled: bool | None = None) -> bool:
    """Whether the lists (the current ones by default) would refuse `ip` with the feature on."""
    if enabled is None:
        enabled = conf_value(ws, "enableIpAccessLists") == "true"
    if not enabled:
        return False
    address = ipaddress.ip_address(ip)
    active = [r for r in (lists if lists is not None else ws.table(LISTS).values()) if r["enabled"]]

    def hit(record: dict) -> bool:
        return any(address in ipaddress.ip_network(v, strict=False) for v in record["ip_addresses"])

    if any(r["list_type"] == "BLOCK" and hit(r) for r in active):
        return True
    allows = [r for r in active if r["list_type"] == "ALLOW"]
    return bool(allows) and not any(hit(r) for r in allows)


def _guard(ws: Workspace, req: Request, record: dict, replaced: str | None) -> None:
    """Refuse a change that exceeds the quota or locks the caller out."""
    lists = [r for k, r in ws.table(LISTS).items() if k != replaced] + [record]
    if sum(len(r["ip_addresses"]) for r in lists) > MAX_VALUES:
        raise ApiError(400, "QUOTA_EXCEEDED", f"IP access lists can hold at most {MAX_VALUES} IP/CIDR values in all")
    ip = _caller_ip(req)
    if _blocks(ws, ip, lists):
        raise ApiError(
            400, "INVALID_STATE", f"Your current IP {ip} will not be allowed to access the workspace under this list"
        )


def _user_id(ws: Workspace) -> int:
    from dbsync_emulator.apis import scim

    user = scim.find_user(ws, ws.admin_user)
    return int(user["id"]) if user and str(user.get("id", "")).isdigit() else 1


def create_list(ws: Workspace, label: str, list_type: str, ip_addresses: list[str], enabled: bool = True) -> str:
    """Create a list without the caller checks (for the seeder); returns its id."""
    list_id = str(new_uuid(ws))
    now = ws.now_ms()
    ws.table(LISTS)[list_id] = {
        "list_id": list_id,
        "label": _check_label(label),
        "list_type": _check_type(list_type),
        "ip_addresses": _check_addresses(ip_addresses),
        "enabled": enabled,
        "created_at": now,
        "created_by": _user_id(ws),
        "updated_at": now,
        "updated_by": _user_id(ws),
    }
    return list_id


def render_list(record: dict) -> dict:
    out = {k: record[k] for k in ("list_id", "label", "list_type", "enabled")}
    out["address_count"] = len(record["ip_addresses"])
    if record["ip_addresses"]:
        out["ip_addresses"] = list(record["ip_addresses"])
    out.update({k: record[k] for k in ("created_at", "created_by", "updated_at", "updated_by")})
    return out


def _load(ws: Workspace, list_id: str) -> dict:
    record = ws.table(LISTS).get(list_id)
    if record is None:
        raise not_found(f"IP access list {list_id} does not exist.")
    return record


@routes.get("/api/2.0/ip-access-lists")
def list_lists(ws: Workspace, req: Request) -> dict:
    records = sorted(ws.table(LISTS).values(), key=lambda r: (r["created_at"], r["list_id"]))
    return {"ip_access_lists": [render_list(r) for r in records]} if records else {}


@routes.post("/api/2.0/ip-access-lists")
def create(ws: Workspace, req: Request) -> dict:
    body = req.json
    record = {
        "label": _check_label(body.get("label")),
        "list_type": _check_type(body.get("list_type")),
        "ip_addresses": _check_addresses(body.get("ip_addresses")),
        "enabled": True,
    }
    _guard(ws, req, record, None)
    list_id = create_list(ws, record["label"], record["list_type"], record["ip_addresses"])
    return {"ip_access_list": render_list(ws.table(LISTS)[list_id])}


@routes.get("/api/2.0/ip-access-lists/{id}")
def get(ws: Workspace, req: Request) -> dict:
    return {"ip_access_list": render_list(_load(ws, req.path_params["id"]))}


def _apply(ws: Workspace, req: Request, record: dict, changes: dict[str, Any]) -> dict:
    candidate = {**record, **changes}
    _guard(ws, req, candidate, record["list_id"])
    record.update(changes, updated_at=max(ws.now_ms(), record["updated_at"] + 1), updated_by=_user_id(ws))
    return {}


@routes.put("/api/2.0/ip-access-lists/{id}")
def replace(ws: Workspace, req: Request) -> dict:
    record = _load(ws, req.path_params["id"])
    body = req.json
    if not isinstance(body.get("enabled"), bool):
        raise invalid("enabled is required")
    changes = {
        "label": _check_label(body.get("label")),
        "list_type": _check_type(body.get("list_type")),
        "ip_addresses": _check_addresses(body.get("ip_addresses")),
        "enabled": body["enabled"],
    }
    return _apply(ws, req, record, changes)


@routes.patch("/api/2.0/ip-access-lists/{id}")
def update(ws: Workspace, req: Request) -> dict:
    record = _load(ws, req.path_params["id"])
    body = req.json
    changes: dict[str, Any] = {}
    if body.get("label") is not None:
        changes["label"] = _check_label(body["label"])
    if body.get("list_type") is not None:
        changes["list_type"] = _check_type(body["list_type"])
    if body.get("ip_addresses") is not None:
        changes["ip_addresses"] = _check_addresses(body["ip_addresses"])
    if body.get("enabled") is not None:
        if not isinstance(body["enabled"], bool):
            raise invalid("enabled must be a boolean")
        changes["enabled"] = body["enabled"]
    return _apply(ws, req, record, changes)


@routes.delete("/api/2.0/ip-access-lists/{id}")
def delete(ws: Workspace, req: Request) -> dict:
    record = _load(ws, req.path_params["id"])
    remaining = [r for k, r in ws.table(LISTS).items() if k != record["list_id"]]
    ip = _caller_ip(req)
    if _blocks(ws, ip, remaining):  # deleting the only allow list that admits the caller
        raise ApiError(
            400, "INVALID_STATE", f"Your current IP {ip} would not be allowed to access the workspace without this list"
        )
    del ws.table(LISTS)[record["list_id"]]
    return {}
