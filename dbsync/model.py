"""Core types: Resource (what a watcher sees), Ref (a symbolic reference), Upsert / Delete, fingerprints."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

Action = Literal["create", "update", "delete"]
REF_MARKER = "$ref"
# source_meta key of the principals a partial or skipped object waits for ("users:a@x.com", see mapping.py).
WAITING_ON = "waiting_on"
# source_meta key of the entries dbsync itself added to a target object it shares with the DR team (the grants of a
# catalog, the entries of a secret scope's ACL): only these are ever removed there (dbsync/replicators/added.py).
# Written by an applied outcome only: the store keeps it through a read that changed nothing and a failed apply.
ADDED = "added_by_dbsync"
# source_meta key of an update the edit-storm guard holds: the status its target copy had before (synced, partial or
# skipped). The row is `pending` while held (its source change is not on the target, as `validate` says), and the
# next cycles still treat the update as a guarded one (update_guard.guards), not as a retry.
HELD_FROM = "held_from"
# Store statuses: synced (created / updated / unchanged), partial, skipped, pending, blocked, error, drifted.
IN_SYNC = "synced"
AHEAD, AGAIN, OVERDUE = "ahead", "again", "overdue"  # Resource.out_of_turn
NAMED_TURNS = (AHEAD, AGAIN)  # out of turn because an audit-log hint named it: read on threads of their own
STATUSES = ("synced", "partial", "skipped", "pending", "blocked", "error", "drifted")
# What `status` and dbsync_resources count in (Store.verified_counts): the store's statuses, `unknown` for what a
# kind whose last cycle did not succeed (its listing failed or was stopped) has as synced, the word `plan` gives that
# kind, and `pending` also for the source objects without a row as of the last listing, as validate counts them.
COUNTED = (*STATUSES, "unknown")
# How a kind's cycle ended (KindReport.outcome, the cycles table): ok, `errors` (stored for an ok cycle with failed
# changes), update_guard / delete_guard (changes held), listing_failed, interrupted (stopped before its listing
# ended: a shutdown, a write the fence refused), error (the run crashed). A successful cycle read the whole kind
# and replicated what it was allowed to: one with failed objects or held changes still did (those have their own
# counts and alerts). The one definition behind dbsync_last_success_timestamp_seconds (the running daemon's and,
# after a restart, the store's), the daemon's health and the report's "last verified": the engine's metric counted
# `errors` cycles and interrupted ones while the store counted `ok` alone, so the metric jumped back on a restart.
SUCCESSFUL_OUTCOMES = ("ok", "errors", "update_guard", "delete_guard")


def cycle_succeeded(outcome: str | None) -> bool:
    """Whether a cycle that ended with this outcome read and replicated its kind (SUCCESSFUL_OUTCOMES)."""
    return outcome in SUCCESSFUL_OUTCOMES


def ref(kind: str, source_key: str) -> dict[str, Any]:
    """A reference to another replicated object, resolved through the id map at apply time."""
    return {REF_MARKER: [kind, str(source_key)]}


def is_ref(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and REF_MARKER in value


def canonical_json(value: Any) -> str:
    """Sorted keys, no whitespace: the same data always gives the same text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def fingerprint(value: Any) -> str:
    """sha256 of the canonical JSON of a normalized payload."""
    return text_fingerprint(canonical_json(value))


def text_fingerprint(text: str) -> str:
    """The fingerprint of a payload whose canonical JSON is `text` (serialized once for its row, fingerprint and
    version: an initial sync records ~20,000 outcomes at 10,000 objects, on the engine's thread)."""
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class Resource:
    """One object of one kind as a watcher sees it.

    A listing yields stubs (key, name, version_hint); `fetch` completes the payload. `body` carries
    bytes to write (a notebook's source) from fetch to apply without ever reaching the store.
    """

    kind: str
    key: str
    name: str = ""
    version_hint: str | None = None
    payload: dict[str, Any] | None = None
    body: bytes | None = None
    # Facts about the source object that are not replicated but kept (e.g. a job's pause state).
    source_meta: dict[str, Any] = field(default_factory=dict)
    # Yielded out of the listing's order: an ACL an audit-log hint named, AHEAD of its turn (skipped when the
    # listing reaches it) or AGAIN (yielded before in this listing, named again after its read); or an ACL whose
    # revisit is OVERDUE (or, none overdue, due soon and read ahead), read most overdue first before and beside the
    # sweep's walk (skipped when it reaches it; read whatever DueCheck's clock says). None moves where a sliced sweep
    # resumes; AGAIN is not counted twice; OVERDUE gives way as the sweep does.
    out_of_turn: str | None = None

    @property
    def fingerprint(self) -> str:
        if self.payload is None:
            raise ValueError(f"{self.kind} {self.key}: fingerprint of an unfetched resource")
        return fingerprint(self.payload)


class StoredJSON(str):
    """A payload as the store keeps it (canonical JSON text), given to a Prior to be decoded when first read."""


class _DecodedWhenRead:
    """Prior.payload and Prior.source_meta: given as StoredJSON by the store, decoded on first read and kept.

    A re-run pairs every listed object with its prior to compare version hints, and an unchanged object's payload is
    never read: decoded in the store's read, the 20,000 payloads of a 10,000-object re-run with ACLs (the jobs'
    settings, the ACLs' entries) were ~16 % of its GIL samples under py-spy, ~5 % of its CPU-seconds measured bare.
    Nor is an unchanged synced object's source_meta: decoding the ~24,000 of a 10,000-object no-change re-run was
    another ~0.3 CPU-s of its ~5.
    A dataclass field whose default is this descriptor: the default is what `__get__(None, ...)` returns (None);
    `empty` (source_meta's `dict`) makes a None the field was given a new empty value of its own when read.
    """

    def __init__(self, empty: Callable[[], Any] | None = None) -> None:
        self.empty = empty

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, objtype: type | None = None) -> Any:
        if obj is None:
            return None
        value = obj.__dict__[self.name]
        if isinstance(value, StoredJSON):
            value = obj.__dict__[self.name] = json.loads(value)  # two threads at once: both decode the same value
        elif value is None and self.empty is not None:
            value = obj.__dict__[self.name] = self.empty()
        return value

    def __set__(self, obj: Any, value: Any) -> None:
        obj.__dict__[self.name] = value


@dataclass
class Prior:
    """What the store knows of a resource from earlier cycles."""

    kind: str
    key: str
    version_hint: str | None
    fingerprint: str | None
    target_key: str | None
    target_version: str | None
    status: str
    attempts: int
    payload: dict[str, Any] | None = _DecodedWhenRead()  # type: ignore[assignment]  # StoredJSON: decoded when read
    source_meta: dict[str, Any] = _DecodedWhenRead(empty=dict)  # type: ignore[assignment]  # StoredJSON or {}
    # "created" by dbsync, "adopted" (found on the target), None when the store did not record it.
    origin: str | None = None

    @property
    def copy_status(self) -> str:
        """The status of the copy on the target: a held update's is the one it had before the hold (its row is
        `pending`: the source's change is not there), any other object's is its status."""
        if self.status == "pending" and self.source_meta.get(HELD_FROM):
            return str(self.source_meta[HELD_FROM])
        return self.status


@dataclass
class Upsert:
    """Create or update one object on the target from its fetched source payload (never None)."""

    resource: Resource
    prior: Prior | None
    skip_reason: str | None = None  # `plan`: why this change will not be written (a user dbsync may not create)

    def __post_init__(self) -> None:
        if self.resource.payload is None:
            raise ValueError(f"{self.resource.kind} {self.resource.key}: an upsert needs the fetched payload")

    @property
    def action(self) -> Action:
        """create when the target holds no recorded copy yet, else update."""
        return "create" if self.prior is None or self.prior.target_key is None else "update"

    @property
    def kind(self) -> str:
        return self.resource.kind

    @property
    def key(self) -> str:
        return self.resource.key

    @property
    def payload(self) -> dict[str, Any]:
        assert self.resource.payload is not None  # checked at construction
        return self.resource.payload

    @property
    def target_key(self) -> str | None:
        return self.prior.target_key if self.prior else None

    def describe(self) -> str:
        return f"{self.action} {self.kind} {self.key}"


@dataclass
class Delete:
    """Remove from the target the object a prior row records (its source object is gone)."""

    prior: Prior
    action: ClassVar[Action] = "delete"
    skip_reason: ClassVar[str | None] = None

    @property
    def kind(self) -> str:
        return self.prior.kind

    @property
    def key(self) -> str:
        return self.prior.key

    @property
    def target_key(self) -> str | None:
        return self.prior.target_key

    def describe(self) -> str:
        return f"delete {self.kind} {self.key}"


# One write to the target: what the planner decides and the engine hands to a replicator.
Change = Upsert | Delete


@dataclass
class Applied:
    """The outcome of a successful apply: what the engine records (target key, origin, status, hint, meta).

    The target's own version of the object is not known here; the next drift check records it.
    """

    target_key: str | None
    note: str | None = None  # e.g. "skipped missing principal x"
    # True: the target object was found there (natural key or tag) and adopted, so dbsync never deletes it;
    # False: dbsync created it; None: an update of the object already recorded (its origin is unchanged).
    adopted: bool | None = None
    # A step of the change still to do (a created cluster not yet stopped): the target key is recorded and
    # the change stays in error, retried until the step succeeds.
    pending: str | None = None

    @property
    def origin(self) -> str | None:
        """What the store records: "adopted", "created" or None (keep what it knows)."""
        if self.adopted is None:
            return None
        return "adopted" if self.adopted else "created"

    # Principals the target lacks, so their entries were left out ("users:a@x.com"): the object is
    # `partial` and is applied again once the target has one of them.
    waiting_on: list[str] = field(default_factory=list)
    skipped: bool = False  # nothing was written on purpose (a user dbsync may not create, a mount): `skipped`
    # A target path this write deleted besides its own (the copy a moved folder left at its old path): a delete.
    deleted: str | None = None
    # What the store records instead of the listing's version hint (None: the listing's own), and facts
    # added to the source_meta it records: a replicator reports through these, never by editing its input.
    version_hint: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def status(self) -> str:
        """The store status this outcome leaves: error (a step still to do), skipped, partial or synced."""
        if self.pending:
            return "error"
        if self.skipped:
            return "skipped"
        return "partial" if self.waiting_on else IN_SYNC


@dataclass(frozen=True, slots=True)
class SourceWrite:
    """What `Replicator.write_source` wrote on the source (`dbsync restore --to source`): the source key (a
    re-created object's new one) and a note for the person restoring when it wrote something besides the kept
    version (a job's current owner the kept ACL did not name)."""

    key: str
    note: str | None = None
