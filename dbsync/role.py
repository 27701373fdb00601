"""Which side of a pair is the primary, recorded on the workspaces themselves, and the write fence.

The role marker is a small JSON workspace file, `/Shared/.dbsync/role.json`, that dbsync owns in each
workspace of a pair. A workspace file because every workspace has `/Shared` and the Workspace API
(no cluster, no DBFS root, which newer workspaces may not have), it survives restarts and lost stores,
an admin can read it in the UI, and the tree listing of the workspace kinds skips `/Shared/.dbsync`,
so the marker is never replicated, counted as extra or deleted. It is written before the first write of
each replicating process (when missing), by `dbsync cutover` (the target → `promoting`, then `primary`; the source →
`standby` when it answers), by `--rollback` (back to standby / primary) and read before writing.

The write fence is checked before every request that can change the target (anything but GET): it
refuses once the store's role is not `standby`, once a cutover asked this process to hand over the
store, when the target's marker says it is not a standby of this source, or when the marker cannot be
read (re-read at most every MARKER_TTL_SECONDS while writes happen, so a no-change cycle costs no call).

That cache means another process may still write for MARKER_TTL_SECONDS after a marker stopped saying
standby: a second `dbsync serve` on a copy of the store re-paused the jobs a cutover had just unpaused on
the target (they then ran nowhere). So whatever takes a workspace out of standby waits MARKER_WAIT_SECONDS
(MarkerWait) before it makes anything run there, rather than every writer re-reading the marker before
each write (one more call per write, and still a race with a write already on its way).
"""

from __future__ import annotations

import base64
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from databricks.sdk.errors import DatabricksError, NotFound
from databricks.sdk.service.workspace import ImportFormat

from dbsync.errors import ConfigError, DbsyncError
from dbsync.roles import MarkerRole, StoreRole

log = logging.getLogger("dbsync.role")
MARKER_DIR = "/Shared/.dbsync"
MARKER_PATH = f"{MARKER_DIR}/role.json"
MARKER_TTL_SECONDS = 10.0
# How long after a marker stops saying standby another process's fence may still let a write out on its cached
# answer: the TTL, and the time a write let through just before it expired takes to reach the service.
MARKER_WAIT_SECONDS = MARKER_TTL_SECONDS + 2.0
STANDBY, PROMOTING, PRIMARY = MarkerRole.STANDBY, MarkerRole.PROMOTING, MarkerRole.PRIMARY


class WriteFenced(DbsyncError):
    """A write refused by the fence: this process may no longer write to the target (never retried)."""


class RoleRefused(ConfigError):
    """The target's marker says it is not this source's standby: nothing is written (exit 2)."""


# -- the marker ---------------------------------------------------------------------------------
def read_marker(ws: Any) -> dict[str, Any] | None:
    """The workspace's role marker, or None when it has none (a GET; an unreadable one is an error)."""
    try:
        exported = ws.client.workspace.export(MARKER_PATH)
    except NotFound:
        return None
    except DatabricksError as err:
        raise ConfigError(f"cannot read the role marker {MARKER_PATH} of the {ws.side}: {err}") from None
    try:
        document = json.loads(base64.b64decode(exported.content or ""))
    except ValueError:
        return {"role": "unreadable"}
    return document if isinstance(document, dict) else {"role": "unreadable"}


def write_marker(ws: Any, role: str, this_id: str, peer_id: str, by: str) -> dict[str, Any]:
    """Record `role` on the workspace: one import with overwrite (its folder made the first time)."""
    document = {
        "dbsync_role_marker": 1,
        "role": role,
        "workspace_id": this_id,
        "peer_workspace_id": peer_id,
        "written_by": by,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    content = base64.b64encode(json.dumps(document, indent=2).encode()).decode()
    try:
        ws.client.workspace.import_(MARKER_PATH, content=content, format=ImportFormat.RAW, overwrite=True)
    except NotFound:  # the first marker of this workspace: its folder first
        ws.client.workspace.mkdirs(MARKER_DIR)
        ws.client.workspace.import_(MARKER_PATH, content=content, format=ImportFormat.RAW, overwrite=True)
    return document


def marker_refusal(marker: dict[str, Any] | None, source_id: str, target_id: str) -> str | None:
    """Why a replication source_id → target_id must not write to a target with this marker (None: it may)."""
    if marker is None:
        return None
    role = marker.get("role")
    peer = str(marker.get("peer_workspace_id") or "")
    if role == STANDBY and peer in ("", source_id):
        return None
    where = f"the target workspace {target_id} ({MARKER_PATH})"
    if role in (PRIMARY, PROMOTING):
        what = "is the primary" if role == PRIMARY else "is being promoted to primary"
        return (
            f"{where} {what} since {marker.get('at', '?')} (`dbsync {marker.get('written_by', 'cutover')}`): dbsync "
            "will not write to it; to replicate it back into the old primary run `dbsync reverse`, to undo the "
            "cutover `dbsync cutover --rollback` (an old primary left marked by a --skip-source cutover is marked "
            "standby by running `dbsync cutover` once more while it answers)"
        )
    if role == STANDBY:
        return f"{where} is the standby of workspace {peer}, not of {source_id}: point the config at its own pair"
    return f"{where} has an unreadable role marker: check it, delete it if the workspace is a standby, run again"


def promotion_refusal(marker: dict[str, Any] | None, source_id: str, target_id: str) -> str | None:
    """Why the cutover of source_id → target_id must not write to a target with this marker (None: it may): the
    marker must say the target is being promoted for this pair (the cutover's own writes: cutover/late_jobs.py)."""
    marker = marker or {}
    own = str(marker.get("workspace_id") or "")
    peer = str(marker.get("peer_workspace_id") or "")
    if marker.get("role") == PROMOTING and peer == source_id and own in ("", target_id):
        return None
    return f"the target's {MARKER_PATH} says {marker.get('role')!r}, not promoting by this cutover"


def check_marker(target: Any, source_id: str, target_id: str) -> dict[str, Any] | None:
    """At open: refuse (RoleRefused, one line) a target whose marker says it is not our standby."""
    marker = read_marker(target)
    refusal = marker_refusal(marker, source_id, target_id)
    if refusal:
        raise RoleRefused(refusal)
    return marker


def ensure_markers(source: Any, target: Any, source_id: str, target_id: str) -> None:
    """Before the first write of a process: write the markers of a pair that has none (its first write,
    whoever bound the store: `plan` or `validate` may have bound it first).

    Made at the first write, not at open, so a run that writes nothing (no change, a broken store)
    writes nothing. One read of the target's marker per process; the source is read only when the
    target has no marker (the two are written together), so a later run costs the source nothing. The
    source's marker is best effort: a replication that may only read it still runs.
    """
    if read_marker(target) is not None:
        return
    write_marker(target, STANDBY, target_id, source_id, "sync")
    try:
        if read_marker(source) is None:
            write_marker(source, PRIMARY, source_id, target_id, "sync")
    except (DatabricksError, DbsyncError) as err:
        log.warning("cannot write the role marker of the source: %s", err)


# -- the fence ----------------------------------------------------------------------------------
def monotonic() -> float:
    """time.monotonic, looked up at each call: the fence's TTL then follows freezegun's clock in the tests."""
    return time.monotonic()


class WriteFence:
    """Before each target write: may this process still write? Fed by the store and the target's marker.

    `writes_as`: the store's role this process writes in (a replication: standby; a cutover's own replication of
    late jobs: cutover-in-progress, with a marker check that wants the target promoting)."""

    def __init__(
        self,
        store_flags: Callable[[], tuple[str, str | None]],
        marker_check: Callable[[], str | None] | None = None,
        first_write: Callable[[], None] | None = None,
        clock: Callable[[], float] = monotonic,
        writes_as: str = StoreRole.STANDBY,
    ) -> None:
        self.store_flags = store_flags
        self.marker_check = marker_check
        self.first_write = first_write
        self.clock = clock
        self.writes_as = writes_as
        self._marker: tuple[float, str | None] | None = None
        self._lock = threading.Lock()
        self._own = threading.local()  # set while the fence writes the markers itself

    def refusal(self) -> str | None:
        """Why the next write must not go out (None: it may)."""
        if getattr(self._own, "writing", False):
            return None
        role, requested = self.store_flags()
        if requested:
            return "a cutover asked this process to hand over the store: no more writes to the target"
        if role != self.writes_as:
            return f"the store's role is {role}: no more writes to the target"
        refusal = self._marker_refusal()
        if refusal is None and self.first_write is not None:
            self._first_write()
        return refusal

    def _first_write(self) -> None:
        with self._lock:
            if self.first_write is None:
                return
            self._own.writing = True
            try:
                self.first_write()
            finally:
                self._own.writing = False
            self.first_write = None

    def _marker_refusal(self) -> str | None:
        if self.marker_check is None:
            return None
        with self._lock:
            now = self.clock()
            if self._marker is None or now - self._marker[0] >= MARKER_TTL_SECONDS:
                self._marker = (now, self.marker_check())
            return self._marker[1]


class MarkerWait:
    """The wait between marking a workspace out of standby and making anything run there.

    `dbsync cutover` marks the target promoting, then unpauses its jobs; `--rollback` marks the source
    primary, then unpauses its jobs. Another writer into that workspace (a `dbsync serve` on a copy of the
    store, a forgotten old daemon, a `dbsync reverse` replication) that read the marker as standby less
    than MARKER_TTL_SECONDS before still trusts it and would pause those jobs again. It re-reads the marker
    once its TTL is out and stops: so nothing is made to run there before MARKER_WAIT_SECONDS after the
    mark. A process that did not mark (a cutover resumed after a crash) counts from its first wait.
    """

    def __init__(self, clock: Callable[[], float], sleep: Callable[[float], None]) -> None:
        self.clock = clock
        self.sleep = sleep
        self.since: float | None = None

    def marked(self) -> None:
        """A marker that says "not a standby" was just written."""
        self.since = self.clock()

    def left(self) -> float:
        """Seconds before another writer's cached "standby" has surely run out (0: none can be left)."""
        if self.since is None:
            self.since = self.clock()
        return max(0.0, self.since + MARKER_WAIT_SECONDS - self.clock())

    def wait(self, say: Callable[[float], None]) -> None:
        """Sleep out what is left, after `say` tells the operator how long and why."""
        left = self.left()
        if left > 0:
            say(left)
            self.sleep(left)
