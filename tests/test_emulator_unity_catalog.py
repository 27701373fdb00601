"""Unity Catalog securables over REST in the emulator (catalogs, schemas, storage credentials, external
locations, volumes, functions, connections, grants), driven by the real databricks-sdk (`service/catalog.py`).

Catalogs, schemas and their grants are the SQL engine's own: what REST writes, SQL reads, and back."""

from __future__ import annotations

import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import BadRequest, InvalidParameterValue, NotFound, ResourceConflict
from databricks.sdk.service import catalog as uc
from databricks.sdk.service.sql import StatementState

ROLE = "arn:aws:iam::123456789012:role/uc-access"


@pytest.fixture
def warehouse_id(w: WorkspaceClient) -> str:
    created = w.warehouses.create(name="WH", cluster_size="2X-Small", auto_stop_mins=0).response.id
    assert created is not None
    return created


def sql(w: WorkspaceClient, warehouse_id: str, statement: str) -> list[list[str | None]]:
    response = w.statement_execution.execute_statement(statement, warehouse_id, wait_timeout="50s")
    assert response.status and response.status.state == StatementState.SUCCEEDED, response.status
    return response.result.data_array or [] if response.result else []


@pytest.fixture
def location(w: WorkspaceClient) -> str:
    w.storage_credentials.create(name="cred", aws_iam_role=uc.AwsIamRoleRequest(role_arn=ROLE))
    w.external_locations.create(name="lake", url="s3://acme-lake/uc", credential_name="cred")
    return "s3://acme-lake/uc"


def test_rest_and_sql_share_one_metastore(w: WorkspaceClient, warehouse_id: str, location: str) -> None:
    """A catalog created through REST is the catalog SQL sees; owners and grants agree both ways (the
    service has one metastore behind both; `SHOW GRANTS` columns principal, actionType, objectType, objectKey)."""
    created = w.catalogs.create(name="Sales", comment="sales data", storage_root=f"{location}/sales")
    assert created.name == "sales" and created.catalog_type == uc.CatalogType.MANAGED_CATALOG
    assert created.storage_root == f"{location}/sales" and created.storage_location
    assert ["sales"] in sql(w, warehouse_id, "SHOW CATALOGS")
    assert {s.name for s in w.schemas.list(catalog_name="sales")} == {"default", "information_schema"}

    sql(w, warehouse_id, "CREATE SCHEMA sales.gold COMMENT 'from sql'")
    assert w.schemas.get("sales.gold").comment == "from sql"
    w.users.create(user_name="ana@example.com")
    w.catalogs.update("sales", owner="ana@example.com")
    assert ["Owner", "ana@example.com"] in sql(w, warehouse_id, "DESCRIBE CATALOG sales")

    w.grants.update(
        "catalog", "sales", changes=[uc.PermissionsChange(principal="users", add=[uc.Privilege.USE_CATALOG])]
    )
    assert sql(w, warehouse_id, "SHOW GRANTS ON CATALOG sales") == [["users", "USE CATALOG", "CATALOG", "sales"]]
    sql(w, warehouse_id, "GRANT CREATE TABLE ON SCHEMA sales.gold TO `ana@example.com`")
    got = w.grants.get("schema", "sales.gold")
    assert [(a.principal, a.privileges) for a in got.privilege_assignments or []] == [
        ("ana@example.com", [uc.Privilege.CREATE_TABLE])
    ]
    effective = w.grants.get_effective("schema", "sales.gold")
    by_principal = {a.principal: a.privileges or [] for a in effective.privilege_assignments or []}
    inherited = by_principal["users"][0]
    assert inherited.privilege == uc.Privilege.USE_CATALOG
    assert inherited.inherited_from_type == uc.SecurableType.CATALOG and inherited.inherited_from_name == "sales"
    assert by_principal["ana@example.com"][0].inherited_from_name is None  # a direct grant

    sql(w, warehouse_id, "CREATE TABLE sales.gold.orders (id INT)")
    w.grants.update(
        "table", "sales.gold.orders", changes=[uc.PermissionsChange(principal="users", add=[uc.Privilege.SELECT])]
    )
    shown = sql(w, warehouse_id, "SHOW GRANTS ON TABLE sales.gold.orders")
    assert ["users", "SELECT", "TABLE", "sales.gold.orders"] in shown
    assert ["users", "USE CATALOG", "CATALOG", "sales"] in shown  # inherited rows, as SHOW GRANTS lists them

    with pytest.raises(NotFound):
        w.catalogs.get("hive_metastore")  # not a Unity Catalog catalog
    with pytest.raises(ResourceConflict):  # 409 CATALOG_ALREADY_EXISTS
        w.catalogs.create(name="sales")


def test_storage_roots_need_an_external_location_and_locations_do_not_overlap(
    w: WorkspaceClient, location: str
) -> None:
    with pytest.raises(InvalidParameterValue):
        w.catalogs.create(name="orphan", storage_root="s3://other-bucket/x")
    with pytest.raises(InvalidParameterValue):
        w.external_locations.create(name="inner", url=f"{location}/nested", credential_name="cred")
    with pytest.raises(NotFound):
        w.external_locations.create(name="x", url="s3://else/x", credential_name="missing")
    got = w.external_locations.get("lake")
    assert got.url == location and got.credential_name == "cred" and got.credential_id
    with pytest.raises(BadRequest):
        w.storage_credentials.delete("cred")  # still used by an external location
    w.storage_credentials.delete("cred", force=True)
    with pytest.raises(NotFound):
        w.storage_credentials.get("cred")


def test_credential_and_connection_secrets_are_write_only(w: WorkspaceClient) -> None:
    """Secrets are never answered: an Azure service principal's client_secret, connection passwords
    (ConnectionInfo.options carries the non-secret options only)."""
    sp = uc.AzureServicePrincipal(directory_id="dir", application_id="app", client_secret="s3cret")
    w.storage_credentials.create(name="azure", azure_service_principal=sp)
    read = w.storage_credentials.get("azure").azure_service_principal
    assert read is not None and read.application_id == "app" and read.client_secret is None
    aws = w.storage_credentials.create(name="aws", aws_iam_role=uc.AwsIamRoleRequest(role_arn=ROLE))
    assert aws.aws_iam_role and aws.aws_iam_role.role_arn == ROLE and aws.aws_iam_role.external_id

    options = {"host": "db.example.com", "port": "5432", "user": "etl", "password": "pw"}
    created = w.connections.create(name="pg", connection_type=uc.ConnectionType.POSTGRESQL, options=options)
    assert created.options == {"host": "db.example.com", "port": "5432", "user": "etl"}
    assert w.connections.get("pg").options == {"host": "db.example.com", "port": "5432", "user": "etl"}
    updated = w.connections.update("pg", options={**options, "host": "db2.example.com"})
    assert updated.options and updated.options["host"] == "db2.example.com" and "password" not in updated.options
    assert [c.name for c in w.connections.list()] == ["pg"]
    w.connections.delete("pg")
    with pytest.raises(NotFound):
        w.connections.get("pg")


def _function(name: str) -> uc.CreateFunction:
    return uc.CreateFunction(
        name=name,
        catalog_name="main",
        schema_name="default",
        input_params=uc.FunctionParameterInfos(parameters=[]),
        data_type=uc.ColumnTypeName.INT,
        full_data_type="INT",
        routine_body=uc.CreateFunctionRoutineBody.SQL,
        routine_definition="1",
        parameter_style=uc.CreateFunctionParameterStyle.S,
        is_deterministic=True,
        sql_data_access=uc.CreateFunctionSqlDataAccess.CONTAINS_SQL,
        is_null_call=False,
        security_type=uc.CreateFunctionSecurityType.DEFINER,
        specific_name=name,
    )


def test_functions_volumes_grants_and_owners(w: WorkspaceClient) -> None:
    created = w.functions.create(_function("one"))
    assert created.full_name == "main.default.one" and created.owner == "admin@example.com"
    assert [f.name for f in w.functions.list("main", "default")] == ["one"]
    w.users.create(user_name="bo@example.com")
    assert w.functions.update("main.default.one", owner="bo@example.com").owner == "bo@example.com"
    w.grants.update(
        "function", "main.default.one", changes=[uc.PermissionsChange(principal="users", add=[uc.Privilege.EXECUTE])]
    )
    with pytest.raises(InvalidParameterValue):  # privileges are checked against the securable type
        w.grants.update(
            "function", "main.default.one", changes=[uc.PermissionsChange(principal="users", add=[uc.Privilege.SELECT])]
        )
    with pytest.raises(NotFound):
        w.grants.update(
            "catalog", "main", changes=[uc.PermissionsChange(principal="ghost", add=[uc.Privilege.USE_CATALOG])]
        )

    w.volumes.create("main", "default", "raw", uc.VolumeType.MANAGED)
    w.grants.update(
        "volume", "main.default.raw", changes=[uc.PermissionsChange(principal="users", add=[uc.Privilege.READ_VOLUME])]
    )
    assert w.volumes.update("main.default.raw", owner="bo@example.com").owner == "bo@example.com"
    assert w.grants.get("volume", "main.default.raw").privilege_assignments == [
        uc.PrivilegeAssignment(principal="users", privileges=[uc.Privilege.READ_VOLUME])
    ]
    w.grants.update(
        "volume",
        "main.default.raw",
        changes=[uc.PermissionsChange(principal="users", remove=[uc.Privilege.READ_VOLUME])],
    )
    assert not w.grants.get("volume", "main.default.raw").privilege_assignments

    with pytest.raises(BadRequest):
        w.schemas.delete("main.default")  # holds a function and a volume
    w.schemas.delete("main.default", force=True)
    with pytest.raises(NotFound):
        w.functions.get("main.default.one")
    with pytest.raises(NotFound):
        w.volumes.read("main.default.raw")


def test_lists_page_as_the_sdk_expects(w: WorkspaceClient) -> None:
    """The SDK sends max_results=0 (server-sized pages) and follows next_page_token until it is absent;
    without max_results the service answers everything at once."""
    for i in range(55):
        w.catalogs.create(name=f"c{i:02d}")
    listed = [c.name for c in w.catalogs.list()]
    assert len(listed) == 56 and listed == sorted(listed)  # 55 + main
    paged = w.api_client.do("GET", "/api/2.1/unity-catalog/catalogs", query={"max_results": 0})
    assert len(paged["catalogs"]) < 56 and paged["next_page_token"]
    everything = w.api_client.do("GET", "/api/2.1/unity-catalog/catalogs")
    assert len(everything["catalogs"]) == 56 and "next_page_token" not in everything
    with pytest.raises(InvalidParameterValue):
        w.api_client.do("GET", "/api/2.1/unity-catalog/catalogs", query={"max_results": -1})
    with pytest.raises(InvalidParameterValue):  # grants pages hold at least 150 assignments
        w.api_client.do("GET", "/api/2.1/unity-catalog/permissions/catalog/main", query={"max_results": 10})
    w.catalogs.delete("c00")
    with pytest.raises(NotFound):
        w.catalogs.get("c00")
