"""Many workspace pairs in one release (issue 21, item 4): `pairs:` renders one StatefulSet, Secret, ConfigMap, Service,
ServiceMonitor and PVC per pair, named by the pair; the series, alerts and dashboard tell the pairs apart by a `pair`
label. Rendered with Helm v4 as a library and validated offline against the Kubernetes 1.25 and 1.37 schemas, as
tests/test_deploy.py does for the single-pair values."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_deploy import (  # noqa: F401
    CHART,
    DASHBOARD,
    KUBE_VERSIONS,
    REQUIRED,
    RULES,
    _values,
    chart,
    helm,
    kubernetes_validate,
    notes,
    one,
    render,
)

PAIRS = CHART / "examples" / "pairs.yaml"
NAMES = ("emea", "us", "apac")


def _by_kind(manifests: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {m["metadata"]["name"]: m for m in manifests if m["kind"] == kind}


def test_the_pairs_example_renders_one_set_of_resources_per_pair(chart: Any) -> None:  # noqa: F811
    manifests = render(chart, _values(PAIRS))
    expected = {f"dbsync-{n}" for n in NAMES}
    for kind in ("StatefulSet", "ConfigMap", "Service", "ServiceMonitor"):
        assert set(_by_kind(manifests, kind)) >= expected, kind
    assert not _by_kind(manifests, "Secret")  # every pair names its own existingSecret
    assert len(_by_kind(manifests, "ServiceAccount")) == 1 and len(_by_kind(manifests, "PrometheusRule")) == 1
    selectors = []
    for name in NAMES:
        statefulset = _by_kind(manifests, "StatefulSet")[f"dbsync-{name}"]
        pod = statefulset["spec"]["template"]["spec"]
        (main,) = pod["containers"]
        assert statefulset["spec"]["replicas"] == 1 and statefulset["spec"]["serviceName"] == f"dbsync-{name}"
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert volumes["config"]["configMap"]["name"] == f"dbsync-{name}"  # its own dbsync.yaml
        refs = {e["valueFrom"]["secretKeyRef"]["name"] for e in main["env"] if "valueFrom" in e}
        assert refs == {f"dbsync-{name}-tokens"}  # its own tokens, never another pair's
        (claim,) = statefulset["spec"]["volumeClaimTemplates"]  # its own PVC: data-dbsync-<pair>-0
        assert claim["metadata"]["labels"]["dbsync.io/pair"] == name
        selector = statefulset["spec"]["selector"]["matchLabels"]
        assert selector["dbsync.io/pair"] == name
        assert selector.items() <= statefulset["spec"]["template"]["metadata"]["labels"].items()
        selectors.append(selector)
        config = yaml.safe_load(_by_kind(manifests, "ConfigMap")[f"dbsync-{name}"]["data"]["dbsync.yaml"])
        assert config["source"]["host"] == f"https://{name}-primary.cloud.databricks.com"
        assert config["deletes"] == {"mode": "archive", "max_ratio": 0.1}  # inherited from the top-level config
        service = _by_kind(manifests, "Service")[f"dbsync-{name}"]
        assert service["spec"]["selector"] == selector
        monitor = _by_kind(manifests, "ServiceMonitor")[f"dbsync-{name}"]
        assert monitor["spec"]["selector"]["matchLabels"] == selector
        (endpoint,) = monitor["spec"]["endpoints"]
        assert endpoint["authorization"]["credentials"]["name"] == f"dbsync-{name}-tokens"
        assert {"targetLabel": "pair", "replacement": name} in endpoint["relabelings"]
    assert len({json.dumps(s, sort_keys=True) for s in selectors}) == len(NAMES)  # no pod matches two pairs


def test_the_install_notes_name_every_pair_and_the_right_secret(chart: Any) -> None:  # noqa: F811
    text = notes(chart, _values(PAIRS))
    assert all(f"statefulset dbsync-{n}" in text.lower() for n in NAMES), text
    assert "get secret dbsync-emea-tokens" in text and "WARNING" not in text


def test_the_pairs_example_lints_clean_under_strict(helm: Any) -> None:  # noqa: F811
    report = helm.lint(CHART, _values(PAIRS), strict=True)
    problems = [m for m in report["messages"] if m["severity"] >= 2]  # 1 is info ("icon is recommended")
    assert not problems and not report["errors"], json.dumps(report, indent=2)


def test_the_pairs_example_matches_the_kubernetes_schemas(chart: Any, kubernetes_validate: Any) -> None:  # noqa: F811
    for manifest in render(chart, _values(PAIRS)):
        if manifest["apiVersion"].startswith("monitoring.coreos.com/"):
            continue  # CRDs: no schema in kubernetes-validate (checked structurally above)
        for version in KUBE_VERSIONS:
            kubernetes_validate.validate(manifest, version, strict=True)


def test_chart_secrets_are_made_per_pair(chart: Any) -> None:  # noqa: F811
    values = _values(PAIRS)
    values["pairs"][1]["tokens"] = {"source": "dapi-us-source-1a2b", "target": "dapi-us-target-3c4d"}
    secrets = _by_kind(render(chart, values), "Secret")
    assert set(secrets) == {"dbsync-us-tokens"}
    assert "server-auth-token" in secrets["dbsync-us-tokens"]["data"]  # auth on: a generated token for the pair


def test_one_release_per_pair_keeps_its_names_and_selector_and_gains_the_pair_label(chart: Any) -> None:  # noqa: F811
    manifests = render(chart, {**REQUIRED, "serviceMonitor": {"enabled": True}})
    statefulset = one(manifests, "StatefulSet")
    assert statefulset["metadata"]["name"] == "dbsync"
    # A StatefulSet's selector is immutable: an upgrade of an existing release must not change it.
    assert statefulset["spec"]["selector"]["matchLabels"] == {
        "app.kubernetes.io/name": "dbsync",
        "app.kubernetes.io/instance": "dbsync",
    }
    assert statefulset["spec"]["template"]["metadata"]["labels"]["dbsync.io/pair"] == "dbsync"
    (endpoint,) = one(manifests, "ServiceMonitor")["spec"]["endpoints"]
    assert {"targetLabel": "pair", "replacement": "dbsync"} in endpoint["relabelings"]


@pytest.mark.parametrize(
    ("values", "complaint"),
    [
        ({}, "at '/config/source/host': minLength"),
        ({}, "at '/tokens': 'anyOf' failed"),
        ({"config": REQUIRED["config"]}, "at '/tokens/existingSecret': minLength"),
        ({"pairs": [{"name": "emea", "config": {"source": {"host": "https://a"}}, "tokens": {}}]}, "'target'"),
        ({"pairs": [{"name": "EMEA", **REQUIRED}]}, "at '/pairs/0/name'"),
        ({"pairs": [{"name": "emea", "config": REQUIRED["config"]}]}, "missing property 'tokens'"),
    ],
)
def test_install_fails_with_the_missing_value_named_not_a_crash_looping_pod(
    helm: Any,  # noqa: F811
    chart: Any,  # noqa: F811
    values: dict[str, Any],
    complaint: str,
) -> None:
    with pytest.raises(helm.HelmValuesError, match=re.escape(complaint)):
        chart.render(values, name="dbsync", namespace="dr", is_install=True)


def test_alerts_and_dashboard_tell_the_pairs_apart() -> None:
    for rule in (r for group in yaml.safe_load(RULES.read_text())["groups"] for r in group["rules"]):
        for clause in re.findall(r"by \(([^)]*)\)", rule["expr"]):
            assert "pair" in [c.strip() for c in clause.split(",")], (rule["alert"], clause)
    dashboard = json.loads(Path(DASHBOARD).read_text())
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert "label_values(dbsync_cutover_state, pair)" in json.dumps(variables["pair"]["query"])
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    assert exprs and all('pair=~"$pair"' in e for e in exprs)
