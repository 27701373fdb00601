"""Notification destinations (email, Slack, webhook, Microsoft Teams, PagerDuty) that jobs and alerts notify.

The listing has id, name and type only, so each source destination is read every cycle (one GET) and
compared by fingerprint. The service never answers a destination's secrets (webhook URLs, tokens, keys,
passwords: "[Input-Only]" in the API, read back as `<field>_set` flags), so they cannot be copied from
the source: they come from `secrets.values_from` `env` or `file`, as the pseudo-scope
`notification_destinations` with the key `<display name>/<field>` (variable
`DBSYNC_SECRET__NOTIFICATION_DESTINATIONS__<NAME>_<FIELD>`; with `cluster` or `api`, which read secret
scopes, the variable or `secrets.values_file` still supply them). The payload keeps the readable config and
an HMAC of each secret value (a value rotated there is a change); the values themselves are read again
when a destination is written, and never reach the store. Without such a source a destination with a
secret is `blocked` with the variable to set; an email destination needs none.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from databricks.sdk.errors import DatabricksError, NotFound

from dbsync import secret_values
from dbsync.context import SyncContext
from dbsync.declaration import Declaration
from dbsync.errors import Blocked, ListingError, RetryLater
from dbsync.model import Resource, fingerprint
from dbsync.secret_values import SecretValue, env_name, hmac_key, value_hmac
from dbsync.watchers.base import Watcher, answers
from dbsync.workspace import Workspace

PAGE_SIZE = 100
SCOPE = "notification_destinations"  # the pseudo-scope of destination secrets in secrets.values_from
SET_SUFFIX = "_set"  # GET answers `url_set: true` for a secret field it will not show


def secret_key(display_name: str, field: str) -> str:
    """The key of one destination secret in the values source: `<display name>/<field>`."""
    return f"{display_name}/{field}"


def secret_fields(config: dict[str, Any]) -> list[str]:
    """The secret fields a destination has set (from the `<field>_set` flags of a GET)."""
    return sorted(k[: -len(SET_SUFFIX)] for k, v in config.items() if k.endswith(SET_SUFFIX) and v)


def read_secret(ctx: SyncContext, display_name: str, field: str) -> SecretValue:
    """One destination secret from the environment or the values file; Blocked naming the variable otherwise.

    `secrets.values_from: env` or `file` read it as they read secret values. With `cluster` or `api` (which
    read secret scopes, where a destination's URL is not) it is read from the variable, or from
    `secrets.values_file` when one is set. With `none` nothing is read.
    """
    key = secret_key(display_name, field)
    variable = env_name(SCOPE, key)
    source = secret_values.value_source(ctx)
    if source.local:
        return source.read(ctx, SCOPE, key)
    if source.name != "none":
        if variable in os.environ:
            return secret_values.EnvValues().read(ctx, SCOPE, key)
        if ctx.settings.secrets.values_file is not None:
            return secret_values.FileValues().read(ctx, SCOPE, key)
    raise Blocked(
        f"the {field} of notification destination {display_name!r} cannot be read from the API: set the "
        f"variable {variable} (secrets.values_from env) or put it in secrets.values_file as {SCOPE}: {{{key}: ...}}"
    )


class NotificationDestinationWatcher(Watcher):
    kind = "notification_destinations"
    declaration = Declaration(interval=600)

    def list(self, ctx: SyncContext, ws: Workspace) -> Iterator[Resource]:
        if ws.side == "source":
            hmac_key(ctx)  # made here, on the thread that owns the store, before fetches in the workers read it
        try:
            for item in ws.client.notification_destinations.list(page_size=PAGE_SIZE):
                listed = item.as_dict()
                # No version in the listing: None makes the engine read each source destination.
                hint = None if ws.side == "source" else fingerprint(listed)
                yield Resource(self.kind, listed.get("id", ""), listed.get("display_name", ""), hint)
        except DatabricksError as err:
            raise ListingError(f"{ws.side}: cannot list notification destinations: {err}") from err

    def still_there(self, ctx: SyncContext, ws: Workspace, key: str) -> bool:
        """One GET: the listing pages by token (an offset), so a destination deleted while a page was read made the
        first of the next page look deleted too. Gone: a 404 (a deleted destination is not kept)."""
        return answers(lambda: ws.client.notification_destinations.get(key))

    def fetch(self, ctx: SyncContext, ws: Workspace, stub: Resource) -> Resource:
        try:
            got = ws.client.notification_destinations.get(stub.key).as_dict()
        except NotFound:
            raise RetryLater(f"notification destination {stub.key} disappeared from the source") from None
        name = got.get("display_name") or ""
        ((config_key, config),) = (got.get("config") or {"email": {}}).items()
        readable = {k: v for k, v in config.items() if not k.endswith(SET_SUFFIX)}
        if config_key == "email":
            readable["addresses"] = [ctx.principals.user(a) for a in readable.get("addresses") or []]
        key = hmac_key(ctx)
        hashes = {
            f: value_hmac(key, SCOPE, secret_key(name, f), read_secret(ctx, name, f)) for f in secret_fields(config)
        }
        stub.payload = {"display_name": name, "type": config_key, "config": readable, "secrets": hashes}
        return stub


def watcher_for(kind: str) -> NotificationDestinationWatcher:
    return NotificationDestinationWatcher()
