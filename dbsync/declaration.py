"""What a kind declares about itself: the engine, scheduler, report, reverse seed, config and page read this."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Freshness:
    """How a kind whose listing has no version hint re-reads its unchanged objects: by need, under a staleness cap.

    Each object is read again after its own interval: short after its content changed (once per cycle), doubling
    while it stays the same, never longer than `max_staleness` (the web-crawler refresh policy). An object whose
    parent was written since (an ACL's notebook) or that an audit-log hint names is read in the next cycle.
    """

    # Default seconds an unchanged object may go unread (`kinds.<kind>.max_staleness` overrides; 0: every cycle).
    max_staleness: float


# Object ACLs: one GET per object and no version, changed far less often than the objects they guard.
RARELY_CHANGED = Freshness(max_staleness=3600)


@dataclass(frozen=True)
class Declaration:
    """One kind's properties, declared next to its watcher (its name is `watcher.kind`, its order the registry's)."""

    # Default seconds between two cycles of the kind under `dbsync serve` (a kind's `interval:` overrides it).
    interval: float = 300
    # Runs SQL on a warehouse of each workspace: off unless a warehouse id is set (or the kind enabled explicitly).
    needs_warehouse: bool = False
    # Kinds with the same value read one listing: the daemon runs them together, the engine frees it after the last.
    shared_listing: str | None = None
    # Listed on the source, never written: the report lists its objects as manual actions, not as missing.
    report_only: bool = False
    # Whether the target can be listed cheaply. When not (permissions: one GET per object), the report takes
    # what the store recorded as on the target and never reports "extra" objects there.
    target_listed: bool = True
    # The target object's page in the workspace UI ("{host}/jobs/{key}"), for /report.html.
    link: str | None = None
    # The target copy has the source object's key (a workspace path): a link needs no recorded target key.
    same_key_on_target: bool = False
    # Keys every workspace has on its own (/Users, /Shared): never "extra" on the target.
    builtin_target_keys: frozenset[str] = frozenset()
    # How a forward row's key becomes the reverse direction's key: "target_key" (the object's key on the new
    # primary), or "object" for a key "<object kind>:<object key>" about another kind's object (an ACL).
    reverse_key: Literal["target_key", "object"] = "target_key"
    # The key names an AWS account (an instance profile's ARN): a mapped key means the accounts differ.
    key_names_aws_account: bool = False
    # The kind writes the ACLs of other kinds' objects (a plan shows one per object created in the same run).
    writes_acls: bool = False
    # How unchanged objects without a version hint are re-read: None reads every object every cycle.
    freshness: Freshness | None = None
    # The listing reads what earlier kinds recorded in the same run (their listed keys, target ids) or writes the
    # store: the engine lists it in turn, on its own thread, instead of ahead with the independent kinds.
    listed_in_turn: bool = False
    # Every replicated version is kept in the version history (`dbsync history`/`restore`); False for secret values.
    versions: bool = True
    # The daemon runs the kind's cycles on this worker, beside the other kinds' (None: the first worker, one cycle
    # at a time): a long cycle (the ACL sweep, the workspace tree, the jobs) that would otherwise hold every other
    # kind behind it for much of its time under a budget, and reads no other worker's listing of the run
    # (`ctx.listed`); ids another worker maps are read from the store (one not mapped yet is `blocked`).
    worker: str | None = None
    # Its reads in turn give way to every other request of the workspace's budget (pacing.giving_way), within a
    # bound: a sweep nobody waits for (the ACL sweep); the reads an audit-log hint asked for do not.
    gives_way: bool = False


class Catalogue:
    """The kinds' names and declarations, for the layers below the kinds (settings, metrics).

    The registry publishes itself here when it is imported, so `config` can validate `kinds:` and read a
    kind's defaults without importing the registry (which loads every kind, whose modules import `config`).
    """

    def __init__(self) -> None:
        self._source: Callable[[], Mapping[str, Declaration]] | None = None

    def publish(self, source: Callable[[], Mapping[str, Declaration]]) -> None:
        """Set where the declarations come from: a function of no argument, kinds in dependency order."""
        self._source = source

    def _declared(self) -> Mapping[str, Declaration]:
        if self._source is None:
            raise RuntimeError("no kinds published: import dbsync.registry before reading settings")
        return self._source()

    def names(self) -> tuple[str, ...]:
        """Every kind's name, in dependency order."""
        return tuple(self._declared())

    def declaration(self, name: str) -> Declaration:
        """What the kind `name` declares; the defaults for a name no kind has."""
        return self._declared().get(name) or _DEFAULTS


_DEFAULTS = Declaration()
CATALOGUE = Catalogue()
