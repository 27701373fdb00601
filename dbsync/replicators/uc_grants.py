"""Unity Catalog grants on the target: one PATCH of the differences (`changes: [{principal, add, remove}]`).

The target's direct grants are read (GET), what the source lacks is added, and of what the source does not have
only the grants dbsync added (recorded: replicators/added.py) are removed. A grant the target had before dbsync
touched the securable (the DR team's own `sales` catalog, adopted) or was given there by hand since is kept (noted),
whatever the source grants or revokes.

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
from dbsync.replicators.added import added_before, added_meta, adding_ahead
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


def _ours(change: Upsert) -> set[tuple[str, str]]:
    """The grants dbsync added to this securable (an older row: the previous payload's, on a securable it created)."""
    return added_before(change, not change.payload.get("adopted"), lambda payload: map(tuple, payload["grants"]))


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
        ours = _ours(change)
        extra = current - wanted
        kept = len(extra - ours)
        note = f"kept {kept} grant(s) on the target that dbsync did not add" if kept else None
        changes = _changes(wanted - current, extra & ours)
        done = changes
        skipped: list[str] = []
        if changes:
            adding_ahead(ctx, change, ours, wanted - current)  # recorded before the PATCH that adds them
            try:
                _patch(ctx, securable, full_name, changes)
            except DatabricksError as err:
                if err.error_code != PRINCIPAL_MISSING:
                    raise
                skipped = self._one_by_one(ctx, securable, full_name, changes)
                done = {p: c for p, c in changes.items() if p not in skipped}
                if skipped:
                    missing = f"skipped principals missing on the target: {', '.join(skipped)}"
                    note = f"{note}; {missing}" if note else missing
        added = {(p, privilege) for p, c in done.items() for privilege in c["add"]}
        removed = {(p, privilege) for p, c in done.items() for privilege in c["remove"]}
        meta = added_meta(((ours & current) - removed) | added)
        return Applied(change.key, note=note, waiting_on=[waiting_ref(ANY, p) for p in skipped], meta=meta)

    def _one_by_one(
        self, ctx: SyncContext, securable: str, full_name: str, changes: dict[str, dict[str, list[str]]]
    ) -> list[str]:
        """Each principal's change on its own: the principals skipped because the target lacks them."""
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
        return skipped

    def delete(self, ctx: SyncContext, change: Delete) -> None:
        """Grants go with their securable (deleted by its own kind) or stay with one dbsync keeps: nothing to do."""


def replicator_for(kind: str) -> Replicator:
    return UcGrantsReplicator()
