"""Unity Catalog securables over the UC REST API: storage credentials, external locations and catalogs.

Why REST and not SQL: a catalog's managed storage, an external location's URL and a credential's cloud
identity are not in any `SHOW` output, and only REST sets them (and a securable's owner, which UC's
`SHOW GRANTS` does not print). The schemas, tables and views inside a catalog still go through SQL (the
metastore kinds, `metastore.catalogs`), because their DDL is what SQL answers faithfully; these kinds come
first, so a UC catalog exists on the target before its schemas.

Each listing carries every field, so the listing is the payload (a no-change cycle is one list call per
kind and side). Keys are names (lower case, as UC stores them). Storage URLs follow `mapping.storage`
(prefix rewrite, e.g. a bucket per region): with no mapping configured URLs are kept; with one, a URL no
prefix matches blocks the object, naming the URL. AWS role ARNs follow `mapping.aws_account_id`. A
credential whose secret the API never answers (Azure service principal, Cloudflare token) is created by
no one but you: it is `blocked` until it exists on the target, then its comment and owner follow.
Owners are principals mapped like any other; the service-generated parts of an identity (external id,
UC IAM ARN, a GCP service account's email) are not compared.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

from dbsync.context import SyncContext
from dbsync.declaration import Declaration
from dbsync.model import ref
from dbsync.watchers.listed import ListedWatcher
from dbsync.workspace import Workspace

# Identity kinds and the fields a create accepts; a secret field is never answered by the API.
IDENTITY_FIELDS: dict[str, tuple[str, ...]] = {
    "aws_iam_role": ("role_arn",),
    "azure_managed_identity": ("access_connector_id", "managed_identity_id"),
    "azure_service_principal": ("directory_id", "application_id"),
    "databricks_gcp_service_account": (),
    "cloudflare_api_token": ("account_id", "access_key_id"),
}
SECRET_IDENTITIES = ("azure_service_principal", "cloudflare_api_token")
UNMAPPED = "unmapped_url"  # source_meta: a storage URL `mapping.storage` does not cover (the object waits)
BUILTIN_CATALOG_TYPES = ("SYSTEM_CATALOG", "INTERNAL_CATALOG")
# Catalogs another object provides (a connection, a share): not created from a name and a storage root.
FOREIGN_CATALOG_TYPES = ("FOREIGN_CATALOG", "DELTASHARING_CATALOG")


def _common(ctx: SyncContext, raw: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    payload = {k: copy.deepcopy(raw[k]) for k in fields if raw.get(k) not in (None, "", {}, [])}
    if raw.get("owner"):
        payload["owner"] = ctx.principals.any_principal(raw["owner"])
    return payload


def _url(ctx: SyncContext, url: str, meta: dict[str, Any]) -> str:
    mapped = ctx.principals.storage_url(url)
    if mapped is None:
        meta[UNMAPPED] = url
        return url
    return mapped


class StorageCredentialWatcher(ListedWatcher):
    declaration = Declaration(interval=900)

    def items(self, ws: Workspace) -> Iterator[tuple[str, str, dict[str, Any]]]:
        for credential in ws.client.storage_credentials.list(max_results=0):
            yield credential.name or "", credential.name or "", credential.as_dict()

    def normalize(self, ctx: SyncContext, raw: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        payload = _common(ctx, raw, ("name", "comment", "read_only"))
        kind = next((k for k in IDENTITY_FIELDS if raw.get(k) is not None), None)
        if kind is not None:
            identity = {f: raw[kind][f] for f in IDENTITY_FIELDS[kind] if raw[kind].get(f)}
            if identity.get("role_arn"):
                identity["role_arn"] = ctx.principals.arn(identity["role_arn"])
            payload["identity"] = {kind: identity}
        return payload, {}


class ExternalLocationWatcher(ListedWatcher):
    declaration = Declaration(interval=900)

    def items(self, ws: Workspace) -> Iterator[tuple[str, str, dict[str, Any]]]:
        for location in ws.client.external_locations.list(max_results=0):
            yield location.name or "", location.name or "", location.as_dict()

    def normalize(self, ctx: SyncContext, raw: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        meta: dict[str, Any] = {}
        payload = _common(ctx, raw, ("name", "comment", "read_only", "fallback"))
        payload["url"] = _url(ctx, raw.get("url") or "", meta)
        payload["credential_name"] = ref("storage_credentials", raw.get("credential_name") or "")
        return payload, meta


class CatalogWatcher(ListedWatcher):
    declaration = Declaration(interval=900)

    def items(self, ws: Workspace) -> Iterator[tuple[str, str, dict[str, Any]]]:
        for catalog in ws.client.catalogs.list(max_results=0):
            raw = catalog.as_dict()
            if raw.get("catalog_type") in BUILTIN_CATALOG_TYPES:
                continue  # the service's own (system, samples): on every workspace already
            yield catalog.name or "", catalog.name or "", raw

    def normalize(self, ctx: SyncContext, raw: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        meta: dict[str, Any] = {"catalog_type": raw.get("catalog_type") or "MANAGED_CATALOG"}
        payload = _common(ctx, raw, ("name", "comment", "properties", "isolation_mode"))
        if raw.get("storage_root"):
            payload["storage_root"] = _url(ctx, raw["storage_root"], meta)
        return payload, meta


def watcher_for(kind: str) -> ListedWatcher:
    if kind == "storage_credentials":
        return StorageCredentialWatcher(kind, None)
    if kind == "external_locations":
        return ExternalLocationWatcher(kind, None)
    return CatalogWatcher(kind, None)
