"""Cluster libraries on the target: the mapped target cluster installs what the source cluster installs.

The difference with the target cluster's current set is installed / uninstalled (a terminated standby
cluster queues installs for its next start, which is all a DR copy needs; uninstalls take effect at
the next restart). Libraries that failed on the source are neither installed nor removed, and are
reported. Installing an already-set library is a no-op on the service, so a retried apply is safe.
"""

from __future__ import annotations

from typing import Any

from databricks.sdk.errors import DatabricksError
from databricks.sdk.service.compute import Library

from dbsync.apierrors import is_gone
from dbsync.context import SyncContext
from dbsync.errors import Permanent, RetryLater
from dbsync.model import Applied, Delete, Upsert
from dbsync.replicators.base import Replicator
from dbsync.watchers.cluster_libraries import clean_library, describe, library_key


def _current(ctx: SyncContext, cluster_id: str) -> list[dict[str, Any]]:
    """The target cluster's libraries that are set to stay (not marked for removal)."""
    statuses = ctx.target.client.libraries.cluster_status(cluster_id)
    return [
        clean_library(s.library.as_dict())
        for s in statuses
        if s.library
        and not s.is_library_for_all_clusters
        and (s.status is None or s.status.value != "UNINSTALL_ON_RESTART")
    ]


def _libraries(items: list[dict[str, Any]]) -> list[Library]:
    return [Library.from_dict(item) for item in items]


class ClusterLibrariesReplicator(Replicator):
    kind = "cluster_libraries"
    unrecorded_origin = "created"  # its delete removes nothing dbsync did not write

    def apply(self, ctx: SyncContext, change: Upsert) -> Applied:
        resource = change.resource
        payload = ctx.idmap.resolve(resource.payload)  # Blocked until the cluster is on the target
        cluster_id = payload["cluster"]
        desired, failed = payload["libraries"], payload.get("failed_on_source") or []
        libraries = ctx.target.client.libraries
        try:
            current = _current(ctx, cluster_id)
            present = {library_key(lib) for lib in current}
            keep = {library_key(lib) for lib in desired + failed}
            install = [lib for lib in desired if library_key(lib) not in present]
            uninstall = [lib for lib in current if library_key(lib) not in keep]
            if uninstall:
                libraries.uninstall(cluster_id, _libraries(uninstall))
            if install:
                libraries.install(cluster_id, _libraries(install))
        except DatabricksError as err:
            if is_gone(err):
                raise RetryLater(f"target cluster {cluster_id} is gone; waiting for it to be replicated again") from err
            if err.error_code == "INVALID_PARAMETER_VALUE":
                raise Permanent(f"the target rejected the libraries of cluster {resource.name!r}: {err}") from err
            raise
        note = None
        if failed:
            note = "not installed on the target, failed on the source: " + ", ".join(describe(lib) for lib in failed)
        return Applied(cluster_id, note=note)

    def delete(self, ctx: SyncContext, change: Delete) -> None:
        """The source cluster is gone: its target copy goes too (clusters kind), so nothing is uninstalled
        when the clusters kind listed it as gone in this run; otherwise the recorded libraries are removed."""
        listed_clusters = ctx.listed.get("clusters")
        if listed_clusters is not None and change.key not in listed_clusters:
            return
        recorded = ((change.prior.payload if change.prior else None) or {}).get("libraries") or []
        if not recorded or not change.target_key:
            return
        try:
            ctx.target.client.libraries.uninstall(change.target_key, _libraries(recorded))
        except DatabricksError as err:
            if not is_gone(err):
                raise


def replicator_for(kind: str) -> Replicator:
    return ClusterLibrariesReplicator()
