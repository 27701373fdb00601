"""Table ACLs: the grants (GRANT / DENY) and owner of every securable of the replicated metastore.

Securables: each catalog of `metastore.catalogs`, `ANY FILE` and `ANONYMOUS FUNCTION` (legacy table
ACLs, with hive_metastore), and every schema, table and view the metastore kinds put on the target
(listed from the store, like object permissions: no SQL listing of its own). `SHOW GRANTS ON …` has
no version, so each securable is read every cycle on the source and compared by fingerprint; only a
change reads the target. The answer includes what the securable inherits (a table's schema and
catalog rows): only rows whose ObjectType / ObjectKey name the securable itself are kept. OWN rows
become the owner, DENIED_<privilege> rows denials (both legacy table ACLs only: Unity Catalog's SHOW
GRANTS lists no owner and has no DENY, so a UC securable's owner is not copied). Principals are
mapped (`mapping.emails`, `mapping.principals`); with legacy ACLs a principal the target workspace
lacks is listed in the payload (`absent`), so the grant is applied once the target has it.

The payload also carries the fingerprint of the securable's own definition: a table recreated on the
target (which drops its grants) or a replaced view gets its ACL compared again.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from databricks.sdk.errors import DatabricksError

from dbsync.context import SyncContext
from dbsync.declaration import Declaration
from dbsync.errors import DbsyncError, ListingError, RetryLater
from dbsync.model import Resource
from dbsync.principals import INDEXES
from dbsync.sql import Row, SqlError, column, qualified, runner
from dbsync.watchers.base import Watcher
from dbsync.watchers.metastore import HIVE_METASTORE, SHARED_LISTING, check_warehouses, not_there, split_key
from dbsync.workspace import Workspace

ANY_FILE, ANONYMOUS_FUNCTION = "ANY FILE", "ANONYMOUS FUNCTION"
# The kind that replicates each securable type's object, and the key prefix of its ACL.
OBJECT_KINDS = (("schemas", "SCHEMA"), ("tables", "TABLE"), ("views", "VIEW"))
# ObjectType values SHOW GRANTS prints for a securable's own rows (legacy table ACLs, then Unity Catalog).
_OBJECT_TYPES = {
    "CATALOG": {"CATALOG$", "CATALOG"},
    "SCHEMA": {"DATABASE", "SCHEMA"},
    "TABLE": {"TABLE", "VIEW"},
    "VIEW": {"TABLE", "VIEW"},
    ANY_FILE: {"ANY_FILE", "ANY FILE"},
    ANONYMOUS_FUNCTION: {"ANONYMOUS_FUNCTION", "ANONYMOUS FUNCTION"},
}
OWN = "OWN"
UC_CATALOGS_KIND = "catalogs"  # the kind that replicates a Unity Catalog catalog itself, over REST
DENIED = "DENIED_"
BUILTIN_PRINCIPALS = frozenset({"users", "admins", "account users"})


def securable_sql(securable: str, parts: list[str]) -> str:
    """The object clause of GRANT / SHOW GRANTS: `TABLE `c`.`s`.`t``, `ANY FILE`, ..."""
    return securable if not parts else f"{securable} {qualified(parts)}"


def is_legacy(securable: str, parts: list[str]) -> bool:
    """Legacy table ACLs (hive_metastore, ANY FILE, ANONYMOUS FUNCTION): workspace principals, DENY, OWN rows."""
    return not parts or parts[0] == HIVE_METASTORE


def _key_parts(object_key: str | None) -> list[str]:
    """`finance`.`ledger` / main.finance.ledger → [finance, ledger] (lower-case, backticks removed)."""
    if not object_key:
        return []
    parts, current, quoted = [], "", False
    for char in object_key:
        if char == "`":
            quoted = not quoted
        elif char == "." and not quoted:
            parts.append(current)
            current = ""
        else:
            current += char
    return [p.lower() for p in [*parts, current] if p]


def own_rows(rows: list[Row], securable: str, parts: list[str]) -> list[tuple[str, str]]:
    """(principal, action) rows of the securable itself, not the parents it inherits from."""
    types = _OBJECT_TYPES[securable]
    out = []
    for row in rows:
        object_type = (column(row, "ObjectType", 2) or "").upper()
        if object_type not in types:
            continue
        key = _key_parts(column(row, "ObjectKey", 3))
        if key and parts and key != parts[-len(key) :]:
            continue
        principal, action = column(row, "Principal", 0), column(row, "ActionType", 1)
        if principal and action:
            out.append((principal, action.upper()))
    return out


def read_grants(ctx: SyncContext, ws: Workspace, securable: str, parts: list[str]) -> list[tuple[str, str]] | None:
    """The securable's own (principal, action) rows in `ws`; None when the object is not there."""
    try:
        rows = runner(ctx, ws).query(f"SHOW GRANTS ON {securable_sql(securable, parts)}")
    except SqlError as err:
        if not_there(err):
            return None
        raise
    return own_rows(rows, securable, parts)


def on_target(ctx: SyncContext, principal: str) -> bool:
    """Whether the target workspace knows a principal (userName, group name or application id)."""
    if principal.lower() in BUILTIN_PRINCIPALS:
        return True
    return any(INDEXES[scim_type].get(ctx, principal) for scim_type in ("users", "groups", "service_principals"))


class TableAclsWatcher(Watcher):
    kind = "table_acls"
    # Reading the target's grants costs one SHOW GRANTS per securable; a write compares with them instead.
    drift_check = False
    declaration = Declaration(interval=900, needs_warehouse=True, shared_listing=SHARED_LISTING, listed_in_turn=True)

    def list(self, ctx: SyncContext, ws: Workspace) -> Iterator[Resource]:
        try:
            check_warehouses(ctx)  # a missing warehouse setting stops the kind with the setting's name
        except DbsyncError as err:
            raise ListingError(str(err)) from err
        catalogs = ctx.settings.metastore.catalogs
        for catalog in catalogs:
            if catalog != HIVE_METASTORE and ctx.history.target_key(UC_CATALOGS_KIND, catalog) is not None:
                continue  # a UC catalog replicated over REST: its grants (and owner) are uc_grants' and its own
            yield self._stub(f"catalog:{catalog}", "CATALOG", [catalog])
        if HIVE_METASTORE in catalogs:
            yield self._stub("any_file", ANY_FILE, [])
            yield self._stub("anonymous_function", ANONYMOUS_FUNCTION, [])
        for object_kind, securable in OBJECT_KINDS:
            listed = ctx.listed.get(object_kind)  # None when the kind was not listed in this run
            for prior in ctx.history.priors(object_kind, payloads=False):
                if prior.target_key is None or (listed is not None and prior.key not in listed):
                    continue
                # The definition now on the target: a table recreated there (grants dropped) reads as a change.
                definition = prior.fingerprint if prior.copy_status == "synced" else None
                key, parts = f"{securable.lower()}:{prior.key}", split_key(prior.key)
                yield self._stub(key, securable, parts, definition, created=prior.origin == "created")

    def _stub(
        self, key: str, securable: str, parts: list[str], definition: str | None = None, created: bool = False
    ) -> Resource:
        """`created`: dbsync created the securable on the target (a catalog, ANY FILE, ANONYMOUS FUNCTION: never)."""
        meta = {"securable": securable, "parts": parts, "definition": definition, "created": created}
        return Resource(self.kind, key, key.split(":", 1)[-1], None, source_meta=meta)

    def fetch(self, ctx: SyncContext, ws: Workspace, stub: Resource) -> Resource:
        securable, parts = stub.source_meta["securable"], stub.source_meta["parts"]
        try:
            rows = read_grants(ctx, ws, securable, parts)
        except DatabricksError as err:
            raise RetryLater(f"cannot read the grants of {stub.key} on the {ws.side}: {err}") from None
        if rows is None:
            raise RetryLater(f"{stub.key} disappeared from the {ws.side} while its grants were read")
        stub.payload = self.normalize(ctx, securable, parts, rows, stub.source_meta.get("definition"))
        return stub

    @staticmethod
    def normalize(
        ctx: SyncContext, securable: str, parts: list[str], rows: list[tuple[str, str]], definition: str | None
    ) -> dict[str, Any]:
        """Grants and owner with principals mapped for the target; the legacy principals the target lacks."""
        grants = sorted(
            {(ctx.principals.any_principal(p), action) for p, action in rows if action != OWN},
            key=lambda g: (g[0].casefold(), g[1]),
        )
        owners = [ctx.principals.any_principal(p) for p, action in rows if action == OWN]
        owner = owners[0] if owners else None
        named = {p for p, _ in grants} | ({owner} if owner else set())
        absent = sorted(p for p in named if not on_target(ctx, p)) if is_legacy(securable, parts) else []
        return {
            "securable": securable,
            "parts": parts,
            "grants": [list(g) for g in grants],
            "owner": owner,
            "absent": absent,
            "definition": definition,
        }


def watcher_for(kind: str) -> TableAclsWatcher:
    return TableAclsWatcher()
