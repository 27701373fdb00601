"""Secrets API 2.0: scopes, secrets (metadata, and values through `secrets/get`) and scope ACLs.

Tables: "secret_scopes" (name → {name, backend_type, keyvault_metadata?}), "secrets" (scope → {key →
{value: bytes, last_updated_timestamp}}) and "secret_acls" (scope → {principal → permission}).

`secrets/get` is refused (400 BAD_REQUEST) as a real workspace refuses it to a caller outside a
notebook or job (the SDK documents it; only dbutils on a cluster reads values, see
dbsync_emulator/dbutils.py). Old tests may set `ws.table("settings")["secrets_get_allowed"] = True`
(or `dbsync emulator --allow-secrets-get`) to have it answer with the value.

Not modelled: permission checks (the caller is an admin, who may do everything), Key-Vault contents
(an AZURE_KEYVAULT scope can be created, even though the emulated cloud is AWS, and is read-only).
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from dbsync_emulator.apis import scim
from dbsync_emulator.errors import ApiError, already_exists, bad_request, invalid, malformed, not_found
from dbsync_emulator.router import Request, Routes
from dbsync_emulator.state import Workspace

routes = Routes()

MAX_SCOPES = 1000
MAX_SECRETS_PER_SCOPE = 1000
MAX_VALUE_BYTES = 128 * 1024
PERMISSIONS = ("READ", "WRITE", "MANAGE")
BACKENDS = ("DATABRICKS", "AZURE_KEYVAULT")
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")
SCOPES, SECRETS, ACLS = "secret_scopes", "secrets", "secret_acls"


def _limit(message: str) -> ApiError:
    return ApiError(400, "RESOURCE_LIMIT_EXCEEDED", message)


def _check_name(what: str, name: Any) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise invalid(
            f"{what} name must consist of alphanumeric characters, dashes, underscores, and periods, "
            f"and may not exceed 128 characters: {name!r}"
        )
    return name


def _scope(ws: Workspace, name: Any) -> dict:
    scope = ws.table(SCOPES).get(name)
    if scope is None:
        raise not_found(f"Scope {name} does not exist!")
    return scope


def _writable(scope: dict) -> None:
    if scope["backend_type"] == "AZURE_KEYVAULT":
        raise bad_request(f"Scope {scope['name']} is backed by Azure KeyVault and is read-only through this API.")


# -- internal API (handlers and the seeder) ---------------------------------------------------------
def create_scope(
    ws: Workspace,
    name: str,
    initial_manage_principal: str | None = None,
    backend_type: str = "DATABRICKS",
    keyvault_metadata: dict | None = None,
) -> dict:
    """Create a scope; the creator (or `users`) gets MANAGE on it."""
    _check_name("Scope", name)
    if name in ws.table(SCOPES):
        raise already_exists(f"Scope {name} already exists!")
    if len(ws.table(SCOPES)) >= MAX_SCOPES:
        raise _limit(f"Maximum number of scopes ({MAX_SCOPES}) in this workspace has been reached.")
    if initial_manage_principal not in (None, "users"):
        raise invalid(f"initial_manage_principal must be 'users' if specified, got: {initial_manage_principal}")
    scope: dict[str, Any] = {"name": name, "backend_type": backend_type}
    if keyvault_metadata:
        scope["keyvault_metadata"] = keyvault_metadata
    ws.table(SCOPES)[name] = scope
    ws.table(SECRETS)[name] = {}
    ws.table(ACLS)[name] = {initial_manage_principal or ws.admin_user: "MANAGE"}
    return scope


def put_secret(ws: Workspace, scope: str, key: str, value: bytes) -> None:
    """Create or overwrite a secret value."""
    record = _scope(ws, scope)
    _writable(record)
    _check_name("Secret key", key)
    if len(value) > MAX_VALUE_BYTES:
        raise invalid(f"Secret value size {len(value)} bytes exceeds the limit of {MAX_VALUE_BYTES} bytes.")
    secrets = ws.table(SECRETS)[scope]
    if key not in secrets and len(secrets) >= MAX_SECRETS_PER_SCOPE:
        raise _limit(f"Maximum number of secrets ({MAX_SECRETS_PER_SCOPE}) in scope {scope} has been reached.")
    secrets[key] = {"value": value, "last_updated_timestamp": ws.now_ms()}


def put_acl(ws: Workspace, scope: str, principal: str, permission: str) -> None:
    """Create or overwrite the ACL of a user, group or service principal on a scope."""
    _scope(ws, scope)
    if permission not in PERMISSIONS:
        raise invalid(f"Invalid permission {permission!r}: must be one of {', '.join(PERMISSIONS)}")
    if not isinstance(principal, str) or not scim.principal_exists(ws, principal):
        raise invalid(f"Principal {principal} does not exist")
    ws.table(ACLS)[scope][principal] = permission


def delete_scope(ws: Workspace, name: str) -> None:
    """Delete a scope with its secrets and ACLs."""
    _scope(ws, name)
    for table in (SCOPES, SECRETS, ACLS):
        ws.table(table).pop(name, None)


# -- handlers ---------------------------------------------------------------------------------------
@routes.post("/api/2.0/secrets/scopes/create")
def scopes_create(ws: Workspace, req: Request) -> dict:
    backend = req.param("scope_backend_type") or "DATABRICKS"
    if backend not in BACKENDS:
        raise invalid(f"Invalid scope_backend_type: {backend}")
    metadata = None
    if backend == "AZURE_KEYVAULT":
        keyvault = req.param("backend_azure_keyvault") or {}
        if not isinstance(keyvault, dict) or not keyvault.get("resource_id") or not keyvault.get("dns_name"):
            raise invalid("backend_azure_keyvault with resource_id and dns_name is required for AZURE_KEYVAULT")
        metadata = {"resource_id": keyvault["resource_id"], "dns_name": keyvault["dns_name"]}
    create_scope(ws, req.require("scope"), req.param("initial_manage_principal"), backend, metadata)
    return {}


@routes.get("/api/2.0/secrets/scopes/list")
def scopes_list(ws: Workspace, req: Request) -> dict:
    scopes = [dict(s) for s in ws.table(SCOPES).values()]
    return {"scopes": scopes} if scopes else {}


@routes.post("/api/2.0/secrets/scopes/delete")
def scopes_delete(ws: Workspace, req: Request) -> dict:
    delete_scope(ws, req.require("scope"))
    return {}


@routes.post("/api/2.0/secrets/put")
def secrets_put(ws: Workspace, req: Request) -> dict:
    scope, key = req.require("scope"), req.require("key")
    string_value, bytes_value = req.param("string_value"), req.param("bytes_value")
    if (string_value is None) == (bytes_value is None):
        raise malformed("Exactly one of string_value or bytes_value must be specified.")
    if string_value is not None:
        if not isinstance(string_value, str):
            raise malformed("string_value must be a string")
        value = string_value.encode("utf-8")
    else:
        try:
            value = base64.b64decode(str(bytes_value), validate=True)
        except (binascii.Error, ValueError):
            raise malformed("bytes_value must be base64-encoded") from None
    put_secret(ws, scope, key, value)
    return {}


@routes.get("/api/2.0/secrets/list")
def secrets_list(ws: Workspace, req: Request) -> dict:
    scope = req.require("scope")
    _scope(ws, scope)
    secrets = [
        {"key": key, "last_updated_timestamp": meta["last_updated_timestamp"]}
        for key, meta in ws.table(SECRETS)[scope].items()
    ]
    return {"secrets": secrets} if secrets else {}


def _secret(ws: Workspace, scope: str, key: str) -> dict:
    _scope(ws, scope)
    secret = ws.table(SECRETS)[scope].get(key)
    if secret is None:
        raise not_found(f"Secret does not exist with scope: {scope} and key: {key}")
    return secret


@routes.post("/api/2.0/secrets/delete")
def secrets_delete(ws: Workspace, req: Request) -> dict:
    scope, key = req.require("scope"), req.require("key")
    _writable(_scope(ws, scope))
    _secret(ws, scope, key)
    del ws.table(SECRETS)[scope][key]
    return {}


@routes.get("/api/2.0/secrets/get")
def secrets_get(ws: Workspace, req: Request) -> dict:
    """Refused like a real workspace; the value, base64, only when the `secrets_get_allowed` setting is on."""
    if not ws.table("settings").get("secrets_get_allowed", False):
        raise bad_request("Secret values can only be read from within a notebook or job running on a cluster.")
    scope, key = req.require("scope"), req.require("key")
    secret = _secret(ws, scope, key)
    return {"key": key, "value": base64.b64encode(secret["value"]).decode()}


@routes.post("/api/2.0/secrets/acls/put")
def acls_put(ws: Workspace, req: Request) -> dict:
    put_acl(ws, req.require("scope"), req.require("principal"), req.require("permission"))
    return {}


def _acl(ws: Workspace, scope: str, principal: str) -> str:
    _scope(ws, scope)
    permission = ws.table(ACLS)[scope].get(principal)
    if permission is None:
        raise not_found(f"No ACL for principal {principal} in scope {scope}")
    return permission


@routes.get("/api/2.0/secrets/acls/get")
def acls_get(ws: Workspace, req: Request) -> dict:
    scope, principal = req.require("scope"), req.require("principal")
    return {"principal": principal, "permission": _acl(ws, scope, principal)}


@routes.get("/api/2.0/secrets/acls/list")
def acls_list(ws: Workspace, req: Request) -> dict:
    scope = req.require("scope")
    _scope(ws, scope)
    items = [{"principal": p, "permission": perm} for p, perm in ws.table(ACLS)[scope].items()]
    return {"items": items} if items else {}


@routes.post("/api/2.0/secrets/acls/delete")
def acls_delete(ws: Workspace, req: Request) -> dict:
    scope, principal = req.require("scope"), req.require("principal")
    _acl(ws, scope, principal)
    del ws.table(ACLS)[scope][principal]
    return {}
