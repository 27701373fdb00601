"""Unity Catalog securables over the UC REST API between two emulated workspaces: storage credentials,
external locations and catalogs, with storage URLs rewritten by `mapping.storage`, role ARNs by
`mapping.aws_account_id`, owners copied (which SQL's SHOW GRANTS cannot do), and what cannot be created
(a credential whose secret the API never returns, a URL no mapping covers) blocked with the reason.

Shapes from databricks-sdk `service/catalog.py` (StorageCredentialsAPI, ExternalLocationsAPI, CatalogsAPI).
"""

from __future__ import annotations

from conftest import Pair
from databricks.sdk.service import catalog

from dbsync.store import Store
from dbsync_emulator.apis import scim

KINDS = ["storage_credentials", "external_locations", "catalogs"]
MAPPING = {
    "mapping": {
        "storage": {"s3://prod-lake/": "s3://dr-lake/"},
        "aws_account_id": "222222222222",
    }
}
ROLE = "arn:aws:iam::111111111111:role/uc-access"


def _seed(pair: Pair) -> None:
    for handle in (pair.source, pair.target):
        with handle.workspace.lock:
            scim.create_group(handle.workspace, "data-owners")
    src = pair.src
    src.storage_credentials.create(
        "lake-role", aws_iam_role=catalog.AwsIamRoleRequest(role_arn=ROLE), comment="the lake"
    )
    src.storage_credentials.update("lake-role", owner="data-owners")
    src.storage_credentials.create(
        "azure-sp",
        azure_service_principal=catalog.AzureServicePrincipal(
            directory_id="tenant", application_id="app", client_secret="s3cr3t-value"
        ),
    )
    src.external_locations.create("lake", "s3://prod-lake/", "lake-role", comment="everything")
    src.catalogs.create("sales", storage_root="s3://prod-lake/sales", comment="sales data", properties={"tier": "1"})
    src.catalogs.update("sales", owner="data-owners")


def test_credentials_locations_and_catalogs_reach_the_standby_mapped(pair: Pair) -> None:
    _seed(pair)
    reports = pair.sync(only=KINDS, **MAPPING)
    assert reports["storage_credentials"].created == 1 and reports["storage_credentials"].blocked == 1
    assert reports["external_locations"].created == 1 and reports["external_locations"].errors == 0
    assert reports["catalogs"].errors == 0

    credential = pair.dst.storage_credentials.get("lake-role")
    assert credential.aws_iam_role.role_arn == "arn:aws:iam::222222222222:role/uc-access"
    assert credential.comment == "the lake" and credential.owner == "data-owners"
    location = pair.dst.external_locations.get("lake")
    assert (location.url, location.credential_name) == ("s3://dr-lake", "lake-role")
    sales = pair.dst.catalogs.get("sales")
    assert sales.storage_root == "s3://dr-lake/sales" and sales.owner == "data-owners", "the UC owner is copied"
    assert sales.comment == "sales data" and sales.properties == {"tier": "1"}

    store = Store(pair.state_path)
    problems = store.problems("storage_credentials")
    store.close()
    assert [p["source_key"] for p in problems] == ["azure-sp"]
    assert "create it on the target" in problems[0]["last_error"] and "s3cr3t" not in problems[0]["last_error"]
    assert b"s3cr3t" not in pair.state_path.read_bytes()

    # no change: one listing per kind and side, nothing written
    pair.reset_stats()
    reports = pair.sync(only=KINDS, **MAPPING)
    assert pair.target_writes() == 0
    assert all(r.created == r.updated == 0 for r in reports.values())

    # the credential made on the target by hand is adopted: its comment follows, its identity is the team's
    pair.dst.storage_credentials.create(
        "azure-sp",
        azure_service_principal=catalog.AzureServicePrincipal(
            directory_id="dr", application_id="dr-app", client_secret="x"
        ),
    )
    pair.src.storage_credentials.update("azure-sp", comment="now documented")
    reports = pair.sync(only=["storage_credentials"], **MAPPING)
    assert reports["storage_credentials"].blocked == 0 and reports["storage_credentials"].errors == 0
    adopted = pair.dst.storage_credentials.get("azure-sp")
    assert adopted.comment == "now documented" and adopted.azure_service_principal.directory_id == "dr"


def test_a_storage_url_no_mapping_covers_blocks_with_the_url(pair: Pair) -> None:
    _seed(pair)
    pair.src.external_locations.create("archive", "s3://prod-archive/", "lake-role")
    pair.sync(only=KINDS, **MAPPING)
    store = Store(pair.state_path)
    problems = store.problems("external_locations")
    store.close()
    assert [(p["source_key"], p["status"]) for p in problems] == [("archive", "blocked")]
    assert "s3://prod-archive" in problems[0]["last_error"] and "mapping.storage" in problems[0]["last_error"]
    assert [loc.name for loc in pair.dst.external_locations.list()] == ["lake"]


def test_a_catalog_deleted_on_the_source_is_dropped_only_when_empty_and_ours(pair: Pair) -> None:
    _seed(pair)
    pair.src.catalogs.create("scratch", comment="tmp")
    pair.dst.catalogs.create("dr_only")
    pair.sync(only=KINDS, **MAPPING)
    pair.dst.schemas.create("kept", "sales")  # the DR team's schema in the replicated catalog

    pair.src.catalogs.delete("scratch")
    pair.src.catalogs.delete("sales", force=True)
    reports = pair.sync(only=["catalogs"], force_deletes=True, **MAPPING)
    names = {c.name for c in pair.dst.catalogs.list()}
    assert "scratch" not in names, "an empty catalog dbsync created is dropped"
    assert {"sales", "dr_only", "main"} <= names, "a catalog holding a schema, and one dbsync did not create, stay"
    assert reports["catalogs"].errors == 0
