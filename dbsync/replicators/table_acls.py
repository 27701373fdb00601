"""Table ACLs on the target: the difference between the source's grants and the target's, nothing more.

`SHOW GRANTS` on the target, then REVOKE what the source does not have (REVOKE lifts a grant and a
denial of the privilege alike), GRANT / DENY what the target lacks (one statement per principal and
verb), and `ALTER … OWNER TO` when the owner differs. A grant set already equal costs the one
SHOW GRANTS. A principal the target lacks (absent from its SCIM, or refused by the service with
PRINCIPAL_DOES_NOT_EXIST) is skipped and recorded (`principals_missing: skip`) or fails the change
(`fail`); the owner then stays what it is on the target, and the note says who that is.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from dbsync.context import SyncContext
from dbsync.errors import Blocked, Permanent
from dbsync.mapping import ANY, waiting_ref
from dbsync.model import Applied, Delete, Upsert
from dbsync.replicators.base import Replicator
from dbsync.sql import SqlError, quote, runner
from dbsync.watchers.table_acls import DENIED, OWN, read_grants, securable_sql

_OWNED = ("CATALOG", "SCHEMA", "TABLE", "VIEW")  # ANY FILE and ANONYMOUS FUNCTION have no owner


def _base(action: str) -> str:
    return action[len(DENIED) :] if action.startswith(DENIED) else action


def _fold(grants: Any) -> dict[tuple[str, str], str]:
    """{(principal case-folded, action): principal as written}: principals compare case-insensitively."""
    return {(p.casefold(), a): p for p, a in grants}


class TableAclsReplicator(Replicator):
    kind = "table_acls"
    unrecorded_origin = "created"  # its delete removes nothing dbsync did not write

    def apply(self, ctx: SyncContext, change: Upsert) -> Applied:
        payload = change.payload
        securable, parts = payload["securable"], payload["parts"]
        absent = {p.casefold() for p in payload["absent"]}
        if absent and ctx.settings.principals_missing == "fail":
            raise Permanent(f"principals missing on the target: {', '.join(payload['absent'])}")
        current_rows = read_grants(ctx, ctx.target, securable, parts)
        if current_rows is None:
            raise Blocked(f"waiting for {change.key.replace(':', ' ', 1)} to be on the target")
        plan = _Plan(ctx, securable_sql(securable, parts), set(payload["absent"]))
        current = _fold(g for g in current_rows if g[1] != OWN)
        wanted = _fold((p, a) for p, a in payload["grants"] if p.casefold() not in absent)
        plan.differences(current, wanted)
        current_owner = next((p for p, a in current_rows if a == OWN), None)
        owner = payload["owner"]
        if securable in _OWNED and owner and owner.casefold() != (current_owner or "").casefold():
            if owner.casefold() in absent:
                plan.notes.append(
                    f"owner {owner} does not exist on the target; owner kept as {current_owner or 'none'}"
                )
            else:
                plan.run(f"ALTER {securable_sql(securable, parts)} OWNER TO {quote(owner)}", owner)
        waiting = [waiting_ref(ANY, p) for p in sorted(plan.skipped)]
        return Applied(change.key, note=plan.note(), waiting_on=waiting)

    def delete(self, ctx: SyncContext, change: Delete) -> None:
        """Grants go with their object (dropped by the metastore kinds) or stay with a catalog; nothing to do."""


class _Plan:
    """The statements of one securable, run in order: revokes, then grants and denials, then the owner."""

    def __init__(self, ctx: SyncContext, target: str, skipped: set[str]) -> None:
        self.ctx = ctx
        self.target = target
        self.skipped = skipped
        self.notes: list[str] = []

    def differences(self, current: dict[tuple[str, str], str], wanted: dict[tuple[str, str], str]) -> None:
        revokes: dict[str, list[str]] = defaultdict(list)
        for folded, action in sorted(set(current) - set(wanted)):
            privilege = _base(action)
            if privilege not in revokes[current[(folded, action)]]:
                revokes[current[(folded, action)]].append(privilege)
        lifted = {(p.casefold(), a) for p, privileges in revokes.items() for a in privileges}
        # REVOKE removes a grant and a denial of the privilege alike: what it lifted may need putting back.
        remaining = {g for g in current if (g[0], _base(g[1])) not in lifted}
        for principal, privileges in sorted(revokes.items()):
            self.run(f"REVOKE {', '.join(privileges)} ON {self.target} FROM {quote(principal)}", principal)
        additions: dict[tuple[str, str], list[str]] = defaultdict(list)
        for folded, action in sorted(set(wanted) - remaining):
            verb = "DENY" if action.startswith(DENIED) else "GRANT"
            additions[(wanted[(folded, action)], verb)].append(_base(action))
        for (principal, verb), privileges in sorted(additions.items()):
            self.run(f"{verb} {', '.join(privileges)} ON {self.target} TO {quote(principal)}", principal)

    def run(self, statement: str, principal: str) -> None:
        try:
            runner(self.ctx, self.ctx.target).execute(statement)
        except SqlError as err:
            if not err.is_class("PRINCIPAL_DOES_NOT_EXIST"):
                raise
            if self.ctx.settings.principals_missing == "fail":
                raise Permanent(f"principal {principal} does not exist on the target: {err}") from None
            self.skipped.add(principal)

    def note(self) -> str | None:
        notes = list(self.notes)
        if self.skipped:
            notes.append(f"skipped principals missing on the target: {', '.join(sorted(self.skipped))}")
        return "; ".join(notes) or None


def replicator_for(kind: str) -> Replicator:
    return TableAclsReplicator()
