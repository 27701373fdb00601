"""`tables.data: deep_clone`: a managed table's data follows its Delta version through an incremental DEEP CLONE
run by the target's warehouse from the source table's storage location.

Databricks SQL reference "CREATE TABLE CLONE": `[CREATE OR] REPLACE TABLE t [SHALLOW | DEEP] CLONE source`,
the source a table name or `delta.`<path>``; re-running a deep clone onto its clone copies only new files.
Delta "DESCRIBE HISTORY t LIMIT 1" answers the latest commit (its `version`). The emulator's SQL engine keeps
one commit per table and shares cloud storage (s3://) between the emulated workspaces of a process, while
dbfs:/ stays each workspace's own, as on the service.
"""

from __future__ import annotations

from databricks.sdk.service.sql import StatementState
from test_sync_metastore import MetastorePair, Warehouse, mp  # noqa: F401  (mp is the shared fixture)

from dbsync.report import validate
from dbsync.store import Store
from dbsync_emulator import sqlengine

UC = {"catalogs": ["main"]}
LEDGER = "main.finance.ledger"


def _settings(mp: MetastorePair, data: str = "deep_clone") -> dict:  # noqa: F811
    metastore = {"source_warehouse_id": mp.src.id, "target_warehouse_id": mp.dst.id, **UC}
    return {"metastore": metastore, "tables": {"data": data}}


def _seed(mp: MetastorePair) -> None:  # noqa: F811
    mp.src.run("CREATE SCHEMA main.finance")
    mp.src.run("CREATE TABLE main.finance.ledger (id BIGINT, amount DECIMAL(10,2)) USING DELTA")
    mp.src.run("CREATE TABLE main.finance.raw (id BIGINT) USING DELTA LOCATION 's3://lake/raw'")
    mp.src.run("CREATE TABLE main.finance.csv (id BIGINT) USING CSV LOCATION 's3://lake/csv'")


def _target_record(mp: MetastorePair, key: str) -> dict:  # noqa: F811
    catalog, schema, name = key.split(".")
    with mp.pair.target.workspace.lock:
        return mp.pair.target.workspace.table(sqlengine.RELATIONS)[(catalog, schema)][name]


def _manual(mp: MetastorePair, settings: dict) -> list[str]:  # noqa: F811
    ctx = mp.pair.context(**settings)
    try:
        report = validate(ctx, ["schemas", "tables", "table_data"])
    finally:
        ctx.store.close()
    return [a["key"] for a in report.manual_actions if a["kind"] == "tables"]


def test_emulator_history_and_clone_across_workspaces(mp: MetastorePair) -> None:  # noqa: F811
    _seed(mp)
    history = mp.src.run("DESCRIBE HISTORY main.finance.ledger LIMIT 1")
    assert [r[0] for r in history] == ["0"]
    mp.src.run("ALTER TABLE main.finance.ledger SET TBLPROPERTIES ('quality' = 'gold')")  # a Delta commit
    assert [r[0] for r in mp.src.run("DESCRIBE HISTORY main.finance.ledger LIMIT 1")] == ["1"]
    location = next(r[1] for r in mp.src.run("DESCRIBE TABLE EXTENDED main.finance.ledger") if r[0] == "Location")
    assert location.startswith("s3://")

    mp.dst.run("CREATE SCHEMA main.finance")
    mp.dst.run(f"CREATE OR REPLACE TABLE main.finance.ledger DEEP CLONE delta.`{location}`")
    cloned = _target_record(mp, LEDGER)
    assert cloned["cloned_from"]["version"] == 1 and cloned["type"] == "MANAGED"
    assert [c["name"] for c in cloned["columns"]] == ["id", "amount"]
    last = mp.dst.run("DESCRIBE HISTORY main.finance.ledger LIMIT 1")[0]
    assert last[3] == "CLONE"
    # the source's DBFS root is its own: no other workspace reads it
    assert "[DELTA_MISSING_DELTA_TABLE]" in _error(mp.dst, "CREATE TABLE main.finance.x DEEP CLONE delta.`dbfs:/a/x`")
    assert "[UNSUPPORTED_FEATURE]" in _error(mp.dst, f"CREATE TABLE main.finance.y SHALLOW CLONE delta.`{location}`")
    assert "[DELTA_TABLE_ONLY_OPERATION]" in _error(mp.src, "DESCRIBE HISTORY main.finance.csv")


def test_deep_clone_copies_each_new_version_once_and_leaves_the_manual_list(mp: MetastorePair) -> None:  # noqa: F811
    _seed(mp)
    settings = _settings(mp)
    reports = mp.sync(only=["schemas", "tables", "table_data"], **settings)
    assert reports["table_data"].created == 1 and reports["table_data"].errors == 0, reports["table_data"]
    assert _target_record(mp, LEDGER)["cloned_from"]["version"] == 0
    assert LEDGER not in _manual(mp, settings), "a cloned table has its data on the target"

    # no change on the source: one DESCRIBE HISTORY per managed table, nothing cloned or written
    mp.forget_statements()
    reports = mp.sync(only=["table_data"], **settings)
    assert reports["table_data"].created == reports["table_data"].updated == 0
    assert mp.writes("target") == []
    assert mp.statements("source") == ["DESCRIBE HISTORY `main`.`finance`.`ledger` LIMIT 1"]

    # a new version on the source is cloned again (incrementally, onto the earlier clone); the definition
    # change it carries is not an error of `tables`: it waits one cycle for the clone, then is in sync
    mp.src.run("ALTER TABLE main.finance.ledger SET TBLPROPERTIES ('quality' = 'gold')")
    mp.forget_statements()
    reports = mp.sync(only=["tables", "table_data"], **settings)
    assert (reports["tables"].errors, reports["tables"].blocked) == (0, 1)
    assert reports["table_data"].updated == 1
    assert [s for s in mp.writes("target") if "DEEP CLONE" in s] == [
        f"CREATE OR REPLACE TABLE `main`.`finance`.`ledger` DEEP CLONE delta.`{_source_location(mp)}`"
    ]
    assert _target_record(mp, LEDGER)["cloned_from"]["version"] == 1
    store = Store(mp.pair.state_path)
    assert store.prior("table_data", LEDGER).source_meta["cloned_version"] == 1
    store.close()
    reports = mp.sync(only=["tables", "table_data"], **settings)
    assert (reports["tables"].errors, reports["tables"].blocked) == (0, 0), "the clone brought the definition"

    # turned off again: no statement, no delete guard, and the table is a manual action again
    off = _settings(mp, data="none")
    mp.forget_statements()
    reports = mp.sync(only=["table_data"], **off)
    assert (reports["table_data"].errors, reports["table_data"].outcome) == (0, "ok")
    assert mp.statements("source") == [] and mp.statements("target") == []
    assert LEDGER in _manual(mp, off)


def test_without_the_setting_nothing_is_cloned_and_the_table_stays_listed(mp: MetastorePair) -> None:  # noqa: F811
    _seed(mp)
    settings = _settings(mp, data="none")
    mp.forget_statements()
    reports = mp.sync(only=["schemas", "tables", "table_data"], **settings)
    assert reports["table_data"].listed == 0
    assert not any("HISTORY" in s or "CLONE" in s for side in ("source", "target") for s in mp.statements(side))
    assert "cloned_from" not in _target_record(mp, LEDGER)
    assert LEDGER in _manual(mp, settings)


def test_a_table_the_target_already_had_is_never_overwritten(mp: MetastorePair) -> None:  # noqa: F811
    _seed(mp)
    mp.dst.run("CREATE SCHEMA main.finance")
    mp.dst.run("CREATE TABLE main.finance.ledger (id BIGINT, amount DECIMAL(10,2)) USING DELTA")  # the DR team's
    settings = _settings(mp)
    reports = mp.sync(only=["schemas", "tables", "table_data"], **settings)
    assert reports["table_data"].errors == 1
    assert "cloned_from" not in _target_record(mp, LEDGER)
    assert LEDGER in _manual(mp, settings), "its data is still to be copied by a person"


def _error(warehouse: Warehouse, statement: str) -> str:
    """The error message of a statement that must fail."""
    response = warehouse.w.statement_execution.execute_statement(statement, warehouse.id, wait_timeout="30s")
    assert response.status and response.status.state == StatementState.FAILED, statement
    return (response.status.error.message if response.status.error else None) or ""


def _source_location(mp: MetastorePair) -> str:  # noqa: F811
    return next(r[1] for r in mp.src.run("DESCRIBE TABLE EXTENDED main.finance.ledger") if r[0] == "Location")
