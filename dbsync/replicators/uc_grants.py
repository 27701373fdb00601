"""UC grants on the target: the differences PATCHed, never a grant dbsync did not make removed.

A privilege is added when the source grants it and the target lacks it; it is removed only when dbsync
granted it before (the last replicated payload has it) and the source no longer does, so the DR team's
own grants on an adopted securable stay. A principal the target lacks is left out and waited for.
"""

from __future__ import annotations

from typing import Any

from databricks.sdk.service.catalog import PermissionsChange, Privilege

from dbsync.context import SyncContext
from dbsync.errors import Permanent
from dbsync.mapping import ANY, waiting_ref
from dbsync.model import Applied, Delete, Upsert
from dbsync.principals import principal_on_target
from dbsync.replicators.base import Replicator
from dbsync.watchers.uc_grants import grants


def _by_principal(assignments: list[dict[str, Any]]) -> dict[str, set[str]]:
    return {a["principal"]: set(a["privileges"]) for a in assignments}


class UcGrantsReplicator(Replicator):
    kind = "uc_grants"
    unrecorded_origin = "created"  # its delete removes nothing dbsync did not write

    def apply(self, ctx: SyncContext, change: Upsert) -> Applied:
        payload = change.payload
        securable_type, name = payload["securable_type"], payload["target_key"]
        wanted = _by_principal(payload["assignments"])
        before = _by_principal((change.prior.payload or {}).get("assignments") or []) if change.prior else {}
        current = _by_principal(grants(ctx, ctx.target, securable_type, name))
        changes, waiting = [], []
        for principal in sorted(set(wanted) | set(before)):
            add = wanted.get(principal, set()) - current.get(principal, set())
            remove = (before.get(principal, set()) - wanted.get(principal, set())) & current.get(principal, set())
            if not add and not remove:
                continue
            if not principal_on_target(ctx, ANY, principal):
                if ctx.settings.principals_missing == "fail":
                    raise Permanent(f"principal {principal} does not exist on the target: provision it there first")
                waiting.append(waiting_ref(ANY, principal))
                continue
            changes.append(
                PermissionsChange(
                    principal=principal,
                    add=[Privilege(p) for p in sorted(add)] or None,
                    remove=[Privilege(p) for p in sorted(remove)] or None,
                )
            )
        if changes:
            ctx.target.client.grants.update(securable_type, name, changes=changes)
        names = ", ".join(w.split(":", 1)[1] for w in waiting)
        note = f"skipped principals missing on the target: {names}" if waiting else None
        return Applied(change.key, note=note, waiting_on=waiting)

    def delete(self, ctx: SyncContext, change: Delete) -> None:
        """Grants go with their securable; nothing to do."""


def replicator_for(kind: str) -> Replicator:
    return UcGrantsReplicator()
