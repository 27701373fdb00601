"""Pure decisions, no I/O: what to fetch, what to write, and whether deletes may go ahead."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

from dbsync.config import DeleteSettings, KindSettings
from dbsync.model import Delete, Prior, Resource, Upsert

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
    if prior.status in ("synced", "drifted", "partial", "skipped") and prior.fingerprint == resource.fingerprint:
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
