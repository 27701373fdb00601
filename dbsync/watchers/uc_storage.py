"""Unity Catalog storage: storage credentials (cloud identities) and external locations (URLs), by name.

A storage credential's cloud identity is rewritten through `mapping.cloud_identities` (an IAM role ARN also
through `mapping.aws_account_id`, as instance profiles are); one with no entry is kept as it is (the same role
or access connector may serve both regions). The identity fields the service makes itself (an IAM role's
`external_id` and `unity_catalog_iam_arn`, a GCP service account's email) are the target's own and are not
copied: the target's must be trusted by the cloud side too. An Azure service principal's client secret and a
Cloudflare token's secret key are write-only (never in a GET): such a credential is `blocked` until a person
creates it on the target with the same name; dbsync then adopts it (comment, owner, grants).

An external location's URL goes through `mapping.storage_urls`; with no entry it is `blocked` naming the entry
to add. Its storage credential is a reference: it waits for that credential to be on the target.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from dbsync.context import SyncContext
from dbsync.declaration import Declaration
from dbsync.model import ref
from dbsync.watchers.uc_common import BLOCKED, UcWatcher, mapped_url, owner_of, storage_map
from dbsync.workspace import Workspace

STORAGE_CREDENTIALS = "storage_credentials"
# The identity kinds of a storage credential, with the fields dbsync copies (the rest the service makes).
IDENTITY_FIELDS: dict[str, tuple[str, ...]] = {
    "aws_iam_role": ("role_arn",),
    "azure_managed_identity": ("access_connector_id", "managed_identity_id"),
    "databricks_gcp_service_account": (),
    "azure_service_principal": ("directory_id", "application_id"),
    "cloudflare_api_token": ("account_id", "access_key_id"),
}
# Fields that hold a cloud identity, rewritten through mapping.cloud_identities.
IDENTITY_VALUES = ("role_arn", "access_connector_id", "managed_identity_id")
# Identity kinds whose secret the API never returns: the credential is created on the target by a person.
WRITE_ONLY = {"azure_service_principal": "client secret", "cloudflare_api_token": "secret access key"}


def identity_kind(payload: dict[str, Any]) -> str | None:
    """Which identity a credential payload carries (aws_iam_role, azure_managed_identity, ...)."""
    return next((k for k in IDENTITY_FIELDS if k in payload), None)


class StorageCredentialsWatcher(UcWatcher):
    kind = STORAGE_CREDENTIALS
    uc_securable = "STORAGE_CREDENTIAL"
    declaration = Declaration(interval=600, link="{host}/explore/storage-credentials/{key}")

    def raw_items(self, ctx: SyncContext, ws: Workspace) -> Iterable[dict[str, Any]]:
        return (info.as_dict() for info in ws.client.storage_credentials.list())

    def read_one(self, ws: Workspace, key: str) -> object:
        return ws.client.storage_credentials.get(key)

    def normalize(self, ctx: SyncContext, ws: Workspace, raw: dict[str, Any]) -> dict[str, Any]:
        name = str(raw.get("name") or "").lower()
        payload: dict[str, Any] = {
            "name": name,
            "comment": raw.get("comment") or "",
            "read_only": bool(raw.get("read_only")),
            "owner": owner_of(ctx, raw),
            BLOCKED: None,
        }
        kind = next((k for k in IDENTITY_FIELDS if raw.get(k) is not None), None)
        if kind is None:
            payload[BLOCKED] = f"storage credential {name} has no identity dbsync knows how to copy"
            return payload
        identity = {f: raw[kind][f] for f in IDENTITY_FIELDS[kind] if raw[kind].get(f)}
        payload[kind] = {f: self._identity(ctx, f, v) for f, v in identity.items()}
        if kind in WRITE_ONLY:
            payload[BLOCKED] = (
                f"storage credential {name} uses an {kind} whose {WRITE_ONLY[kind]} the API never returns: create "
                "it on the target by hand with the same name; dbsync then adopts it and copies its comment, owner "
                "and grants"
            )
        return payload

    @staticmethod
    def _identity(ctx: SyncContext, field: str, value: str) -> str:
        if field not in IDENTITY_VALUES:
            return value
        mapped = storage_map(ctx).identity(value)
        return ctx.principals.arn(mapped) if mapped == value and field == "role_arn" else mapped


class ExternalLocationsWatcher(UcWatcher):
    kind = "external_locations"
    uc_securable = "EXTERNAL_LOCATION"
    declaration = Declaration(interval=600, link="{host}/explore/locations/{key}")

    def raw_items(self, ctx: SyncContext, ws: Workspace) -> Iterable[dict[str, Any]]:
        return (info.as_dict() for info in ws.client.external_locations.list())

    def read_one(self, ws: Workspace, key: str) -> object:
        return ws.client.external_locations.get(key)

    def normalize(self, ctx: SyncContext, ws: Workspace, raw: dict[str, Any]) -> dict[str, Any]:
        name = str(raw.get("name") or "").lower()
        url, blocked = mapped_url(ctx, f"external location {name}", raw.get("url"))
        credential = str(raw.get("credential_name") or "").lower()
        return {
            "name": name,
            "url": url,
            "credential_name": ref(STORAGE_CREDENTIALS, credential),
            "comment": raw.get("comment") or "",
            "read_only": bool(raw.get("read_only")),
            "fallback": bool(raw.get("fallback")),
            "owner": owner_of(ctx, raw),
            BLOCKED: blocked,
        }


def watcher_for(kind: str) -> UcWatcher:
    return StorageCredentialsWatcher() if kind == STORAGE_CREDENTIALS else ExternalLocationsWatcher()
