"""Storage credentials and external locations on the target: adopted by name, created, PATCHed, deleted.

A credential with a write-only secret (Azure service principal, Cloudflare token) is never created: it stays
`blocked` until a person creates it on the target, then it is adopted and only its comment, read-only flag and
owner are written (its identity is theirs). An external location whose URL has no `mapping.storage_urls` entry
is `blocked` the same way; its credential is resolved to the target's (a reference, waited for).
"""

from __future__ import annotations

from typing import Any

from dbsync.context import SyncContext
from dbsync.model import Applied, Delete, Upsert
from dbsync.replicators.base import Replicator
from dbsync.replicators.common import sdk_call
from dbsync.replicators.uc_common import (
    applied,
    check_blocked,
    check_metastore,
    delete_created,
    differs,
    existing,
    set_owner,
)
from dbsync.watchers.uc_common import BLOCKED
from dbsync.watchers.uc_storage import STORAGE_CREDENTIALS, WRITE_ONLY, identity_kind


def _body(payload: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    return {k: payload[k] for k in fields if k in payload}


class StorageCredentialsReplicator(Replicator):
    kind = STORAGE_CREDENTIALS

    def apply(self, ctx: SyncContext, change: Upsert) -> Applied:
        payload, name = change.payload, change.key
        api = ctx.target.client.storage_credentials
        found = existing(lambda: api.get(name))
        check_metastore(change, found, f"storage credential {name}")
        identity = identity_kind(payload)
        write_only = identity in WRITE_ONLY
        check_blocked(change, adopting=found is not None and write_only)
        fields = ("comment", "read_only") if write_only else ("comment", "read_only", identity or "")
        body = _body(payload, fields)
        return _write(ctx, change, api, body, found, f"storage credential {name}", payload["owner"])

    def delete(self, ctx: SyncContext, change: Delete) -> None:
        api = ctx.target.client.storage_credentials
        delete_created(change, "storage credential", lambda: api.delete(change.target_key or change.key))

    def preview(self, ctx: SyncContext, change: Upsert) -> str | None:
        return change.payload.get(BLOCKED)


class ExternalLocationsReplicator(Replicator):
    kind = "external_locations"

    def apply(self, ctx: SyncContext, change: Upsert) -> Applied:
        check_blocked(change)
        payload, name = ctx.idmap.resolve(change.payload), change.key
        api = ctx.target.client.external_locations
        found = existing(lambda: api.get(name))
        check_metastore(change, found, f"external location {name}")
        body = _body(payload, ("url", "credential_name", "comment", "read_only", "fallback"))
        return _write(ctx, change, api, body, found, f"external location {name}", payload["owner"])

    def delete(self, ctx: SyncContext, change: Delete) -> None:
        api = ctx.target.client.external_locations
        delete_created(change, "external location", lambda: api.delete(change.target_key or change.key))

    def preview(self, ctx: SyncContext, change: Upsert) -> str | None:
        return change.payload.get(BLOCKED)


def _write(
    ctx: SyncContext,
    change: Upsert,
    api: Any,
    body: dict[str, Any],
    found: dict[str, Any] | None,
    what: str,
    owner_wanted: str | None,
) -> Applied:
    """Create the securable, or update it when it differs from the one found; then its owner."""
    name = change.key
    if found is None:
        info = sdk_call(api.create, body, name=name).as_dict()
        adopted: bool | None = False
    else:
        info = sdk_call(api.update, body, name=name).as_dict() if differs(found, body) else found
        adopted = True if change.target_key is None else None
    owner = set_owner(ctx, lambda o: api.update(name, owner=o), what, owner_wanted, info.get("owner"))
    return applied(name, adopted, owner)


def replicator_for(kind: str) -> Replicator:
    return StorageCredentialsReplicator() if kind == STORAGE_CREDENTIALS else ExternalLocationsReplicator()
