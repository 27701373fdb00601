"""Model serving endpoints between two emulated workspaces: the config (served entities, traffic, workload,
environment variables with secret references kept as references), tags and AI gateway, scaled to zero on
the standby, ACLs through `permissions` (type serving-endpoints, by endpoint id).

Shapes from databricks-sdk `service/serving.py`; the deprecated endpoint rate limits have no read in the
API (`ServingEndpointDetailed` has no `rate_limits`), so only the AI gateway's limits can be copied.
"""

from __future__ import annotations

from conftest import Pair
from databricks.sdk.service import serving

from dbsync.cutover import Runbook, open_cutover_context
from dbsync.store import Store
from dbsync_emulator import EmulatorHandle

KINDS = ["groups", "secret_scopes", "registered_models", "serving_endpoints", "permissions"]
ENV = {"API_KEY": "{{secrets/serving/api_key}}", "MODE": "prod"}
GATEWAY = serving.AiGatewayConfig(
    usage_tracking_config=serving.AiGatewayUsageTrackingConfig(enabled=True),
    rate_limits=[
        serving.AiGatewayRateLimit(
            calls=100,
            renewal_period=serving.AiGatewayRateLimitRenewalPeriod.MINUTE,
            key=serving.AiGatewayRateLimitKey.USER,
        )
    ],
)


def _seed(pair: Pair) -> str:
    src = pair.src
    src.model_registry.create_model("churn")
    src.model_registry.create_model_version("churn", source="dbfs:/models/churn/1")
    src.model_registry.create_model_version("churn", source="dbfs:/models/churn/2")
    src.secrets.create_scope("serving")
    src.groups.create(display_name="data-science")
    entity = serving.ServedEntityInput(
        entity_name="churn",
        entity_version="2",
        workload_size="Medium",
        scale_to_zero_enabled=False,
        environment_vars=ENV,
    )
    created = src.serving_endpoints.create(
        name="churn-endpoint",
        config=serving.EndpointCoreConfigInput(name="churn-endpoint", served_entities=[entity]),
        tags=[serving.EndpointTag(key="team", value="ml")],
        ai_gateway=GATEWAY,
        description="churn scores",
    ).response
    src.serving_endpoints.set_permissions(
        created.id or "",
        access_control_list=[
            serving.ServingEndpointAccessControlRequest(
                group_name="data-science", permission_level=serving.ServingEndpointPermissionLevel.CAN_QUERY
            )
        ],
    )
    return created.id or ""


def _target(pair: Pair) -> serving.ServingEndpointDetailed:
    return pair.dst.serving_endpoints.get("churn-endpoint")


def _entities(endpoint: serving.ServingEndpointDetailed) -> list[serving.ServedEntityOutput]:
    config = endpoint.pending_config or endpoint.config
    return list(config.served_entities or []) if config else []


def _finish_deployments(handle: EmulatorHandle) -> None:
    """Every config still deploying in an emulator is done now (the clock would get there in 0.1 s)."""
    with handle.workspace.lock:
        for record in handle.workspace.table("serving_endpoints").values():
            if record.get("pending"):
                record["pending"]["ready_ms"] = 0


def _config_puts(pair: Pair) -> int:
    endpoints = pair.target.stats.document()["endpoints"]
    return sum(v["count"] for k, v in endpoints.items() if k.startswith("PUT") and k.endswith("/config"))


def test_endpoints_reach_the_standby_scaled_to_zero_with_their_references_and_acls(pair: Pair) -> None:
    source_id = _seed(pair)
    reports = pair.sync(only=KINDS)
    assert reports["serving_endpoints"].created == 1 and reports["serving_endpoints"].errors == 0

    endpoint = _target(pair)
    assert endpoint.id != source_id
    (entity,) = _entities(endpoint)
    assert (entity.entity_name, entity.entity_version, entity.workload_size) == ("churn", "2", "Medium")
    assert entity.scale_to_zero_enabled is True, "the standby copy scales to zero where the source did not"
    assert entity.environment_vars == ENV, "secret references stay references"
    assert {(t.key, t.value) for t in endpoint.tags or []} == {("team", "ml"), ("dbsync_source_id", "churn-endpoint")}
    assert endpoint.ai_gateway is not None and endpoint.ai_gateway.rate_limits[0].calls == 100
    assert endpoint.description == "churn scores"
    acl = pair.dst.serving_endpoints.get_permissions(endpoint.id or "").access_control_list or []
    assert any(
        a.group_name == "data-science" and a.all_permissions[0].permission_level.value == "CAN_QUERY" for a in acl
    )

    # no change: nothing written to the target, and a deployment finishing there is not a hand edit
    _finish_deployments(pair.source)
    _finish_deployments(pair.target)
    pair.reset_stats()
    reports = pair.sync(only=["serving_endpoints"])
    assert reports["serving_endpoints"].created == reports["serving_endpoints"].updated == 0
    assert reports["serving_endpoints"].drifted == 0
    assert pair.target_writes() == 0

    # a tag change is a tag PATCH, not a redeploy of the config
    pair.src.serving_endpoints.patch("churn-endpoint", add_tags=[serving.EndpointTag(key="tier", value="gold")])
    pair.reset_stats()
    reports = pair.sync(only=["serving_endpoints"])
    assert reports["serving_endpoints"].updated == 1
    assert ("tier", "gold") in {(t.key, t.value) for t in _target(pair).tags or []}
    assert _config_puts(pair) == 0

    pair.src.serving_endpoints.create(name="fraud-endpoint")  # the kind keeps an object: no delete guard
    pair.src.serving_endpoints.delete("churn-endpoint")
    reports = pair.sync(only=["serving_endpoints"])
    assert reports["serving_endpoints"].deleted == 1
    assert [e.name for e in pair.dst.serving_endpoints.list()] == ["fraud-endpoint"]


def test_a_lost_store_finds_its_own_endpoint_and_keeps_the_teams(pair: Pair) -> None:
    _seed(pair)
    pair.sync(only=KINDS)
    pair.dst.serving_endpoints.create(name="dr-only")
    pair.src.serving_endpoints.create(name="dr-only")
    pair.state_path.unlink()
    reports = pair.sync(only=KINDS)
    assert reports["serving_endpoints"].errors == 0
    assert sorted(e.name for e in pair.dst.serving_endpoints.list()) == ["churn-endpoint", "dr-only"]
    store = Store(pair.state_path)
    origins = {p.key: p.origin for p in store.priors("serving_endpoints")}
    store.close()
    assert origins == {"churn-endpoint": "created", "dr-only": "adopted"}


def test_cutover_gives_the_new_primary_the_source_scaling_and_rollback_scales_it_to_zero_again(pair: Pair) -> None:
    _seed(pair)
    ready = {"identities": {"create_users": True}}
    pair.sync(**ready)
    assert _entities(_target(pair))[0].scale_to_zero_enabled is True
    _finish_deployments(pair.source)
    _finish_deployments(pair.target)

    ctx = open_cutover_context(pair.settings(**ready))
    lines = Runbook(ctx).plan()
    ctx.store.close()
    assert any(
        "1 serving endpoint(s) given the source's scaling" in line and "churn-endpoint" in line for line in lines
    )

    ctx = open_cutover_context(pair.settings(**ready))
    Runbook(ctx).run()
    ctx.store.close()
    assert _entities(_target(pair))[0].scale_to_zero_enabled is False, "served warm, as on the source"

    _finish_deployments(pair.target)
    ctx = open_cutover_context(pair.settings(**ready))
    Runbook(ctx).rollback()
    ctx.store.close()
    assert _entities(_target(pair))[0].scale_to_zero_enabled is True, "a standby again: scaled to zero"
