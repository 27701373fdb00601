"""Kinds whose listing already carries every field (policies, pools, clusters, jobs).

The payload is built from the listing, so the version hint is the payload's fingerprint and a
no-change cycle costs the listing calls only.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from typing import Any

from databricks.sdk.errors import DatabricksError

from dbsync.context import SyncContext
from dbsync.errors import ListingError
from dbsync.model import Resource, fingerprint
from dbsync.watchers.base import Watcher
from dbsync.workspace import Workspace


def writable_fields(api_method: Callable[..., Any]) -> frozenset[str]:
    """The body fields an SDK create method accepts: everything else in a GET answer is read-only."""
    return frozenset(p for p in inspect.signature(api_method).parameters if p != "self")


def keep(document: dict[str, Any], fields: frozenset[str]) -> dict[str, Any]:
    return {k: v for k, v in document.items() if k in fields and v not in (None, {}, [])}


class ListedWatcher(Watcher):
    """list() reads the whole kind and normalizes each object; fetch() has nothing left to do."""

    def __init__(self, kind: str, acl_type: str | None) -> None:
        self.kind = kind
        self.acl_type = acl_type

    def items(self, ws: Workspace) -> Iterator[tuple[str, str, dict[str, Any]]]:
        """(key, name, raw document) of every object in `ws` that dbsync replicates."""
        raise NotImplementedError

    def normalize(self, ctx: SyncContext, raw: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """(payload as written to the target, source_meta kept aside)."""
        raise NotImplementedError

    def forget_target_listing(self, ctx: SyncContext) -> None:
        """Nothing to forget: `items()` reads the workspace afresh and keeps nothing in the run's caches. Saying so
        lets the drift check's target listing be read ahead (readahead.py): used only while the cycle has written
        nothing, listed again after a write."""

    def list(self, ctx: SyncContext, ws: Workspace) -> Iterator[Resource]:
        try:
            for key, name, raw in self.items(ws):
                payload, meta = self.normalize(ctx, raw)
                # The hint covers source_meta too: a pause-state change is recorded, though nothing is written.
                hint = fingerprint({"payload": payload, "meta": meta})
                yield Resource(self.kind, key, name, hint, payload, source_meta=meta)
        except DatabricksError as err:
            raise ListingError(f"{ws.side}: cannot list {self.kind}: {err}") from err

    def fetch(self, ctx: SyncContext, ws: Workspace, stub: Resource) -> Resource:
        return stub
