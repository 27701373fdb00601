"""Pure decisions, no I/O: what to fetch, what to write, and whether deletes may go ahead."""

from __future__ import annotations

import fnmatch
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from dbsync.config import DeleteSettings, KindSettings, UpdateSettings
from dbsync.model import Delete, Prior, Resource, Upsert, canonical_json

# Below deletes.min_count, a drop trips the guard only when it is most of the kind (see plan_deletes).
SMALL_KIND_RATIO = 0.5


def selected(kind_settings: KindSettings, key: str) -> bool:
    """include/exclude globs on the source key (a path, a name or an id)."""
    if kind_settings.include and not any(fnmatch.fnmatchcase(key, p) for p in kind_settings.include):
        return False
    return not any(fnmatch.fnmatchcase(key, p) for p in kind_settings.exclude)


def needs_fetch(stub: Resource, prior: Prior | None, retry_due: bool) -> bool:
    """Fetch a payload only when the listing says something may have changed (or a retry is due)."""
    if prior is None:
        return True
    if prior.status in ("error", "blocked", "pending"):
        return retry_due
    if stub.version_hint is None:
        return True  # kinds without a version hint are fetched every cycle and compared by fingerprint
    return stub.version_hint != prior.version_hint


def decide(resource: Resource, prior: Prior | None) -> Upsert | None:
    """The write a fetched resource needs; None when the target already holds this fingerprint."""
    if prior is None or prior.target_key is None:
        return Upsert(resource, prior)
    if prior.copy_status in ("synced", "drifted", "partial", "skipped") and prior.fingerprint == resource.fingerprint:
        # A drifted target (drift: report) is left as it is until the source changes; a partial or skipped
        # one until the principal it waits for exists (the engine marks it pending then).
        return None
    return Upsert(resource, prior)


@dataclass(frozen=True)
class DeletePlan:
    deletes: list[Delete]
    held: bool
    reason: str | None = None


def plan_deletes(
    kind: str,
    priors_gone: list[Prior],
    listed: int,
    known: int,
    settings: DeleteSettings,
    force: bool = False,
) -> DeletePlan:
    """Deletes for objects gone from the source, unless the delete guard holds them.

    The guard holds a kind's deletes when its listing dropped to zero; when more than `max_ratio` of
    what the store knows disappeared and that is at least `deletes.min_count` objects; or when more
    than half of the kind (or of `max_ratio`, if set higher) disappeared, more than one object. On a
    small kind any ordinary edit is a large ratio (1 of 4 notebooks is 25 %), so below `min_count` only
    losing most of the kind at once trips the guard: that is what a short listing looks like (3 of 4
    clusters), not a person deleting or renaming things. One delete goes through unless it empties the kind.
    `force` is the operator's explicit override for one run.
    """
    changes = [Delete(p) for p in priors_gone]
    if not changes or settings.mode == "off":
        return DeletePlan([], held=False)
    if force:
        return DeletePlan(changes, held=False)
    if listed == 0:
        return DeletePlan([], True, f"the source listing of {kind} is empty but dbsync replicated {known}")
    ratio = len(changes) / known if known else 0.0
    if ratio > settings.max_ratio and len(changes) >= settings.min_count:
        return DeletePlan(
            [],
            True,
            f"{len(changes)} of {known} {kind} ({ratio:.0%}) disappeared from the source, above "
            f"deletes.max_ratio={settings.max_ratio:.0%}",
        )
    if ratio > max(settings.max_ratio, SMALL_KIND_RATIO) and len(changes) > 1:
        return DeletePlan(
            [],
            True,
            f"{len(changes)} of {known} {kind} ({ratio:.0%}) disappeared from the source at once: more than "
            "half of the kind",
        )
    return DeletePlan(changes, held=False)


@dataclass(frozen=True)
class UpdatePlan:
    held: bool
    reason: str | None = None


def content_size(payload: dict | None, body: bytes | None) -> int:
    """How big an object's content is: its body's bytes (a notebook), its recorded `size`, else its payload's JSON."""
    if body is not None:
        return len(body)
    if payload is None:
        return 0
    size = payload.get("size")
    return size if isinstance(size, int) else len(canonical_json(payload))


def plan_updates(
    kind: str, updates: list[tuple[Resource, Prior]], known: int, settings: UpdateSettings, force: bool = False
) -> UpdatePlan:
    """Whether the edit-storm guard holds a kind's updates this cycle (the delete guard's twin).

    It holds them when more than `max_ratio` of the kind changed at once (at least `min_count` objects), when
    `min_count` bodies were cut to `shrink_ratio` of their size or less (blanked), or when `min_count` objects
    took the very same new content (one body pasted over many paths). Below `min_count` nothing is held:
    editing 3 of 4 notebooks is a morning's work, not a storm. `force` is the operator's override for one run.
    """
    if force or not settings.guard or len(updates) < settings.min_count:
        return UpdatePlan(held=False)
    ratio = len(updates) / known if known else 1.0
    if ratio > settings.max_ratio:
        return UpdatePlan(
            True,
            f"{len(updates)} of {known} {kind} ({ratio:.0%}) changed on the source in one cycle, above "
            f"updates.max_ratio={settings.max_ratio:.0%}",
        )
    blanked = [r for r, p in updates if _blanked(r, p, settings.shrink_ratio)]
    if len(blanked) >= settings.min_count:
        return UpdatePlan(True, f"{len(blanked)} {kind} lost {1 - settings.shrink_ratio:.0%}+ of their content at once")
    same = Counter(r.payload.get("sha256") for r, _ in updates if r.payload and r.payload.get("sha256"))
    content, copies = same.most_common(1)[0] if same else (None, 0)
    if copies >= settings.min_count:
        return UpdatePlan(True, f"{copies} {kind} took the same new content (sha256 {str(content)[:12]}) at once")
    return UpdatePlan(held=False)


def _blanked(resource: Resource, prior: Prior, shrink_ratio: float) -> bool:
    before = content_size(prior.payload, None)
    return before > 0 and content_size(resource.payload, resource.body) <= before * shrink_ratio


PRIOR_WINDOW = 256  # stubs whose priors are read in one query
# A sweep's (the ACLs'): the listing looks for the ACLs an audit-log hint named as it is pulled, a window at a time;
# 256 ACLs due, read at the pace of reads that give way, were ~85 s between two looks (hinted edits: p99 160 s).
SWEEP_WINDOW = 16


def with_priors(
    store: Any,
    kind: str,
    stubs: Iterable[Resource],
    each_window: Callable[[list[Resource]], None] | None = None,
    size: int = PRIOR_WINDOW,
) -> Iterator[tuple[Resource, Prior | None]]:
    """Each stub with the store's prior, read `size` keys at a time (`each_window` is told each window first).

    A read per stub released and re-took the GIL each time behind eight busy worker threads: ~15 of the 45 s of a
    10,000-object initial sync's main thread (cProfile) was spent in 18,639 one-row reads.
    """
    window: list[Resource] = []
    for stub in stubs:
        window.append(stub)
        if len(window) == size:
            yield from _paired(store, kind, window, each_window)
            window = []
    yield from _paired(store, kind, window, each_window)


def _paired(
    store: Any, kind: str, window: list[Resource], each_window: Callable[[list[Resource]], None] | None
) -> Iterator[tuple[Resource, Prior | None]]:
    if window and each_window is not None:
        each_window(window)
    known = store.priors_of(kind, [stub.key for stub in window]) if window else {}
    for stub in window:
        yield stub, known.get(stub.key)
