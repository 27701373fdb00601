"""Secret scopes, their ACLs and secret values on the target.

Scopes: adopt the scope of the same name or create it, then bring the target ACL to the source's: put what
differs, and delete what the source does not have only where dbsync put the entry (recorded: replicators/added.py;
never the caller's own MANAGE, which keeps dbsync able to manage the scope). An entry the scope had before dbsync
adopted it (the DR team's admins on its own scope) or was given there by hand since is kept. A principal the
target lacks is skipped and recorded (principals_missing: skip) or fails the change (fail). Secrets: `put`
overwrites, so create and update are one call; it is made only when the value's keyed hash changed. Nothing here
ever formats a value.

Ownership: a scope or key that was on the target before dbsync wrote it is adopted and never deleted;
a scope dbsync created is deleted only once it holds no key dbsync did not write (a DR-only key keeps it).
"""

from __future__ import annotations

import base64
import contextlib
import re

from databricks.sdk.errors import DatabricksError, NotFound, ResourceAlreadyExists
from databricks.sdk.service.workspace import AclPermission

from dbsync.apierrors import is_gone
from dbsync.context import SyncContext
from dbsync.errors import Blocked, Kept, Permanent, RetryLater
from dbsync.mapping import ANY, waiting_ref
from dbsync.model import Applied, Delete, Upsert
from dbsync.replicators.added import added_before, added_meta, adding_ahead
from dbsync.replicators.base import Replicator
from dbsync.runcache import CacheKey
from dbsync.watchers.secrets import KEY_VAULT, SECRET_SCOPES


def _missing_principal(err: DatabricksError, principal: str) -> bool:
    """The target rejected an ACL because it does not know the principal (not because of the scope)."""
    if err.error_code not in ("INVALID_PARAMETER_VALUE", "RESOURCE_DOES_NOT_EXIST", "NOT_FOUND"):
        return False
    return re.search(re.escape(principal), str(err)) is not None


TARGET_CALLER: CacheKey[str] = CacheKey("secrets:target-caller")
TARGET_SECRET_KEYS: CacheKey[set[str]] = CacheKey("secrets:target-keys")  # .part(scope)


class SecretScopeReplicator(Replicator):
    kind = "secret_scopes"

    def apply(self, ctx: SyncContext, change: Upsert) -> Applied:
        resource = change.resource
        payload = resource.payload
        scope = payload["name"]
        adopted = None
        if change.target_key is None:  # a Key Vault scope is made on the target by hand: adopted
            adopted = payload["backend_type"] == KEY_VAULT or not self._create(ctx, scope, payload["backend_type"])
        created = adopted is False or (
            adopted is None and change.prior is not None and change.prior.origin == "created"
        )
        ours = added_before(change, created, lambda old: (e["principal"] for e in old["acls"]))
        skipped, ours, kept = self._set_acls(ctx, change, payload["acls"], ours)
        notes = [f"kept the ACL entries dbsync did not add: {', '.join(kept)}"] if kept else []
        if skipped:
            notes.append(f"skipped principals missing on the target: {', '.join(skipped)}")
        waiting = [waiting_ref(ANY, p) for p in skipped]
        return Applied(scope, note="; ".join(notes) or None, waiting_on=waiting, adopted=adopted, meta=added_meta(ours))

    @staticmethod
    def _create(ctx: SyncContext, scope: str, backend: str) -> bool:
        """Create the scope (True), or adopt the one of the same name (False: a lost store, made by hand)."""
        if backend == KEY_VAULT:
            raise Blocked(f"Key Vault-backed secret scope {scope} is not on the target: create it there by hand")
        try:
            ctx.target.client.secrets.create_scope(scope)
            ctx.invalidate(SECRET_SCOPES.part("target"))  # the drift check and the secrets kind list it again
            return True
        except ResourceAlreadyExists:
            return False
        except DatabricksError as err:
            if err.error_code in ("INVALID_PARAMETER_VALUE", "RESOURCE_LIMIT_EXCEEDED"):
                raise Permanent(f"the target rejected secret scope {scope}: {err}") from err
            raise

    def _current_acls(self, ctx: SyncContext, scope: str, backend: str) -> dict[str, str]:
        """The target scope's ACL; a scope deleted on the target by hand is created again."""
        secrets = ctx.target.client.secrets

        def read() -> dict[str, str]:
            return {a.principal: a.permission.value for a in secrets.list_acls(scope) if a.principal and a.permission}

        try:
            return read()
        except NotFound:
            self._create(ctx, scope, backend)
            return read()

    def _set_acls(
        self, ctx: SyncContext, change: Upsert, wanted: list[dict[str, str]], ours: set[str]
    ) -> tuple[list[str], set[str], list[str]]:
        """Bring the scope's ACL to the source's, deleting only entries dbsync put (`ours`): (the principals skipped
        because the target lacks them, the entries dbsync put that are there now, the entries kept that it did not)."""
        secrets = ctx.target.client.secrets
        scope = change.payload["name"]
        current = self._current_acls(ctx, scope, change.payload["backend_type"])
        desired = {e["principal"]: e["permission"] for e in wanted}
        adding_ahead(ctx, change, ours, desired.keys() - current.keys())  # recorded before the puts
        skipped, put = [], set()
        for principal, permission in desired.items():
            if current.get(principal) == permission:
                continue
            try:
                secrets.put_acl(scope, principal, AclPermission(permission))
                put.add(principal)
            except DatabricksError as err:
                if not _missing_principal(err, principal):
                    raise
                if ctx.settings.principals_missing == "fail":
                    raise Permanent(f"principal {principal} does not exist on the target") from err
                skipped.append(principal)
        extra = current.keys() - desired.keys()
        caller = self._caller(ctx) if extra else ""
        extra.discard(caller)  # removing its own MANAGE could lock dbsync out of the scope
        for principal in sorted(extra & ours):
            with contextlib.suppress(NotFound):  # already gone
                secrets.delete_acl(scope, principal)
        # An entry dbsync put where the principal had none is its own; one it changed stays whose it was.
        still = ((ours & current.keys()) - (extra & ours)) | {p for p in put if p not in current}
        return skipped, still, sorted(extra - ours)

    @staticmethod
    def _caller(ctx: SyncContext) -> str:
        return ctx.cached(TARGET_CALLER, lambda: ctx.target.client.current_user.me().user_name or "")

    def delete(self, ctx: SyncContext, change: Delete) -> None:
        if change.prior and change.prior.source_meta.get("backend_type") == KEY_VAULT:
            return  # dbsync did not create it (the Key Vault holds the data): the operator removes it
        scope = change.target_key or change.key
        secrets = ctx.target.client.secrets
        try:
            keys = [f"{scope}/{s.key}" for s in secrets.list_secrets(scope) if s.key]
        except NotFound:
            return
        _refuse_if_not_empty(ctx, f"secret scope {scope}", keys)
        try:
            secrets.delete_scope(scope)
        except DatabricksError as err:
            if not is_gone(err):
                raise


def _refuse_if_not_empty(ctx: SyncContext, what: str, inside: list[str]) -> None:
    """Kept when it holds something dbsync did not put there; retried while it holds what dbsync still has to delete."""
    if not inside:
        return
    owned = ctx.history.owned_target_keys(inside)
    foreign = [k for k in inside if k not in owned]
    if foreign:
        raise Kept(f"{what} holds {len(foreign)} entries dbsync did not write (e.g. {foreign[0]}); remove it by hand")
    raise RetryLater(f"{what} still holds {len(owned)} entries dbsync replicated; deleted once they are", 60)


class SecretReplicator(Replicator):
    kind = "secrets"

    def apply(self, ctx: SyncContext, change: Upsert) -> Applied:
        resource = change.resource
        if resource.body is None:
            raise Permanent(f"secret {resource.key}: no value was read")  # never happens after fetch
        payload = ctx.idmap.resolve(resource.payload)
        scope, key = payload["scope"], payload["key"]
        try:
            adopted = None if change.target_key else key in self._target_keys(ctx, scope)
            self._put(ctx, scope, key, resource.body)
        except NotFound:
            raise Blocked(f"waiting for secret scope {scope} to exist on the target") from None
        except DatabricksError as err:
            # The service's message describes the request, never the value; keep only the code to be sure.
            if err.error_code in ("INVALID_PARAMETER_VALUE", "RESOURCE_LIMIT_EXCEEDED", "BAD_REQUEST"):
                raise Permanent(f"the target rejected secret {scope}/{key} ({err.error_code})") from None
            raise
        return Applied(f"{scope}/{key}", adopted=adopted)

    @staticmethod
    def _target_keys(ctx: SyncContext, scope: str) -> set[str]:
        """The keys a target scope held before this run wrote to it (one listing per scope per run)."""
        secrets = ctx.target.client.secrets
        return ctx.cached(TARGET_SECRET_KEYS.part(scope), lambda: {s.key for s in secrets.list_secrets(scope) if s.key})

    @staticmethod
    def _put(ctx: SyncContext, scope: str, key: str, value: bytes) -> None:
        secrets = ctx.target.client.secrets
        try:
            text = value.decode("utf-8")
        except UnicodeDecodeError:
            secrets.put_secret(scope, key, bytes_value=base64.b64encode(value).decode())
            return
        secrets.put_secret(scope, key, string_value=text)

    def delete(self, ctx: SyncContext, change: Delete) -> None:
        scope, _, key = (change.target_key or change.key).partition("/")  # only keys dbsync wrote get here
        try:
            ctx.target.client.secrets.delete_secret(scope, key)
        except DatabricksError as err:
            if not is_gone(err):
                raise


def replicator_for(kind: str) -> Replicator:
    return SecretScopeReplicator() if kind == "secret_scopes" else SecretReplicator()
