"""Unity Catalog grants on the target: one PATCH of the differences (`changes: [{principal, add, remove}]`).

The target's direct grants are read (GET), what the source does not have is removed and what it lacks added,
so on a securable dbsync created the grants follow the source exactly. On one it adopted, a grant the target
had that the source lacks is kept (noted): only grants dbsync added before are removed there.

A principal the target lacks makes the service refuse the whole PATCH (404 PRINCIPAL_DOES_NOT_EXIST): the
changes are then sent one principal at a time, the missing ones skipped and recorded (`principals_missing:
skip`, the grant is `partial` and applied once the target has them) or the change fails (`fail`).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from databricks.sdk.errors import DatabricksError

from dbsync.apierrors import is_gone
from dbsync.context import SyncContext
from dbsync.errors import Blocked, Permanent
from dbsync.mapping import ANY, waiting_ref
from dbsync.model import Applied, Delete, Upsert
from dbsync.replicators.base import Replicator
from dbsync.replicators.uc_common import PRINCIPAL_MISSING
from dbsync.sdk import Service
from dbsync.watchers.uc_grants import read_grants

sdk_catalog = Service("catalog")  # imported when this kind first uses it (dbsync/sdk.py)


def _changes(adds: set[tuple[str, str]], removes: set[tuple[str, str]]) -> dict[str, dict[str, list[str]]]:
    """{principal: {"add": [...], "remove": [...]}} of the grants to add and to remove."""
    out: dict[str, dict[str, list[str]]] = defaultdict(lambda: {"add": [], "remove": []})
    for principal, privilege in sorted(adds):
        out[principal]["add"].append(privilege)
    for principal, privilege in sorted(removes):
        out[principal]["remove"].append(privilege)
    return dict(out)


def _removable(change: Upsert, extra: set[tuple[str, str]]) -> tuple[set[tuple[str, str]], int]:
    """(grants to remove, how many are kept): on an adopted securable only those dbsync added before go."""
    if not change.payload.get("adopted"):
        return extra, 0
    previous = (change.prior.payload or {}) if change.prior else {}
    ours = {(p, privilege) for p, privilege in previous.get("grants") or []}
    return extra & ours, len(extra - ours)


def _patch(ctx: SyncContext, securable: str, full_name: str, changes: dict[str, dict[str, list[str]]]) -> None:
    body = [
        sdk_catalog.PermissionsChange(principal=p, add=_privileges(c["add"]), remove=_privileges(c["remove"]))
        for p, c in changes.items()
    ]
    ctx.target.client.grants.update(securable, full_name, changes=body)


def _privileges(names: list[str]) -> list[sdk_catalog.Privilege] | None:
    try:
        return [sdk_catalog.Privilege(n) for n in names] or None
    except ValueError as err:  # never dropped silently: a grant would be lost
        raise Permanent(f"{err}: this databricks-sdk does not know the privilege; upgrade databricks-sdk") from None


class UcGrantsReplicator(Replicator):
    kind = "uc_grants"
    unrecorded_origin = "created"  # its delete removes nothing dbsync did not write

    def apply(self, ctx: SyncContext, change: Upsert) -> Applied:
        payload: dict[str, Any] = change.payload
        securable, full_name = payload["securable"], payload["full_name"]
        try:
            current = set(read_grants(ctx.target, securable, full_name))
        except DatabricksError as err:
            if is_gone(err):
                raise Blocked(f"waiting for {securable.lower()} {full_name} to be on the target") from None
            raise
        wanted = {(p, privilege) for p, privilege in payload["grants"]}
        removes, kept = _removable(change, current - wanted)
        note = f"kept {kept} grant(s) the adopted {securable.lower()} had on the target" if kept else None
        changes = _changes(wanted - current, removes)
        if not changes:
            return Applied(change.key, note=note)
        try:
            _patch(ctx, securable, full_name, changes)
            return Applied(change.key, note=note)
        except DatabricksError as err:
            if err.error_code != PRINCIPAL_MISSING:
                raise
        return self._one_by_one(ctx, change.key, securable, full_name, changes)

    def _one_by_one(
        self, ctx: SyncContext, key: str, securable: str, full_name: str, changes: dict[str, dict[str, list[str]]]
    ) -> Applied:
        skipped = []
        for principal, change in changes.items():
            try:
                _patch(ctx, securable, full_name, {principal: change})
            except DatabricksError as err:
                if err.error_code != PRINCIPAL_MISSING:
                    raise
                if ctx.settings.principals_missing == "fail":
                    raise Permanent(f"principal {principal} does not exist on the target") from None
                skipped.append(principal)
        note = f"skipped principals missing on the target: {', '.join(skipped)}" if skipped else None
        return Applied(key, note=note, waiting_on=[waiting_ref(ANY, p) for p in skipped])

    def delete(self, ctx: SyncContext, change: Delete) -> None:
        """Grants go with their securable (deleted by its own kind) or stay with one dbsync keeps: nothing to do."""


def replicator_for(kind: str) -> Replicator:
    return UcGrantsReplicator()
