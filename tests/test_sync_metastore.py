"""Metastore DDL (schemas, tables, views) and table ACLs between two emulated workspaces' SQL warehouses.

Each side has a warehouse; the source is set up and the target checked with SQL through the real SDK,
as a user would in the SQL editor. The statements each emulator received are read from its log.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import pytest
from conftest import Pair
from databricks.sdk import WorkspaceClient
from databricks.sdk.service.sql import StatementState

from dbsync.outcomes import KindReport
from dbsync.watchers.metastore import normalized_ddl
from dbsync_emulator import EmulatorHandle, start_emulator
from dbsync_emulator.apis import scim
from dbsync_emulator.apis.sql import STATEMENTS, create_warehouse

METASTORE = ["schemas", "tables", "views", "table_acls"]


class Warehouse:
    """One side's SQL warehouse, driven through the Statement Execution API."""

    def __init__(self, w: WorkspaceClient, warehouse_id: str) -> None:
        self.w = w
        self.id = warehouse_id

    def run(self, statement: str, schema: str | None = None) -> list[list[Any]]:
        response = self.w.statement_execution.execute_statement(
            statement=statement, warehouse_id=self.id, schema=schema, wait_timeout="30s"
        )
        status = response.status
        assert status and status.state == StatementState.SUCCEEDED, (statement, status)
        return (response.result.data_array or []) if response.result else []

    def ddl(self, name: str) -> str:
        return self.run(f"SHOW CREATE TABLE {name}")[0][0]

    def grants(self, securable: str) -> set[tuple[str, str]]:
        """(principal, action) rows of the securable itself (SHOW GRANTS also lists what it inherits)."""
        own_type = securable.split()[0].upper().replace("SCHEMA", "DATABASE").replace("CATALOG", "CATALOG$")
        own_type = own_type.replace("VIEW", "TABLE").replace("ANY", "ANY_FILE")
        return {(r[0], r[1]) for r in self.run(f"SHOW GRANTS ON {securable}") if r[2] == own_type}


@dataclass
class MetastorePair:
    pair: Pair
    src: Warehouse
    dst: Warehouse

    def sync(self, only: list[str] | None = None, **overrides: Any) -> dict[str, KindReport]:
        overrides.setdefault("metastore", {"source_warehouse_id": self.src.id, "target_warehouse_id": self.dst.id})
        return self.pair.sync(only=only or METASTORE, **overrides)

    def forget_statements(self) -> None:
        for handle in (self.pair.source, self.pair.target):
            with handle.workspace.lock:
                handle.workspace.table(STATEMENTS).clear()
        self.pair.reset_stats()

    def statements(self, side: str) -> list[str]:
        """What the emulator of `side` ran since forget_statements(), in order."""
        handle: EmulatorHandle = getattr(self.pair, side)
        with handle.workspace.lock:
            return [r["statement"] for r in handle.workspace.table(STATEMENTS).values()]

    def writes(self, side: str = "target") -> list[str]:
        return [s for s in self.statements(side) if not s.startswith(("SHOW ", "DESCRIBE "))]

    def events(self, outcome: str | None = None) -> list[dict[str, Any]]:
        ctx = self.pair.context()
        try:
            return ctx.store.events(200, outcome=outcome)
        finally:
            ctx.store.close()


def _principals(handle: EmulatorHandle, users: list[str], groups: list[str]) -> None:
    with handle.workspace.lock:
        for group in groups:
            scim.create_group(handle.workspace, group)
        for user in users:
            scim.create_user(handle.workspace, user, user.split("@")[0].title())


@pytest.fixture
def mp(pair: Pair) -> MetastorePair:
    """`pair` with a warehouse on each side and the principals the grants below name on both."""
    warehouses = []
    for handle, client in ((pair.source, pair.src), (pair.target, pair.dst)):
        with handle.workspace.lock:
            warehouse_id = create_warehouse(handle.workspace, {"name": "dbsync", "cluster_size": "2X-Small"})
        warehouses.append(Warehouse(client, warehouse_id))
        _principals(handle, ["alice@example.com"], ["analysts", "auditors"])
    return MetastorePair(pair, *warehouses)


def _clean(reports: dict[str, KindReport]) -> None:
    problems = {k: (r.errors, r.outcome, r.message) for k, r in reports.items() if r.errors or r.outcome != "ok"}
    assert not problems, problems


def _finance(src: Warehouse) -> None:
    for statement in (
        "CREATE SCHEMA finance COMMENT 'money' WITH DBPROPERTIES ('team' = 'fin')",
        "CREATE TABLE finance.ledger (id BIGINT NOT NULL COMMENT 'pk', amount DECIMAL(10,2), day DATE) "
        "USING DELTA PARTITIONED BY (day) COMMENT 'the ledger'",
        "CREATE TABLE finance.raw_events (id BIGINT, payload STRING) USING PARQUET LOCATION 's3://lake/raw_events'",
        "CREATE VIEW finance.summary AS SELECT l.id, e.payload FROM finance.ledger l JOIN finance.raw_events e "
        "ON l.id = e.id",
        "GRANT USAGE ON SCHEMA finance TO analysts",
        "GRANT SELECT, MODIFY ON TABLE finance.ledger TO analysts",
        "GRANT SELECT ON TABLE finance.ledger TO `alice@example.com`",
        "DENY SELECT ON TABLE finance.raw_events TO `alice@example.com`",
        "GRANT SELECT ON VIEW finance.summary TO auditors",
        "GRANT SELECT ON ANY FILE TO auditors",
        "ALTER TABLE finance.ledger OWNER TO `alice@example.com`",
    ):
        src.run(statement)


SECURABLES = (
    "SCHEMA finance",
    "TABLE finance.ledger",
    "TABLE finance.raw_events",
    "VIEW finance.summary",
    "ANY FILE",
    "CATALOG hive_metastore",
)


def test_initial_sync_copies_the_metastore_ddl_and_grants(mp: MetastorePair) -> None:
    _finance(mp.src)
    reports = mp.sync()
    _clean(reports)
    assert (reports["schemas"].created, reports["tables"].created, reports["views"].created) == (2, 2, 1)

    for table in ("finance.ledger", "finance.raw_events"):
        assert mp.dst.ddl(table) == mp.src.ddl(table)  # DDL only: columns, partitioning, LOCATION as they were
    parts = ["hive_metastore", "finance", "summary"]
    assert normalized_ddl(mp.dst.ddl("finance.summary"), parts) == normalized_ddl(mp.src.ddl("finance.summary"), parts)
    described = {r[0]: r[1] for r in mp.dst.run("DESCRIBE SCHEMA EXTENDED finance")}
    assert (described["Comment"], described["Properties"]) == ("money", "((team,fin))")
    for securable in SECURABLES:
        assert mp.dst.grants(securable) == mp.src.grants(securable), securable
    assert ("alice@example.com", "OWN") in mp.dst.grants("TABLE finance.ledger")
    assert ("alice@example.com", "DENIED_SELECT") in mp.dst.grants("TABLE finance.raw_events")


def test_no_change_cycle_sends_nothing_to_the_target_and_only_lists_the_source(mp: MetastorePair) -> None:
    _finance(mp.src)
    _clean(mp.sync())
    # Whitespace, comment and keyword-case churn in a view's text is not a change.
    mp.src.run(
        "create or replace view finance.summary as\n  select l.id,   e.payload -- why\n"
        "  from finance.ledger l join finance.raw_events e on l.id = e.id"
    )
    mp.forget_statements()

    reports = mp.sync()

    _clean(reports)
    assert sum(r.created + r.updated + r.deleted for r in reports.values()) == 0
    assert mp.pair.target_writes() == 0 and mp.statements("target") == []
    listed = mp.statements("source")
    assert listed and all(s.startswith(("SHOW ", "DESCRIBE SCHEMA ")) for s in listed), listed
    assert sum(s.startswith("SHOW CREATE TABLE") for s in listed) == 3
    assert sum(s.startswith("SHOW GRANTS") for s in listed) == 2 + 1 + 3 + 2  # schemas, tables+view, catalog+2


def test_views_are_created_after_the_tables_and_views_they_read(mp: MetastorePair) -> None:
    mp.src.run("CREATE SCHEMA sales")
    mp.src.run("CREATE SCHEMA crm")
    mp.src.run("CREATE TABLE sales.orders (id BIGINT, customer_id BIGINT, amount DOUBLE)")
    mp.src.run("CREATE TABLE crm.customers (id BIGINT, name STRING)")
    mp.src.run(
        "CREATE VIEW sales.order_names AS SELECT o.id, c.name, o.amount FROM orders o "
        "JOIN crm.customers c ON o.customer_id = c.id",
        schema="sales",  # `orders` resolves in the schema the view was created in
    )
    mp.src.run("CREATE VIEW crm.big_orders AS SELECT * FROM sales.order_names WHERE amount > 100")

    reports = mp.sync()

    _clean(reports)
    assert reports["views"].created == 2 and reports["views"].blocked == 0
    creates = [s for s in mp.statements("target") if s.startswith("CREATE")]
    position = {name: next(i for i, s in enumerate(creates) if f"`{name}`" in s.split(" AS ")[0]) for name in (
        "orders", "customers", "order_names", "big_orders")}  # fmt: skip
    assert position["order_names"] > max(position["orders"], position["customers"])
    assert position["big_orders"] > position["order_names"]
    assert mp.dst.run("SELECT * FROM crm.big_orders") == []  # the view resolves on the target


def test_a_broken_table_does_not_stop_the_others(mp: MetastorePair) -> None:
    mp.src.run("CREATE SCHEMA ops")
    for name in ("jobs", "broken", "runs"):
        mp.src.run(f"CREATE TABLE ops.{name} (id BIGINT, info STRING)")
    mp.src.run("CREATE VIEW ops.job_runs AS SELECT j.id FROM ops.jobs j JOIN ops.runs r ON j.id = r.id")
    mp.src.run("CREATE VIEW ops.broken_ids AS SELECT id FROM ops.broken")
    with mp.pair.source.workspace.lock:  # a definition sqlglot cannot read (a feature it does not know)
        relations = mp.pair.source.workspace.table("sql_relations")[("hive_metastore", "ops")]
        relations["broken"]["columns"][1]["type"] = "STRUCT<a INT"

    reports = mp.sync()

    assert reports["tables"].errors == 1 and reports["tables"].created == 2
    assert reports["views"].created == 1 and reports["views"].blocked == 1  # the view over the broken table waits
    assert {r[1] for r in mp.dst.run("SHOW TABLES IN ops")} == {"jobs", "runs", "job_runs"}
    errors = [e["message"] for e in mp.events("error")]
    assert any("hive_metastore.ops.broken" in m and "cannot parse" in m for m in errors), errors
    blocked = [e["message"] for e in mp.events("blocked")]
    assert any("broken_ids" in m and "waiting for tables hive_metastore.ops.broken" in m for m in blocked), blocked


def test_a_changed_table_follows_tables_on_change(mp: MetastorePair) -> None:
    mp.src.run("CREATE SCHEMA lake")
    mp.src.run("CREATE TABLE lake.clicks (id BIGINT) USING PARQUET LOCATION 's3://lake/clicks'")
    mp.src.run("CREATE TABLE lake.facts (id BIGINT)")
    mp.src.run("GRANT SELECT ON TABLE lake.clicks TO analysts")
    _clean(mp.sync())
    before = {t: mp.dst.ddl(t) for t in ("lake.clicks", "lake.facts")}
    mp.src.run("ALTER TABLE lake.clicks ADD COLUMNS (url STRING)")
    mp.src.run("ALTER TABLE lake.facts ADD COLUMNS (note STRING)")

    reported = mp.sync()  # default tables.on_change: report
    assert reported["tables"].errors == 2
    assert {t: mp.dst.ddl(t) for t in before} == before
    messages = " ".join(e["message"] for e in mp.events("error"))
    assert "tables.on_change is report" in messages and "never drops a managed table" in messages

    recreated = mp.sync(tables={"on_change": "recreate_if_external"})
    assert recreated["tables"].updated == 1 and recreated["tables"].errors == 1  # the managed one still waits
    assert mp.dst.ddl("lake.clicks") == mp.src.ddl("lake.clicks")
    assert mp.dst.ddl("lake.facts") == before["lake.facts"]
    assert mp.dst.grants("TABLE lake.clicks") == mp.src.grants("TABLE lake.clicks")  # put back after the drop


def test_a_changed_view_is_replaced(mp: MetastorePair) -> None:
    mp.src.run("CREATE TABLE orders (id BIGINT, amount DOUBLE)")
    mp.src.run("CREATE VIEW big AS SELECT id FROM orders WHERE amount > 100")
    _clean(mp.sync())
    mp.src.run("CREATE OR REPLACE VIEW big AS SELECT id, amount FROM orders WHERE amount > 1000")
    mp.forget_statements()

    reports = mp.sync()

    assert reports["views"].updated == 1
    (write,) = mp.writes()
    assert write.startswith("CREATE OR REPLACE VIEW `hive_metastore`.`default`.`big` ")
    assert "amount > 1000" in mp.dst.ddl("big")


def test_grants_are_made_equal_by_their_differences_only(mp: MetastorePair) -> None:
    _finance(mp.src)
    _clean(mp.sync())
    mp.src.run("REVOKE MODIFY ON TABLE finance.ledger FROM analysts")
    mp.src.run("GRANT READ_METADATA ON TABLE finance.ledger TO auditors")
    mp.src.run("DENY MODIFY ON TABLE finance.ledger TO `alice@example.com`")
    mp.dst.run("GRANT SELECT ON TABLE finance.ledger TO auditors")  # granted by hand on the standby
    mp.forget_statements()

    reports = mp.sync()

    _clean(reports)
    assert reports["table_acls"].updated == 1
    assert sorted(mp.writes()) == sorted(
        [
            "REVOKE MODIFY ON TABLE `hive_metastore`.`finance`.`ledger` FROM `analysts`",
            "GRANT READ_METADATA ON TABLE `hive_metastore`.`finance`.`ledger` TO `auditors`",
            "DENY MODIFY ON TABLE `hive_metastore`.`finance`.`ledger` TO `alice@example.com`",
        ]
    )
    # The grant made by hand on the standby is not dbsync's: kept (test_safety_grants.py).
    hand = {("auditors", "SELECT")}
    assert mp.dst.grants("TABLE finance.ledger") == mp.src.grants("TABLE finance.ledger") | hand


def test_a_principal_missing_on_the_target_is_skipped_and_reported(mp: MetastorePair) -> None:
    _principals(mp.pair.source, ["carol@example.com"], [])  # only the source knows carol
    mp.src.run("CREATE TABLE payroll (id BIGINT)")
    mp.src.run("GRANT SELECT ON TABLE payroll TO analysts")
    mp.src.run("GRANT SELECT, MODIFY ON TABLE payroll TO `carol@example.com`")
    mp.src.run("ALTER TABLE payroll OWNER TO `carol@example.com`")

    reports = mp.sync()

    _clean(reports)
    assert mp.dst.grants("TABLE payroll") == {("analysts", "SELECT"), ("admin@example.com", "OWN")}
    partial = [e["message"] for e in mp.events("partial") if e["kind"] == "table_acls"]  # written, carol left out
    assert any(
        "owner carol@example.com does not exist on the target; owner kept as admin@example.com" in m
        and "skipped principals missing on the target: carol@example.com" in m
        for m in partial
    ), partial

    _principals(mp.pair.target, ["carol@example.com"], [])  # the standby's IdP catches up
    _clean(mp.sync())
    assert mp.dst.grants("TABLE payroll") == mp.src.grants("TABLE payroll")


def test_owners_and_grantees_follow_the_principal_mapping(mp: MetastorePair) -> None:
    _principals(mp.pair.source, ["dana@old.example"], ["etl-old"])
    _principals(mp.pair.target, ["dana@new.example"], ["etl"])
    mp.src.run("CREATE SCHEMA marts")
    mp.src.run("ALTER SCHEMA marts OWNER TO `dana@old.example`")
    mp.src.run("GRANT USAGE, CREATE ON SCHEMA marts TO `etl-old`")

    _clean(mp.sync(mapping={"emails": {"@old.example": "@new.example"}, "principals": {"etl-old": "etl"}}))

    assert mp.dst.grants("SCHEMA marts") == {
        ("dana@new.example", "OWN"),
        ("etl", "CREATE"),
        ("etl", "USAGE"),
    }


def test_without_a_warehouse_the_metastore_kinds_are_off_or_fail_clearly(mp: MetastorePair) -> None:
    mp.src.run("CREATE TABLE orders (id BIGINT)")
    mp.pair.src.cluster_policies.create(name="small", definition='{"autotermination_minutes": {"type": "fixed"}}')

    everything = mp.pair.sync()  # no warehouse configured: the metastore kinds are off, the rest runs
    assert not set(METASTORE) & set(everything)
    assert "small" in {p.name for p in mp.pair.dst.cluster_policies.list()}

    reports = mp.sync(
        only=["cluster_policies", "tables"], metastore={"source_warehouse_id": mp.src.id}
    )  # target warehouse missing
    assert reports["tables"].outcome == "listing_failed"
    assert "metastore.target_warehouse_id is missing" in (reports["tables"].message or "")
    assert reports["cluster_policies"].outcome == "ok"
    assert any("DBSYNC_METASTORE__TARGET_WAREHOUSE_ID" in e["message"] for e in mp.events("error"))


def test_deletes_drop_views_and_external_tables_but_keep_managed_tables(mp: MetastorePair) -> None:
    mp.src.run("CREATE SCHEMA old")
    mp.src.run("CREATE TABLE old.managed (id BIGINT)")
    mp.src.run("CREATE TABLE old.external (id BIGINT) USING PARQUET LOCATION 's3://lake/old/external'")
    mp.src.run("CREATE VIEW old.ids AS SELECT id FROM old.managed")
    mp.src.run("CREATE TABLE keep (id BIGINT)")
    mp.src.run("CREATE TABLE keep_too (id BIGINT)")  # 2 of 4 tables go: not most of the kind (the delete guard)
    mp.src.run("CREATE VIEW keep_ids AS SELECT id FROM keep")  # an emptied listing would trip the delete guard
    _clean(mp.sync())
    mp.src.run("DROP SCHEMA old CASCADE")

    reports = mp.sync()

    assert (reports["views"].deleted, reports["tables"].deleted) == (1, 2)
    assert {r[1] for r in mp.dst.run("SHOW TABLES IN old")} == {"managed"}  # its data is never dropped
    kept = " ".join(e["message"] for e in mp.events("kept"))
    assert "tables hive_metastore.old.managed: gone from the source, kept on the target" in kept
    assert "schemas hive_metastore.old: kept on the target" in kept


def test_statements_wait_for_a_starting_warehouse_without_failing(tmp_path: Any) -> None:
    from freezegun import freeze_time

    from dbsync.config import WorkspaceSettings
    from dbsync.errors import RetryLater
    from dbsync.sql import SqlRunner
    from dbsync.workspace import connect

    handle = start_emulator(cluster_start_seconds=120)  # longer than the 30 s a request waits
    try:
        with freeze_time("2025-03-03 08:00:00") as clock:
            ws = connect("source", WorkspaceSettings(host=handle.url, token=handle.token))
            warehouse_id = ws.client.warehouses.create(name="cold", cluster_size="Small").response.id or ""
            ws.client.warehouses.stop(warehouse_id)
            clock.tick(200)
            waits: list[float] = []

            def sleep(seconds: float) -> None:
                waits.append(seconds)
                clock.tick(seconds)

            runner = SqlRunner(ws, warehouse_id, "metastore.source_warehouse_id", sleep=sleep, clock=time.time)
            assert runner.query("SELECT 1 AS one") == [{"one": "1"}]
            assert waits and sum(waits) >= 120 - 30  # polled until the warehouse was up

            ws.client.warehouses.stop(warehouse_id)
            clock.tick(200)
            impatient = SqlRunner(ws, warehouse_id, "x", sleep=sleep, clock=time.time, timeout=60)
            with pytest.raises(RetryLater, match="cancelled"):
                impatient.query("SELECT 2")
            last = list(handle.workspace.table(STATEMENTS).values())[-1]
            assert last["state"] == "CANCELED"
    finally:
        handle.stop()


def test_a_changed_schema_is_altered_in_place(mp: MetastorePair) -> None:
    _finance(mp.src)
    _clean(mp.sync())
    mp.src.run("COMMENT ON SCHEMA finance IS 'treasury'")
    mp.src.run("ALTER SCHEMA finance SET DBPROPERTIES ('team' = 'treasury', 'tier' = 'gold')")
    mp.forget_statements()

    reports = mp.sync()

    _clean(reports)
    assert reports["schemas"].updated == 1 and reports["tables"].updated == 0
    assert mp.writes() == [
        "COMMENT ON SCHEMA `hive_metastore`.`finance` IS 'treasury'",
        "ALTER SCHEMA `hive_metastore`.`finance` SET DBPROPERTIES ('team' = 'treasury', 'tier' = 'gold')",
    ]
    described = {r[0]: r[1] for r in mp.dst.run("DESCRIBE SCHEMA EXTENDED finance")}
    assert (described["Comment"], described["Properties"]) == ("treasury", "((team,treasury), (tier,gold))")
