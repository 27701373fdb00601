"""Unity Catalog grants on the target: one PATCH of the differences (`changes: [{principal, add, remove}]`).

The target's direct grants are read (GET), what the source does not have is removed and what it lacks added,
so a grant someone gave on the standby that the source does not have is removed too (the grants of a
replicated securable follow the source, as object ACLs do). A principal the target lacks makes the service
refuse the whole PATCH (404 PRINCIPAL_DOES_NOT_EXIST): the changes are then sent one principal at a time, the
missing ones skipped and recorded (`principals_missing: skip`, the grant is `partial` and applied once the
target has them) or the change fails (`fail`).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from databricks.sdk.errors import DatabricksError
from databricks.sdk.service.catalog import PermissionsChange, Privilege

from dbsync.apierrors import is_gone
from dbsync.context import SyncContext
from dbsync.errors import Blocked, Permanent
from dbsync.mapping import ANY, waiting_ref
from dbsync.model import Applied, Delete, Upsert
from dbsync.replicators.base import Replicator
from dbsync.replicators.uc_common import PRINCIPAL_MISSING
from dbsync.watchers.uc_grants import read_grants


def _changes(current: set[tuple[str, str]], wanted: set[tuple[str, str]]) -> dict[str, dict[str, list[str]]]:
    """{principal: {"add": [...], "remove": [...]}} turning `current` into `wanted`."""
    out: dict[str, dict[str, list[str]]] = defaultdict(lambda: {"add": [], "remove": []})
    for principal, privilege in sorted(wanted - current):
        out[principal]["add"].append(privilege)
    for principal, privilege in sorted(current - wanted):
        out[principal]["remove"].append(privilege)
    return dict(out)


def _patch(ctx: SyncContext, securable: str, full_name: str, changes: dict[str, dict[str, list[str]]]) -> None:
    body = [
        PermissionsChange(principal=p, add=_privileges(c["add"]), remove=_privileges(c["remove"]))
        for p, c in changes.items()
    ]
    ctx.target.client.grants.update(securable, full_name, changes=body)


def _privileges(names: list[str]) -> list[Privilege] | None:
    try:
        return [Privilege(n) for n in names] or None
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
        changes = _changes(current, {(p, privilege) for p, privilege in payload["grants"]})
        if not changes:
            return Applied(change.key)
        try:
            _patch(ctx, securable, full_name, changes)
            return Applied(change.key)
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
