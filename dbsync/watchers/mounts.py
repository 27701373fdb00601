"""DBFS mounts: inventoried on the source, never written (report-only): credentials cannot be copied.

Mounts have no REST API. Like databrickslabs/migrate (which runs `dbutils.fs.mounts()` through the
Command Execution API 1.2 on a cluster) dbsync opens a Python execution context on a *running*
interactive source cluster (`mounts.cluster_id`, or any running one), runs one command that prints the
mounts as JSON, and destroys the context. It never starts a cluster: with none running, the last
inventory is kept (a failed look is never an empty listing) and the report says it could not refresh.
The built-in mounts every workspace has (`/`, `/databricks-datasets`, `/Volumes`, ...) are skipped:
only mounts of cloud storage (a source with a URI scheme) are listed.

Each mount is reported as "needs manual action": its mount point and source, to be mounted again on
the target with the target's own credentials.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from databricks.sdk.errors import DatabricksError
from databricks.sdk.service.compute import Language, ResultType

from dbsync import planner
from dbsync.apierrors import is_gone
from dbsync.context import SyncContext
from dbsync.declaration import Declaration
from dbsync.errors import ListingError
from dbsync.model import Resource, fingerprint
from dbsync.watchers.base import Watcher
from dbsync.watchers.cluster_libraries import interactive_clusters
from dbsync.workspace import Workspace

KIND = "mounts"
REPORT_MAX_AGE_SECONDS = 300.0
RUNNING = ("RUNNING", "RESIZING")
# One print of one JSON document: the same text on a real cluster and on the emulator.
LIST_COMMAND = (
    "import json\n"
    "print(json.dumps([{'mount_point': m.mountPoint, 'source': m.source, 'encryption_type': m.encryptionType}"
    " for m in dbutils.fs.mounts()]))"
)


def manual_action(payload: dict[str, Any]) -> str:
    """What a person does on the target for one mount."""
    return (
        f"mount {payload['source']} at {payload['mount_point']} on the target with the target's own credentials "
        "(dbutils.fs.mount); dbsync cannot read or copy mount credentials"
    )


class MountWatcher(Watcher):
    kind = KIND
    drift_check = False  # the target is never read: a standby's clusters are terminated
    # Reading mounts runs a command on a running source cluster: hourly is plenty for what changes rarely.
    # Report-only: the report lists these as manual actions, not as missing objects.
    declaration = Declaration(interval=3600, report_only=True)

    def __init__(self) -> None:
        # The last live inventory per workspace host: the report reuses it for REPORT_MAX_AGE_SECONDS
        # instead of running a command on someone's cluster at every refresh of /report.html.
        self._recent: dict[str, tuple[float, list[dict[str, Any]]]] = {}
        self._lock = threading.Lock()

    def list(self, ctx: SyncContext, ws: Workspace) -> Iterator[Resource]:
        if ws.side != "source":
            return
        cluster_id = self.inventory_cluster(ctx, ws)
        if cluster_id is None:
            yield from self._kept(ctx)
            return
        mounts = self._inventory(ctx, ws, cluster_id)
        self._remember(ws, mounts)
        for payload in mounts:
            yield Resource(self.kind, payload["mount_point"], payload["mount_point"], fingerprint(payload), payload)

    def fetch(self, ctx: SyncContext, ws: Workspace, stub: Resource) -> Resource:
        return stub

    def _remember(self, ws: Workspace, mounts: list[dict[str, Any]]) -> None:
        with self._lock:
            self._recent[ws.host] = (time.monotonic(), mounts)

    def _recent_inventory(self, ctx: SyncContext, ws: Workspace, cluster_id: str) -> list[dict[str, Any]]:
        with self._lock:
            seen = self._recent.get(ws.host)
        if seen is not None and time.monotonic() - seen[0] < REPORT_MAX_AGE_SECONDS:
            return seen[1]
        mounts = self._inventory(ctx, ws, cluster_id)
        self._remember(ws, mounts)
        return mounts

    def inventory_cluster(self, ctx: SyncContext, ws: Workspace) -> str | None:
        """The running cluster to read mounts on, or None when there is none (nothing is started)."""
        try:
            configured = ctx.settings.mounts.cluster_id
            if configured:
                state = ws.client.clusters.get(configured).state
                return configured if state is not None and state.value in RUNNING else None
            running = [c for c in interactive_clusters(ctx, ws) if c.state in RUNNING]
        except DatabricksError as err:
            if is_gone(err):
                raise ListingError(
                    f"mounts.cluster_id {ctx.settings.mounts.cluster_id} does not exist on the source: "
                    "set it to a running interactive cluster, or unset it to use any running one"
                ) from err
            raise ListingError(f"{ws.side}: cannot list clusters to read mounts on: {err}") from err
        return min((c.cluster_id for c in running), default=None)

    def _kept(self, ctx: SyncContext) -> Iterator[Resource]:
        """No cluster to look with: the mounts known from the last inventory stand, unchanged."""
        for prior in ctx.history.priors(self.kind):
            yield Resource(
                self.kind, prior.key, prior.key, prior.version_hint, prior.payload, source_meta=prior.source_meta
            )

    def _inventory(self, ctx: SyncContext, ws: Workspace, cluster_id: str) -> list[dict[str, Any]]:
        commands = ws.client.command_execution
        timeout = timedelta(seconds=ctx.settings.mounts.timeout_seconds)
        try:
            context = commands.create_and_wait(cluster_id=cluster_id, language=Language.PYTHON, timeout=timeout)
            try:
                result = commands.execute_and_wait(
                    cluster_id=cluster_id,
                    context_id=context.id,
                    language=Language.PYTHON,
                    command=LIST_COMMAND,
                    timeout=timeout,
                ).results
            finally:
                commands.destroy(cluster_id=cluster_id, context_id=context.id or "")
        except (DatabricksError, TimeoutError) as err:
            raise ListingError(f"cannot read mounts on source cluster {cluster_id}: {err}") from err
        if result is None or result.result_type != ResultType.TEXT or not isinstance(result.data, str):
            summary = (result.summary or result.cause) if result else "no result"
            raise ListingError(
                f"dbutils.fs.mounts() failed on source cluster {cluster_id}: {summary}. "
                "Set mounts.cluster_id to a cluster where you may run Python (not a SQL-only or table-ACL cluster)"
            )
        try:
            return [
                {
                    "mount_point": str(m["mount_point"]),
                    "source": str(m["source"]),
                    "encryption_type": str(m.get("encryption_type") or ""),
                }
                for m in json.loads(result.data.strip().splitlines()[-1])
                if "://" in str(m.get("source", ""))  # cloud storage, not the built-in mounts
            ]
        except (ValueError, IndexError, KeyError, TypeError, AttributeError) as err:
            raise ListingError(f"unexpected dbutils.fs.mounts() output on cluster {cluster_id}: {err!r}") from err

    def manual_actions(self, ctx: SyncContext) -> list[dict[str, str]]:
        """Every source mount (a live look when a cluster runs), and why the look failed when it did.

        An action with an empty key is about the kind as a whole (the inventory), not one mount.
        """
        note = None
        try:
            cluster_id = self.inventory_cluster(ctx, ctx.source)
            if cluster_id is None:
                note = "no interactive source cluster is running (dbsync never starts one to read mounts)"
            mounts = (
                [r.payload or {} for r in self._kept(ctx)]
                if cluster_id is None
                else (self._recent_inventory(ctx, ctx.source, cluster_id))
            )
        except ListingError as err:
            note, mounts = str(err), [r.payload or {} for r in self._kept(ctx)]
        kind_settings = ctx.settings.kind(KIND)
        mounts = [m for m in mounts if planner.selected(kind_settings, m["mount_point"])]
        actions = []
        if note is not None:
            known = f"{len(mounts)} mount(s) known from an earlier inventory" if mounts else "never inventoried"
            actions.append(
                {
                    "kind": KIND,
                    "key": "",
                    "action": f"mounts could not be checked: {note}; {known}. Start a source cluster or set "
                    "mounts.cluster_id, or list them yourself with dbutils.fs.mounts()",
                }
            )
        for payload in sorted(mounts, key=lambda m: m["mount_point"]):
            actions.append({"kind": KIND, "key": payload["mount_point"], "action": manual_action(payload)})
        return actions


def watcher_for(kind: str) -> MountWatcher:
    return MountWatcher()
