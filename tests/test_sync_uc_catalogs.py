"""Unity Catalog connections, catalogs, volumes and functions between two emulated workspaces (real SDK, HTTP).

Shapes: docs.databricks.com/api catalogs create (`storage_root`, `connection_name` + `options` for a foreign
catalog), catalogs update (`isolation_mode`, `owner`), volumes create (`volume_type`, `storage_location` for
EXTERNAL), functions create (`function_info`), connections create/update (`options`, secret ones write-only),
as databricks-sdk `service/catalog.py` sends them.
"""

from __future__ import annotations

import shutil
from typing import Any

import pytest
from conftest import Pair
from databricks.sdk.service import catalog as uc

from dbsync_emulator.apis.sql import create_warehouse

UC = ["storage_credentials", "external_locations", "connections", "catalogs", "volumes", "functions"]
MAPPING = {"storage_urls": {"s3://prod-bucket/uc": "s3://dr-bucket/uc"}}
PG_PASSWORD_VARIABLE = "DBSYNC_SECRET__CONNECTIONS__PG_PASSWORD"


def sync(pair: Pair, **overrides: Any) -> dict[str, Any]:
    overrides.setdefault("mapping", MAPPING)
    return pair.sync(only=UC, **overrides)


def statuses(pair: Pair, kind: str) -> dict[str, tuple[str, str | None]]:
    ctx = pair.context()
    try:
        return {p.key: (p.status, p.origin) for p in ctx.store.priors(kind)}
    finally:
        ctx.store.close()


def messages(pair: Pair, kind: str, key: str) -> str:
    ctx = pair.context()
    try:
        return " ".join(e["message"] for e in ctx.store.events(300) if (e["kind"], e["source_key"]) == (kind, key))
    finally:
        ctx.store.close()


def add_one(catalog: str, schema: str) -> uc.CreateFunction:
    return uc.CreateFunction(
        name="add_one",
        catalog_name=catalog,
        schema_name=schema,
        input_params=uc.FunctionParameterInfos(
            parameters=[
                uc.FunctionParameterInfo(name="x", type_name=uc.ColumnTypeName.INT, type_text="int", position=0)
            ]
        ),
        data_type=uc.ColumnTypeName.INT,
        full_data_type="int",
        routine_body=uc.CreateFunctionRoutineBody.SQL,
        routine_definition="x + 1",
        parameter_style=uc.CreateFunctionParameterStyle.S,
        is_deterministic=True,
        sql_data_access=uc.CreateFunctionSqlDataAccess.CONTAINS_SQL,
        is_null_call=False,
        security_type=uc.CreateFunctionSecurityType.DEFINER,
        specific_name="add_one",
    )


@pytest.fixture
def source(pair: Pair) -> Pair:
    """A location on the production bucket, catalogs on it and not, a Postgres connection and a foreign catalog,
    volumes (managed, external, in a schema the target lacks) and a SQL function."""
    for client in (pair.src, pair.dst):
        client.groups.create(display_name="data-eng")
    src = pair.src
    src.storage_credentials.create(name="cred", aws_iam_role=uc.AwsIamRoleRequest(role_arn="arn:aws:iam::1:role/r"))
    src.external_locations.create(name="lake", url="s3://prod-bucket/uc", credential_name="cred")
    src.external_locations.create(name="legacy", url="s3://prod-bucket/legacy", credential_name="cred")
    src.catalogs.create(name="sales", comment="sales data", storage_root="s3://prod-bucket/uc/sales")
    src.catalogs.update("sales", isolation_mode=uc.CatalogIsolationMode.ISOLATED, owner="data-eng")
    src.catalogs.create(name="old", storage_root="s3://prod-bucket/legacy/old")
    src.catalogs.create(name="plain", properties={"team": "ml"})
    src.connections.create(
        name="pg",
        connection_type=uc.ConnectionType.POSTGRESQL,
        options={"host": "pg.prod", "port": "5432", "user": "reader", "password": "pg-secret-1"},
    )
    src.catalogs.create(name="pgcat", connection_name="pg", options={"database": "app"})
    src.volumes.create("sales", "default", "files", uc.VolumeType.MANAGED, comment="uploads")
    src.volumes.create(
        "sales", "default", "landing", uc.VolumeType.EXTERNAL, storage_location="s3://prod-bucket/uc/landing"
    )
    src.schemas.create(name="gold", catalog_name="sales")
    src.volumes.create("sales", "gold", "reports", uc.VolumeType.MANAGED)
    src.functions.create(add_one("main", "default"))
    return pair


def test_catalogs_volumes_functions_and_connections_are_created(source: Pair, monkeypatch: pytest.MonkeyPatch) -> None:
    pair = source
    reports = sync(pair)
    # The storage root is mapped, the isolation mode and owner follow; a catalog without a root uses the target's.
    sales = pair.dst.catalogs.get("sales")
    assert sales.storage_root == "s3://dr-bucket/uc/sales" and sales.comment == "sales data"
    assert sales.isolation_mode == uc.CatalogIsolationMode.ISOLATED and sales.owner == "data-eng"
    assert pair.dst.catalogs.get("plain").properties == {"team": "ml"}
    assert statuses(pair, "catalogs")["main"] == ("synced", "adopted")
    # Unmapped root: blocked naming the setting, never created on the production bucket.
    assert statuses(pair, "catalogs")["old"][0] == "blocked"
    assert "mapping.storage_urls" in messages(pair, "catalogs", "old")
    assert "old" not in {c.name for c in pair.dst.catalogs.list()}
    # The connection's password is write-only: blocked naming the variable, and the foreign catalog waits for it.
    assert statuses(pair, "connections")["pg"][0] == "blocked"
    assert PG_PASSWORD_VARIABLE in messages(pair, "connections", "pg")
    assert statuses(pair, "catalogs")["pgcat"][0] == "blocked"
    # Volumes: managed and external (location mapped); one in a schema the target lacks waits.
    assert pair.dst.volumes.read("sales.default.files").comment == "uploads"
    landing = pair.dst.volumes.read("sales.default.landing")
    assert landing.volume_type == uc.VolumeType.EXTERNAL and landing.storage_location == "s3://dr-bucket/uc/landing"
    assert statuses(pair, "volumes")["sales.gold.reports"][0] == "blocked"
    assert pair.dst.functions.get("main.default.add_one").routine_definition == "x + 1"
    assert reports["functions"].created == 1

    # With the password supplied, the connection and then its foreign catalog are created.
    monkeypatch.setenv(PG_PASSWORD_VARIABLE, "pg-secret-1")
    sync(pair, secrets={"values_from": "env"})
    with pair.target.workspace.lock:
        options = pair.target.workspace.table("uc_connections")["pg"]["options"]
    assert options == {"host": "pg.prod", "port": "5432", "user": "reader", "password": "pg-secret-1"}
    assert pair.dst.catalogs.get("pgcat").connection_name == "pg"
    assert "pg-secret-1" not in pair.state_path.read_bytes().decode("utf-8", "replace")

    # A password rotated in the values source is a change: the connection is updated with it.
    monkeypatch.setenv(PG_PASSWORD_VARIABLE, "pg-secret-2")
    reports = sync(pair, secrets={"values_from": "env"})
    assert reports["connections"].updated == 1
    with pair.target.workspace.lock:
        assert pair.target.workspace.table("uc_connections")["pg"]["options"]["password"] == "pg-secret-2"


def test_no_change_cycle_writes_nothing_and_changes_are_applied(source: Pair) -> None:
    pair = source
    sync(pair)
    pair.reset_stats()
    reports = sync(pair)
    assert pair.target_writes() == 0, pair.target.stats.document()["endpoints"].keys()
    assert all(reports[k].created == reports[k].updated == 0 for k in UC)

    pair.src.catalogs.update("sales", comment="sales, edited")
    pair.src.volumes.update("sales.default.files", comment="edited")
    reports = sync(pair)
    assert reports["catalogs"].updated == 1 and reports["volumes"].updated == 1
    assert pair.dst.catalogs.get("sales").comment == "sales, edited"
    assert pair.dst.volumes.read("sales.default.files").comment == "edited"


def test_deletes_only_what_dbsync_created_and_never_a_managed_volume(source: Pair) -> None:
    pair = source
    pair.dst.catalogs.create(name="dr_only")
    sync(pair)
    pair.src.volumes.delete("sales.default.files")
    sync(pair)
    assert pair.dst.volumes.read("sales.default.files").name == "files"  # managed: its files would go
    assert "kept" in messages(pair, "volumes", "sales.default.files")
    pair.src.volumes.delete("sales.default.landing")
    reports = sync(pair)
    assert reports["volumes"].deleted == 1
    assert {v.name for v in pair.dst.volumes.list("sales", "default")} == {"files"}
    pair.src.catalogs.delete("plain", force=True)
    sync(pair)
    names = {c.name for c in pair.dst.catalogs.list()}
    assert "plain" not in names and {"main", "dr_only", "sales"} <= names


def test_a_uc_catalog_is_created_over_rest_and_its_schemas_and_tables_follow_through_sql(source: Pair) -> None:
    """The decided split: the catalog itself (storage root mapped) by the catalogs kind; its schemas, tables and
    views by the SQL kinds once it is in metastore.catalogs; a volume waits for its schema, in the same run."""
    pair = source
    warehouses = {}
    for side, handle in (("source", pair.source), ("target", pair.target)):
        with handle.workspace.lock:
            warehouses[side] = create_warehouse(handle.workspace, {"name": "dbsync", "cluster_size": "2X-Small"})
    run = pair.src.statement_execution.execute_statement
    run("CREATE TABLE sales.gold.orders (id BIGINT, amount DOUBLE)", warehouses["source"], wait_timeout="30s")
    metastore = {
        "source_warehouse_id": warehouses["source"],
        "target_warehouse_id": warehouses["target"],
        "catalogs": ["sales"],
    }
    reports = pair.sync(only=[*UC, "schemas", "tables"], mapping=MAPPING, metastore=metastore)
    assert reports["schemas"].created >= 1 and reports["tables"].created == 1
    assert pair.dst.catalogs.get("sales").storage_root == "s3://dr-bucket/uc/sales"
    assert pair.dst.schemas.get("sales.gold").name == "gold"
    assert pair.dst.volumes.read("sales.gold.reports").name == "reports"
    assert statuses(pair, "volumes")["sales.gold.reports"] == ("synced", "created")


def test_a_uc_schema_managed_location_is_mapped_or_blocked(source: Pair) -> None:
    """A UC schema's MANAGED LOCATION follows mapping.storage_urls; one without an entry is never copied."""
    pair = source
    warehouses = {}
    for side, handle in (("source", pair.source), ("target", pair.target)):
        with handle.workspace.lock:
            warehouses[side] = create_warehouse(handle.workspace, {"name": "dbsync", "cluster_size": "2X-Small"})
    for statement in (
        "CREATE SCHEMA sales.x MANAGED LOCATION 's3://prod-bucket/uc/x'",
        "CREATE SCHEMA sales.y MANAGED LOCATION 's3://prod-bucket/legacy/y'",
    ):
        pair.src.statement_execution.execute_statement(statement, warehouses["source"], wait_timeout="30s")
    metastore = {
        "source_warehouse_id": warehouses["source"],
        "target_warehouse_id": warehouses["target"],
        "catalogs": ["sales"],
    }
    pair.sync(only=[*UC, "schemas"], mapping=MAPPING, metastore=metastore)
    described = pair.dst.statement_execution.execute_statement(
        "DESCRIBE SCHEMA EXTENDED sales.x", warehouses["target"], wait_timeout="30s"
    )
    rows = dict((r[0], r[1]) for r in (described.result.data_array or []) if described.result)
    assert rows["Location"] == "s3://dr-bucket/uc/x"
    assert statuses(pair, "schemas")["sales.y"][0] == "blocked"
    assert "mapping.storage_urls" in messages(pair, "schemas", "sales.y")
    assert "y" not in {s.name for s in pair.dst.schemas.list("sales")}


def test_a_lost_store_adopts_everything_without_errors_or_writes(source: Pair) -> None:
    """Names are unique per metastore: a fresh store finds each securable by name (no 409, no second copy)."""
    pair = source
    sync(pair)
    for path in pair.state_path.parent.glob(pair.state_path.name + "*"):  # the store, its lock, key and versions
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    pair.reset_stats()
    reports = sync(pair)
    assert all(reports[k].errors == 0 for k in UC), {k: reports[k].message for k in UC}
    writes = {k: v["count"] for k, v in pair.target.stats.document()["endpoints"].items() if not k.startswith("GET")}
    assert writes == {}, writes
    assert statuses(pair, "catalogs")["sales"] == ("synced", "adopted")
    assert statuses(pair, "volumes")["sales.default.landing"] == ("synced", "adopted")
    assert statuses(pair, "functions")["main.default.add_one"] == ("synced", "adopted")


def test_a_storage_root_that_would_move_is_an_error_naming_the_fix(source: Pair) -> None:
    """A catalog's storage root cannot change in place: a new mapping leaves the target catalog as it is."""
    pair = source
    sync(pair)
    moved = {"storage_urls": {"s3://prod-bucket/uc": "s3://dr2-bucket/uc"}}
    pair.src.catalogs.update("sales", comment="touched")  # a change, so the catalog is written again
    reports = sync(pair, mapping=moved)
    assert reports["catalogs"].errors == 1
    assert "cannot be changed in place" in messages(pair, "catalogs", "sales")
    assert pair.dst.catalogs.get("sales").storage_root == "s3://dr-bucket/uc/sales"
