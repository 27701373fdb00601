"""Validation: the live source against the live target, per kind, and whether a cutover may go ahead."""

from __future__ import annotations

import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

from databricks.sdk.errors import DatabricksError

from dbsync import planner
from dbsync.context import SyncContext
from dbsync.errors import ListingError, StoreError
from dbsync.model import IN_SYNC, Prior, Resource
from dbsync.registry import Kind, kinds
from dbsync.roles import StoreRole
from dbsync.tags import SOURCE_ID_TAG
from dbsync.watchers.base import listing
from dbsync.watchers.jobs import SOURCE_JOB_TAG

SAMPLE = 20  # objects listed per category in the report


@dataclass
class KindValidation:
    kind: str
    source_count: int = 0
    target_count: int = 0
    in_sync: int = 0
    missing: list[str] = field(default_factory=list)  # on the source, not (correctly) on the target
    extra: list[str] = field(default_factory=list)  # on the target, not from the source
    missing_count: int = 0
    extra_count: int = 0
    blocked: int = 0
    errors: int = 0
    # Changed (or new) on the source and not on the target yet: compared by version / content, not key only.
    pending: int = 0
    pending_keys: list[str] = field(default_factory=list)
    # Of those, gone from the source and still on the target: a delete a `restore --pin` keeps back (the store's
    # `pending` row); not in source_count, counted in the share in sync's whole.
    pending_deletes: int = 0
    partial: int = 0  # on the target with entries left out (principals it lacks); applied when they exist
    skipped: int = 0  # not written on purpose (a user dbsync may not create, a mount), with the reason
    unknown: int = 0  # objects whose source version could not be read: neither in sync nor pending
    content_checked: bool = True  # False: kinds without a version were compared by the store only
    drifted: list[str] = field(default_factory=list)  # target copies edited outside dbsync
    drifted_count: int = 0
    lag_seconds: float = 0.0
    problems: list[dict[str, Any]] = field(default_factory=list)
    listing_error: str | None = None
    # Report-only kinds (mounts): dbsync lists them and never writes them; each one needs a person.
    report_only: bool = False
    manual_count: int = 0
    # A report-only kind whose objects could not be looked at (mounts with no running cluster): why.
    unchecked: str | None = None
    # Source ids with more than one copy on the target (by dbsync's source-id tag), and the surplus copies.
    duplicates: list[str] = field(default_factory=list)
    duplicate_count: int = 0

    @property
    def in_sync_percent(self) -> float | None:
        """Share of the source's objects created / updated / unchanged on the target; None when unknown."""
        if self.listing_error or self.report_only:
            return None  # a report-only kind is `manual` (or `unknown`, not looked at): no share of it is synced
        replicable = self.source_count + self.pending_deletes - self.manual_count
        return 100.0 if replicable <= 0 else round(100.0 * self.in_sync / replicable, 1)

    @property
    def in_sync_label(self) -> str:
        """The "in sync" column of `validate` and the page: a percentage, `manual`, or `unknown`."""
        if self.report_only:
            return "unknown" if self.unchecked else "manual"
        percent = self.in_sync_percent
        return "unknown" if percent is None else f"{percent:.1f}%"

    @property
    def status(self) -> str:
        """unknown (a listing failed, or a report-only kind not looked at), manual (report-only), in_sync, or
        not_in_sync."""
        if self.listing_error:
            return "unknown"
        if self.report_only:
            return "unknown" if self.unchecked else "manual"
        behind = self.pending + self.partial + self.skipped + self.unknown + self.missing_count
        return "not_in_sync" if behind or self.errors or self.blocked or self.drifted_count else "in_sync"


@dataclass
class Report:
    generated_at: float
    kinds: list[KindValidation]
    ready_for_cutover: bool
    reasons: list[str]
    # What dbsync cannot do and a person must ({kind, key, action}; an empty key is about the whole kind):
    # mounts to make again with the target's credentials, libraries that failed on the source. Listed
    # beside readiness, not in it: dbsync cannot check them on a standby.
    manual_actions: list[dict[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for kind, doc in zip(self.kinds, out["kinds"], strict=True):
            doc["in_sync_percent"] = kind.in_sync_percent
            doc["status"] = kind.status
        return out


def _target_keys(ctx: SyncContext, kind: Kind, copies: dict[str, list[str]] | None = None) -> set[str]:
    """Keys of the kind on the target, in the terms the store keeps as target_key.

    For kinds whose target objects carry dbsync's source-id tag, `copies` gets {source id: [target keys]}
    from the same listing, so two copies of one source object (two writers once raced) are seen.
    """
    if _target_unlisted(kind):
        return set()
    items = kind.watcher.items(ctx.target) if copies is not None else None
    if items is None:
        return {r.key for r in listing(kind.watcher, ctx, ctx.target)}
    keys = set()
    try:
        for key, _, raw in items:
            keys.add(key)
            source_id = source_id_tag(raw)
            if source_id:
                copies.setdefault(source_id, []).append(key)
    except (DatabricksError, OSError, ValueError) as err:  # OSError: a reset; ValueError: an HTML page
        raise ListingError(f"target: cannot list {kind.name}: {err}") from err
    return keys


def source_id_tag(raw: dict[str, Any]) -> str | None:
    """The dbsync_source_id / dbsync_source_job_id tag of a target object as listed, if it has one."""
    tags = raw.get("custom_tags") or (raw.get("settings") or {}).get("tags") or raw.get("tags") or {}
    if isinstance(tags, dict) and isinstance(tags.get("custom_tags"), list):  # SQL warehouses: key/value pairs
        tags = {t.get("key"): t.get("value") for t in tags["custom_tags"] if isinstance(t, dict)}
    if not isinstance(tags, dict):
        return None
    value = tags.get(SOURCE_ID_TAG) or tags.get(SOURCE_JOB_TAG)
    return str(value) if value else None


def manual_actions(ctx: SyncContext, kind: Kind) -> list[dict[str, str]]:
    """The kind's "needs manual action" items (most watchers have none)."""
    return list(kind.watcher.manual_actions(ctx))


def _report_only(ctx: SyncContext, kind: Kind, actions: list[dict[str, str]]) -> KindValidation:
    """A kind dbsync never writes: every source object is a manual action, none is "missing"."""
    objects = [a for a in actions if a["key"]]
    result = KindValidation(kind.name, report_only=True)
    result.source_count = result.manual_count = len(objects)
    result.unchecked = next((a["action"] for a in actions if not a["key"]), None)
    result.skipped = ctx.store.status_counts().get(kind.name, {}).get("skipped", 0)
    result.problems = ctx.store.problems(kind.name, limit=SAMPLE)
    result.errors = ctx.store.status_counts().get(kind.name, {}).get("error", 0)
    return result


def validate_kind(
    ctx: SyncContext, kind: Kind, actions: list[dict[str, str]] | None = None, fetch_unversioned: bool = True
) -> KindValidation:
    """One kind: each source object is in sync, pending, partial, skipped, blocked, error, drifted or missing.

    A source object is pending when its version (or, for kinds whose listing has none, its fetched content)
    differs from what was last replicated. `fetch_unversioned=False` (the daemon's /report) compares those
    kinds by the store only, as a sync cycle would have to read every object.
    """
    if kind.declaration.report_only:
        return _report_only(ctx, kind, actions if actions is not None else manual_actions(ctx, kind))
    result = KindValidation(kind.name)
    read_at = time.time()  # the rows a cycle records from here on are not among the `new` counted below
    priors = {p.key: p for p in ctx.store.priors(kind.name, payloads=False)}
    copies: dict[str, list[str]] = {}
    try:
        keys, changed, unreadable = _source_versions(ctx, kind, priors, result, fetch_unversioned)
        target_keys = _target_keys(ctx, kind, copies)
    except ListingError as err:
        result.listing_error = str(err)
        return result
    duplicated = sorted(k for k, targets in copies.items() if len(targets) > 1)
    result.duplicate_count = sum(len(copies[k]) - 1 for k in duplicated)
    result.duplicates = duplicated[:SAMPLE]
    result.source_count = len(keys)
    result.target_count = len(priors) if _target_unlisted(kind) else len(target_keys)
    mapped_targets = {p.target_key for p in priors.values() if p.target_key}
    new: list[str] = []
    pending_known = []
    for key in keys:
        prior = priors.get(key)
        state = "unknown" if key in unreadable else _state(kind, prior, key in changed, target_keys)
        if prior is None:
            new.append(key)
        if state == "pending" and prior is not None:
            pending_known.append(prior)
        _tally(result, state, key)
    _pending_deletes(ctx, kind, priors, set(keys), result)
    _start_lag_clock(ctx, kind.name, pending_known, new, read_at)
    extra = sorted(target_keys - mapped_targets - kind.declaration.builtin_target_keys)
    result.extra_count = len(extra)
    result.extra = extra[:SAMPLE]
    add_store_status(ctx, result)
    oldest = ctx.store.oldest_unsynced_change(kind.name)
    result.lag_seconds = round(max(0.0, time.time() - oldest), 1) if oldest else 0.0
    return result


def _pending_deletes(
    ctx: SyncContext, kind: Kind, priors: dict[str, Prior], listed: set[str], result: KindValidation
) -> None:
    """Objects gone from the source whose row the store keeps `pending` (a delete `restore --pin` keeps back): the
    source's change is not on the target, as `sync --once` and `status` say. Only the source's keys were looked at,
    so `validate` counted none of them and could call a kind ready that `sync --once` said was not."""
    kind_settings = ctx.settings.kind(kind.name)
    for key, prior in priors.items():
        if prior.status == "pending" and key not in listed and planner.selected(kind_settings, key):
            result.pending_deletes += 1
            _tally(result, "pending", key)


def _state(kind: Kind, prior: Prior | None, changed: bool, target_keys: set[str]) -> str:
    """Where one source object stands: pending, a store status, missing (gone from the target) or in_sync."""
    if prior is None or changed or prior.status == "pending":
        return "pending"
    if prior.status != IN_SYNC:
        return prior.status  # partial, skipped, blocked, error, drifted
    return "in_sync" if _on_target(kind, prior, target_keys) else "missing"


def _on_target(kind: Kind, prior: Prior, target_keys: set[str]) -> bool:
    """The object's copy, as last synced, is on the target (a kind whose target is not listed: as the store says)."""
    return prior.target_key is not None and (_target_unlisted(kind) or prior.target_key in target_keys)


def _stored_state(kind: Kind, prior: Prior, target_keys: set[str]) -> str:
    """Where one object stands as last synced, the source not contacted: the words `validate` uses.

    Only an object dbsync wrote (in sync, or partial) can be missing from the target; one skipped on purpose or
    still pending was never there, and says so (they were all "not on the target as last synced" once, so the
    outage page and `cutover --skip-source` counted two users `validate` skipped as missing)."""
    state = _state(kind, prior, False, target_keys)
    if state == "partial" and _on_target(kind, prior, target_keys):
        return state  # on the target without some entries: the reasons say which
    if state in ("drifted", "error", "blocked", "skipped", "pending"):
        return state  # drifted, error, blocked: counted once, by their status (add_store_status)
    return state if state == "in_sync" else "missing"


def _target_unlisted(kind: Kind) -> bool:
    """Kinds whose objects live on other kinds' objects (ACLs): the target is not listed, the store says."""
    return not kind.declaration.target_listed


def _tally(result: KindValidation, state: str, key: str) -> None:
    if state == "in_sync":
        result.in_sync += 1
    elif state == "pending":
        result.pending += 1
        if len(result.pending_keys) < SAMPLE:
            result.pending_keys.append(key)
    elif state == "missing":
        result.missing_count += 1
        if len(result.missing) < SAMPLE:
            result.missing.append(key)
    elif state in ("partial", "skipped", "unknown"):
        setattr(result, state, getattr(result, state) + 1)
    # blocked, error and drifted are counted from the store (add_store_status)


def _source_versions(
    ctx: SyncContext,
    kind: Kind,
    priors: dict[str, Prior],
    result: KindValidation,
    fetch_unversioned: bool,
) -> tuple[list[str], set[str], set[str]]:
    """(the source's keys, those whose live version differs from the one last replicated, those whose live
    content could not be read: `unknown`, neither in sync nor pending).

    The listing is streamed: only keys are kept, and the stubs of kinds without a version, to be fetched.
    """
    kind_settings = ctx.settings.kind(kind.name)
    keys: list[str] = []
    changed: set[str] = set()
    unreadable: set[str] = set()
    unversioned: list[Resource] = []
    for stub in listing(kind.watcher, ctx, ctx.source):
        if not planner.selected(kind_settings, stub.key):
            continue
        keys.append(stub.key)
        prior = priors.get(stub.key)
        if prior is None or prior.status not in _COMPARED:
            continue
        if stub.version_hint is not None:
            if stub.version_hint != prior.version_hint:
                changed.add(stub.key)
        elif fetch_unversioned:
            unversioned.append(stub)
        else:
            result.content_checked = False
    with ThreadPoolExecutor(ctx.settings.concurrency, thread_name_prefix=f"validate-{kind.name}") as pool:
        for key, fingerprint in pool.map(lambda s: _live_fingerprint(ctx, kind, s), unversioned):
            if fingerprint is None:
                unreadable.add(key)
            elif fingerprint != priors[key].fingerprint:
                changed.add(key)
    return keys, changed, unreadable


# Statuses whose object the next cycle rewrites when the source changed: such a change is pending.
_COMPARED = (IN_SYNC, "drifted", "partial", "skipped")


def _live_fingerprint(ctx: SyncContext, kind: Kind, stub: Resource) -> tuple[str, str | None]:
    """(key, fingerprint of the source object now); None when it cannot be read."""
    try:
        return stub.key, kind.watcher.fetch(ctx, ctx.source, stub).fingerprint
    except Exception:  # one unreadable object is `unknown`, never in sync
        return stub.key, None


def _start_lag_clock(ctx: SyncContext, kind: str, pending: Iterable[Prior], new: list[str], read_at: float) -> None:
    """Pending changes start the lag clock when first seen (here, before a cycle of their kind reaches them); the
    new objects (no row yet, the store read at `read_at`) are `pending` in `status` and dbsync_resources until each
    has its row."""
    try:
        for prior in pending:
            ctx.store.record_pending_seen(kind, prior.key, prior.version_hint, prior.fingerprint)
        ctx.store.record_pending_new(kind, new, read_at)
    except StoreError:
        pass  # a store another process holds: the lag is then measured from the cycle that sees it


def add_store_status(ctx: SyncContext, result: KindValidation) -> None:
    """What the store says of a kind: blocked, errors, drifted objects and the last problems."""
    statuses = ctx.store.status_counts().get(result.kind, {})
    result.blocked = statuses.get("blocked", 0)
    result.errors = statuses.get("error", 0)
    result.drifted_count = statuses.get("drifted", 0)
    result.drifted = ctx.store.keys_with_status(result.kind, "drifted", limit=SAMPLE)
    result.problems = ctx.store.problems(result.kind, limit=SAMPLE, statuses=("blocked", "error", "partial", "skipped"))


def not_ready_reasons(
    results: list[KindValidation], missing: str = "not replicated", listing: str = "cannot list"
) -> list[str]:
    """Why a cutover should not go ahead, one line per problem of each kind."""
    reasons = []
    for r in results:
        if r.listing_error:
            reasons.append(f"{r.kind}: unknown, {listing} ({r.listing_error})")
        if r.pending:
            reasons.append(
                f"{r.kind}: {r.pending} pending (changed on the source, not on the target yet): {r.pending_keys[0]}"
            )
        if r.missing_count:
            reasons.append(f"{r.kind}: {r.missing_count} {missing} (e.g. {r.missing[0]})")
        reasons.extend(_waiting_reasons(r))
        if r.unknown:
            reasons.append(f"{r.kind}: {r.unknown} unknown (the source object could not be read)")
        if r.errors:
            reasons.append(f"{r.kind}: {r.errors} in error")
        if r.blocked:
            reasons.append(f"{r.kind}: {r.blocked} blocked")
        if r.drifted_count:
            reasons.append(f"{r.kind}: {r.drifted_count} edited on the target (drift), e.g. {r.drifted[0]}")
        if r.duplicate_count:
            reasons.append(
                f"{r.kind}: {r.duplicate_count} duplicate copies on the target (same dbsync source id, e.g. "
                f"{r.duplicates[0]}): delete the extra copies on the target"
            )
    return reasons


def _waiting_reasons(r: KindValidation) -> list[str]:
    """Partial and skipped objects, each with the reason of one of them (what to do about it)."""
    reasons = []
    for status, count in (("partial", r.partial), ("skipped", r.skipped)):
        if not count or r.report_only:
            continue  # a report-only kind's skips are the manual actions listed beside readiness
        example = next((p for p in r.problems if p["status"] == status), None)
        why = f": {example['source_key']}: {example['last_error']}" if example and example["last_error"] else ""
        reasons.append(f"{r.kind}: {count} {status}{why}")
    return reasons


def validate(ctx: SyncContext, names: list[str] | None = None, fetch_unversioned: bool = True) -> Report:
    """Compare both live workspaces for each enabled kind, or each kind named (enabled or not, as `sync --kinds` and
    `plan --kinds` run it); ready_for_cutover with the reasons it is not. Nothing compared is never ready."""
    ctx.new_run()
    wanted = set(names) if names else None
    selected = [k for k in kinds() if k.name in wanted] if wanted else [k for k in kinds() if _enabled(ctx, k)]
    actions = {k.name: manual_actions(ctx, k) for k in selected}
    results = [validate_kind(ctx, k, actions[k.name], fetch_unversioned) for k in selected]
    reasons = not_ready_reasons(results)
    if not selected:
        reasons.append("no kind compared: every kind is disabled (kinds.<kind>.enabled)")
    if ctx.store.role != StoreRole.STANDBY:
        reasons.append(f"store role is {ctx.store.role}, not standby")
    every_action = [a for k in selected for a in actions[k.name]]
    return Report(time.time(), results, not reasons, reasons, every_action)


def _enabled(ctx: SyncContext, kind: Kind) -> bool:
    return ctx.settings.kind(kind.name).enabled


def validate_from_store(ctx: SyncContext) -> Report:
    """Validation without the source: the store's last synced state against the live target."""
    ctx.new_run()
    results = [_validate_stored(ctx, kind) for kind in kinds() if _enabled(ctx, kind)]
    reasons = not_ready_reasons(results, missing="not on the target as last synced", listing="cannot list the target")
    return Report(time.time(), results, not reasons, reasons)


def _validate_stored(ctx: SyncContext, kind: Kind) -> KindValidation:
    """One kind as last synced: each stored object in sync, partial, or missing from the live target."""
    result = KindValidation(kind.name)
    try:
        target_keys = set() if _target_unlisted(kind) else {r.key for r in kind.watcher.list(ctx, ctx.target)}
    except ListingError as err:
        result.listing_error = str(err)
        return result
    priors = list(ctx.store.priors(kind.name))
    result.source_count = len(priors)
    result.target_count = len(priors) if _target_unlisted(kind) else len(target_keys)
    for prior in priors:
        _tally(result, _stored_state(kind, prior, target_keys), prior.key)
    add_store_status(ctx, result)
    return result


def format_text(report: Report) -> str:
    lines = [
        f"{'kind':<20}{'source':>8}{'target':>8}{'in sync':>9}{'pending':>8}{'partial':>8}{'skipped':>8}"
        f"{'missing':>8}{'extra':>7}{'drifted':>8}{'blocked':>8}{'errors':>7}{'unknown':>8}{'lag s':>7}"
    ]
    for r in report.kinds:
        in_sync = r.in_sync_label
        lines.append(
            f"{r.kind:<20}{r.source_count:>8}{r.target_count:>8}{in_sync:>9}{r.pending:>8}{r.partial:>8}"
            f"{r.skipped:>8}{r.missing_count:>8}{r.extra_count:>7}{r.drifted_count:>8}{r.blocked:>8}{r.errors:>7}"
            f"{r.unknown:>8}{r.lag_seconds:>7.0f}"
        )
    lines.append("")
    lines.append("ready for cutover: " + ("yes" if report.ready_for_cutover else "NO"))
    lines.extend(f"  - {reason}" for reason in report.reasons)
    if report.manual_actions:
        lines.append("")
        lines.append(f"needs manual action ({len(report.manual_actions)}; dbsync cannot do or check these):")
        lines.extend(
            f"  - {a['kind']}{' ' + a['key'] if a['key'] else ''}: {a['action']}" for a in report.manual_actions
        )
    return "\n".join(lines)
