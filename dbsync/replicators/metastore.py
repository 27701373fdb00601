"""Metastore DDL on the target: schemas, tables and views, through the target's SQL warehouse.

Every write first looks at the target (this run's name listing, then the object's own definition):
an equal object is adopted without a statement, a missing one is created with `CREATE … IF NOT
EXISTS`, so a crash between a create and its record never duplicates or fails the next run.

- schemas: created with their comment, a non-default LOCATION and DBPROPERTIES; later differences
  are ALTERed (`COMMENT ON SCHEMA`, `SET DBPROPERTIES`, `SET LOCATION`). A UC catalog missing on the
  target blocks its schemas until the `catalogs` kind (UC REST, storage root mapped) or a person creates it.
- tables: DDL only, never data. A table whose definition differs from the target's follows
  `tables.on_change`: `report` (default) leaves the target and records an error saying what to do;
  `recreate_if_external` drops and recreates an external table (its files stay at LOCATION). A managed
  table is never dropped, by an update or by a delete: its data would go with it. Before any DROP the
  target's own `DESCRIBE TABLE EXTENDED` must say EXTERNAL (a LOCATION clause alone is not trusted).
- views: `CREATE VIEW IF NOT EXISTS`, `CREATE OR REPLACE VIEW` when the definition changed, run in the
  namespace the source view was created in (unqualified names resolve as they did there). A view that
  reads a table or view dbsync has not put on the target yet waits (`Blocked`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dbsync import planner
from dbsync.context import SyncContext
from dbsync.errors import Blocked, Permanent
from dbsync.model import Applied, Delete, Upsert
from dbsync.replicators.base import Replicator
from dbsync.runcache import CacheKey
from dbsync.sql import SqlError, column, literal, qualified, runner
from dbsync.watchers.metastore import (
    HIVE_METASTORE,
    describe_schema,
    is_external,
    not_there,
    parse_create,
    relations,
    remember_on_target,
    render,
    schema_names,
    show_create,
    split_key,
    verbatim_create,
    view_reads,
    with_name,
)

if TYPE_CHECKING:
    from sqlglot import exp

_BUILTIN_SCHEMAS = {(HIVE_METASTORE, "default")}


def _payload(change: Upsert) -> dict[str, Any]:
    return change.payload


# -- schemas ------------------------------------------------------------------------------------------
def create_schema_statement(payload: dict[str, Any]) -> str:
    statement = f"CREATE SCHEMA IF NOT EXISTS {qualified([payload['catalog'], payload['schema']])}"
    if payload.get("comment"):
        statement += f" COMMENT {literal(payload['comment'])}"
    if payload.get("location"):
        statement += f" {_location_clause(payload['catalog'])} {literal(payload['location'])}"
    if payload.get("properties"):
        statement += f" WITH DBPROPERTIES ({_property_list(payload['properties'])})"
    return statement


def _location_clause(catalog: str) -> str:
    """A Unity Catalog schema's storage is its MANAGED LOCATION (LOCATION is the Hive metastore's clause)."""
    return "LOCATION" if catalog == HIVE_METASTORE else "MANAGED LOCATION"


def _property_list(properties: dict[str, str]) -> str:
    return ", ".join(f"{literal(k)} = {literal(v)}" for k, v in sorted(properties.items()))


def _found(change: Upsert) -> bool | None:
    """An object already on the target at a first apply is adopted (never dropped by dbsync); later, unchanged."""
    return True if change.target_key is None else None


class SchemasReplicator(Replicator):
    kind = "schemas"

    def apply(self, ctx: SyncContext, change: Upsert) -> Applied:
        payload = _payload(change)
        catalog, schema = payload["catalog"], payload["schema"]
        if payload.get("blocked"):
            raise Blocked(payload["blocked"])
        run = runner(ctx, ctx.target)
        if catalog != HIVE_METASTORE and not _catalog_on_target(ctx, catalog):
            raise Blocked(
                f"waiting for catalog {catalog} on the target: the catalogs kind creates it over the Unity Catalog "
                "API (its storage root needs a mapping.storage_urls entry), or create it there by hand"
            )
        current = (
            describe_schema(ctx, ctx.target, catalog, schema)
            if schema in schema_names(ctx, ctx.target, catalog)
            else None
        )
        if current is None:
            run.execute(create_schema_statement(payload))
            remember_on_target(ctx, catalog, schema, None, "schema")
            return Applied(change.key, adopted=False)
        notes = []
        for statement in self._alterations(payload, current, notes):
            run.execute(statement)
        return Applied(change.key, note="; ".join(notes) or None, adopted=_found(change))

    @staticmethod
    def _alterations(wanted: dict[str, Any], current: dict[str, Any], notes: list[str]) -> list[str]:
        name = qualified([wanted["catalog"], wanted["schema"]])
        statements = []
        if (wanted.get("comment") or None) != (current.get("comment") or None):
            text = literal(wanted["comment"]) if wanted.get("comment") else "NULL"
            statements.append(f"COMMENT ON SCHEMA {name} IS {text}")
        if wanted.get("location") and wanted["location"] != current.get("location"):
            clause = _location_clause(wanted["catalog"])
            statements.append(f"ALTER SCHEMA {name} SET {clause} {literal(wanted['location'])}")
        changed = {k: v for k, v in wanted["properties"].items() if current["properties"].get(k) != v}
        if changed:
            statements.append(f"ALTER SCHEMA {name} SET DBPROPERTIES ({_property_list(changed)})")
        extra = sorted(set(current["properties"]) - set(wanted["properties"]))
        if extra:  # Spark has no UNSET DBPROPERTIES
            notes.append(f"properties only the target has are kept (SQL cannot unset them): {', '.join(extra)}")
        return statements

    def delete(self, ctx: SyncContext, change: Delete) -> None:
        """DROP SCHEMA without CASCADE: a schema still holding tables (kept managed ones) stays, with an event."""
        catalog, schema = split_key(change.key)[:2]
        if (catalog, schema) in _BUILTIN_SCHEMAS:
            return
        try:
            runner(ctx, ctx.target).execute(f"DROP SCHEMA IF EXISTS {qualified([catalog, schema])}")
        except SqlError as err:
            if not err.is_class("SCHEMA_NOT_EMPTY"):
                raise
            ctx.event(
                self.kind,
                change.key,
                "delete",
                "kept",
                f"schemas {change.key}: kept on the target, it still holds tables (dbsync never drops managed "
                "tables); drop it there by hand if it is no longer wanted",
            )
            return
        remember_on_target(ctx, catalog, schema, None, None)


TARGET_CATALOGS: CacheKey[set[str]] = CacheKey("metastore:target-catalogs")


def _catalog_on_target(ctx: SyncContext, catalog: str) -> bool:
    def load() -> set[str]:
        rows = runner(ctx, ctx.target).query("SHOW CATALOGS")
        return {(column(r, "catalog", 0) or "").lower() for r in rows}

    return catalog in ctx.cached(TARGET_CATALOGS, load)


# -- tables and views ---------------------------------------------------------------------------------
def _on_target(ctx: SyncContext, parts: list[str]) -> tuple[str | None, exp.Create | None]:
    """("table" | "view" | None, the target's definition) from this run's listing, then SHOW CREATE TABLE."""
    catalog, schema, name = parts
    what = relations(ctx, ctx.target, catalog, schema).get(name)
    if what is None:
        return None, None
    ddl = show_create(ctx, ctx.target, parts)
    if ddl is None:
        return None, None
    return what, parse_create(ddl, ".".join(parts))


def _external_on_target(ctx: SyncContext, parts: list[str]) -> bool:
    """The target table's Type, asked before any DROP: only EXTERNAL is dropped (unknown counts as managed).

    A LOCATION in SHOW CREATE TABLE is not proof: Spark prints it for a v2 table without is_managed_location.
    """
    try:
        rows = runner(ctx, ctx.target).query(f"DESCRIBE TABLE EXTENDED {qualified(parts)}")
    except SqlError as err:
        if not_there(err):
            return False
        raise
    for row in rows:
        if (column(row, "col_name", 0) or "").strip() == "Type":
            return (column(row, "data_type", 1) or "").strip().upper() == "EXTERNAL"
    return False


def _statement(change: Upsert, wanted: exp.Create, *, if_not_exists: bool = False, or_replace: bool = False) -> str:
    """The CREATE sent to the target: the source's own text (only its header adjusted); sqlglot's rendering only
    when the source text is not at hand or its header is not one SHOW CREATE TABLE prints."""
    payload = _payload(change)
    parts = [payload["catalog"], payload["schema"], payload["name"]]
    source_text = change.resource.source_meta.get("ddl")
    verbatim = (
        verbatim_create(source_text, parts, if_not_exists=if_not_exists, or_replace=or_replace) if source_text else None
    )
    return verbatim or render(wanted, if_not_exists=if_not_exists, or_replace=or_replace)


def _same(tree: exp.Create, parts: list[str], ddl: str) -> bool:
    return render(with_name(tree, parts)) == ddl


def _create(ctx: SyncContext, parts: list[str], statement: str, what: str, namespace: list[str]) -> None:
    """Run a CREATE in `namespace` (catalog, schema); Blocked while the object's schema is not on the target."""
    catalog, schema, name = parts
    if schema not in schema_names(ctx, ctx.target, catalog):
        raise Blocked(f"waiting for schemas {catalog}.{schema} to be on the target first")
    runner(ctx, ctx.target).execute(statement, catalog=namespace[0], schema=namespace[1])
    remember_on_target(ctx, catalog, schema, name, what)


class TablesReplicator(Replicator):
    kind = "tables"

    def apply(self, ctx: SyncContext, change: Upsert) -> Applied:
        payload = _payload(change)
        parts = [payload["catalog"], payload["schema"], payload["name"]]
        wanted = parse_create(payload["ddl"], change.key)
        what, current = _on_target(ctx, parts)
        if current is None:
            _create(ctx, parts, _statement(change, wanted, if_not_exists=True), "table", parts[:2])
            return Applied(change.key, adopted=False)
        if what == "table" and _same(current, parts, payload["ddl"]):
            return Applied(change.key, adopted=_found(change))  # the target already has this definition
        applied = self._changed(ctx, change, parts, wanted, current, what)
        applied.adopted = _found(change)
        return applied

    def _changed(
        self,
        ctx: SyncContext,
        change: Upsert,
        parts: list[str],
        wanted: exp.Create,
        current: exp.Create,
        what: str | None,
    ) -> Applied:
        """The target's definition differs: recreate an external table if allowed, otherwise report."""
        if what == "view":
            raise Permanent("the target has a view by this name where the source has a table; drop it there")
        if not is_external(current) and not is_external(wanted) and ctx.settings.tables.data == "deep_clone":
            raise Blocked(
                "a managed table whose definition changed on the source: the next DEEP CLONE of its data "
                "(tables.data: deep_clone) brings the new definition with it"
            )
        if not is_external(current):
            raise Permanent(
                "the source definition differs from the target's, which is a managed table: dbsync never "
                "drops a managed table (its data would go). Apply the change on the target (ALTER TABLE), or drop "
                "the table there yourself to have it created again"
            )
        if ctx.settings.tables.on_change != "recreate_if_external":
            raise Permanent(
                "the source definition differs from the target's; tables.on_change is report, so the "
                "target is left as it is. Apply the change on the target (ALTER TABLE), or set "
                "tables.on_change: recreate_if_external to drop and recreate external tables (their data stays)"
            )
        if not is_external(wanted):
            raise Permanent(
                "the source table is now managed and the target's is external: dbsync only recreates an external "
                "table as an external one. Drop the target table yourself to have it created again"
            )
        if not _external_on_target(ctx, parts):
            raise Permanent(
                "the target table shows a LOCATION but its type is not EXTERNAL: dbsync never drops a managed "
                "table. Apply the change on the target (ALTER TABLE)"
            )
        runner(ctx, ctx.target).execute(f"DROP TABLE IF EXISTS {qualified(parts)}")
        remember_on_target(ctx, parts[0], parts[1], parts[2], None)
        _create(ctx, parts, _statement(change, wanted, if_not_exists=True), "table", parts[:2])
        key = change.key
        ctx.event(
            self.kind,
            key,
            "update",
            "recreated",
            f"tables {key}: external table dropped and created again with the source definition (its data stays "
            "at its LOCATION; its grants follow with table_acls)",
        )
        return Applied(key)

    def delete(self, ctx: SyncContext, change: Delete) -> None:
        """Drop an external table (its files stay); a managed table is kept, with an event: its data would go."""
        parts = split_key(change.key)
        what, current = _on_target(ctx, parts)
        if current is None or what != "table":
            return
        if not is_external(current) or not _external_on_target(ctx, parts):
            ctx.event(
                self.kind,
                change.key,
                "delete",
                "kept",
                f"tables {change.key}: gone from the source, kept on the target because it is a managed table "
                "(dropping it deletes its data); drop it there by hand if it is no longer wanted",
            )
            return
        runner(ctx, ctx.target).execute(f"DROP TABLE IF EXISTS {qualified(parts)}")
        remember_on_target(ctx, parts[0], parts[1], parts[2], None)


class ViewsReplicator(Replicator):
    kind = "views"

    def apply(self, ctx: SyncContext, change: Upsert) -> Applied:
        payload = _payload(change)
        parts = [payload["catalog"], payload["schema"], payload["name"]]
        wanted = parse_create(payload["ddl"], change.key)
        what, current = _on_target(ctx, parts)
        if current is not None and what == "view" and _same(current, parts, payload["ddl"]):
            return Applied(change.key, adopted=_found(change))
        if what == "table":
            raise Permanent("the target has a table by this name where the source has a view")
        namespace = _view_namespace(ctx, parts)
        self._check_reads(ctx, view_reads(wanted, *namespace))
        replace = current is not None
        statement = _statement(change, wanted, if_not_exists=not replace, or_replace=replace)
        try:
            _create(ctx, parts, statement, "view", namespace)
        except SqlError as err:
            if err.is_class("TABLE_OR_VIEW_NOT_FOUND"):
                raise Permanent(f"the view reads a table or view the target does not have: {err}") from None
            raise
        return Applied(change.key, adopted=False if current is None else _found(change))

    @staticmethod
    def _check_reads(ctx: SyncContext, reads: list[str]) -> None:
        """Blocked while a table or view the view reads is replicated by dbsync but not on the target yet."""
        waiting = []
        for read in reads:
            catalog, schema, name = split_key(read)
            if catalog not in ctx.settings.metastore.catalogs:
                continue  # not dbsync's to replicate: the CREATE says whether the target has it
            what = relations(ctx, ctx.source, catalog, schema).get(name)
            if what is None:
                continue
            kind = "tables" if what == "table" else "views"
            if not ctx.settings.kind(kind).enabled or not planner.selected(ctx.settings.kind(kind), read):
                continue
            if ctx.idmap.target_key(kind, read) is None:
                waiting.append(f"{kind} {read}")
        if waiting:
            raise Blocked(f"waiting for {', '.join(waiting)} to be on the target first")

    def delete(self, ctx: SyncContext, change: Delete) -> None:
        parts = split_key(change.key)
        if relations(ctx, ctx.target, parts[0], parts[1]).get(parts[2]) != "view":
            return
        runner(ctx, ctx.target).execute(f"DROP VIEW IF EXISTS {qualified(parts)}")
        remember_on_target(ctx, parts[0], parts[1], parts[2], None)


def _view_namespace(ctx: SyncContext, parts: list[str]) -> list[str]:
    """The catalog and schema the source view was created in (its unqualified names resolve there)."""
    try:
        rows = runner(ctx, ctx.source).query(f"DESCRIBE TABLE EXTENDED {qualified(parts)}")
    except SqlError as err:
        if not_there(err):
            return parts[:2]
        raise
    for row in rows:
        if (column(row, "col_name", 0) or "").strip() == "View Catalog and Namespace":
            namespace = (column(row, "data_type", 1) or "").strip().strip("`").split(".", 1)
            if len(namespace) == 2 and all(namespace):
                return [n.strip("`").lower() for n in namespace]
    return parts[:2]


def replicator_for(kind: str) -> Replicator:
    if kind == "schemas":
        return SchemasReplicator()
    if kind == "tables":
        return TablesReplicator()
    return ViewsReplicator()
