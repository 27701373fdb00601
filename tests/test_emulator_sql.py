"""SQL warehouses, the Statement Execution API, the 1.2 Command Execution API and the SQL engine
behind them, driven over HTTP by the real databricks-sdk."""

from __future__ import annotations

import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import BadRequest, NotFound, NotImplemented, ResourceAlreadyExists
from databricks.sdk.service.compute import Language
from databricks.sdk.service.sql import (
    Disposition,
    ExecuteStatementRequestOnWaitTimeout,
    Format,
    SetWorkspaceWarehouseConfigRequestSecurityPolicy,
    State,
    StatementParameterListItem,
    StatementResponse,
    StatementState,
)
from freezegun import freeze_time

from dbsync_emulator import EmulatorHandle, sqlengine
from dbsync_emulator.apis import clusters
from tests.conftest import endpoint_count

HIVE_GRANT_COLUMNS = ["Principal", "ActionType", "ObjectType", "ObjectKey"]


@pytest.fixture
def warehouse_id(w: WorkspaceClient) -> str:
    """A RUNNING warehouse: a first synchronous statement waits its start-up out, as on the service."""
    created = w.warehouses.create(name="Shared WH", cluster_size="2X-Small", auto_stop_mins=0).response.id
    assert created is not None
    assert rows(run(w, created, "SELECT 1")) == [["1"]]
    return created


def run(w: WorkspaceClient, warehouse_id: str, sql: str, **kwargs: object) -> StatementResponse:
    return w.statement_execution.execute_statement(sql, warehouse_id, **kwargs)  # type: ignore[arg-type]


def rows(response: StatementResponse) -> list[list[str | None]]:
    assert response.status and response.status.state == StatementState.SUCCEEDED, response.status
    return response.result.data_array or [] if response.result else []


def column_names(response: StatementResponse) -> list[str]:
    assert response.manifest and response.manifest.schema
    return [c.name for c in response.manifest.schema.columns or []]


def failure(response: StatementResponse) -> str:
    assert response.status and response.status.state == StatementState.FAILED
    assert response.status.error and response.status.error.error_code
    assert response.status.error.error_code.value == "BAD_REQUEST"
    return response.status.error.message or ""


# -- warehouses ---------------------------------------------------------------------------------------
def test_warehouse_lifecycle_follows_the_clock(w: WorkspaceClient) -> None:
    with freeze_time("2025-01-06 09:00:00") as clock:
        warehouse_id = w.warehouses.create(name="BI", cluster_size="Small", max_num_clusters=3).response.id
        info = w.warehouses.get(warehouse_id)
        assert info.state == State.STARTING
        assert info.auto_stop_mins == 120 and info.min_num_clusters == 1 and info.enable_photon is True
        assert info.creator_name == "admin@example.com"
        assert info.odbc_params and info.odbc_params.path == f"/sql/1.0/warehouses/{warehouse_id}"
        assert info.jdbc_url and f"httpPath=/sql/1.0/warehouses/{warehouse_id}" in info.jdbc_url

        clock.tick(1)
        running = w.warehouses.get(warehouse_id)
        assert running.state == State.RUNNING and running.num_clusters == 1 and running.health

        w.warehouses.edit(warehouse_id, name="BI", cluster_size="Medium", auto_stop_mins=30)
        edited = w.warehouses.get(warehouse_id)
        assert edited.cluster_size == "Medium" and edited.auto_stop_mins == 30
        assert edited.max_num_clusters == 1  # edit replaces the whole spec

        w.warehouses.stop(warehouse_id)
        assert w.warehouses.get(warehouse_id).state == State.STOPPING
        clock.tick(1)
        assert w.warehouses.get(warehouse_id).state == State.STOPPED

        w.warehouses.start(warehouse_id)
        clock.tick(1)
        assert w.warehouses.get(warehouse_id).state == State.RUNNING
        clock.tick(31 * 60)  # idle longer than auto_stop_mins
        assert w.warehouses.get(warehouse_id).state == State.STOPPED

        w.warehouses.delete(warehouse_id)
        with pytest.raises(NotFound):
            w.warehouses.get(warehouse_id)


def test_warehouse_validation_errors(w: WorkspaceClient) -> None:
    with pytest.raises(BadRequest, match="cluster_size"):
        w.warehouses.create(name="a", cluster_size="Huge")
    with pytest.raises(BadRequest, match="auto_stop_mins"):
        w.warehouses.create(name="a", cluster_size="Small", auto_stop_mins=5)
    with pytest.raises(BadRequest, match="max_num_clusters"):
        w.warehouses.create(name="a", cluster_size="Small", max_num_clusters=41)
    w.warehouses.create(name="taken", cluster_size="Small")
    with pytest.raises(ResourceAlreadyExists):
        w.warehouses.create(name="taken", cluster_size="Small")
    with pytest.raises(NotFound):
        w.warehouses.get("0123456789abcdef")


def test_warehouse_list_pages_and_legacy_alias(w: WorkspaceClient, emulator: EmulatorHandle) -> None:
    assert list(w.warehouses.list()) == []
    created = [w.warehouses.create(name=f"wh-{i}", cluster_size="X-Small").response.id for i in range(5)]
    listed = [wh.id for wh in w.warehouses.list(page_size=2)]
    assert listed == created
    assert endpoint_count(emulator, "GET /api/2.0/sql/warehouses") == 1 + 3
    legacy = w.api_client.do("GET", "/api/2.0/sql/endpoints")
    assert [e["id"] for e in legacy["endpoints"]] == created  # type: ignore[index]


def test_warehouse_permissions_and_workspace_config(w: WorkspaceClient, warehouse_id: str) -> None:
    acl = w.warehouses.get_permissions(warehouse_id)
    assert acl.object_id == f"/sql/warehouses/{warehouse_id}"
    owner = next(e for e in acl.access_control_list or [] if e.user_name == "admin@example.com")
    assert [p.permission_level.value for p in owner.all_permissions or [] if p.permission_level] == ["IS_OWNER"]
    levels = w.warehouses.get_permission_levels(warehouse_id).permission_levels or []
    assert {lvl.permission_level.value for lvl in levels if lvl.permission_level} >= {"CAN_USE", "IS_OWNER"}

    assert w.warehouses.get_workspace_warehouse_config().security_policy.value == "DATA_ACCESS_CONTROL"
    w.warehouses.set_workspace_warehouse_config(
        security_policy=SetWorkspaceWarehouseConfigRequestSecurityPolicy.NONE,
        instance_profile_arn="arn:aws:iam::123456789012:instance-profile/wh",
    )
    config = w.warehouses.get_workspace_warehouse_config()
    assert config.security_policy.value == "NONE"
    assert config.instance_profile_arn == "arn:aws:iam::123456789012:instance-profile/wh"


# -- statement execution ----------------------------------------------------------------------------
def test_select_literals_return_strings_and_a_manifest(w: WorkspaceClient, warehouse_id: str) -> None:
    response = run(w, warehouse_id, "SELECT 1 AS one, 'x' AS s, NULL AS n, 2.50 AS d, true AS b")
    assert rows(response) == [["1", "x", None, "2.50", "true"]]
    manifest = response.manifest
    assert manifest and manifest.total_row_count == 1 and manifest.total_chunk_count == 1
    columns = manifest.schema.columns or []  # type: ignore[union-attr]
    assert [(c.name, c.type_name.value, c.position) for c in columns if c.type_name] == [
        ("one", "INT", 0), ("s", "STRING", 1), ("n", "NULL", 2), ("d", "DECIMAL", 3), ("b", "BOOLEAN", 4),
    ]  # fmt: skip
    assert columns[3].type_precision == 3 and columns[3].type_scale == 2


def test_ddl_show_and_describe(w: WorkspaceClient, warehouse_id: str) -> None:
    run(w, warehouse_id, "CREATE SCHEMA IF NOT EXISTS Sales COMMENT 'sales data'")
    ddl = (
        "CREATE TABLE sales.Orders (id BIGINT NOT NULL COMMENT 'order id', amount decimal(10, 2), "
        "region STRING) USING DELTA PARTITIONED BY (region) COMMENT 'orders' TBLPROPERTIES ('tier' = 'gold')"
    )
    assert rows(run(w, warehouse_id, ddl)) == []
    run(
        w,
        warehouse_id,
        "CREATE TABLE sales.customers (id BIGINT, name STRING) LOCATION 's3://bucket/customers'",
    )

    assert rows(run(w, warehouse_id, "SHOW SCHEMAS")) == [["default"], ["sales"]]
    catalogs = run(w, warehouse_id, "SHOW CATALOGS")
    assert column_names(catalogs) == ["catalog"] and ["hive_metastore"] in rows(catalogs)
    tables = run(w, warehouse_id, "SHOW TABLES IN sales")
    assert column_names(tables) == ["database", "tableName", "isTemporary"]
    assert rows(tables) == [["sales", "customers", "false"], ["sales", "orders", "false"]]
    assert rows(run(w, warehouse_id, "SHOW TABLES", schema="sales")) == rows(tables)

    create = rows(run(w, warehouse_id, "SHOW CREATE TABLE sales.orders"))[0][0]
    assert create == (
        "CREATE TABLE hive_metastore.sales.orders (\n"
        "  id BIGINT NOT NULL COMMENT 'order id',\n"
        "  amount DECIMAL(10,2),\n"
        "  region STRING)\n"
        "USING delta\n"
        "PARTITIONED BY (region)\n"
        "COMMENT 'orders'\n"
        "TBLPROPERTIES (\n"
        "  'delta.minReaderVersion' = '1',\n"
        "  'delta.minWriterVersion' = '2',\n"
        "  'tier' = 'gold')\n"
    )
    external = rows(run(w, warehouse_id, "SHOW CREATE TABLE sales.customers"))[0][0]
    assert "LOCATION 's3://bucket/customers'\n" in (external or "")

    described = dict((r[0], r[1]) for r in rows(run(w, warehouse_id, "DESCRIBE TABLE EXTENDED sales.orders")))
    assert described["amount"] == "DECIMAL(10,2)" and described["# Partition Information"] == ""
    assert described["Type"] == "MANAGED" and described["Provider"] == "delta"
    assert described["Location"] == "dbfs:/user/hive/warehouse/sales.db/orders"
    assert dict((r[0], r[1]) for r in rows(run(w, warehouse_id, "DESCRIBE TABLE sales.customers"))) == {
        "id": "BIGINT", "name": "STRING",
    }  # fmt: skip

    # Replaying SHOW CREATE TABLE output elsewhere reproduces the same definition.
    run(w, warehouse_id, "CREATE SCHEMA copy")
    run(w, warehouse_id, (create or "").replace("hive_metastore.sales.orders", "hive_metastore.copy.orders"))
    replayed = rows(run(w, warehouse_id, "SHOW CREATE TABLE copy.orders"))[0][0]
    assert replayed == (create or "").replace("sales.orders", "copy.orders")


def test_view_over_two_tables_keeps_its_text(w: WorkspaceClient, warehouse_id: str) -> None:
    run(w, warehouse_id, "CREATE TABLE orders (id BIGINT, customer_id BIGINT, amount DOUBLE)")
    run(w, warehouse_id, "CREATE TABLE customers (id BIGINT, name STRING)")
    query = (
        "SELECT o.id AS order_id, c.name, o.amount -- kept verbatim\n"
        "  FROM orders o JOIN default.customers c ON o.customer_id = c.id"
    )
    run(w, warehouse_id, f"CREATE VIEW order_names COMMENT 'orders with names' AS {query};  -- not part of it")

    assert rows(run(w, warehouse_id, "SHOW VIEWS")) == [["default", "order_names", "false"]]
    ddl = rows(run(w, warehouse_id, "SHOW CREATE TABLE order_names"))[0][0]
    assert ddl == (
        "CREATE VIEW hive_metastore.default.order_names (\n  order_id,\n  name,\n  amount)\n"
        f"COMMENT 'orders with names'\nAS {query}\n"
    )
    described = rows(run(w, warehouse_id, "DESCRIBE order_names"))
    assert described == [["order_id", "BIGINT", None], ["name", "STRING", None], ["amount", "DOUBLE", None]]
    assert rows(run(w, warehouse_id, "SELECT * FROM order_names")) == []

    missing = failure(run(w, warehouse_id, "CREATE VIEW broken AS SELECT * FROM orders JOIN nowhere.t"))
    assert missing.startswith("[TABLE_OR_VIEW_NOT_FOUND] The table or view `nowhere`.`t` cannot be found.")
    assert [r[1] for r in rows(run(w, warehouse_id, "SHOW VIEWS"))] == ["order_names"]  # nothing created
    assert "WRONG_COMMAND_FOR_OBJECT_TYPE" in failure(run(w, warehouse_id, "DROP TABLE order_names"))
    run(w, warehouse_id, "DROP VIEW order_names")
    assert rows(run(w, warehouse_id, "SHOW VIEWS")) == []


def test_execution_failures_are_http_200_with_state_failed(w: WorkspaceClient, warehouse_id: str) -> None:
    parse = run(w, warehouse_id, "SELEC 1")
    assert failure(parse).startswith("[PARSE_SYNTAX_ERROR] Syntax error at or near 'SELEC'. SQLSTATE: 42601")
    assert parse.status and parse.status.sql_state == "42601"
    assert "[SCHEMA_NOT_FOUND]" in failure(run(w, warehouse_id, "SHOW TABLES IN nope"))
    assert "[TABLE_OR_VIEW_NOT_FOUND]" in failure(run(w, warehouse_id, "DESCRIBE missing_table"))
    run(w, warehouse_id, "CREATE TABLE t1 (a INT)")
    assert "[TABLE_OR_VIEW_ALREADY_EXISTS]" in failure(run(w, warehouse_id, "CREATE TABLE t1 (a INT)"))
    assert rows(run(w, warehouse_id, "CREATE TABLE IF NOT EXISTS t1 (a INT)")) == []
    run(w, warehouse_id, "CREATE SCHEMA full_schema")
    run(w, warehouse_id, "CREATE TABLE full_schema.t (a INT)")
    assert "[SCHEMA_NOT_EMPTY]" in failure(run(w, warehouse_id, "DROP SCHEMA full_schema"))
    assert rows(run(w, warehouse_id, "DROP SCHEMA full_schema CASCADE")) == []
    assert "[UNBOUND_SQL_PARAMETER]" in failure(run(w, warehouse_id, "SELECT :missing"))
    assert "[NO_SUCH_CATALOG_EXCEPTION]" in failure(run(w, warehouse_id, "SELECT 1", catalog="nope"))


def test_grants_round_trip_in_legacy_table_acl_layout(w: WorkspaceClient, warehouse_id: str) -> None:
    run(w, warehouse_id, "CREATE SCHEMA finance")
    run(w, warehouse_id, "CREATE TABLE finance.ledger (id BIGINT)")
    run(w, warehouse_id, "GRANT SELECT, MODIFY ON TABLE finance.ledger TO `alice@example.com`")
    run(w, warehouse_id, "DENY SELECT ON finance.ledger TO `bob@example.com`")
    run(w, warehouse_id, "GRANT USAGE, READ_METADATA ON SCHEMA finance TO analysts")
    run(w, warehouse_id, "GRANT USAGE ON CATALOG TO users")

    shown = run(w, warehouse_id, "SHOW GRANTS ON TABLE finance.ledger")
    assert column_names(shown) == HIVE_GRANT_COLUMNS
    assert rows(shown) == [
        ["admin@example.com", "OWN", "TABLE", "`finance`.`ledger`"],
        ["alice@example.com", "MODIFY", "TABLE", "`finance`.`ledger`"],
        ["alice@example.com", "SELECT", "TABLE", "`finance`.`ledger`"],
        ["bob@example.com", "DENIED_SELECT", "TABLE", "`finance`.`ledger`"],
        ["admin@example.com", "OWN", "DATABASE", "finance"],
        ["analysts", "READ_METADATA", "DATABASE", "finance"],
        ["analysts", "USAGE", "DATABASE", "finance"],
        ["users", "USAGE", "CATALOG$", None],
    ]
    alice = rows(run(w, warehouse_id, "SHOW GRANT `alice@example.com` ON TABLE finance.ledger"))
    assert [r[1] for r in alice] == ["MODIFY", "SELECT"]

    run(w, warehouse_id, "REVOKE SELECT ON TABLE finance.ledger FROM `alice@example.com`")
    run(w, warehouse_id, "REVOKE SELECT ON TABLE finance.ledger FROM `bob@example.com`")  # undoes the DENY
    run(w, warehouse_id, "ALTER TABLE finance.ledger OWNER TO `carol@example.com`")
    table_rows = [r for r in rows(run(w, warehouse_id, "SHOW GRANTS ON TABLE finance.ledger")) if r[2] == "TABLE"]
    assert table_rows == [
        ["alice@example.com", "MODIFY", "TABLE", "`finance`.`ledger`"],
        ["carol@example.com", "OWN", "TABLE", "`finance`.`ledger`"],
    ]
    run(w, warehouse_id, "GRANT SELECT ON ANY FILE TO `etl`")
    assert rows(run(w, warehouse_id, "SHOW GRANTS ON ANY FILE")) == [["etl", "SELECT", "ANY_FILE", None]]
    assert "[INVALID_PRIVILEGE]" in failure(run(w, warehouse_id, "GRANT USE SCHEMA ON SCHEMA finance TO x"))
    assert "[TABLE_OR_VIEW_NOT_FOUND]" in failure(run(w, warehouse_id, "GRANT SELECT ON TABLE nope TO x"))
    run(w, warehouse_id, "DROP TABLE finance.ledger")
    run(w, warehouse_id, "CREATE TABLE finance.ledger (id BIGINT)")
    assert [r[1] for r in rows(run(w, warehouse_id, "SHOW GRANTS ON TABLE finance.ledger")) if r[2] == "TABLE"] == [
        "OWN"
    ]  # dropping a table drops its grants


def test_unity_catalog_grants_use_uc_layout_and_reject_deny(w: WorkspaceClient, warehouse_id: str) -> None:
    run(w, warehouse_id, "CREATE SCHEMA main.sales")
    run(w, warehouse_id, "GRANT USE SCHEMA, SELECT ON SCHEMA main.sales TO `analysts`")
    shown = run(w, warehouse_id, "SHOW GRANTS ON SCHEMA sales", catalog="main")
    assert column_names(shown) == ["principal", "actionType", "objectType", "objectKey"]
    assert rows(shown) == [
        ["analysts", "SELECT", "SCHEMA", "main.sales"],
        ["analysts", "USE SCHEMA", "SCHEMA", "main.sales"],
    ]
    assert "DENY are not supported in Unity Catalog" in failure(
        run(w, warehouse_id, "DENY SELECT ON SCHEMA main.sales TO `analysts`")
    )


def test_result_chunks_page_through_next_chunk_index(w: WorkspaceClient, warehouse_id: str) -> None:
    response = run(w, warehouse_id, "SELECT id, id * 2 AS twice FROM range(2500)")
    manifest = response.manifest
    assert manifest and manifest.total_row_count == 2500 and manifest.total_chunk_count == 3
    assert [(c.chunk_index, c.row_offset, c.row_count) for c in manifest.chunks or []] == [
        (0, 0, 1000), (1, 1000, 1000), (2, 2000, 500),
    ]  # fmt: skip
    statement_id = response.statement_id or ""
    chunk = response.result
    seen: list[list[str | None]] = []
    while chunk is not None:
        seen += chunk.data_array or []
        if chunk.next_chunk_index is None:
            break
        assert chunk.next_chunk_internal_link == (
            f"/api/2.0/sql/statements/{statement_id}/result/chunks/{chunk.next_chunk_index}"
        )
        chunk = w.statement_execution.get_statement_result_chunk_n(statement_id, chunk.next_chunk_index)
    assert seen == [[str(i), str(2 * i)] for i in range(2500)]
    with pytest.raises(BadRequest):
        w.statement_execution.get_statement_result_chunk_n(statement_id, 3)

    limited = run(w, warehouse_id, "SELECT id FROM range(10)", row_limit=4)
    assert rows(limited) == [["0"], ["1"], ["2"], ["3"]]
    assert limited.manifest and limited.manifest.truncated is True


def test_show_tables_over_a_thousand_tables(w: WorkspaceClient, emulator: EmulatorHandle, warehouse_id: str) -> None:
    sqlengine.execute_sql(emulator.workspace, "CREATE SCHEMA big")
    for i in range(1050):
        sqlengine.execute_sql(emulator.workspace, f"CREATE TABLE big.t{i:04d} (id BIGINT)")
    response = run(w, warehouse_id, "SHOW TABLES IN big LIKE 't1*'")
    assert response.manifest and response.manifest.total_row_count == 50
    everything = run(w, warehouse_id, "SHOW TABLES IN big")
    assert everything.manifest and everything.manifest.total_chunk_count == 2
    last = w.statement_execution.get_statement_result_chunk_n(everything.statement_id or "", 1)
    assert last.data_array and last.data_array[-1] == ["big", "t1049", "false"]


def test_wait_timeout_validation_and_async_mode(w: WorkspaceClient, warehouse_id: str) -> None:
    for bad in ("3s", "51s", "10", "1m"):
        with pytest.raises(BadRequest, match="wait_timeout"):
            run(w, warehouse_id, "SELECT 1", wait_timeout=bad)
    pending = run(w, warehouse_id, "SELECT 42 AS answer", wait_timeout="0s")
    assert pending.status and pending.status.state == StatementState.PENDING and pending.result is None
    done = w.statement_execution.get_statement(pending.statement_id or "")
    assert rows(done) == [["42"]]
    with pytest.raises(NotImplemented):
        run(w, warehouse_id, "SELECT 1", disposition=Disposition.EXTERNAL_LINKS)
    with pytest.raises(BadRequest, match="EXTERNAL_LINKS"):
        run(w, warehouse_id, "SELECT 1", format=Format.CSV)
    with pytest.raises(NotFound):
        run(w, "0000000000000000", "SELECT 1")
    with pytest.raises(NotFound):
        w.statement_execution.get_statement("01f00000-0000-0000-0000-000000000000")


def test_statement_wakes_a_stopped_warehouse(w: WorkspaceClient) -> None:
    with freeze_time("2025-01-06 09:00:00") as clock:
        warehouse_id = w.warehouses.create(name="sleepy", cluster_size="Small").response.id
        w.warehouses.stop(warehouse_id)
        clock.tick(5)
        assert w.warehouses.get(warehouse_id).state == State.STOPPED

        pending = run(w, warehouse_id, "SELECT 1 AS x", wait_timeout="0s")
        assert w.warehouses.get(warehouse_id).state == State.STARTING
        assert w.statement_execution.get_statement(pending.statement_id or "").status.state == (  # type: ignore[union-attr]
            StatementState.PENDING
        )
        cancelled = run(w, warehouse_id, "SELECT 2", wait_timeout="0s")
        w.statement_execution.cancel_execution(cancelled.statement_id or "")
        clock.tick(1)
        assert rows(w.statement_execution.get_statement(pending.statement_id or "")) == [["1"]]
        assert w.statement_execution.get_statement(cancelled.statement_id or "").status.state == (  # type: ignore[union-attr]
            StatementState.CANCELED
        )
        assert w.warehouses.get(warehouse_id).state == State.RUNNING

        w.warehouses.stop(warehouse_id)
        clock.tick(5)
        synchronous = run(w, warehouse_id, "SELECT 3", wait_timeout="10s")  # start-up fits in the wait
        assert rows(synchronous) == [["3"]]
        clock.tick(3601)
        closed = w.statement_execution.get_statement(synchronous.statement_id or "")
        assert closed.status and closed.status.state == StatementState.CLOSED and closed.result is None


def test_parameters_bind_named_markers(w: WorkspaceClient, warehouse_id: str) -> None:
    params = [
        StatementParameterListItem(name="who", value="it's me"),
        StatementParameterListItem(name="n", value="41", type="INT"),
        StatementParameterListItem(name="nothing"),
    ]
    response = run(w, warehouse_id, "SELECT :who AS who, :n + 1 AS n, :nothing AS nothing", parameters=params)
    assert rows(response) == [["it's me", "42", None]]
    bad = [StatementParameterListItem(name="n", value="forty", type="INT")]
    assert "[CAST_INVALID_INPUT]" in failure(run(w, warehouse_id, "SELECT :n", parameters=bad))
    run(w, warehouse_id, "CREATE TABLE params_t (a INT)")
    like = [StatementParameterListItem(name="pattern", value="params*")]
    assert rows(run(w, warehouse_id, "SHOW TABLES LIKE :pattern", parameters=like)) == [
        ["default", "params_t", "false"]
    ]
    cancel = run(
        w,
        warehouse_id,
        "SELECT 1",
        wait_timeout="5s",
        on_wait_timeout=ExecuteStatementRequestOnWaitTimeout.CANCEL,
    )
    assert rows(cancel) == [["1"]]


# -- command execution 1.2 ------------------------------------------------------------------------------
@pytest.fixture
def cluster_id(emulator: EmulatorHandle) -> str:
    spec = {
        "cluster_name": "acl",
        "spark_version": "15.4.x-scala2.12",
        "node_type_id": "i3.xlarge",
        "num_workers": 0,
    }
    return clusters.create_cluster(emulator.workspace, spec, state="RUNNING")


def test_command_contexts_run_sql_and_keep_session_state(w: WorkspaceClient, cluster_id: str) -> None:
    context = w.command_execution.create(cluster_id=cluster_id, language=Language.SQL).result()
    assert context.status and context.status.value == "Running"
    context_id = context.id or ""

    def execute(command: str, language: Language = Language.SQL) -> dict:
        status = w.command_execution.execute(
            cluster_id=cluster_id, context_id=context_id, language=language, command=command
        ).result()
        assert status.status and status.status.value == "Finished"
        assert status.results
        return status.results.as_dict()

    execute("CREATE SCHEMA ops; USE ops")
    execute("CREATE TABLE jobs (id BIGINT, name STRING)")  # lands in ops: USE carried over
    result = execute("SHOW TABLES")
    assert result["resultType"] == "table" and result["data"] == [["ops", "jobs", False]]
    assert result["schema"][0] == {"name": "database", "type": '"string"', "metadata": "{}"}
    execute("GRANT SELECT ON TABLE jobs TO `etl`")
    grants = execute("SHOW GRANT ON TABLE `ops`.`jobs`")
    assert [s["name"] for s in grants["schema"]] == HIVE_GRANT_COLUMNS
    assert ["etl", "SELECT", "TABLE", "`ops`.`jobs`"] in grants["data"]
    assert execute('display(spark.sql("SELECT 7 AS seven"))', Language.PYTHON)["data"] == [[7]]

    error = execute("SELECT * FROM nowhere")
    assert error["resultType"] == "error" and "[TABLE_OR_VIEW_NOT_FOUND]" in error["summary"]
    # Python beyond the dbutils.fs subset (dbsync_emulator/dbutils.py) is not executed: an error result.
    assert execute("import pandas as pd", Language.PYTHON)["resultType"] == "error"

    w.command_execution.destroy(cluster_id=cluster_id, context_id=context_id)
    with pytest.raises(NotFound):
        w.command_execution.context_status(cluster_id=cluster_id, context_id=context_id)


def test_command_execution_needs_a_running_cluster(
    w: WorkspaceClient, emulator: EmulatorHandle, cluster_id: str
) -> None:
    with pytest.raises(BadRequest, match="does not exist"):
        w.command_execution.create(cluster_id="0000-000000-nothere0", language=Language.SQL)
    with pytest.raises(BadRequest, match="Invalid language"):
        w.api_client.do("POST", "/api/1.2/contexts/create", body={"clusterId": cluster_id, "language": "cobol"})
    context_id = w.command_execution.create(cluster_id=cluster_id, language=Language.PYTHON).response.id or ""
    clusters.terminate_cluster(emulator.workspace, cluster_id)
    stopped = clusters.create_cluster(
        emulator.workspace,
        {
            "cluster_name": "off",
            "spark_version": "15.4.x-scala2.12",
            "node_type_id": "i3.xlarge",
            "num_workers": 0,
        },
        state="TERMINATED",
    )
    with pytest.raises(BadRequest, match="is not running"):
        w.command_execution.create(cluster_id=stopped, language=Language.SQL)
    status = w.command_execution.context_status(cluster_id=cluster_id, context_id=context_id)
    assert status.status and status.status.value == "Error"  # a context dies with its cluster
