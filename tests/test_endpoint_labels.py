"""`dbsync_api_requests_total{endpoint}` names an endpoint, never an object (README "Metrics").

Defect: the endpoint label made `{id}` only of path segments with a digit, so Unity Catalog's names went into it
as they were (`/api/2.1/unity-catalog/catalogs/payroll`, `/permissions/CATALOG/payroll`): a catalog's name in every
scrape, and one series per catalog, schema, volume, serving endpoint... Now a label keeps only the API's own words.
"""

from __future__ import annotations

import re

import pytest
from conftest import Pair
from databricks.sdk.service import catalog as uc
from prometheus_client import REGISTRY

from dbsync.workspace import endpoint_template
from dbsync_emulator import apis
from dbsync_emulator.apis import permissions

# What a request names in its path: plain names, a name that is one of the API's own words, ids of every shape.
NAMES = ("payroll", "list", "1234", "sales.default.files", "0601-182128-dcbte59m", "ana@example.com")
UC_SECURABLES = ("CATALOG", "SCHEMA", "TABLE", "VOLUME", "FUNCTION", "STORAGE_CREDENTIAL", "EXTERNAL_LOCATION")
PARAMETER = re.compile(r"\{(\w+)(?::path)?\}")


def _labels() -> set[str]:
    return {
        sample.labels["endpoint"]
        for metric in REGISTRY.collect()
        if metric.name == "dbsync_api_requests"
        for sample in metric.samples
    }


def test_uc_names_never_reach_the_endpoint_label(pair: Pair) -> None:
    src = pair.src
    for name in ("payroll", "list"):  # `list` is one of the API's words: still a name after `catalogs/`
        src.catalogs.create(name=name)
        src.grants.update(
            "CATALOG", name, changes=[uc.PermissionsChange(principal="users", add=[uc.Privilege.USE_CATALOG])]
        )
    reports = pair.sync(only=["catalogs", "uc_grants"])
    assert reports["catalogs"].errors == 0 and reports["uc_grants"].errors == 0
    assert {"payroll", "list"} <= {c.name for c in pair.dst.catalogs.list()}

    labels = _labels()  # the process's registry: earlier tests' labels too (/api/2.2/jobs/list is an endpoint)
    named = [label for label in labels if "payroll" in label or label.endswith(("catalogs/list", "CATALOG/list"))]
    assert not named, sorted(labels)
    assert "/api/2.1/unity-catalog/catalogs/{id}" in labels
    assert "/api/2.1/unity-catalog/permissions/CATALOG/{id}" in labels


def _requests(template: str) -> list[tuple[str, str]]:
    """(a path the route serves, the label it must get) for each name a request may carry there."""
    if template.startswith("/api/2.0/permissions/"):
        types = sorted(permissions.TYPES)  # every object type the Permissions API answers
    else:
        types = [*UC_SECURABLES, *(t.lower() for t in UC_SECURABLES)]
    out = []
    for name in NAMES:
        for kind in types if "{type" in template else [""]:
            path, label = template, template
            for match in PARAMETER.finditer(template):
                param = match.group(0)
                if match.group(1) == "type":
                    path, label = path.replace(param, kind), label.replace(param, kind)
                elif param.endswith(":path}"):  # a file's path: /fs/files/Volumes/main/raw/payroll.csv
                    path, label = path.replace(param, f"/Volumes/main/{name}/a.csv"), label.replace(param, "/{path}")
                else:
                    path, label = path.replace(param, name), label.replace(param, "{id}")
            out.append((path, label))
    return out


def _templates() -> list[str]:
    routes = apis.all_routes()
    return sorted({template for _, template in routes.static} | {route.template for route in routes.dynamic})


@pytest.mark.parametrize("template", _templates())
def test_every_endpoint_the_emulator_serves_has_a_bounded_label(template: str) -> None:
    """Each route's label is the route itself: its words kept, each name `{id}`, whatever the name is."""
    for path, label in _requests(template):
        assert endpoint_template(path) == label, path
