"""Directories, notebooks and files: one tree listing per run, shared by the three kinds.

The tree is listed breadth-first with a bounded pool (one `workspace/list` per directory). A
notebook's version hint is (object_id, modified_at): unchanged ⇒ no export. Repos are their own kind,
so REPO objects are not descended into; /dbsync-archive holds dbsync's own archive and is skipped.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import json
import posixpath
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import replace
from typing import NamedTuple

from databricks.sdk.errors import DatabricksError, NotFound
from databricks.sdk.service.workspace import ExportFormat, ObjectInfo

from dbsync.compact import IdIndex
from dbsync.context import SyncContext
from dbsync.declaration import Declaration
from dbsync.errors import ListingError, RetryLater
from dbsync.model import Resource
from dbsync.role import MARKER_DIR  # dbsync's role marker: never replicated, counted or deleted
from dbsync.runcache import CacheKey
from dbsync.watchers.base import Watcher
from dbsync.watchers.tree_schedule import Entry, Tree, TreeSchedule, max_staleness
from dbsync.workspace import Workspace

ARCHIVE_ROOT = "/dbsync-archive"
SKIPPED_TYPES = ("REPO", "LIBRARY", "DASHBOARD")
# Target ACL lookups answered by one get-status each; past this many in a run, one listing of the target
# tree answers the rest (an initial sync: one `list` per directory instead of a `get-status` per object).
ACL_LOOKUPS_BEFORE_LISTING = 50
# The same trade for the drift baseline of this run's imports: a get-status each (concurrently), or the tree
# listed again when that takes fewer calls (one per directory).
REFRESHES_BEFORE_LISTING = 50


def list_tree(ws: Workspace, concurrency: int, root: str = "/", schedule: TreeSchedule | None = None) -> Tree:
    """Every object under `root` (root excluded); a directory that vanished mid-listing is skipped.

    With a `schedule`, only the due directories are listed; the others' entries are as the store last saw them.
    """
    tree = Tree()
    for entry in walk_tree(ws, concurrency, root, schedule):
        tree.append(entry)
    return tree


def _tree_or_failure(ws: Workspace, concurrency: int, schedule: TreeSchedule | None) -> Tree | Exception:
    """The tree, or why it could not be listed: the failure is kept too, so the three kinds fail alike, on one walk."""
    try:
        return list_tree(ws, concurrency, schedule=schedule)
    except Exception as err:
        return err


def _directories_or_failure(ws: Workspace, concurrency: int, paths: list[str]) -> Tree | Exception:
    """The entries of these directories only (one `workspace/list` each; one gone from `ws` has none)."""
    tree = Tree()
    try:
        with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix=f"list-{ws.side}") as pool:
            for children in pool.map(lambda path: _list_dir(ws, path), paths):
                for entry in filter(_kept, children):
                    tree.append(entry)
    except Exception as err:
        return err
    return tree


def walk_tree(
    ws: Workspace, concurrency: int, root: str = "/", schedule: TreeSchedule | None = None
) -> Iterator[Entry]:
    """`list_tree` as a stream, for callers that keep only part of each entry. A directory's entry comes before
    its children's."""
    if schedule is not None:
        yield from _walk_by_need(ws, concurrency, root, schedule)
        return
    level = [root]
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix=f"list-{ws.side}") as pool:
        while level:
            next_level: list[str] = []
            for children in pool.map(lambda p: _list_dir(ws, p), level):
                for entry in filter(_kept, children):
                    yield entry
                    if entry.object_type == "DIRECTORY":
                        next_level.append(entry.path)
            level = next_level


def _walk_by_need(ws: Workspace, concurrency: int, root: str, schedule: TreeSchedule) -> Iterator[Entry]:
    """The due directories listed most overdue first, whatever their depth; the others' entries as last seen.

    A directory not due costs no request, so its subtree is walked at once (from the store) and its due
    subdirectories join the queue. Breadth-first by level, a hinted directory waited behind every due directory
    of the levels above it. Whether a queued directory is still due is asked when its turn comes (the schedule's
    time slice may have ended since).
    """
    queue: list[tuple[float, str]] = []  # (urgency, path) of the due directories not listed yet
    inflight: set[Future[list[Entry]]] = set()

    def last_seen(path: str) -> Iterable[Entry]:
        return schedule.as_last_seen(path)

    def arrived(entries: Iterable[Entry]) -> Iterator[Entry]:
        """Yield entries; a subdirectory is queued when due, else walked from the store now."""
        stack = [iter(filter(_kept, entries))]
        while stack:
            entry = next(stack[-1], None)
            if entry is None:
                stack.pop()
                continue
            yield entry
            if entry.object_type != "DIRECTORY":
                continue
            if schedule.due(entry.path):
                heapq.heappush(queue, (schedule.urgency(entry.path), entry.path))
            else:
                stack.append(filter(_kept, last_seen(entry.path)))

    def listed(path: str) -> list[Entry]:
        entries = list(filter(_kept, _list_dir(ws, path)))
        schedule.was_listed(path, entries)
        return entries

    heapq.heappush(queue, (schedule.urgency(root), root))
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix=f"list-{ws.side}") as pool:
        while queue or inflight:
            while queue and len(inflight) < concurrency:
                _, path = heapq.heappop(queue)
                if schedule.due(path):
                    inflight.add(pool.submit(listed, path))
                else:  # the slice ended while it waited: as last seen, still due
                    yield from arrived(last_seen(path))
            done, _ = wait(inflight, return_when=FIRST_COMPLETED)
            for future in done:
                inflight.discard(future)
                yield from arrived(future.result())


def _entry(o: ObjectInfo) -> Entry:
    return Entry(
        o.path or "",
        o.object_type.value if o.object_type else "",
        o.object_id or 0,
        o.modified_at or 0,
        o.size or 0,
        o.language.value if o.language else None,
    )


WRITTEN: CacheKey[list[str]] = CacheKey("workspace:written")
TREE: CacheKey[Tree | Exception] = CacheKey("workspace:tree")  # .part(side)
SCHEDULE: CacheKey[TreeSchedule | None] = CacheKey("workspace:schedule")  # the source tree's, this run
ACL_LOOKUPS: CacheKey[Iterator[int]] = CacheKey("workspace:acl-lookups")  # .part(side)
OBJECT_IDS: CacheKey[IdIndex] = CacheKey("workspace:object-ids")  # .part(side)
FOLDERS_BEFORE: CacheKey[TargetFolders] = CacheKey("workspace:folders-before")  # the target's, before any mkdirs
FOLDERS_WRITTEN: CacheKey[set[str]] = CacheKey("workspace:folders-written")  # new folders' mkdirs, this run


class TargetFolders(NamedTuple):
    """The target's folders as this run's tree listing found them; `covered`: the directories whose children that
    listing holds (None: the whole tree; listed by need, only the directories the source listed this run)."""

    folders: frozenset[str]
    covered: frozenset[str] | None


def folder_was_on_target(ctx: SyncContext, path: str) -> bool:
    """Whether the target held the folder `path` before dbsync's mkdirs of this run: the DR team's, adopted.

    mkdirs answers the same whether it made the folder or found it, so a folder the DR team made on the standby at
    a replicated path (/Team/finance, with their own ACL entries) was recorded as dbsync's: its ACL was PUT whole,
    their entries erased at the first sync. The target tree this run lists anyway (its drift baseline, read ahead
    before the first write) answers instead, taken once, before the first folder this run creates: a folder that
    a new subfolder's mkdirs made first is not in it, so it is dbsync's too. A folder whose parent that listing
    does not cover (listed by need) costs one get-status. A kill -9 between dbsync's mkdirs and its record leaves
    a folder the next run finds there: adopted, kept, a leak, never a loss.
    """
    before = ctx.cached(FOLDERS_BEFORE, lambda: _target_folders(ctx))  # first: taken before any mkdirs of the run
    if path in _made_folders(ctx):  # made by another write of dbsync's (make_folder): there, but dbsync's
        return False
    if before.covered is None or posixpath.dirname(path) in before.covered:
        return path in before.folders
    return _status_if_there(ctx.target, path) is not None


# Target folders dbsync's mkdirs made that no directories row recorded yet: a notebook, file, repo, query, dashboard or
# experiment written into a folder the standby lacked (`sync --once --kinds notebooks`, a folder whose own write
# failed, one the directories kind excludes), or a parent a subfolder's mkdirs made before its own row was written.
# The next run found such a folder on the target and adopted it: never deleted with the source's (a stale folder on
# the standby for good). A folder leaves the record when its directories row is written (folder_written).
MADE_FOLDERS_META = "folders_made_by_dbsync"
_MADE_FOLDERS_LOCK = threading.Lock()  # a read-modify-write of one meta row from the kinds' worker threads


def _made_folders(ctx: SyncContext) -> set[str]:
    return set(json.loads(ctx.store.get_meta(MADE_FOLDERS_META) or "[]"))


def _remember_made_folders(ctx: SyncContext, paths: Iterable[str]) -> None:
    with _MADE_FOLDERS_LOCK:
        made = _made_folders(ctx)
        if not set(paths) - made:
            return
        ctx.store.set_meta(MADE_FOLDERS_META, json.dumps(sorted(made | set(paths))))


def make_folder(ctx: SyncContext, path: str) -> None:
    """mkdirs of a target folder a write needs (its 404 said it is missing, or a repo is created in it), recording
    each folder it made as dbsync's; a folder already there (the DR team's) is not recorded: it stays adopted.

    A get-status for the folder and each missing parent, the mkdirs, then the record. Recorded AFTER the mkdirs, on
    purpose: mkdirs answers the same whether it made a folder or found one, so a record written ahead and left by a
    kill -9 before the mkdirs cannot be told from one whose mkdirs ran, and the folder the DR team then made at that
    path by hand was taken for dbsync's (its ACL PUT whole, deleted with the source's: audit of 0c49122, which had
    moved the record ahead). A kill -9 between the mkdirs and the record leaves a folder dbsync made that the next run
    adopts: kept, its ACL PATCHed, a leak, never a loss.
    """
    missing = []
    current = path
    while current not in ("", "/") and _status_if_there(ctx.target, current) is None:
        missing.append(current)
        current = posixpath.dirname(current)
    ctx.target.client.workspace.mkdirs(path)
    if missing:
        _remember_made_folders(ctx, missing)


def folder_written(ctx: SyncContext, path: str) -> None:
    """A directories row's first mkdirs just ran: the folder leaves the record of make_folder (its row records its
    origin now), and the parents that mkdirs made join it, so a parent whose own write failed is dbsync's next run.

    A parent made is one the run's target tree, taken before its first mkdirs, did not hold and no directories row
    wrote this run (answered without a call; a parent that tree does not cover, listed by need, is not recorded). A
    parent whose own row is written later this run leaves the record then. No store write when nothing changes.
    """
    before = ctx.cached(FOLDERS_BEFORE, lambda: _target_folders(ctx))
    with _MADE_FOLDERS_LOCK:
        written = ctx.cached(FOLDERS_WRITTEN, set)
        written.add(path)
        parents = []
        parent = posixpath.dirname(path)
        while parent not in ("", "/") and parent not in before.folders and parent not in written:
            if before.covered is not None and posixpath.dirname(parent) not in before.covered:
                break
            parents.append(parent)
            parent = posixpath.dirname(parent)
        made = _made_folders(ctx)
        now = (made - {path}) | set(parents)
        if now != made:
            ctx.store.set_meta(MADE_FOLDERS_META, json.dumps(sorted(now)))


def _target_folders(ctx: SyncContext) -> TargetFolders:
    watcher = WorkspaceObjectWatcher("directories", "DIRECTORY", "directories")
    tree = watcher.tree(ctx, ctx.target)  # the run's: read ahead, or listed now (its failure raised)
    folders = frozenset(entry.path for entry in tree if entry.object_type == "DIRECTORY")
    schedule = _schedule(ctx)
    if schedule is None:
        return TargetFolders(folders, None)
    return TargetFolders(folders, frozenset(ctx.principals.path(path) for path in schedule.listed))


def written_paths(ctx: SyncContext) -> list[str]:
    """Target paths of the tree this run wrote since the drift check last took them (the replicator appends)."""
    return ctx.cached(WRITTEN, list)


def _kept(entry: Entry) -> bool:
    """Repos are their own kind; dbsync's archive and role marker are dbsync's own."""
    return entry.object_type not in SKIPPED_TYPES and entry.path not in (ARCHIVE_ROOT, MARKER_DIR)


def _list_dir(ws: Workspace, path: str) -> list[Entry]:
    try:
        return [_entry(o) for o in ws.client.workspace.list(path)]
    except NotFound as err:
        if not _still_there(ws, path):
            return []  # deleted between listing its parent and listing it
        raise ListingError(
            f"{ws.side}: listing {path} answered 'not found' ({err}) though {path} is in its parent's listing and "
            "still exists: a service fault, not an empty directory; it is listed again next cycle"
        ) from err
    except DatabricksError as err:
        raise ListingError(f"{ws.side}: cannot list {path}: {err}") from err


def _status_if_there(ws: Workspace, path: str) -> ObjectInfo | None:
    """The object's get-status, None when it is gone."""
    try:
        return ws.client.workspace.get_status(path)
    except NotFound:
        return None


def _still_there(ws: Workspace, path: str) -> bool:
    """Whether a directory whose listing answered 404 exists all the same (one get-status, only after a 404)."""
    try:
        ws.client.workspace.get_status(path)
    except NotFound:
        return False
    except DatabricksError:
        return True  # cannot tell: treat it as there, so the listing fails rather than comes back short
    return True


# The three kinds walk one tree (the daemon runs them together: one walk per cycle) and open at one UI page.
# With `kinds.<kind>.max_staleness` set, each directory is listed by need (tree_schedule.py); by default the
# whole tree is listed every cycle, so an edit is replicated by the next `sync --once` whatever its directory.
_TREE = Declaration(
    interval=60,
    shared_listing="workspace_tree",
    link="{host}/#workspace{key}",
    same_key_on_target=True,
    # At 100,000 objects a tree cycle took ~200 s under a 50 requests/s budget, and the kinds listed whole every
    # 2-5 minutes waited behind it (669-1,128 s stale). What other kinds take from the tree (paths) needs no id.
    worker="tree",
)
# Folders every workspace has; they are not "extra" even when the source has none of their content.
_DIRECTORIES = replace(_TREE, builtin_target_keys=frozenset({"/Users", "/Shared", "/Repos"}))


class WorkspaceObjectWatcher(Watcher):
    """One of the three workspace kinds; `object_type` selects from the shared tree listing."""

    declaration = _TREE

    def __init__(self, kind: str, object_type: str, acl_type: str) -> None:
        self.kind = kind
        self.object_type = object_type
        self.acl_type = acl_type
        self.declaration = _DIRECTORIES if kind == "directories" else _TREE

    def tree(self, ctx: SyncContext, ws: Workspace) -> Tree:
        """This run's tree of `ws`. Listed by need, the target's is only the directories the source listed now."""
        schedule = _schedule(ctx)
        concurrency = ctx.settings.concurrency
        if ws.side == "source" or schedule is None:
            source_schedule = schedule if ws.side == "source" else None
            listing = ctx.cached(TREE.part(ws.side), lambda: _tree_or_failure(ws, concurrency, source_schedule))
        else:
            self.tree(ctx, ctx.source)  # the drift check comes after the source walk: which directories it listed
            paths = sorted({ctx.principals.path(path) for path in schedule.listed})
            listing = ctx.cached(TREE.part(ws.side), lambda: _directories_or_failure(ws, concurrency, paths))
        if isinstance(listing, Exception):
            raise listing
        return listing

    def prefetch(self, ctx: SyncContext, ws: Workspace) -> bool:
        """The tree, walked now and kept in columns for the run (its failure too); stubs are made from it later."""
        self.tree(ctx, ws)
        return True

    def target_listed_by_need(self, ctx: SyncContext) -> bool:
        """Listed by need, the target's tree is the directories the source listed this run (the drift check's
        view): it cannot be read ahead of the source walk, and an object elsewhere keeps its last baseline."""
        return _schedule(ctx) is not None

    def release_listing(self, ctx: SyncContext) -> None:
        """Called by the engine after the last workspace kind of a run: 100,000 entries need not stay.

        The source tree's directories listed this run get their next listing (their entries are recorded now); the
        target's, listed whole after the writes, stays as its path → object id index (for the ACL kind).
        """
        schedule = ctx.peek(SCHEDULE)
        if schedule is not None and isinstance(ctx.peek(TREE.part("source")), Tree):
            schedule.record(ctx)
        target = ctx.peek(TREE.part("target"))
        if schedule is None and isinstance(target, Tree) and not ctx.peek(WRITTEN):
            # Listed whole after the tree's writes (the drift check took them: none is left in WRITTEN) or with none
            # written: the target's object ids for the ACLs. Walked again for them, an initial sync listed every
            # directory of the target twice (and read 50 get-status first).
            object_ids(ctx, ctx.target, target)
        for side in ("source", "target"):
            ctx.invalidate(TREE.part(side))

    def listing_cut(self, ctx: SyncContext) -> bool:
        """The walk used its time slice up with directories still due (they are the most overdue next cycle)."""
        schedule = ctx.peek(SCHEDULE)
        return schedule is not None and schedule.cut

    def as_last_seen(self, ctx: SyncContext, stub: Resource) -> bool:
        """The object's directory was not listed this cycle: its entry is the store's, its status stands."""
        schedule = ctx.peek(SCHEDULE)
        return schedule is not None and schedule.not_listed(stub.key)

    def listed_since(self, ctx: SyncContext) -> float | None:
        """When the least recently listed directory of this run's tree was listed (None: all listed this run)."""
        schedule = ctx.peek(SCHEDULE)
        return schedule.oldest_listing() if schedule is not None else None

    def forget_target_listing(self, ctx: SyncContext) -> None:
        """The target tree may have been listed (read ahead) before the three kinds' writes.

        A few writes: their rows are read again (a get-status each); many: the tree is listed again. The writes of
        all three kinds are taken at the first call (the kinds settle together: Engine._settle), so a tree listed
        again for the notebooks is not refreshed path by path for the directories too.
        """
        tree = ctx.peek(TREE.part("target"))
        paths = written_paths(ctx)
        written, paths[:] = list(paths), []
        if tree is None or not written:
            return
        directories = sum(1 for entry in tree if entry.object_type == "DIRECTORY")  # what a listing costs
        if len(written) > max(REFRESHES_BEFORE_LISTING, directories):
            ctx.invalidate(TREE.part("target"))
            return
        with ThreadPoolExecutor(ctx.settings.concurrency, thread_name_prefix="refresh-target") as pool:
            statuses = list(pool.map(lambda path: _status_if_there(ctx.target, path), written))
        if any(status is None for status in statuses):
            ctx.invalidate(TREE.part("target"))  # gone since: a listing tells what is there
            return
        for status in statuses:
            tree.replace(_entry(status))

    def list(self, ctx: SyncContext, ws: Workspace) -> Iterator[Resource]:
        for entry in self.tree(ctx, ws):
            if entry.object_type != self.object_type:
                continue
            hint = _directory_hint(ctx, entry.path) if self.object_type == "DIRECTORY" else _object_hint(entry)
            yield Resource(
                self.kind,
                entry.path,
                name=posixpath.basename(entry.path),
                version_hint=hint,
                source_meta={"object_id": entry.object_id, "language": entry.language},
            )

    def fetch(self, ctx: SyncContext, ws: Workspace, stub: Resource) -> Resource:
        target_path = ctx.principals.path(stub.key)
        if self.object_type == "DIRECTORY":
            stub.payload = {"path": target_path}
            return stub
        fmt = ExportFormat.SOURCE if self.object_type == "NOTEBOOK" else ExportFormat.RAW
        try:
            body = ws.client.workspace.download(stub.key, format=fmt).read()
        except NotFound:
            raise RetryLater(f"{stub.key} disappeared from the source while it was read") from None
        stub.body = body
        stub.payload = {
            "path": target_path,
            "language": stub.source_meta.get("language"),
            "sha256": hashlib.sha256(body).hexdigest(),
            "size": len(body),
        }
        return stub

    def acl_object_id(self, ctx: SyncContext, ws: Workspace, key: str, meta: dict) -> str | None:
        """Workspace ACLs are keyed by object_id, which differs per workspace: resolve it by path."""
        if ws.side == "source" and meta.get("object_id"):
            return str(meta["object_id"])
        seen = (meta.get("target_version") or "").split(":")  # "object_id:modified_at:size", as the drift check saw it
        if ws.side == "target" and len(seen) == 3 and seen[0].isdigit() and seen[0] != "0":
            return seen[0]
        # The permissions kind runs after every workspace write of the run, so a listing made now is current.
        ids = ctx.peek(OBJECT_IDS.part(ws.side))  # kept from the tree's drift check (release_listing)
        if ids is None and next(ctx.cached(ACL_LOOKUPS.part(ws.side), itertools.count)) >= ACL_LOOKUPS_BEFORE_LISTING:
            ids = object_ids(ctx, ws)
        object_id = ids.get(key) if ids is not None else None
        if object_id:
            return str(object_id)
        try:
            return str(ws.client.workspace.get_status(key).object_id)
        except NotFound:
            return None


def _directory_hint(ctx: SyncContext, path: str) -> str:
    """A folder has no version: what is written for it is its target path, so a `mapping.emails` entry that moves
    it is its change. A row written when /Repos/<email> did not follow the mapping kept its folder at the source
    user's email for good (its hint never changed); an unmapped folder's hint stays "dir", as it always was."""
    target = ctx.principals.path(path)
    return "dir" if target == path else f"dir:{target}"


def _object_hint(entry: Entry) -> str:
    return f"{entry.object_id}:{entry.modified_at}:{entry.size}"


def _schedule(ctx: SyncContext) -> TreeSchedule | None:
    """The source tree's listing schedule for this run: None when it is listed in full (validate, plans, a
    cutover's final sync, or a `max_staleness` of 0)."""
    if not ctx.by_need or max_staleness(ctx) <= 0:
        return None
    return ctx.cached(SCHEDULE, lambda: TreeSchedule(ctx))


def object_ids(ctx: SyncContext, ws: Workspace, tree: Iterable[Entry] | None = None) -> IdIndex:
    """path → object_id of every object in `ws`, once per run: from `tree` (a whole listing of it made after the
    run's writes), else listed when first asked for."""
    entries = tree if tree is not None else walk_tree(ws, ctx.settings.concurrency)
    return ctx.cached(OBJECT_IDS.part(ws.side), lambda: IdIndex((e.path, e.object_id) for e in entries))


def watcher_for(kind: str) -> Watcher:
    object_type = {"directories": "DIRECTORY", "notebooks": "NOTEBOOK", "files": "FILE"}[kind]
    return WorkspaceObjectWatcher(kind, object_type, kind)
