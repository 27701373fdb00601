"""Model Registry webhooks (`/api/2.0/mlflow/registry-webhooks/*`) and comments (`/api/2.0/mlflow/comments/*`).

Shapes follow databricks-sdk `service/ml.py` (`ModelRegistryAPI`): create / update answer
`{"webhook": RegistryWebhook}`, list pages `{"webhooks", "next_page_token"}` filtered by `model_name` and
`events`; `http_url_spec.secret` / `.authorization` and `job_spec.access_token` are write-only (never
answered); `REGISTERED_MODEL_CREATED` is only for registry-wide webhooks (no `model_name`); exactly one of
`http_url_spec` and `job_spec`. Comments on a model version answer `{"comment": CommentObject}`.
Tables: "mlflow_webhooks" (id → record with its secrets) and "mlflow_comments" (id → record).

Not modelled: the emulator never calls a webhook URL or runs its job (`test` answers as a receiver that
returned 200 with an empty body, and real events trigger nothing); job ids in `job_spec` are not
checked; webhooks and comments outlive the model they name.
"""

from __future__ import annotations

from typing import Any

from dbsync_emulator.apis import mlflow, scim
from dbsync_emulator.apis._paging import new_uuid, page, page_size
from dbsync_emulator.errors import invalid, not_found
from dbsync_emulator.router import Request, Routes
from dbsync_emulator.state import Workspace

routes = Routes()

WEBHOOKS, COMMENTS = "mlflow_webhooks", "mlflow_comments"
PREFIX = "/api/2.0/mlflow/registry-webhooks"
EVENTS = (
    "MODEL_VERSION_CREATED",
    "MODEL_VERSION_TRANSITIONED_STAGE",
    "TRANSITION_REQUEST_CREATED",
    "COMMENT_CREATED",
    "REGISTERED_MODEL_CREATED",
    "MODEL_VERSION_TAG_SET",
    "MODEL_VERSION_TRANSITIONED_TO_STAGING",
    "MODEL_VERSION_TRANSITIONED_TO_PRODUCTION",
    "MODEL_VERSION_TRANSITIONED_TO_ARCHIVED",
    "TRANSITION_REQUEST_TO_STAGING_CREATED",
    "TRANSITION_REQUEST_TO_PRODUCTION_CREATED",
    "TRANSITION_REQUEST_TO_ARCHIVED_CREATED",
)
STATUSES = ("ACTIVE", "DISABLED", "TEST_MODE")
MAX_WEBHOOKS_PAGE = 100


# -- webhooks ---------------------------------------------------------------------------------------
def _events(value: Any, model_name: str | None) -> list[str]:
    if not isinstance(value, list) or not value:
        raise invalid("Missing value for required parameter 'events'.")
    for event in value:
        if event not in EVENTS:
            raise invalid(f"Invalid event {event!r}: one of {', '.join(EVENTS)}")
    if "REGISTERED_MODEL_CREATED" in value and model_name:
        raise invalid("REGISTERED_MODEL_CREATED can only be used by a registry-wide webhook (without model_name).")
    return list(dict.fromkeys(value))


def _http_url_spec(spec: Any) -> dict:
    if not isinstance(spec, dict) or not spec.get("url"):
        raise invalid("http_url_spec.url is required.")
    if not str(spec["url"]).lower().startswith("https://"):
        raise invalid(f"Invalid webhook URL {spec['url']}: the URL must use HTTPS.")
    out = {"url": str(spec["url"]), "enable_ssl_verification": spec.get("enable_ssl_verification", True) is not False}
    for secret in ("secret", "authorization"):
        if spec.get(secret):
            out[secret] = str(spec[secret])
    return out


def _job_spec(spec: Any) -> dict:
    if not isinstance(spec, dict) or not spec.get("job_id") or not spec.get("access_token"):
        raise invalid("job_spec needs job_id and access_token.")
    out = {"job_id": str(spec["job_id"]), "access_token": str(spec["access_token"])}
    if spec.get("workspace_url"):
        out["workspace_url"] = str(spec["workspace_url"])
    return out


def _target(record: dict, body: dict) -> None:
    """Set the webhook's one target (HTTP URL or job) from a create / update body."""
    http, job = body.get("http_url_spec"), body.get("job_spec")
    if http is not None and job is not None:
        raise invalid("Specify only one of http_url_spec and job_spec.")
    if http is not None:
        record.pop("job_spec", None)
        record["http_url_spec"] = _http_url_spec(http)
    elif job is not None:
        record.pop("http_url_spec", None)
        record["job_spec"] = _job_spec(job)


def _status(value: Any) -> str:
    status = str(value or "ACTIVE")
    if status not in STATUSES:
        raise invalid(f"Invalid status {status!r}: one of {', '.join(STATUSES)}")
    return status


def render_webhook(record: dict) -> dict:
    """RegistryWebhook without its secrets."""
    out = {k: v for k, v in record.items() if k not in ("http_url_spec", "job_spec")}
    if "http_url_spec" in record:
        spec = record["http_url_spec"]
        out["http_url_spec"] = {"url": spec["url"], "enable_ssl_verification": spec["enable_ssl_verification"]}
    if "job_spec" in record:
        out["job_spec"] = {k: v for k, v in record["job_spec"].items() if k != "access_token"}
    return out


def _webhook(ws: Workspace, webhook_id: Any) -> dict:
    record = ws.table(WEBHOOKS).get(str(webhook_id or ""))
    if record is None:
        raise not_found(f"Webhook with ID {webhook_id} does not exist.")
    return record


@routes.post(f"{PREFIX}/create")
def create_webhook(ws: Workspace, req: Request) -> dict:
    """A model's (or, without `model_name`, the registry's) webhook on the given events."""
    body = req.json
    model_name = body.get("model_name")
    if model_name:
        mlflow._model(ws, model_name)  # the registry's own lookup and its 404
    now = ws.now_ms()
    record: dict[str, Any] = {
        "id": new_uuid(ws).hex,
        "events": _events(body.get("events"), model_name),
        "status": _status(body.get("status")),
        "creation_timestamp": now,
        "last_updated_timestamp": now,
    }
    if model_name:
        record["model_name"] = model_name
    if body.get("description"):
        record["description"] = str(body["description"])
    _target(record, body)
    if "http_url_spec" not in record and "job_spec" not in record:
        raise invalid("Specify one of http_url_spec and job_spec.")
    ws.table(WEBHOOKS)[record["id"]] = record
    return {"webhook": render_webhook(record)}


@routes.get(f"{PREFIX}/list")
def list_webhooks(ws: Workspace, req: Request) -> dict:
    """Webhooks of `model_name` (all without it) having any of `events`, a page at a time."""
    model_name, events = req.arg("model_name"), req.args("events")
    found = [
        render_webhook(r)
        for r in ws.table(WEBHOOKS).values()
        if (not model_name or r.get("model_name") == model_name) and (not events or set(events) & set(r["events"]))
    ]
    size = page_size(req.int_arg("max_results"), MAX_WEBHOOKS_PAGE, MAX_WEBHOOKS_PAGE, "max_results")
    chunk, token = page(found, size, req.arg("page_token"))
    body: dict[str, Any] = {"webhooks": chunk} if chunk else {}
    if token:
        body["next_page_token"] = token
    return body


@routes.patch(f"{PREFIX}/update")
def update_webhook(ws: Workspace, req: Request) -> dict:
    """Change events, status, description or the target; absent fields keep their value."""
    body = req.json
    record = _webhook(ws, body.get("id"))
    if "events" in body:
        record["events"] = _events(body["events"], record.get("model_name"))
    if "status" in body:
        record["status"] = _status(body["status"])
    if "description" in body:
        record["description"] = str(body["description"] or "")
    _target(record, body)
    record["last_updated_timestamp"] = max(ws.now_ms(), record["last_updated_timestamp"] + 1)
    return {"webhook": render_webhook(record)}


@routes.delete(f"{PREFIX}/delete")
def delete_webhook(ws: Workspace, req: Request) -> dict:
    """Delete a webhook by id."""
    record = _webhook(ws, req.arg("id"))
    del ws.table(WEBHOOKS)[record["id"]]
    return {}


@routes.post(f"{PREFIX}/test")
def test_webhook(ws: Workspace, req: Request) -> dict:
    """Answer as a receiver that returned 200: the emulator never calls out."""
    body = req.json
    record = _webhook(ws, body.get("id"))
    event = body.get("event")
    if event is not None and event not in record["events"]:
        raise invalid(f"The webhook {record['id']} does not listen to {event}.")
    return {"status_code": 200, "body": ""}


# -- comments ---------------------------------------------------------------------------------------
def _comment(ws: Workspace, comment_id: Any) -> dict:
    record = ws.table(COMMENTS).get(str(comment_id or ""))
    if record is None:
        raise not_found(f"Comment with ID {comment_id} does not exist.")
    return record


def _comment_text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise invalid("Missing value for required parameter 'comment'.")
    return value


def render_comment(record: dict) -> dict:
    """CommentObject (the caller, the admin, may edit and delete its own comments)."""
    out = {k: v for k, v in record.items() if k not in ("name", "version")}
    out["available_actions"] = ["EDIT_COMMENT", "DELETE_COMMENT"]
    return out


@routes.post("/api/2.0/mlflow/comments/create")
def create_comment(ws: Workspace, req: Request) -> dict:
    """A comment on an existing model version."""
    body = req.json
    version = mlflow._version(ws, body.get("name"), body.get("version"))  # the registry's own 404s
    now = ws.now_ms()
    admin = scim.find_user(ws, ws.admin_user)
    record = {
        "id": new_uuid(ws).hex,
        "comment": _comment_text(body.get("comment")),
        "creation_timestamp": now,
        "last_updated_timestamp": now,
        "user_id": str(admin["id"]) if admin else ws.admin_user,
        "name": version["name"],
        "version": str(version["version"]),
    }
    ws.table(COMMENTS)[record["id"]] = record
    return {"comment": render_comment(record)}


@routes.patch("/api/2.0/mlflow/comments/update")
def update_comment(ws: Workspace, req: Request) -> dict:
    """Replace a comment's text."""
    body = req.json
    record = _comment(ws, body.get("id"))
    record["comment"] = _comment_text(body.get("comment"))
    record["last_updated_timestamp"] = max(ws.now_ms(), record["last_updated_timestamp"] + 1)
    return {"comment": render_comment(record)}


@routes.delete("/api/2.0/mlflow/comments/delete")
def delete_comment(ws: Workspace, req: Request) -> dict:
    """Delete a comment by id."""
    record = _comment(ws, req.arg("id"))
    del ws.table(COMMENTS)[record["id"]]
    return {}
