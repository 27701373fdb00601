"""Notification destinations: `/api/2.0/notification-destinations` (create, get, update, list, delete).

Shapes follow databricks-sdk `service/settings.py` (`NotificationDestinationsAPI`, `Config` and the
per-type configs). Records live in table "notification_destinations" (id → record with the full config).

Secrets are write-only, as the service documents them "[Input-Only]": webhook URLs, Slack OAuth tokens
and channel ids, Teams app ids/secrets/channel URLs/tenant ids, PagerDuty integration keys and webhook
basic-auth credentials are never answered back; GET answers their "[Output-Only]" `*_set` booleans
instead. Only an email destination's `addresses` are readable. A client that copies a destination
cannot read its secret from the source.

- create: `display_name` required and unique (409 RESOURCE_ALREADY_EXISTS); `config` wraps exactly one
  of email (at least one address), slack (HTTPS `url`, or `oauth_token` with `channel_id`),
  generic_webhook (HTTPS `url`; `username` with `password`), microsoft_teams (HTTPS `url`, or the app's
  `app_id`, `auth_secret`, `tenant_id` and `channel_url`), pagerduty (`integration_key`).
- update (PATCH): at least one field; a config given replaces the old one (the type cannot change).
- list: `page_size` (default 20), `page_token`; items carry id, display_name and destination_type only.

Not modelled: the Databricks app destinations (Slack / Teams through the Genie app), sending anything.
"""

from __future__ import annotations

from typing import Any

from dbsync_emulator.apis._paging import new_uuid, page, page_size
from dbsync_emulator.errors import already_exists, invalid, not_found
from dbsync_emulator.router import Request, Routes
from dbsync_emulator.state import Workspace

routes = Routes()

DESTINATIONS = "notification_destinations"
PREFIX = "/api/2.0/notification-destinations"
PAGE_DEFAULT, PAGE_MAX = 20, 100
# config key → (destination_type, secret (write-only) fields)
TYPES: dict[str, tuple[str, tuple[str, ...]]] = {
    "email": ("EMAIL", ()),
    "slack": ("SLACK", ("url", "oauth_token", "channel_id")),
    "generic_webhook": ("WEBHOOK", ("url", "username", "password")),
    "microsoft_teams": ("MICROSOFT_TEAMS", ("url", "app_id", "auth_secret", "channel_url", "tenant_id")),
    "pagerduty": ("PAGERDUTY", ("integration_key",)),
}
NOT_MODELLED = ("databricks_app_slack", "databricks_app_teams")


def _https(value: Any, field: str) -> None:
    if not isinstance(value, str) or not value.startswith("https://"):
        raise invalid(f"{field} must be an HTTPS URL")


def _check_slack(config: dict) -> None:
    if config.get("url") is not None:
        _https(config["url"], "slack.url")
    elif not (config.get("oauth_token") and config.get("channel_id")):
        raise invalid("slack needs a webhook url, or an oauth_token together with a channel_id")


def _check_webhook(config: dict) -> None:
    _https(config.get("url"), "generic_webhook.url")
    if bool(config.get("username")) != bool(config.get("password")):
        raise invalid("generic_webhook.username and generic_webhook.password are set together")


def _check_teams(config: dict) -> None:
    app = ("app_id", "auth_secret", "tenant_id", "channel_url")
    if config.get("url") is not None:
        _https(config["url"], "microsoft_teams.url")
    elif not all(config.get(k) for k in app):
        raise invalid("microsoft_teams needs a webhook url, or app_id, auth_secret, tenant_id and channel_url")


def _check_config(config: Any) -> tuple[str, dict]:
    """(config key, the nested config) of a request's `config`, validated."""
    if not isinstance(config, dict):
        raise invalid("config is required and must wrap exactly one destination config")
    keys = [k for k, v in config.items() if v is not None]
    unsupported = [k for k in keys if k in NOT_MODELLED]
    if unsupported:
        raise invalid(f"{unsupported[0]} destinations are not supported by this emulator")
    if len(keys) != 1 or keys[0] not in TYPES:
        raise invalid(f"config must wrap exactly one of {', '.join(TYPES)} (got {', '.join(keys) or 'none'})")
    key = keys[0]
    nested = config[key]
    if not isinstance(nested, dict):
        raise invalid(f"config.{key} must be an object")
    if key == "email":
        addresses = nested.get("addresses")
        if (
            not isinstance(addresses, list)
            or not addresses
            or not all(isinstance(a, str) and "@" in a for a in addresses)
        ):
            raise invalid("email.addresses needs at least one email address")
    elif key == "slack":
        _check_slack(nested)
    elif key == "generic_webhook":
        _check_webhook(nested)
    elif key == "microsoft_teams":
        _check_teams(nested)
    elif not nested.get("integration_key"):
        raise invalid("pagerduty.integration_key is required")
    return key, dict(nested)


def _check_name(ws: Workspace, name: Any, skip: str | None = None) -> str:
    if not isinstance(name, str) or not name.strip():
        raise invalid("display_name is required")
    for other in ws.table(DESTINATIONS).values():
        if other["display_name"] == name and other["id"] != skip:
            raise already_exists(f"A notification destination named '{name}' already exists", status=409)
    return name


def _load(ws: Workspace, destination_id: str) -> dict:
    record = ws.table(DESTINATIONS).get(destination_id)
    if record is None:
        raise not_found(f"Notification destination {destination_id} does not exist.")
    return record


def render(record: dict) -> dict:
    """The destination as GET answers it: secret fields replaced by their `*_set` flags."""
    key = record["config_key"]
    _, secret_fields = TYPES[key]
    nested = record["config"]
    out: dict[str, Any] = {k: v for k, v in nested.items() if k not in secret_fields}
    for field in secret_fields:
        out[f"{field}_set"] = bool(nested.get(field))
    return {
        "id": record["id"],
        "display_name": record["display_name"],
        "destination_type": TYPES[key][0],
        "config": {key: out},
    }


def exists(ws: Workspace, destination_id: str) -> bool:
    """Whether a destination id exists (jobs, alerts and dashboard subscriptions reference them)."""
    return destination_id in ws.table(DESTINATIONS)


@routes.post(PREFIX)
def create(ws: Workspace, req: Request) -> dict:
    body = req.json
    name = _check_name(ws, body.get("display_name"))
    key, nested = _check_config(body.get("config"))
    record = {
        "id": str(new_uuid(ws)),
        "display_name": name,
        "config_key": key,
        "config": nested,
        "seq": ws.next_id("notification_destination_seq"),
    }
    ws.table(DESTINATIONS)[record["id"]] = record
    return render(record)


@routes.get(f"{PREFIX}/{{id}}")
def get(ws: Workspace, req: Request) -> dict:
    return render(_load(ws, req.path_params["id"]))


@routes.patch(f"{PREFIX}/{{id}}")
def update(ws: Workspace, req: Request) -> dict:
    record = _load(ws, req.path_params["id"])
    body = req.json
    if body.get("display_name") is None and body.get("config") is None:
        raise invalid("At least one of display_name or config is required")
    name = _check_name(ws, body["display_name"], skip=record["id"]) if body.get("display_name") is not None else None
    if body.get("config") is not None:
        key, nested = _check_config(body["config"])
        if key != record["config_key"]:
            raise invalid(f"The destination type cannot change ({record['config_key']} → {key}): create a new one")
        record["config"] = nested
    if name is not None:
        record["display_name"] = name
    return render(record)


@routes.get(PREFIX)
def list_destinations(ws: Workspace, req: Request) -> dict:
    size = page_size(req.int_arg("page_size"), PAGE_DEFAULT, PAGE_MAX)
    records = sorted(ws.table(DESTINATIONS).values(), key=lambda r: r["seq"])
    chunk, token = page(records, size, req.arg("page_token"))
    body: dict[str, Any] = {
        "results": [
            {"id": r["id"], "display_name": r["display_name"], "destination_type": TYPES[r["config_key"]][0]}
            for r in chunk
        ]
    }
    if token:
        body["next_page_token"] = token
    return body


@routes.delete(f"{PREFIX}/{{id}}")
def delete(ws: Workspace, req: Request) -> dict:
    record = _load(ws, req.path_params["id"])
    del ws.table(DESTINATIONS)[record["id"]]
    return {}
