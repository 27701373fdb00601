"""Personal access tokens: the Token API (`/api/2.0/token/*`) and Token Management (`/api/2.0/token-management/*`).

Shapes follow databricks-sdk `service/settings.py` (`TokensAPI`, `TokenManagementAPI`): create answers
`{"token_value", "token_info"}` once; lists never carry a value. Records live in table "tokens" (token id →
TokenInfo fields plus `value_sha256`): the value itself is never stored, only its digest, which
`authenticates()` checks so a created token works as a Bearer token until it is deleted or expires.
The caller is the workspace's admin user; on-behalf-of tokens belong to a service principal.

Not modelled: token scopes and autoscope, `PATCH /api/2.0/token/{id}`, the workspace-conf switch that
disables tokens, and the emulator's own start-up token, which is not listed (deleting it would lock out).
"""

from __future__ import annotations

import hashlib
from typing import Any

from dbsync_emulator.apis import scim
from dbsync_emulator.errors import ApiError, invalid, not_found
from dbsync_emulator.router import Request, Response, Routes
from dbsync_emulator.state import Workspace

routes = Routes()

TOKENS = "tokens"
DEFAULT_LIFETIME_SECONDS = 2 * 365 * 24 * 3600  # SDK TokensAPI.create: "valid for 2 years" when not given
QUOTA_PER_OWNER = 600  # documented per-user token limit; above it the service answers QUOTA_EXCEEDED
_PUBLIC_FIELDS = ("token_id", "comment", "creation_time", "expiry_time")


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def authenticates(ws: Workspace, value: str) -> bool:
    """Whether `value` is a live token created through this API (not deleted, not expired)."""
    now = ws.now_ms()
    digest = _digest(value)
    for record in ws.table(TOKENS).values():
        if record["value_sha256"] == digest:
            return record["expiry_time"] < 0 or record["expiry_time"] > now
    return False


def _admin(ws: Workspace) -> dict:
    user = scim.find_user(ws, ws.admin_user)
    if user is None:
        raise ApiError(403, "PERMISSION_DENIED", f"The caller {ws.admin_user} no longer exists.")
    return user


def _lifetime(value: Any) -> int:
    if value is None or value == "":
        return DEFAULT_LIFETIME_SECONDS
    try:
        seconds = int(value)
    except (TypeError, ValueError):
        raise invalid(f"Invalid lifetime_seconds: {value!r} is not an integer") from None
    return seconds if seconds > 0 else -1  # 0 or negative: a token that never expires


def _issue(ws: Workspace, req: Request, owner_id: str, owner_kind: str) -> dict:
    """Create a token record owned by `owner_id`; the response holds the value, the store only its digest."""
    owned = [r for r in ws.table(TOKENS).values() if r["owner_id"] == int(owner_id)]
    if len(owned) >= QUOTA_PER_OWNER:
        raise ApiError(400, "QUOTA_EXCEEDED", f"Cannot create more than {QUOTA_PER_OWNER} tokens.")
    caller = _admin(ws)
    now = ws.now_ms()
    lifetime = _lifetime(req.param("lifetime_seconds"))
    value = "dapi" + ws.random_hex(32)
    record = {
        "token_id": ws.random_hex(64),
        "comment": str(req.param("comment") or ""),
        "creation_time": now,
        "expiry_time": now + lifetime * 1000 if lifetime > 0 else -1,
        "created_by_id": int(caller["id"]),
        "created_by_username": caller["userName"],
        "owner_id": int(owner_id),
        "owner_kind": owner_kind,
        "workspace_id": ws.workspace_id,
        "value_sha256": _digest(value),
    }
    ws.table(TOKENS)[record["token_id"]] = record
    return {"token_value": value, "record": record}


def _public(record: dict) -> dict:
    return {k: record[k] for k in _PUBLIC_FIELDS}


def _managed(record: dict) -> dict:
    return {k: v for k, v in record.items() if k not in ("value_sha256", "owner_kind")}


def _require(ws: Workspace, token_id: Any) -> dict:
    record = ws.table(TOKENS).get(str(token_id))
    if record is None:
        raise not_found(f"Token with ID {token_id} does not exist.")
    return record


# -- Token API: the caller's own tokens ---------------------------------------------------------------
@routes.post("/api/2.0/token/create")
def create(ws: Workspace, req: Request) -> dict:
    """A new token for the caller: `{"token_value", "token_info"}`."""
    issued = _issue(ws, req, _admin(ws)["id"], "Users")
    return {"token_value": issued["token_value"], "token_info": _public(issued["record"])}


@routes.get("/api/2.0/token/list")
def list_tokens(ws: Workspace, req: Request) -> dict:
    """The caller's tokens, without values."""
    me = int(_admin(ws)["id"])
    return {"token_infos": [_public(r) for r in ws.table(TOKENS).values() if r["owner_id"] == me]}


@routes.post("/api/2.0/token/delete")
def delete(ws: Workspace, req: Request) -> dict:
    """Revoke one of the caller's tokens; another owner's or an unknown id is RESOURCE_DOES_NOT_EXIST."""
    token_id = req.require("token_id")
    record = _require(ws, token_id)
    if record["owner_id"] != int(_admin(ws)["id"]):
        raise not_found(f"Token with ID {token_id} does not exist.")
    del ws.table(TOKENS)[record["token_id"]]
    return {}


# -- Token Management: every token of the workspace (admins) -------------------------------------------
@routes.post("/api/2.0/token-management/on-behalf-of/tokens")
def create_obo(ws: Workspace, req: Request) -> dict:
    """A token owned by a service principal (`application_id`), created by the caller."""
    application_id = req.require("application_id")
    sp = scim.find_service_principal(ws, str(application_id))
    if sp is None:
        raise not_found(f"Service principal with application ID {application_id} does not exist.")
    issued = _issue(ws, req, sp["id"], "ServicePrincipals")
    return {"token_value": issued["token_value"], "token_info": _managed(issued["record"])}


@routes.get("/api/2.0/token-management/tokens")
def list_all(ws: Workspace, req: Request) -> dict:
    """Every token, filtered by `created_by_id` / `created_by_username`; `{}` when none."""
    by_id, by_name = req.arg("created_by_id"), req.arg("created_by_username")
    found = [
        _managed(r)
        for r in ws.table(TOKENS).values()
        if (by_id is None or str(r["created_by_id"]) == by_id)
        and (by_name is None or r["created_by_username"].lower() == by_name.lower())
    ]
    return {"token_infos": found} if found else {}


@routes.get("/api/2.0/token-management/tokens/{token_id}")
def get(ws: Workspace, req: Request) -> dict:
    """`{"token_info": TokenInfo}`."""
    return {"token_info": _managed(_require(ws, req.path_params["token_id"]))}


@routes.delete("/api/2.0/token-management/tokens/{token_id}")
def delete_any(ws: Workspace, req: Request) -> Response:
    """Revoke any token of the workspace."""
    record = _require(ws, req.path_params["token_id"])
    del ws.table(TOKENS)[record["token_id"]]
    return Response(200, {})
