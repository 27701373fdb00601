"""What the Unity Catalog kinds share: a listed watcher over `/api/2.1/unity-catalog/...`, owners, storage URLs.

Unity Catalog securables (storage credentials, external locations, connections, catalogs, volumes, functions)
are read through the UC REST API, whose listings carry every field but the write-only secrets, so each kind's
version hint is its normalized payload's fingerprint: a no-change cycle costs the listing calls only. A
securable's `owner` is part of its payload (the listing carries it; it is written by a PATCH of the securable);
its grants are the `uc_grants` kind's (one GET per securable). Names are the keys: the metastore stores them
lower-case and they are unique per metastore (a volume or function by `catalog.schema.name`).

A URL (an external location's, a catalog's storage root, an external volume's) is rewritten through
`mapping.storage_urls`; one with no entry leaves the payload `blocked` with the entry to add, so nothing is ever
created on the target pointing at the source's storage.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from databricks.sdk.errors import DatabricksError

from dbsync.context import SyncContext
from dbsync.errors import ListingError
from dbsync.mapping import StorageMap
from dbsync.model import Resource, fingerprint
from dbsync.runcache import CacheKey
from dbsync.watchers.base import Watcher, answers
from dbsync.workspace import Workspace

# Payload key of the reason a securable cannot be written yet (an unmapped URL, a secret the API never returns).
BLOCKED = "blocked"
# Catalogs every metastore has on its own, or that are not the customer's: never replicated.
BUILTIN_CATALOGS = frozenset({"hive_metastore", "system", "samples", "__databricks_internal"})
REPLICATED_CATALOG_TYPES = frozenset({"MANAGED_CATALOG", "FOREIGN_CATALOG", "DELTASHARING_CATALOG"})
HIDDEN_SCHEMAS = frozenset({"information_schema"})
UC_CATALOGS: CacheKey[list[dict[str, Any]]] = CacheKey("uc:catalogs")  # .part(side)
UC_SCHEMAS: CacheKey[list[tuple[str, str]]] = CacheKey("uc:schemas")  # .part(side)


def storage_map(ctx: SyncContext) -> StorageMap:
    """`mapping.storage_urls` / `mapping.cloud_identities` of this run."""
    return StorageMap(ctx.settings.mapping)


def mapped_url(ctx: SyncContext, what: str, url: str | None) -> tuple[str | None, str | None]:
    """(target URL, None) or (None, why it is blocked) for a source storage URL; (None, None) without a URL."""
    if not url:
        return None, None
    target = storage_map(ctx).url(url)
    if target is not None:
        return target, None
    root = "/".join(url.split("/")[:3])
    return None, (
        f"{what} points at {url}, which mapping.storage_urls does not map: add the target's storage, e.g. "
        f'mapping.storage_urls: {{"{root}": "<the DR {root.split(":")[0]} location>"}} (nothing is created that '
        "would point at the source's storage)"
    )


def owner_of(ctx: SyncContext, raw: dict[str, Any]) -> str | None:
    """The securable's owner, mapped for the target (`mapping.emails`, `mapping.principals`)."""
    owner = raw.get("owner")
    return ctx.principals.any_principal(owner) if owner else None


def catalogs(ctx: SyncContext, ws: Workspace) -> list[dict[str, Any]]:
    """The replicated Unity Catalog catalogs of `ws` (not system, sample or Hive ones), listed once per run."""

    def load() -> list[dict[str, Any]]:
        out = []
        for info in ws.client.catalogs.list():
            raw = info.as_dict()
            name = (raw.get("name") or "").lower()
            kind = raw.get("catalog_type") or "MANAGED_CATALOG"
            if name and name not in BUILTIN_CATALOGS and kind in REPLICATED_CATALOG_TYPES:
                out.append(raw)
        return out

    return ctx.cached(UC_CATALOGS.part(ws.side), load)


def schemas(ctx: SyncContext, ws: Workspace) -> list[tuple[str, str]]:
    """(catalog, schema) of every schema of the replicated managed catalogs of `ws`, listed once per run."""

    def load() -> list[tuple[str, str]]:
        out = []
        for catalog in catalogs(ctx, ws):
            if catalog.get("catalog_type", "MANAGED_CATALOG") != "MANAGED_CATALOG":
                continue  # a foreign or shared catalog's schemas are the remote system's
            for info in ws.client.schemas.list(catalog_name=catalog["name"]):
                if info.name and info.name.lower() not in HIDDEN_SCHEMAS:
                    out.append((catalog["name"].lower(), info.name.lower()))
        return out

    return ctx.cached(UC_SCHEMAS.part(ws.side), load)


class UcWatcher(Watcher):
    """A Unity Catalog kind: list() reads and normalizes every securable; fetch() has nothing left to do."""

    # The securable type of the UC permissions API ("CATALOG", "EXTERNAL_LOCATION"...): the uc_grants kind
    # copies the grants of every securable a kind with this attribute replicated.
    uc_securable: str = ""

    def raw_items(self, ctx: SyncContext, ws: Workspace) -> Iterable[dict[str, Any]]:
        """Every securable of the kind in `ws`, as the API answers it."""
        raise NotImplementedError

    def read_one(self, ws: Workspace, key: str) -> object:
        """One GET of the securable named `key` in `ws` (what `still_there` asks)."""
        raise NotImplementedError

    def still_there(self, ctx: SyncContext, ws: Workspace, key: str) -> bool:
        """One GET of the securable: Unity Catalog listings page by token (`max_results`, `page_token`), so one dropped
        while a page was read made the first of the next page look deleted too. Gone: a 404 (`<TYPE>_DOES_NOT_EXIST`;
        a dropped securable is not kept)."""
        return answers(lambda: self.read_one(ws, key))

    def key(self, raw: dict[str, Any]) -> str:
        return str(raw.get("full_name") or raw.get("name") or "").lower()

    def normalize(self, ctx: SyncContext, ws: Workspace, raw: dict[str, Any]) -> dict[str, Any]:
        """The payload written to the target (references as Refs, URLs mapped, owner mapped)."""
        raise NotImplementedError

    def list(self, ctx: SyncContext, ws: Workspace) -> Iterator[Resource]:
        try:
            for raw in self.raw_items(ctx, ws):
                payload = self.normalize(ctx, ws, raw)
                meta = {"metastore_id": raw.get("metastore_id")}
                hint = fingerprint({"payload": payload, "meta": meta})
                key = self.key(raw)
                yield Resource(self.kind, key, key, hint, payload, source_meta=meta)
        except DatabricksError as err:
            raise ListingError(f"{ws.side}: cannot list {self.kind}: {err}") from err

    def fetch(self, ctx: SyncContext, ws: Workspace, stub: Resource) -> Resource:
        return stub

    def manual_actions(self, ctx: SyncContext) -> list[dict[str, str]]:
        """Each securable left `blocked` for a person: what to do (add a mapping, create it by hand)."""
        out = []
        for prior in ctx.history.priors(self.kind):
            reason = (prior.payload or {}).get(BLOCKED)
            if reason and prior.status == "blocked":
                out.append({"kind": self.kind, "key": prior.key, "action": reason})
        return out
