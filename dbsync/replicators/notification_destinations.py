"""Notification destinations on the target: adopted by display name (unique), created or PATCHed, deleted.

A destination's secrets (URLs, tokens, keys) are read from `secrets.values_from` only when it is written,
sent in the request body and dropped: never stored, logged or put in an error. The type cannot change
on the service; a source destination whose type changed is an error naming the fix.
"""

from __future__ import annotations

from typing import Any

from databricks.sdk.errors import DatabricksError, NotFound

from dbsync.context import SyncContext
from dbsync.errors import Permanent
from dbsync.model import Applied, Delete, Upsert
from dbsync.replicators.base import Replicator
from dbsync.replicators.common import TargetIndex, deleted
from dbsync.sdk import Service
from dbsync.watchers.notification_destinations import PAGE_SIZE, SCOPE, read_secret, secret_key

sdk_settings = Service("settings")  # imported when this kind first uses it (dbsync/sdk.py)

BY_NAME = TargetIndex(
    "notification_destinations:name",
    lambda ctx: (
        (d.display_name or "", d.id or "")
        for d in ctx.target.client.notification_destinations.list(page_size=PAGE_SIZE)
    ),
)


def _config(ctx: SyncContext, payload: dict[str, Any]) -> sdk_settings.Config:
    """The request's config: the readable fields and each secret read from the values source."""
    nested = dict(payload["config"])
    for field in payload.get("secrets") or {}:
        nested[field] = read_secret(ctx, payload["display_name"], field).text(
            SCOPE, secret_key(payload["display_name"], field)
        )
    return sdk_settings.Config.from_dict({payload["type"]: nested})


class NotificationDestinationReplicator(Replicator):
    kind = "notification_destinations"

    def apply(self, ctx: SyncContext, change: Upsert) -> Applied:
        payload = change.payload
        name = payload["display_name"]
        api = ctx.target.client.notification_destinations
        found = None if change.target_key else BY_NAME.get(ctx, name)
        destination_id = change.target_key or found
        config = _config(ctx, payload)
        try:
            if destination_id is not None:
                try:
                    api.update(destination_id, display_name=name, config=config)
                    return Applied(destination_id, adopted=True if found else None)
                except NotFound:
                    pass  # deleted on the target by hand: created again
            destination_id = api.create(display_name=name, config=config).id or ""
            BY_NAME.add(ctx, name, destination_id)
        except DatabricksError as err:
            if err.error_code in ("INVALID_PARAMETER_VALUE", "RESOURCE_ALREADY_EXISTS"):
                raise Permanent(f"the target rejected notification destination {name!r}: {_safe(err)}") from None
            raise
        return Applied(destination_id, adopted=False)

    def delete(self, ctx: SyncContext, change: Delete) -> None:
        deleted(lambda: ctx.target.client.notification_destinations.delete(change.target_key or ""))


def _safe(err: DatabricksError) -> str:
    """The service's message only (the request, which holds secrets, is never quoted)."""
    return f"{err.error_code}: {str(err).splitlines()[0][:200]}"


def replicator_for(kind: str) -> Replicator:
    return NotificationDestinationReplicator()
