"""`dbsync restore --to source`: write kept versions back to the SOURCE, the primary, after a bad edit there.

The history keeps what dbsync read from the source (its watchers' form: Refs, dbsync tags dropped, no pause
state, principals mapped to the target's); each kind that supports it (`Replicator.restores_source`) writes that
back in the source's own form (mapping.SourceForm): no dbsync tag, jobs keep the source's pause state (never
paused), the source's own ids, paths and users. Only writes: an object created after the chosen time is listed
as `keep` and never deleted on the source (delete it by hand if it should go). A kind that cannot write the
source is listed as `skip` (a skip is not a success: exit 1). The next sync cycle copies the restored source to
the standby as any source change (the edit-storm guard too: it is not pre-confirmed, a confirmation left unused
would let a later storm through).

The write fence: the source is the primary, which dbsync never writes. For this command only, the source is
fenced by SourceFence, which lets a write through only inside `permit()` — around one planned object's write —
and only while the store is a standby's (no cutover in progress or done: then the source is no longer the
primary and the reverse store is the one to use). The target is fenced shut: this command writes nothing there.
"""

from __future__ import annotations

import fnmatch
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

from dbsync import hints
from dbsync.config import reversed_settings
from dbsync.context import SyncContext
from dbsync.errors import ConfigError, DbsyncError, StoreError, one_line
from dbsync.mapping import PrincipalMap, SourceForm
from dbsync.model import Resource, SourceWrite, fingerprint
from dbsync.registry import kind, kind_names
from dbsync.restore import RestoreStep
from dbsync.role import MARKER_PATH, PRIMARY, read_marker
from dbsync.roles import StoreRole
from dbsync.store.versions import Version, Versions
from dbsync.watchers.base import listing

ACTION = "restore-source"  # the events' action: `dbsync logs` / the report find each write by it


class SourceFence:
    """The source's write fence during `restore --to source --apply`: writes pass only inside `permit()`."""

    def __init__(self, store_flags: Callable[[], tuple[str, str | None]]) -> None:
        self.store_flags = store_flags
        self._permit = threading.local()

    @contextmanager
    def permit(self, what: str) -> Iterator[None]:
        """Let the writes of one planned object through (this thread only)."""
        self._permit.what = what
        try:
            yield
        finally:
            self._permit.what = None

    def refusal(self) -> str | None:
        """Why a write to the source must not go out (None: it may)."""
        if not getattr(self._permit, "what", None):
            return "the source is the primary: dbsync writes to it only for a planned `restore --to source --apply`"
        role, requested = self.store_flags()
        if requested or role != StoreRole.STANDBY:
            why = "a cutover asked for the store" if requested else f"the store's role is {role}"
            return f"{why}: the source may no longer be the primary, the restore stops writing to it"
        return None


class _Shut:
    """The target's fence during a restore to the source: nothing is written there."""

    @staticmethod
    def refusal() -> str:
        return "`restore --to source` writes nothing on the target"


def plan_source_version(ctx: SyncContext, version: Version) -> list[RestoreStep]:
    """The plan that writes one chosen version back to the source."""
    if version.deleted:
        raise ConfigError(f"version {version.id} records the deletion of {version.kind} {version.key}: pick another")
    return [_writable(RestoreStep(version.kind, version.key, "write", version))]


def plan_source_as_of(
    ctx: SyncContext, versions: Versions, at: float, kinds: Iterable[str] | None = None, path: str | None = None
) -> list[RestoreStep]:
    """Every kept source object as it was at `at`, optionally only some kinds and source keys matching `path`.

    `write` when the source holds something else now (or nothing), `keep` for an object created since (never
    deleted on the source), `unchanged` otherwise. The source is listed once per kind written (as a cycle
    lists it, no body read), so an edit dbsync has not replicated yet (one the edit-storm guard holds) counts.
    """
    steps: list[RestoreStep] = []
    listed_kind, now = "", {}  # the versions come a kind at a time: one kind's source listing is held
    for then, latest in versions.as_of(at, kinds):
        if path and not fnmatch.fnmatchcase(latest.key, path):
            continue
        if latest.kind != listed_kind:
            listed_kind, now = latest.kind, {}
            if kind(latest.kind).replicator.restores_source:
                now = {r.key: r for r in listing(kind(latest.kind).watcher, ctx, ctx.source)}
        steps.append(_source_step(ctx, then, latest, now))
    order = {name: i for i, name in enumerate(kind_names())}
    return sorted(steps, key=lambda s: (order.get(s.kind, 0), s.key))


def _source_step(ctx: SyncContext, then: Version | None, latest: Version, listed: dict[str, Resource]) -> RestoreStep:
    if then is None or then.deleted:
        if latest.deleted:
            return RestoreStep(latest.kind, latest.key, "unchanged")
        message = "created after the restore time: never deleted on the source"
        return RestoreStep(latest.kind, latest.key, "keep", then, message=message)
    if _as_it_was(ctx, then, listed.get(then.key)):
        return RestoreStep(latest.kind, latest.key, "unchanged")
    return _writable(RestoreStep(latest.kind, latest.key, "write", then))


def _as_it_was(ctx: SyncContext, then: Version, now: Resource | None) -> bool:
    """Whether the source object listed now is the version of then: by its listed payload when the listing has
    one (jobs); read now when the listing has no version either (an ACL: one GET, for the source's live entries,
    not the ones dbsync last read); else by the listing's version hint against the one last replicated."""
    if now is None:
        return False
    if now.payload is None and now.version_hint is None:
        try:
            now = kind(then.kind).watcher.fetch(ctx, ctx.source, now)
        except DbsyncError:  # gone from the source since it was listed: not as it was
            return False
    if now.payload is not None:
        return now.fingerprint == fingerprint(ctx.versions.content(then)[0])
    prior = ctx.store.prior(then.kind, then.key)
    return prior is not None and prior.version_hint == now.version_hint and prior.fingerprint == then.fingerprint


def _writable(step: RestoreStep) -> RestoreStep:
    """A write of a kind that cannot write the source becomes a `skip`, with the way to do it by hand."""
    if kind(step.kind).replicator.restores_source:
        return step
    step.action = "skip"
    step.message = f"restore to the source does not write {step.kind}: re-apply it by hand from `dbsync history`"
    return step


def overwrites(steps: list[RestoreStep]) -> int:
    """How many objects the plan writes on the source (the count `--yes` confirms)."""
    return sum(1 for s in steps if s.action == "write")


def check_source_is_primary(ctx: SyncContext) -> None:
    """Refuse when the source is no longer the primary (a cutover in progress or done, or its marker says so)."""
    role = ctx.store.role
    if role != StoreRole.STANDBY:
        raise StoreError(
            f"the store's role is {role}: the source is no longer the primary, `restore --to source` would write "
            "a standby. Restore the primary with the reverse store (`dbsync reverse`), or `dbsync cutover --rollback`"
        )
    marker = read_marker(ctx.source)
    if marker is not None and marker.get("role") != PRIMARY:
        raise StoreError(
            f"the source's role marker {MARKER_PATH} says {marker.get('role')!r}, not primary: it will not be "
            "written as one. Check which workspace is the primary before restoring"
        )


def apply_source_restore(ctx: SyncContext, steps: list[RestoreStep]) -> list[RestoreStep]:
    """Write the plan's `write` steps to the source (one failure never stops the others); each outcome is set."""
    check_source_is_primary(ctx)
    fence = SourceFence(ctx.store.writer_flags)
    ctx.source.fence, ctx.target.fence = fence, _Shut()
    form = SourceForm(PrincipalMap(reversed_settings(ctx.settings).mapping))
    for step in steps:
        if step.action == "skip":
            step.outcome = "skipped"
            ctx.event(step.kind, step.key, ACTION, "skipped", f"{step.kind} {step.key}: {step.message}")
        if step.action != "write":
            continue
        try:
            with fence.permit(f"{step.kind} {step.key}"):
                written = _write(ctx, step, form)
        except Exception as err:  # one bad object never stops the restore
            step.outcome, step.message = "error", one_line(err)
            ctx.event(step.kind, step.key, ACTION, "error", f"{step.kind} {step.key}: not restored: {step.message}")
            continue
        step.outcome = "restored"
        again = [] if written.key == step.key else [f"re-created as {written.key}"]
        step.message = "; ".join(again + ([written.note] if written.note else [])) or None  # printed by the CLI
    return steps


def _write(ctx: SyncContext, step: RestoreStep, form: SourceForm) -> SourceWrite:
    assert step.version is not None
    kept = kind(step.kind)
    payload, body = ctx.versions.content(step.version)
    prior = ctx.store.prior(step.kind, step.key)
    resource = Resource(step.kind, step.key, step.version.name or "", None, payload, body, {})
    written = kept.replicator.write_source(ctx, resource, prior, form)
    hints.due_now(ctx, step.kind, sorted({step.key, written.key}))  # the next cycle reads it back
    when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(step.version.at))
    again = "" if written.key == step.key else f" (gone from the source: re-created as {written.key})"
    note = f": {written.note}" if written.note else ""
    ctx.event(
        step.kind,
        step.key,
        ACTION,
        "restored",
        f"{step.kind} {step.key}: version {step.version.id} of {when} written back to the source{again}{note}",
    )
    return written
