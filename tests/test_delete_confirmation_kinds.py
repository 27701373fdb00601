"""Every kind whose source listing pages by token confirms a delete with one read of the object on the source.

A page token is an offset: when an object is deleted on the source while a listing is read, the next page starts one
object later, and an object the source still has is not listed (the emulator's `skip_object` fault rule answers a
page that way). SQL queries and alerts, Lakeview dashboards, notification destinations, MLflow experiments and
registered models, and the Unity Catalog securables trusted such a listing: the delete guard let the one delete
through, and the target lost a copy of a live object. Each kind now reads the object (one GET) before deleting its
copy: an object that answers is kept (event outcome `kept`), and one the service answers as gone is deleted: a 404,
a query, alert or dashboard in the trash (lifecycle_state TRASHED), an experiment in lifecycle_stage "deleted".
All over HTTP with the real SDK.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from conftest import Pair
from databricks.sdk import WorkspaceClient
from databricks.sdk.service import catalog as uc
from databricks.sdk.service import settings
from databricks.sdk.service.dashboards import Dashboard
from sql_objects import make_alert, make_query, make_warehouse
from test_sync_uc_catalogs import add_one

UC = "/api/2.1/unity-catalog"
STORAGE_URLS = {"mapping": {"storage_urls": {"s3://prod-bucket/uc": "s3://dr-bucket/uc"}}}


@dataclass(frozen=True)
class Paged:
    """One kind, listed by token on the source: how a user makes, deletes and sees its objects."""

    kinds: list[str]  # synced together, the kind under test last (the others are what it needs on the target)
    listing: str  # the path of its source listing
    make: Callable[[WorkspaceClient, int], str]  # the i-th object on the source: its key
    delete: Callable[[WorkspaceClient, str], None]  # as a user deletes it on the source
    names: Callable[[WorkspaceClient], list[str]]  # the names of the kind's objects in a workspace
    query: dict[str, str] = field(default_factory=dict)  # narrows the fault to one listing (a schema's)
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return self.kinds[-1]


def _warehouse(w: WorkspaceClient) -> str:
    return next((x.id or "" for x in w.warehouses.list()), "") or make_warehouse(w)


def _query(w: WorkspaceClient, i: int) -> str:
    return make_query(w, f"q{i}", _warehouse(w)).id or ""


def _alert(w: WorkspaceClient, i: int) -> str:
    return make_alert(w, f"a{i}", _query(w, i)).id or ""


def _dashboard(w: WorkspaceClient, i: int) -> str:
    return w.lakeview.create(Dashboard(display_name=f"d{i}", parent_path="/Shared")).dashboard_id or ""


def _destination(w: WorkspaceClient, i: int) -> str:
    config = settings.Config(email=settings.EmailConfig(addresses=[f"ops{i}@example.com"]))
    return w.notification_destinations.create(display_name=f"n{i}", config=config).id or ""


def _experiment(w: WorkspaceClient, i: int) -> str:
    return w.experiments.create_experiment(f"/Shared/e{i}").experiment_id


def _model(w: WorkspaceClient, i: int) -> str:
    w.model_registry.create_model(f"m{i}")
    return f"m{i}"


def _catalog(w: WorkspaceClient, i: int) -> str:
    return w.catalogs.create(name=f"c{i}").name or ""


def _volume(w: WorkspaceClient, i: int) -> str:
    if not any(c.name == "vols" for c in w.catalogs.list()):
        w.catalogs.create(name="vols")
    # External: a managed volume is never deleted on the target (its files would go), so it could not show a delete.
    location = f"s3://prod-bucket/uc/v{i}"
    return w.volumes.create("vols", "default", f"v{i}", uc.VolumeType.EXTERNAL, storage_location=location).full_name


def _function(w: WorkspaceClient, i: int) -> str:
    spec = add_one("main", "default")
    spec.name = spec.specific_name = f"f{i}"
    return w.functions.create(spec).full_name or ""


def _credential(w: WorkspaceClient, i: int) -> str:
    role = uc.AwsIamRoleRequest(role_arn=f"arn:aws:iam::1:role/r{i}")
    return w.storage_credentials.create(name=f"cred{i}", aws_iam_role=role).name or ""


def _location(w: WorkspaceClient, i: int) -> str:
    if not any(c.name == "cred" for c in w.storage_credentials.list()):
        w.storage_credentials.create(name="cred", aws_iam_role=uc.AwsIamRoleRequest(role_arn="arn:aws:iam::1:role/r"))
    return w.external_locations.create(name=f"loc{i}", url=f"s3://prod-bucket/uc/l{i}", credential_name="cred").name


def _connection(w: WorkspaceClient, i: int) -> str:
    # A Glue connection has no secret option: it is created without a values source.
    options = {"aws_region": "us-east-1", "aws_account_id": f"{i}"}
    return w.connections.create(name=f"glue{i}", connection_type=uc.ConnectionType.GLUE, options=options).name


TRASHED = {
    "sql_queries": Paged(
        ["sql_warehouses", "sql_queries"],
        "/api/2.0/sql/queries",
        _query,
        lambda w, key: w.queries.delete(key),
        lambda w: [q.display_name or "" for q in w.queries.list()],
    ),
    "sql_alerts": Paged(
        ["sql_warehouses", "sql_queries", "sql_alerts"],
        "/api/2.0/sql/alerts",
        _alert,
        lambda w, key: w.alerts.delete(key),
        lambda w: [a.display_name or "" for a in w.alerts.list()],
    ),
    "dashboards": Paged(
        ["dashboards"],
        "/api/2.0/lakeview/dashboards",
        _dashboard,
        lambda w, key: w.lakeview.trash(key),
        lambda w: [d.display_name or "" for d in w.lakeview.list()],
    ),
}
DELETED = {
    "notification_destinations": Paged(
        ["notification_destinations"],
        "/api/2.0/notification-destinations",
        _destination,
        lambda w, key: w.notification_destinations.delete(key),
        lambda w: [d.display_name or "" for d in w.notification_destinations.list()],
    ),
    "mlflow_experiments": Paged(
        ["mlflow_experiments"],
        "/api/2.0/mlflow/experiments/list",
        _experiment,
        lambda w, key: w.experiments.delete_experiment(key),
        lambda w: [e.name or "" for e in w.experiments.list_experiments() if (e.name or "").startswith("/Shared/")],
    ),
    "registered_models": Paged(
        ["registered_models"],
        "/api/2.0/mlflow/registered-models/search",
        _model,
        lambda w, key: w.model_registry.delete_model(key),
        lambda w: [m.name or "" for m in w.model_registry.search_models()],
    ),
}
UNITY_CATALOG = {
    "storage_credentials": Paged(
        ["storage_credentials"],
        f"{UC}/storage-credentials",
        _credential,
        lambda w, key: w.storage_credentials.delete(key),
        lambda w: [c.name or "" for c in w.storage_credentials.list()],
    ),
    "external_locations": Paged(
        ["storage_credentials", "external_locations"],
        f"{UC}/external-locations",
        _location,
        lambda w, key: w.external_locations.delete(key),
        lambda w: [x.name or "" for x in w.external_locations.list()],
        settings=STORAGE_URLS,
    ),
    "connections": Paged(
        ["connections"],
        f"{UC}/connections",
        _connection,
        lambda w, key: w.connections.delete(key),
        lambda w: [c.name or "" for c in w.connections.list()],
    ),
    "catalogs": Paged(
        ["catalogs"],
        f"{UC}/catalogs",
        _catalog,
        lambda w, key: w.catalogs.delete(key, force=True),
        lambda w: [c.name or "" for c in w.catalogs.list() if (c.name or "").startswith("c")],
    ),
    "volumes": Paged(
        ["catalogs", "volumes"],
        f"{UC}/volumes",
        _volume,
        lambda w, key: w.volumes.delete(key),
        lambda w: [v.name or "" for v in w.volumes.list("vols", "default")],
        query={"catalog_name": "vols"},
        settings=STORAGE_URLS,
    ),
    "functions": Paged(
        ["functions"],
        f"{UC}/functions",
        _function,
        lambda w, key: w.functions.delete(key),
        lambda w: [f.name or "" for f in w.functions.list("main", "default")],
        query={"catalog_name": "main"},
    ),
}


def _kept(pair: Pair, kind: str) -> list[str]:
    """The keys of the `kind` objects whose delete the source did not confirm (event outcome `kept`)."""
    ctx = pair.context()
    try:
        return [e["source_key"] for e in ctx.store.events(200, outcome="kept") if e["kind"] == kind]
    finally:
        ctx.store.close()


def _skipped_copy_stays_and_a_deleted_one_goes(pair: Pair, case: Paged) -> None:
    keys = [case.make(pair.src, i) for i in range(6)]
    assert pair.sync(only=case.kinds, **case.settings)[case.kind].errors == 0
    copies = sorted(case.names(pair.dst))
    assert copies == sorted(case.names(pair.src)) and len(copies) == 6

    # The listing's page leaves out a live object, as when another one is deleted while the listing is read.
    rule = {"action": "skip_object", "method": "GET", "path": case.listing, "query": case.query, "times": 1}
    pair.source.set_faults(rules=[rule])
    report = pair.sync(only=case.kinds, **case.settings)[case.kind]

    assert report.deleted == 0 and report.errors == 0
    assert sorted(case.names(pair.dst)) == copies
    assert len(_kept(pair, case.kind)) == 1 and _kept(pair, case.kind)[0] in keys

    # An object really deleted on the source (trashed, in lifecycle stage "deleted", or gone) is still deleted.
    pair.source.set_faults(rules=[])
    case.delete(pair.src, keys[-1])
    report = pair.sync(only=case.kinds, **case.settings)[case.kind]

    assert report.deleted == 1 and report.errors == 0
    assert sorted(case.names(pair.dst)) == sorted(set(copies) - {copies[-1]})
    assert len(_kept(pair, case.kind)) == 1


@pytest.mark.parametrize("kind", sorted(TRASHED))
def test_a_trashable_object_a_shifted_page_skipped_is_kept_and_a_trashed_one_is_deleted(pair: Pair, kind: str) -> None:
    _skipped_copy_stays_and_a_deleted_one_goes(pair, TRASHED[kind])


@pytest.mark.parametrize("kind", sorted(DELETED))
def test_a_destination_experiment_or_model_a_shifted_page_skipped_is_kept_and_a_deleted_one_is_deleted(
    pair: Pair, kind: str
) -> None:
    _skipped_copy_stays_and_a_deleted_one_goes(pair, DELETED[kind])


@pytest.mark.parametrize("kind", sorted(UNITY_CATALOG))
def test_a_unity_catalog_securable_a_shifted_page_skipped_is_kept_and_a_dropped_one_is_deleted(
    pair: Pair, kind: str
) -> None:
    _skipped_copy_stays_and_a_deleted_one_goes(pair, UNITY_CATALOG[kind])
