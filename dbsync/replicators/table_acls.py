"""Table ACLs on the target: the difference between the source's grants and the target's, nothing more.

`SHOW GRANTS` on the target, then GRANT / DENY what the target lacks (one statement per principal and verb),
REVOKE what the source does not have but only where dbsync granted it (recorded: replicators/added.py), and
`ALTER … OWNER TO` when the owner differs, only on a securable dbsync created: the owner of the target's own
`hive_metastore` or of a schema or table dbsync adopted is the DR team's, left as it is (noted). A grant the
target had before dbsync ran (the DR team's `SELECT ON ANY FILE` to its auditors, a grant on the target's own
`hive_metastore` catalog or on a table dbsync adopted) or was given there by hand since is kept, whatever the
source does: the first sync REVOKEd those before. REVOKE lifts a grant and a denial of the privilege alike, so
what it lifted that was not meant to go is granted or denied again.
A grant set already equal costs the one SHOW GRANTS. A principal the target lacks (absent from its SCIM, or
refused by the service with PRINCIPAL_DOES_NOT_EXIST) is skipped and recorded (`principals_missing: skip`) or
fails the change (`fail`); the owner then stays what it is on the target, and the note says who that is.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from dbsync.context import SyncContext
from dbsync.errors import Blocked, Permanent
from dbsync.mapping import ANY, waiting_ref
from dbsync.model import Applied, Delete, Upsert
from dbsync.principals import principal_confirmed
from dbsync.replicators.added import added_before, added_meta, adding_ahead
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
        # The watcher found these missing from the target's SCIM index, which pages by offset and may skip one
        # the target has: each is asked for by name first, since a grant left out of `wanted` is revoked.
        still_absent = [p for p in payload["absent"] if not principal_confirmed(ctx, ANY, p)]
        absent = {p.casefold() for p in still_absent}
        if absent and ctx.settings.principals_missing == "fail":
            raise Permanent(f"principals missing on the target: {', '.join(still_absent)}")
        current_rows = read_grants(ctx, ctx.target, securable, parts)
        if current_rows is None:
            raise Blocked(f"waiting for {change.key.replace(':', ' ', 1)} to be on the target")
        plan = _Plan(ctx, securable_sql(securable, parts), set(still_absent))
        current = _fold(g for g in current_rows if g[1] != OWN)
        wanted = _fold((p, a) for p, a in payload["grants"] if p.casefold() not in absent)
        created = bool(change.resource.source_meta.get("created"))
        recorded = added_before(change, created, lambda old: _fold(old["grants"]))
        adding_ahead(ctx, change, recorded, set(wanted) - set(current))  # recorded before the GRANTs run
        ours = plan.differences(current, wanted, recorded)
        current_owner = next((p for p, a in current_rows if a == OWN), None)
        owner = payload["owner"]
        if securable in _OWNED and owner and owner.casefold() != (current_owner or "").casefold():
            if not created:  # the target's own catalog, an adopted schema or table: its owner is the DR team's
                plan.notes.append(f"owner left as the target's ({current_owner or 'none'}): dbsync did not create it")
            elif owner.casefold() in absent:
                plan.notes.append(
                    f"owner {owner} does not exist on the target; owner kept as {current_owner or 'none'}"
                )
            else:
                plan.run(f"ALTER {securable_sql(securable, parts)} OWNER TO {quote(owner)}", owner)
        waiting = [waiting_ref(ANY, p) for p in sorted(plan.skipped)]
        return Applied(change.key, note=plan.note(), waiting_on=waiting, meta=added_meta(ours))

    def delete(self, ctx: SyncContext, change: Delete) -> None:
        """Grants go with their object (dropped by the metastore kinds) or stay with a catalog; nothing to do."""


class _Plan:
    """The statements of one securable, run in order: revokes, then grants and denials, then the owner."""

    def __init__(self, ctx: SyncContext, target: str, skipped: set[str]) -> None:
        self.ctx = ctx
        self.target = target
        self.skipped = skipped
        self.notes: list[str] = []

    def differences(
        self, current: dict[tuple[str, str], str], wanted: dict[tuple[str, str], str], ours: set[tuple[str, str]]
    ) -> set[tuple[str, str]]:
        """REVOKE what dbsync granted (`ours`) that the source no longer has, then GRANT / DENY what the target lacks
        and what a REVOKE lifted that is not to go (the DR team's denial beside dbsync's grant of the privilege).
        Returns the grants that are dbsync's on the target after it."""
        revokes: dict[str, list[str]] = defaultdict(list)
        kept = 0
        for folded, action in sorted(set(current) - set(wanted)):
            if (folded, action) not in ours:
                kept += 1  # not dbsync's: the DR team's, found on the target or granted there by hand
                continue
            privilege = _base(action)
            if privilege not in revokes[current[(folded, action)]]:
                revokes[current[(folded, action)]].append(privilege)
        if kept:
            self.notes.append(f"kept {kept} grant(s) on the target that dbsync did not add")
        lifted = set()
        for principal, privileges in sorted(revokes.items()):
            if self.run(f"REVOKE {', '.join(privileges)} ON {self.target} FROM {quote(principal)}", principal):
                lifted |= {(principal.casefold(), privilege) for privilege in privileges}
        remaining = {g for g in current if (g[0], _base(g[1])) not in lifted}
        restored = {g: current[g] for g in current if g not in remaining and g not in ours}  # lifted, not dbsync's
        spelled = {**restored, **wanted}
        additions: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
        for folded, action in sorted(set(spelled) - remaining):
            verb = "DENY" if action.startswith(DENIED) else "GRANT"
            additions[(spelled[(folded, action)], verb)].append((folded, action))
        granted = set()
        for (principal, verb), grants in sorted(additions.items()):
            if self.run(
                f"{verb} {', '.join(_base(a) for _, a in grants)} ON {self.target} TO {quote(principal)}", principal
            ):
                granted.update(grants)
        # dbsync's: what it had granted and is still there, and what it granted now that the target lacked.
        return (ours & remaining) | {g for g in granted if g in ours or g not in current}

    def run(self, statement: str, principal: str) -> bool:
        """Run one statement: False when the target lacks the principal (skipped and recorded)."""
        try:
            runner(self.ctx, self.ctx.target).execute(statement)
            return True
        except SqlError as err:
            if not err.is_class("PRINCIPAL_DOES_NOT_EXIST"):
                raise
            if self.ctx.settings.principals_missing == "fail":
                raise Permanent(f"principal {principal} does not exist on the target: {err}") from None
            self.skipped.add(principal)
            return False

    def note(self) -> str | None:
        notes = list(self.notes)
        if self.skipped:
            notes.append(f"skipped principals missing on the target: {', '.join(sorted(self.skipped))}")
        return "; ".join(notes) or None


def replicator_for(kind: str) -> Replicator:
    return TableAclsReplicator()
