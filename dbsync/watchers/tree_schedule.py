"""Which directories of the workspace tree a cycle lists: their revisit schedule, persisted in the store.

One `workspace/list` per directory is the tree's whole cost. A directory whose listing changed when it was last
listed is listed again next cycle, an unchanged one after twice its last interval, never later than the workspace
kinds' `max_staleness` (dbsync/freshness.py). The root and directories never listed are always listed; an
audit-log hint makes a directory due at once (dbsync/hints.py).

The due directories are listed most overdue first (the hinted lead), and in the daemon for one time slice at most:
the tree kinds' interval, or `time_slice_seconds` if shorter. The walk then takes the rest as last seen, still
due, and the daemon runs the tree again at once. A change found in a listing is so exported within a slice of it,
not after a walk of every due directory (26 s on average and up to 72 s in the RPO benchmark, before).

The entries of a directory not listed come from the store as last seen: their version hints unchanged (nothing
exported), their status as last verified, and never taken as deleted (only a directory listed this cycle decides
that). Validate, plans and a cutover's final sync list everything (`SyncContext.by_need` is off for them).
"""

from __future__ import annotations

import hashlib
import json
import logging
import posixpath
import time
from array import array
from collections import defaultdict
from collections.abc import Iterable, Iterator
from typing import NamedTuple

from dbsync.context import SyncContext
from dbsync.watchers.listed_by_need import ListedByNeed

LISTING = "workspace_tree"  # the visits kind of the tree's directories (the kinds' shared_listing)
KINDS = {"directories": "DIRECTORY", "notebooks": "NOTEBOOK", "files": "FILE"}
log = logging.getLogger(__name__)


class Entry(NamedTuple):
    """A listing row (a Tree keeps them in columns)."""

    path: str
    object_type: str
    object_id: int
    modified_at: int
    size: int
    language: str | None


class Tree:
    """A tree listing held in columns: a path, two one-byte codes and three machine integers per object.

    Half the memory of a tuple per row, which matters at 100,000 objects: the source and the target
    trees are both held while the three workspace kinds run.
    """

    __slots__ = ("codes", "names", "numbers", "paths")

    def __init__(self, names: list[str | None] | None = None) -> None:
        self.paths: list[str] = []
        self.codes = bytearray()  # object type and language per object, as indexes into `names`
        self.numbers = array("q")  # object_id, modified_at, size per object
        self.names: list[str | None] = [None] if names is None else names  # shared by a schedule's trees

    def _code(self, name: str | None) -> int:
        if name not in self.names:
            self.names.append(name)  # a handful: object types and notebook languages
        return self.names.index(name)

    def append(self, entry: Entry) -> None:
        self.paths.append(entry.path)
        self.codes += bytes((self._code(entry.object_type), self._code(entry.language)))
        self.numbers.extend((entry.object_id, entry.modified_at, entry.size))

    def __len__(self) -> int:
        return len(self.paths)

    def replace(self, entry: Entry) -> None:
        """Put `entry` in place of the row with its path (appended when the tree has none)."""
        try:
            i = self.paths.index(entry.path)
        except ValueError:
            self.append(entry)
            return
        self.codes[2 * i : 2 * i + 2] = bytes((self._code(entry.object_type), self._code(entry.language)))
        self.numbers[3 * i : 3 * i + 3] = array("q", (entry.object_id, entry.modified_at, entry.size))

    def __iter__(self) -> Iterator[Entry]:
        names, codes, numbers = self.names, self.codes, self.numbers
        for i, path in enumerate(self.paths):
            kind, language = names[codes[2 * i]] or "", names[codes[2 * i + 1]]
            yield Entry(path, kind, numbers[3 * i], numbers[3 * i + 1], numbers[3 * i + 2], language)


class TreeSchedule(ListedByNeed):
    """This cycle's view of the schedule: which directories are due, and the entries of the others as last seen."""

    def __init__(self, ctx: SyncContext, root: str = "/") -> None:
        cycle = min(ctx.settings.min_revisit(k) for k in KINDS)  # the schedule's step (freshness.py)
        super().__init__(ctx, LISTING, KINDS, cycle, max_staleness(ctx))
        self.root = root
        # The daemon's walk lists due directories for this long, then leaves the rest due (None: all of them).
        slice_ = min([ctx.time_slice, *(ctx.settings.interval(k) for k in KINDS)]) if ctx.time_slice else None
        self.ends = time.monotonic() + slice_ if slice_ else None
        self.cut = False  # a due directory was left for the next cycle: the slice was used up
        self.seen = _by_parent(ctx.store.last_seen(list(KINDS)), self.schedule)
        self._urgency: dict[str, float] | None = None  # built when first asked for

    def due(self, path: str) -> bool:
        """The root, a directory never listed, or one whose listing is due (or hinted) while the slice lasts."""
        if path == self.root or path not in self.schedule:
            return True
        if not super().due(path):
            return False
        if self.ends is not None and time.monotonic() >= self.ends:
            self.cut = True  # due, and listed first next cycle: it is the more overdue then
            return False
        return True

    def urgency(self, path: str) -> float:
        """Sorts the due directories most overdue first: the root, those never listed and the hinted lead.

        A directory is as urgent as the most overdue directory under it: a hinted directory does not wait for its
        cold parent's turn, which has to be listed first to reach it.
        """
        if path == self.root or path not in self.schedule:
            return float("-inf")
        if self._urgency is None:
            self._urgency = _most_overdue_below(self.schedule)
        return self._urgency[path]

    def as_last_seen(self, path: str) -> Iterable[Entry]:
        """The entries of a directory not listed this cycle, as the store last saw them."""
        self.mark_unlisted(path)
        return self.seen.get(path, ())

    def was_listed(self, path: str, rows: list[Entry]) -> None:
        """A directory listed now: changed when its listing differs from the last one."""
        # A subdirectory's own times are not this directory's change: its listing tells its own.
        mine = sorted(row[:2] if row[1] == "DIRECTORY" else row for row in rows)
        digest = hashlib.blake2b(json.dumps(mine).encode(), digest_size=12).hexdigest()
        changed = self.changed(path, digest)
        times = _change_times(self.seen.get(path, ()), rows, self.cycle) if changed else ()
        self.mark_listed(path, changed, digest, times)
        log.debug("listed %s: changed %s, %d dated change(s)", path, changed, len(times))

    def not_listed(self, key: str) -> bool:
        """Whether the object's directory was taken as last seen this cycle."""
        return posixpath.dirname(key) in self.unlisted

    def record(self, ctx: SyncContext) -> None:
        """Main thread, once the workspace kinds recorded their outcomes: the listed directories' next listing."""
        from dbsync import hints  # here: hints imports the registry, which imports this module

        # Announced changes (the audit log) need no polling by change rate: doubling is the safety net's pace.
        self.record_next(ctx, by_rate=not hints.active(ctx))


def max_staleness(ctx: SyncContext) -> float:
    """The tree's cap: the tightest of the workspace kinds' (0: one of them wants the whole tree every cycle)."""
    return min(ctx.settings.max_staleness(k) for k in KINDS)


def _change_times(before: Iterable[Entry], rows: list[Entry], apart: float) -> tuple[float, ...]:
    """When the changes a listing shows were made (seconds, oldest first): its notebooks' and files' modification
    times newer than any it showed before, those less than `apart` after the one before taken as one change.

    The source's clock only, compared with itself. What a listing cannot date (a deletion, a rename that kept its
    time), or a directory that showed no object before, is a change at an unknown time; the caller counts one then.
    A notebook written again after a failed export still shows its old time in the store, so its time may be
    counted again with the next change of its directory.
    """
    newest = max((row[3] for row in before if row[1] != "DIRECTORY"), default=None)
    if newest is None:  # nothing to date from (an empty directory, or its objects' kinds are not replicated)
        return ()
    times: list[float] = []
    for stamp in sorted({row[3] for row in rows if row[1] != "DIRECTORY" and row[3] > newest}):
        if not times or stamp / 1000 - times[-1] >= apart:
            times.append(stamp / 1000)
    return tuple(times)


def _most_overdue_below(schedule: dict[str, tuple[float, float]]) -> dict[str, float]:
    """Directory → the earliest next listing of it and the directories below it (one pass up each path)."""
    earliest: dict[str, float] = {}
    for path, (due_at, _) in schedule.items():
        while True:
            if earliest.get(path, due_at + 1) <= due_at:
                break  # this ancestor and those above it already have one as early
            earliest[path] = due_at
            parent = posixpath.dirname(path)
            if parent == path:
                break
            path = parent
    return earliest


def _by_parent(rows: Iterable[tuple[str, str, str | None, str | None]], schedule: dict) -> dict[str, Tree]:
    """The stored rows of the three kinds grouped by directory, in columns; directories only known to the schedule
    too. As a tuple per row this was ~27 MB at 100,000 objects, held through every tree cycle; in columns ~12 MB."""
    names: list[str | None] = [None]
    seen: dict[str, Tree] = defaultdict(lambda: Tree(names))
    directories: set[str] = set()
    for kind, key, hint, meta_json in rows:
        meta = json.loads(meta_json) if meta_json else {}
        object_id, modified_at, size = _numbers(hint, meta)
        seen[posixpath.dirname(key)].append(Entry(key, KINDS[kind], object_id, modified_at, size, meta.get("language")))
        if kind == "directories":
            directories.add(key)
    for path in schedule:  # a directory of a kind not replicated (directories disabled) is still descended into
        if path not in directories and path != "/":
            seen[posixpath.dirname(path)].append(Entry(path, "DIRECTORY", 0, 0, 0, None))
    return seen


def _numbers(hint: str | None, meta: dict) -> tuple[int, int, int]:
    """(object_id, modified_at, size) from a notebook's or file's version hint; a directory's from its meta."""
    parts = (hint or "").split(":")
    if len(parts) == 3 and all(p.isdigit() for p in parts):
        return int(parts[0]), int(parts[1]), int(parts[2])
    return int(meta.get("object_id") or 0), 0, 0
