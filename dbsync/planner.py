"""Pure decisions, no I/O: what to fetch, what to write, and whether deletes may go ahead."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

from dbsync.config import DeleteSettings, KindSettings
from dbsync.model import Change, Prior, Resource


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


def decide(resource: Resource, prior: Prior | None) -> Change | None:
    """The write a fetched resource needs; None when the target already holds this fingerprint."""
    if prior is None or prior.target_key is None:
        return Change("create", resource.kind, resource.key, resource, prior)
    if prior.status in ("synced", "drifted", "partial", "skipped") and prior.fingerprint == resource.fingerprint:
        # A drifted target (drift: report) is left as it is until the source changes; a partial or skipped
        # one until the principal it waits for exists (the engine marks it pending then).
        return None
    return Change("update", resource.kind, resource.key, resource, prior)


@dataclass(frozen=True)
class DeletePlan:
    deletes: list[Change]
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

    The guard trips when the listing dropped to zero, or by more than `max_ratio` of what the store
    knows (ignoring drops smaller than `deletes.min_count`, so deleting a notebook in a small workspace is not
    a mass delete). `force` is the operator's explicit override for one run.
    """
    changes = [Change("delete", kind, p.key, None, p) for p in priors_gone]
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
    return DeletePlan(changes, held=False)
