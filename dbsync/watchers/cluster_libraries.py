"""Cluster libraries: the set of libraries each interactive cluster installs, keyed by cluster_id.

One `libraries/all-cluster-statuses` call carries every cluster's libraries; one `clusters/list` says
which clusters are interactive (job clusters install their libraries from the job's own spec). Every
interactive cluster is listed, with an empty set when it has none, so a library removed on the source is
an update that uninstalls it on the target. Statuses are not part of the payload: a library installing
is no change. A library marked UNINSTALL_ON_RESTART is already gone from the source's desired set. A
library FAILED on the source is kept apart (`failed_on_source`): never installed on the target, never
removed from it, and reported (the validation report lists it as needing action).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

from databricks.sdk.errors import DatabricksError
from databricks.sdk.service.compute import Library

from dbsync import planner
from dbsync.context import SyncContext
from dbsync.declaration import Declaration
from dbsync.errors import ListingError
from dbsync.model import Resource, canonical_json, fingerprint, ref
from dbsync.runcache import CacheKey
from dbsync.watchers.base import Watcher
from dbsync.watchers.clusters import INTERACTIVE_SOURCES
from dbsync.workspace import Workspace

KIND = "cluster_libraries"
_PATH_TYPES = ("jar", "egg", "whl", "requirements")
MESSAGE_CHARS = 300  # a failure message is kept this long: enough to act on, no stack traces


class InteractiveCluster(NamedTuple):
    """What the run needs of a cluster: the SDK's whole ClusterDetails is ~6 KB, times thousands, all run."""

    cluster_id: str
    cluster_name: str
    state: str  # RUNNING, TERMINATED, ... ("" when the API says nothing)


INTERACTIVE_CLUSTERS: CacheKey[list[InteractiveCluster]] = CacheKey("interactive-clusters")  # .part(side)


def interactive_clusters(ctx: SyncContext, ws: Workspace) -> list[InteractiveCluster]:
    """The interactive (UI / API) clusters of a side, listed once per run."""

    def listing() -> list[InteractiveCluster]:
        return [
            InteractiveCluster(c.cluster_id or "", c.cluster_name or "", c.state.value if c.state else "")
            for c in ws.client.clusters.list()
            if (c.cluster_source.value if c.cluster_source else "UI") in INTERACTIVE_SOURCES
        ]

    return ctx.cached(INTERACTIVE_CLUSTERS.part(ws.side), listing)


def library_key(library: dict[str, Any]) -> str:
    """The identity of a library (its canonical JSON): two libraries are the same when this is."""
    return canonical_json(library)


def describe(library: dict[str, Any]) -> str:
    """`pypi requests==2.31`, `whl /Workspace/...`: a library the way a person names it."""
    kind, value = next(iter(library.items()))
    if isinstance(value, dict):
        value = value.get("package") or value.get("coordinates") or canonical_json(value)
    return f"{kind} {value}"


def clean_library(raw: dict[str, Any]) -> dict[str, Any]:
    """One library as the SDK models it, empty fields dropped (so both sides compare equal)."""
    return {k: v for k, v in Library.from_dict(raw).as_dict().items() if v not in (None, "", [], {})}


def normalize_library(ctx: SyncContext, raw: dict[str, Any]) -> dict[str, Any]:
    """A source library in target terms: cleaned, /Users/<email>/ and /Repos/<email>/ paths following the email
    mapping."""
    library = clean_library(raw)
    for kind in _PATH_TYPES:
        path = library.get(kind)
        if isinstance(path, str):
            library[kind] = ctx.principals.path(path)
    return library


def normalize(ctx: SyncContext, cluster_id: str, statuses: list[dict[str, Any]]) -> tuple[dict, dict]:
    """(payload, source_meta) of one cluster's library statuses."""
    libraries: list[dict[str, Any]] = []
    failed: list[dict[str, Any]] = []
    messages: dict[str, str] = {}
    for status in statuses:
        if not status.get("library") or status.get("is_library_for_all_clusters"):
            continue
        library = normalize_library(ctx, status["library"])
        state = status.get("status")
        if state == "UNINSTALL_ON_RESTART":
            continue  # removed on the source; it lingers only until the source cluster restarts
        if state == "FAILED":
            failed.append(library)
            messages[library_key(library)] = "; ".join(status.get("messages") or [])[:MESSAGE_CHARS]
        else:
            libraries.append(library)
    payload: dict[str, Any] = {"cluster": ref("clusters", cluster_id), "libraries": libraries}
    if failed:
        payload["failed_on_source"] = failed
    return payload, ({"failed_messages": messages} if messages else {})


class ClusterLibrariesWatcher(Watcher):
    kind = KIND
    declaration = Declaration(interval=120, link="{host}/#setting/clusters/{key}/libraries")

    def forget_target_listing(self, ctx: SyncContext) -> None:
        """The target's clusters may have been listed before the clusters kind created one this run."""
        ctx.invalidate(INTERACTIVE_CLUSTERS.part("target"))

    def list(self, ctx: SyncContext, ws: Workspace) -> Iterator[Resource]:
        try:
            clusters = interactive_clusters(ctx, ws)
            statuses = {
                s.cluster_id or "": [ls.as_dict() for ls in s.library_statuses or []]
                for s in ws.client.libraries.all_cluster_statuses()
            }
            resources = [self._resource(ctx, ws, c, statuses.get(c.cluster_id)) for c in clusters]
        except DatabricksError as err:
            raise ListingError(f"{ws.side}: cannot list cluster libraries: {err}") from err
        yield from (r for r in resources if r is not None)

    def _resource(
        self, ctx: SyncContext, ws: Workspace, cluster: InteractiveCluster, statuses: list[dict[str, Any]] | None
    ) -> Resource | None:
        cluster_id = cluster.cluster_id
        if ws.side == "source" and not planner.selected(ctx.settings.kind("clusters"), cluster_id):
            return None  # the cluster itself is not replicated
        if statuses is None and ws.side == "source" and self._had_libraries(ctx, cluster_id):
            # Absent from the bulk listing but it had libraries: ask the cluster before uninstalling anything.
            statuses = [s.as_dict() for s in ws.client.libraries.cluster_status(cluster_id)]
        payload, meta = normalize(ctx, cluster_id, statuses or [])
        hint = fingerprint({"payload": payload, "meta": meta})
        return Resource(self.kind, cluster_id, cluster.cluster_name, hint, payload, source_meta=meta)

    @staticmethod
    def _had_libraries(ctx: SyncContext, cluster_id: str) -> bool:
        prior = ctx.history.prior(KIND, cluster_id)
        return bool(
            prior and prior.payload and (prior.payload.get("libraries") or prior.payload.get("failed_on_source"))
        )

    def fetch(self, ctx: SyncContext, ws: Workspace, stub: Resource) -> Resource:
        return stub

    def manual_actions(self, ctx: SyncContext) -> list[dict[str, str]]:
        """Libraries that failed on the source and so were not installed on the target (from the store)."""
        actions = []
        for prior in ctx.history.priors(KIND):
            messages = prior.source_meta.get("failed_messages") or {}
            for library in (prior.payload or {}).get("failed_on_source") or []:
                message = messages.get(library_key(library)) or "no message"
                actions.append(
                    {
                        "kind": KIND,
                        "key": prior.key,
                        "action": f"{describe(library)} failed to install on source cluster {prior.key} ({message}); "
                        "it is not installed on the target: fix it on the source (or install it by hand)",
                    }
                )
        return actions


def watcher_for(kind: str) -> ClusterLibrariesWatcher:
    return ClusterLibrariesWatcher()
