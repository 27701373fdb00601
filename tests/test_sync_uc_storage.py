"""Unity Catalog storage credentials and external locations between two emulated workspaces (real SDK, HTTP).

Shapes as the service documents them (docs.databricks.com/api storage-credentials / external-locations create:
`aws_iam_role.role_arn`, `azure_service_principal.{directory_id, application_id, client_secret}` with the
secret write-only; `url` + `credential_name`) and as databricks-sdk `service/catalog.py` sends them.
"""

from __future__ import annotations

from typing import Any

import pytest
from conftest import Pair
from databricks.sdk.service import catalog as uc

from dbsync.report import validate

KINDS = ["storage_credentials", "external_locations"]
PROD_ROLE = "arn:aws:iam::111111111111:role/uc-prod"
DR_ROLE = "arn:aws:iam::222222222222:role/uc-dr"
MAPPING = {
    "storage_urls": {"s3://prod-bucket": "s3://dr-bucket"},
    "cloud_identities": {PROD_ROLE: DR_ROLE},
}


def sync(pair: Pair, **overrides: Any) -> dict[str, Any]:
    overrides.setdefault("mapping", MAPPING)
    return pair.sync(only=KINDS, **overrides)


def rows(pair: Pair, kind: str) -> dict[str, dict[str, Any]]:
    ctx = pair.context()
    try:
        return {p.key: {"status": p.status, "origin": p.origin} for p in ctx.store.priors(kind)}
    finally:
        ctx.store.close()


def last_error(pair: Pair, kind: str, key: str) -> str:
    ctx = pair.context()
    try:
        events = ctx.store.events(200)
        return " ".join(e["message"] for e in events if e.get("source_key") == key and e.get("kind") == kind)
    finally:
        ctx.store.close()


@pytest.fixture
def source(pair: Pair) -> Pair:
    """A source with a mapped IAM-role credential and two locations on the production bucket (one unmapped)."""
    for client in (pair.src, pair.dst):
        client.groups.create(display_name="data-eng")
    src = pair.src
    src.storage_credentials.create(
        name="cred", aws_iam_role=uc.AwsIamRoleRequest(role_arn=PROD_ROLE), comment="prod access"
    )
    src.storage_credentials.update("cred", owner="data-eng")
    src.storage_credentials.create(
        name="azsp",
        azure_service_principal=uc.AzureServicePrincipal(
            directory_id="tenant", application_id="app-1", client_secret="s3cr3t-value"
        ),
    )
    src.external_locations.create(name="lake", url="s3://prod-bucket/uc", credential_name="cred", comment="lake")
    src.external_locations.create(name="logs", url="s3://prod-bucket/logs", credential_name="cred")
    src.external_locations.create(name="raw", url="s3://other-bucket/raw", credential_name="cred")
    src.external_locations.update("lake", owner="data-eng")
    return pair


def test_credentials_and_locations_are_created_with_mapped_identity_and_urls(source: Pair) -> None:
    """A user sees the DR role and the DR bucket on the standby, the owner copied, and nothing pointing at the
    production bucket; an unmapped URL and a write-only secret are blocked with the reason."""
    pair = source
    reports = sync(pair)
    assert reports["storage_credentials"].created == 1 and reports["storage_credentials"].blocked == 1
    assert reports["external_locations"].created == 2 and reports["external_locations"].blocked == 1

    cred = pair.dst.storage_credentials.get("cred")
    assert cred.aws_iam_role and cred.aws_iam_role.role_arn == DR_ROLE
    assert cred.comment == "prod access" and cred.owner == "data-eng"
    lake = pair.dst.external_locations.get("lake")
    assert lake.url == "s3://dr-bucket/uc" and lake.credential_name == "cred" and lake.owner == "data-eng"
    assert pair.dst.external_locations.get("logs").url == "s3://dr-bucket/logs"
    urls = [loc.url or "" for loc in pair.dst.external_locations.list()]
    assert not any("prod-bucket" in u or "other-bucket" in u for u in urls)

    statuses = rows(pair, "external_locations")
    assert statuses["raw"]["status"] == "blocked"
    assert "mapping.storage_urls" in last_error(pair, "external_locations", "raw")
    assert rows(pair, "storage_credentials")["azsp"]["status"] == "blocked"
    assert "create it on the target by hand" in last_error(pair, "storage_credentials", "azsp")
    assert "s3cr3t-value" not in pair.state_path.read_bytes().decode("utf-8", "replace")


def test_no_change_cycle_writes_nothing_and_an_edit_is_an_update(source: Pair) -> None:
    pair = source
    sync(pair)
    pair.reset_stats()
    reports = sync(pair)
    assert pair.target_writes() == 0
    assert reports["storage_credentials"].created == reports["storage_credentials"].updated == 0
    assert reports["external_locations"].created == reports["external_locations"].updated == 0

    pair.src.external_locations.update("lake", comment="the lake, edited")
    reports = sync(pair)
    assert reports["external_locations"].updated == 1
    assert pair.dst.external_locations.get("lake").comment == "the lake, edited"


def test_mapping_added_later_unblocks_and_a_hand_made_credential_is_adopted(source: Pair) -> None:
    """The blocked location follows once its mapping exists; the Azure credential once a person made it."""
    pair = source
    sync(pair)
    pair.dst.storage_credentials.create(
        name="azsp",
        azure_service_principal=uc.AzureServicePrincipal(
            directory_id="tenant", application_id="app-1", client_secret="x"
        ),
    )
    mapping = {**MAPPING, "storage_urls": {**MAPPING["storage_urls"], "s3://other-bucket": "s3://dr-other"}}
    reports = sync(pair, mapping=mapping)
    assert reports["external_locations"].created == 1
    assert pair.dst.external_locations.get("raw").url == "s3://dr-other/raw"
    assert rows(pair, "storage_credentials")["azsp"] == {"status": "synced", "origin": "adopted"}


def test_only_what_dbsync_created_is_deleted(source: Pair) -> None:
    pair = source
    pair.dst.storage_credentials.create(name="dr-own", aws_iam_role=uc.AwsIamRoleRequest(role_arn=DR_ROLE))
    pair.dst.external_locations.create(name="dr-scratch", url="s3://dr-scratch/x", credential_name="dr-own")
    sync(pair)
    pair.src.external_locations.delete("logs")
    reports = sync(pair)
    assert reports["external_locations"].deleted == 1
    names = {loc.name for loc in pair.dst.external_locations.list()}
    assert "logs" not in names and {"lake", "dr-scratch"} <= names
    assert {c.name for c in pair.dst.storage_credentials.list()} >= {"cred", "dr-own"}


def test_a_standby_in_the_primary_metastore_is_never_written(source: Pair) -> None:
    """Two workspaces of one metastore see the same securables: adopting them would rewrite production's."""
    pair = source
    shared = pair.src.storage_credentials.get("cred").metastore_id
    pair.target.workspace.metastore_id = shared  # the emulator's stand-in for a metastore assignment
    pair.dst.storage_credentials.create(name="cred", aws_iam_role=uc.AwsIamRoleRequest(role_arn=PROD_ROLE))
    pair.reset_stats()
    reports = sync(pair)
    assert reports["storage_credentials"].errors >= 1
    assert "both workspaces use metastore" in last_error(pair, "storage_credentials", "cred")
    assert pair.dst.storage_credentials.get("cred").aws_iam_role.role_arn == PROD_ROLE  # untouched


def test_validate_lists_blocked_securables_as_manual_actions_and_is_not_ready(source: Pair) -> None:
    """What a person must do (add a mapping, create a credential) is in the report; the standby is not ready."""
    pair = source
    sync(pair)
    ctx = pair.context(mapping=MAPPING)
    try:
        report = validate(ctx, KINDS)
    finally:
        ctx.store.close()
    actions = {(a["kind"], a["key"]): a["action"] for a in report.manual_actions}
    assert "mapping.storage_urls" in actions[("external_locations", "raw")]
    assert "create it on the target by hand" in actions[("storage_credentials", "azsp")]
    assert not report.ready_for_cutover
    assert any("blocked" in reason for reason in report.reasons), report.reasons
