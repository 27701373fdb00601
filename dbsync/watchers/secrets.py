"""Secret scopes (with their ACLs) and secrets (keys), two kinds so each has its own change detection.

`secret_scopes`: keyed by scope name. The scope list has no version and ACLs are one `acls/list` per
scope: like object ACLs they are read by need (a new scope at once, the others within `max_staleness`,
an hour by default, sooner when they changed or an audit-log row named the scope) and compared by
fingerprint. Every scope every cycle was 1.3 of the 50 requests/s at 100,000 objects (500 scopes),
read from the ACL sweep's share. The payload holds the ACL entries, principals mapped. A Key
Vault-backed scope cannot be created through the API: it waits (blocked, reported) until someone
creates it on the target, then its ACLs follow.

`secrets`: keyed by `<scope>/<key>` (scope names cannot hold `/`), listed with one `secrets/list` per
Databricks-backed scope (Key Vault secrets live in the vault, which has its own replication). The
version hint is the source's `last_updated_timestamp`, plus, when values come from env or a file, the
keyed hash of the value, so a value rotated there is noticed too. The payload is a Ref to the scope
and `value_hmac` only; the value travels in `Resource.body`, never to the store.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from databricks.sdk.errors import DatabricksError, NotFound

from dbsync import secret_values
from dbsync.context import SyncContext
from dbsync.declaration import RARELY_CHANGED, Declaration
from dbsync.errors import Blocked, ListingError, Permanent, RetryLater
from dbsync.model import Resource, ref
from dbsync.runcache import CacheKey
from dbsync.secret_values import SecretValueError, env_name, hmac_key, value_hmac
from dbsync.watchers.base import Watcher
from dbsync.workspace import Workspace

KEY_VAULT = "AZURE_KEYVAULT"


SECRET_SCOPES: CacheKey[list[dict[str, Any]]] = CacheKey("secret-scopes")  # .part(side)


def scopes(ctx: SyncContext, ws: Workspace) -> list[dict[str, Any]]:
    """Every scope of `ws` as {name, backend_type, keyvault_metadata?}, listed once per run."""

    def load() -> list[dict[str, Any]]:
        try:
            return [s.as_dict() for s in ws.client.secrets.list_scopes()]
        except DatabricksError as err:
            raise ListingError(f"{ws.side}: cannot list secret scopes: {err}") from err

    return ctx.cached(SECRET_SCOPES.part(ws.side), load)


def scope_acl(ctx: SyncContext, ws: Workspace, scope: str) -> list[dict[str, str]]:
    """The scope's ACL entries, principals mapped for the target, sorted."""
    entries = [
        {"principal": ctx.principals.any_principal(item.principal or ""), "permission": item.permission.value}
        for item in ws.client.secrets.list_acls(scope)
        if item.principal and item.permission
    ]
    return sorted(entries, key=lambda e: e["principal"])


class SecretScopeWatcher(Watcher):
    kind = "secret_scopes"
    declaration = Declaration(interval=600, freshness=RARELY_CHANGED)  # ACLs, read by need (see above)

    def forget_target_listing(self, ctx: SyncContext) -> None:
        """Scopes listed while a write was in flight may be stale: the drift check reads them again."""
        ctx.invalidate(SECRET_SCOPES.part("target"))

    def list(self, ctx: SyncContext, ws: Workspace) -> Iterator[Resource]:
        for scope in scopes(ctx, ws):
            backend = scope.get("backend_type") or "DATABRICKS"
            # ACLs have no version: the source is fetched every cycle. On the target the hint only tells
            # the drift check that the scope is there.
            hint = None if ws.side == "source" else backend
            yield Resource(self.kind, scope["name"], scope["name"], hint, source_meta={"backend_type": backend})

    def fetch(self, ctx: SyncContext, ws: Workspace, stub: Resource) -> Resource:
        try:
            acl = scope_acl(ctx, ws, stub.key)
        except NotFound:
            raise RetryLater(f"secret scope {stub.key} disappeared from the source while it was read") from None
        backend = stub.source_meta["backend_type"]
        if backend == KEY_VAULT and stub.key not in {s["name"] for s in scopes(ctx, ctx.target)}:
            raise Blocked(
                f"secret scope {stub.key} is backed by Azure Key Vault, which the Secrets API cannot create: "
                "create it on the target (pointing at the standby's Key Vault); dbsync then replicates its ACLs"
            )
        stub.payload = {"name": stub.key, "backend_type": backend, "acls": acl}
        return stub


class SecretWatcher(Watcher):
    kind = "secrets"
    declaration = Declaration(interval=600, versions=False)  # secret values never enter the version history

    forget_target_listing = SecretScopeWatcher.forget_target_listing

    def list(self, ctx: SyncContext, ws: Workspace) -> Iterator[Resource]:
        names = [s["name"] for s in scopes(ctx, ws) if s.get("backend_type") != KEY_VAULT]
        source = secret_values.value_source(ctx) if ws.side == "source" else None
        key = hmac_key(ctx) if source is not None else b""  # made here, on the thread that owns the store
        with ThreadPoolExecutor(ctx.settings.concurrency, thread_name_prefix=f"secrets-{ws.side}") as pool:
            for scope, listed in zip(names, pool.map(lambda s: _list_keys(ws, s), names), strict=True):
                clashes = _env_clashes(scope, [k for k, _ in listed]) if source and source.name == "env" else {}
                for secret_key, updated in listed:
                    hint = str(updated)
                    if source is not None and source.local:
                        hint += ":" + _local_hash(ctx, source, key, scope, secret_key)
                    meta = {"clash": clashes[secret_key]} if secret_key in clashes else {}
                    yield Resource(self.kind, f"{scope}/{secret_key}", secret_key, hint, source_meta=meta)

    def fetch(self, ctx: SyncContext, ws: Workspace, stub: Resource) -> Resource:
        scope, secret_key = stub.key.split("/", 1)
        if stub.source_meta.get("clash"):
            raise Permanent(
                f"secret keys {secret_key} and {stub.source_meta['clash']} of scope {scope} share the variable "
                f"{env_name(scope, secret_key)}: rename one, or use secrets.values_from: file"
            )
        value = secret_values.value_source(ctx).read(ctx, scope, secret_key)
        stub.body = value
        stub.payload = {
            "scope": ref("secret_scopes", scope),
            "key": secret_key,
            "value_hmac": value_hmac(hmac_key(ctx), scope, secret_key, value),
        }
        return stub


def _list_keys(ws: Workspace, scope: str) -> list[tuple[str, int]]:
    try:
        return [(s.key or "", s.last_updated_timestamp or 0) for s in ws.client.secrets.list_secrets(scope)]
    except NotFound as err:
        if not _scope_still_there(ws, scope):
            return []  # deleted between the scope listing and this one
        raise ListingError(
            f"{ws.side}: listing the secrets of scope {scope} answered 'not found' ({err}) though the scope still "
            "exists: a service fault, not an empty scope; it is listed again next cycle"
        ) from err
    except DatabricksError as err:
        raise ListingError(f"{ws.side}: cannot list the secrets of scope {scope}: {err}") from err


def _scope_still_there(ws: Workspace, scope: str) -> bool:
    """Whether a scope whose key listing answered 404 is in a fresh scope listing (one call, only after a 404)."""
    try:
        return any(s.name == scope for s in ws.client.secrets.list_scopes())
    except DatabricksError:
        return True  # cannot tell: the key listing fails rather than comes back empty


def _local_hash(ctx: SyncContext, source: secret_values.ValueSource, key: bytes, scope: str, secret_key: str) -> str:
    """The value's keyed hash for the version hint; "missing" when it cannot be read (fetch reports why)."""
    try:
        return value_hmac(key, scope, secret_key, source.read(ctx, scope, secret_key))
    except SecretValueError:
        return "missing"


def _env_clashes(scope: str, keys: list[str]) -> dict[str, str]:
    """Keys of one scope whose environment variable names collide: {key: the other key}."""
    by_name: dict[str, list[str]] = {}
    for k in keys:
        by_name.setdefault(env_name(scope, k), []).append(k)
    return {k: next(o for o in group if o != k) for group in by_name.values() if len(group) > 1 for k in group}


def watcher_for(kind: str) -> Watcher:
    return SecretScopeWatcher() if kind == "secret_scopes" else SecretWatcher()
