"""Pipelines, model serving endpoints, notification destinations and Lakeview dashboard schedules and
subscriptions in the emulator, driven over HTTP by the real databricks-sdk (shapes from the SDK's
`service/pipelines.py`, `service/serving.py`, `service/settings.py` and `service/dashboards.py`)."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import (
    Aborted,
    InvalidParameterValue,
    NotFound,
    ResourceAlreadyExists,
    ResourceConflict,
)
from databricks.sdk.service import dashboards, serving, settings
from databricks.sdk.service import pipelines as dlt
from databricks.sdk.service.workspace import ImportFormat, Language
from freezegun import freeze_time
from freezegun.api import FrozenDateTimeFactory

NOTEBOOK = "/Shared/dlt/bronze"


@pytest.fixture
def clock() -> Iterator[FrozenDateTimeFactory]:
    """Frozen time shared by the test and the emulator thread; tick() moves updates and deployments."""
    with freeze_time("2025-03-04 05:06:07") as frozen:
        yield frozen


@pytest.fixture
def notebook(w: WorkspaceClient) -> str:
    w.workspace.mkdirs("/Shared/dlt")
    source = base64.b64encode(b"import dlt\n").decode()
    w.workspace.import_(NOTEBOOK, content=source, format=ImportFormat.SOURCE, language=Language.PYTHON)
    return NOTEBOOK


def _library(path: str) -> list[dlt.PipelineLibrary]:
    return [dlt.PipelineLibrary(notebook=dlt.NotebookLibrary(path=path))]


def _states(w: WorkspaceClient, pipeline_id: str) -> list[str]:
    updates = w.pipelines.list_updates(pipeline_id).updates or []
    return [u.state.value for u in updates if u.state]


# -- pipelines ----------------------------------------------------------------------------------------
def test_triggered_pipeline_is_idle_until_started_and_its_update_runs_on_the_clock(
    w: WorkspaceClient, notebook: str, clock: FrozenDateTimeFactory
) -> None:
    """A triggered pipeline does not run on create (terraform's resource_pipeline.go returns at once when
    spec.continuous is false); an update started through the API waits for resources, runs, completes."""
    created = w.pipelines.create(
        name="orders",
        libraries=_library(notebook),
        clusters=[dlt.PipelineCluster(label="default", num_workers=2)],
        configuration={"source": "s3://raw/orders"},
        target="bronze",
        notifications=[dlt.Notifications(email_recipients=["ops@example.com"], alerts=["on-update-failure"])],
    )
    assert created.pipeline_id and created.effective_settings is None
    got = w.pipelines.get(created.pipeline_id)
    assert got.state == dlt.PipelineState.IDLE and not got.latest_updates
    assert got.spec is not None and got.spec.id == created.pipeline_id
    assert got.spec.channel == "CURRENT" and got.spec.edition == "ADVANCED" and got.spec.continuous is False
    assert got.spec.storage == f"dbfs:/pipelines/{created.pipeline_id}"  # the service's default storage
    assert got.spec.configuration == {"source": "s3://raw/orders"}
    assert got.run_as_user_name == "admin@example.com"

    update_id = w.pipelines.start_update(created.pipeline_id, full_refresh=True).update_id
    assert w.pipelines.get(created.pipeline_id).state == dlt.PipelineState.STARTING
    with pytest.raises(ResourceConflict):
        w.pipelines.start_update(created.pipeline_id)  # one active update at a time
    clock.tick(3)
    assert w.pipelines.get(created.pipeline_id).state == dlt.PipelineState.RUNNING
    clock.tick(120)
    done = w.pipelines.get_update(created.pipeline_id, update_id).update
    assert done is not None and done.state == dlt.UpdateInfoState.COMPLETED and done.full_refresh is True
    assert done.cause == dlt.UpdateInfoCause.API_CALL and done.config is not None
    assert w.pipelines.get(created.pipeline_id).state == dlt.PipelineState.IDLE


def test_continuous_pipeline_starts_on_create_and_restarts_on_every_edit(
    w: WorkspaceClient, notebook: str, clock: FrozenDateTimeFactory
) -> None:
    """The service starts a continuous pipeline by itself: terraform-provider-databricks
    `pipelines/resource_pipeline.go` waits for state RUNNING after Create and after Update whenever
    spec.continuous is true; databricks/cli issue #6745: every deploy of a continuous pipeline makes the
    service cancel the active update and start a new one (reason SETTINGS_CHANGE), even with no change.
    A standby must therefore create and edit pipelines with continuous=false."""
    created = w.pipelines.create(name="stream", continuous=True, libraries=_library(notebook))
    first = w.pipelines.get(created.pipeline_id)
    assert first.state == dlt.PipelineState.STARTING and len(first.latest_updates or []) == 1
    clock.tick(5)
    assert w.pipelines.get(created.pipeline_id).state == dlt.PipelineState.RUNNING
    clock.tick(3600)
    assert w.pipelines.get(created.pipeline_id).state == dlt.PipelineState.RUNNING  # continuous never completes

    w.pipelines.update(created.pipeline_id, name="stream", continuous=True, libraries=_library(notebook))
    assert _states(w, created.pipeline_id) == ["WAITING_FOR_RESOURCES", "CANCELED"]  # newest first

    w.pipelines.update(created.pipeline_id, name="stream", continuous=False, libraries=_library(notebook))
    assert _states(w, created.pipeline_id) == ["CANCELED", "CANCELED"]
    assert w.pipelines.get(created.pipeline_id).state == dlt.PipelineState.IDLE  # triggered: nothing starts

    w.pipelines.stop_and_wait(created.pipeline_id)  # stopping an idle pipeline is a no-op
    standby = w.pipelines.create(name="standby", continuous=False, libraries=_library(notebook))
    assert w.pipelines.get(standby.pipeline_id).state == dlt.PipelineState.IDLE


def test_stop_cancels_the_update_and_events_tell_the_story(
    w: WorkspaceClient, notebook: str, clock: FrozenDateTimeFactory
) -> None:
    created = w.pipelines.create(name="s", continuous=True, libraries=_library(notebook))
    clock.tick(5)
    stopped = w.pipelines.stop_and_wait(created.pipeline_id)
    assert stopped.state == dlt.PipelineState.IDLE
    assert _states(w, created.pipeline_id) == ["CANCELED"]
    events = list(w.pipelines.list_pipeline_events(created.pipeline_id, max_results=2))  # the SDK pages
    assert [e.event_type for e in events][-1] == "create_update"  # newest first by default
    progress = [e.message for e in events if e.event_type == "update_progress"]
    assert progress[0].endswith("is CANCELED.") and len(progress) == 5
    # the documented filters, composed with AND (SDK docstring of list_pipeline_events)
    since = events[1].timestamp
    recent = w.pipelines.list_pipeline_events(
        created.pipeline_id, filter=f"level in ('INFO', 'WARN') AND timestamp >= '{since}'", order_by=["timestamp asc"]
    )
    assert [e.id for e in recent] == [events[1].id, events[0].id]
    assert [e.id for e in w.pipelines.list_pipeline_events(created.pipeline_id, filter=f"id='{events[2].id}'")] == [
        events[2].id
    ]
    with pytest.raises(InvalidParameterValue):
        list(w.pipelines.list_pipeline_events(created.pipeline_id, filter="origin='x'"))


def test_missing_notebook_fails_the_update_not_the_create(w: WorkspaceClient, clock: FrozenDateTimeFactory) -> None:
    """Sources are read when an update starts: the create succeeds, the update fails at initialisation."""
    created = w.pipelines.create(name="broken", libraries=_library("/Shared/nowhere"))
    w.pipelines.start_update(created.pipeline_id)
    clock.tick(10)
    got = w.pipelines.get(created.pipeline_id)
    assert got.state == dlt.PipelineState.FAILED and got.cause and "/Shared/nowhere" in got.cause
    errors = list(w.pipelines.list_pipeline_events(created.pipeline_id, filter="level='ERROR'"))
    assert len(errors) == 1 and errors[0].level == dlt.EventLevel.ERROR


def test_create_validates_like_the_service(w: WorkspaceClient, notebook: str) -> None:
    w.pipelines.create(name="dup", libraries=_library(notebook))
    with pytest.raises(ResourceConflict):
        w.pipelines.create(name="dup", libraries=_library(notebook))
    assert w.pipelines.create(name="dup", allow_duplicate_names=True, libraries=_library(notebook)).pipeline_id
    with pytest.raises(InvalidParameterValue):
        w.pipelines.create(name="x", storage="dbfs:/p", catalog="main")  # storage XOR catalog
    with pytest.raises(InvalidParameterValue):
        w.pipelines.create(name="x", target="a", schema="b")
    with pytest.raises(InvalidParameterValue):
        w.pipelines.create(name="x", clusters=[dlt.PipelineCluster(instance_pool_id="nope")])
    with pytest.raises(InvalidParameterValue):
        w.pipelines.create(name="x", edition="ULTIMATE")
    with pytest.raises(InvalidParameterValue):  # "clusters must have exactly 1 default cluster" (terraform #1401)
        w.pipelines.create(name="x", clusters=[dlt.PipelineCluster(label="maintenance")])
    uc = w.pipelines.create(name="uc", catalog="Main", schema="bronze", libraries=_library(notebook))
    got = w.pipelines.get(uc.pipeline_id or "").spec
    assert got is not None and got.catalog == "main" and got.storage is None  # catalog normalised on create
    dry = w.pipelines.create(name="dry", dry_run=True, catalog="main", schema="s", serverless=True)
    assert dry.pipeline_id is None and dry.effective_settings is not None
    assert dry.effective_settings.catalog == "main" and dry.effective_settings.storage is None
    assert [p.name for p in w.pipelines.list_pipelines()].count("dry") == 0
    with pytest.raises(NotFound):
        w.pipelines.get("00000000-0000-0000-0000-000000000000")


def test_edit_replaces_the_spec_and_refuses_a_storage_change(w: WorkspaceClient, notebook: str) -> None:
    created = w.pipelines.create(name="e", libraries=_library(notebook), configuration={"a": "1"}, photon=True)
    w.pipelines.update(created.pipeline_id, name="e2", libraries=_library(notebook))
    spec = w.pipelines.get(created.pipeline_id).spec
    assert spec is not None and spec.name == "e2" and spec.configuration is None and spec.photon is False
    with pytest.raises(InvalidParameterValue):
        w.pipelines.update(created.pipeline_id, name="e2", storage="dbfs:/elsewhere")
    with pytest.raises(ResourceConflict):
        w.pipelines.update(created.pipeline_id, name="e2", expected_last_modified=1)
    w.pipelines.delete(created.pipeline_id)
    with pytest.raises(NotFound):
        w.pipelines.get(created.pipeline_id)


def test_list_pages_filters_and_permissions(w: WorkspaceClient, notebook: str) -> None:
    ids = {w.pipelines.create(name=f"p{i:02d}", libraries=_library(notebook)).pipeline_id for i in range(27)}
    listed = list(w.pipelines.list_pipelines(max_results=10))  # the SDK follows next_page_token
    assert {p.pipeline_id for p in listed} == ids and len(listed) == 27
    first = w.api_client.do("GET", "/api/2.0/pipelines")
    assert len(first["statuses"]) == 25 and first["next_page_token"]  # default page: 25
    with pytest.raises(InvalidParameterValue):
        w.api_client.do("GET", "/api/2.0/pipelines", query={"max_results": 101})
    matching = list(w.pipelines.list_pipelines(filter="name LIKE 'p0%'"))  # ordered by id, as the service
    assert sorted(p.name or "" for p in matching) == [f"p0{i}" for i in range(10)]
    assert [p.pipeline_id for p in matching] == sorted(p.pipeline_id or "" for p in matching)
    assert len(list(w.pipelines.list_pipelines(filter=f"notebook='{notebook}'"))) == 27
    w.users.create(user_name="etl@example.com")
    run_as = w.pipelines.create(name="ra", run_as=dlt.RunAs(user_name="etl@example.com"), libraries=_library(notebook))
    assert w.pipelines.get(run_as.pipeline_id or "").run_as_user_name == "etl@example.com"
    with pytest.raises(InvalidParameterValue):
        w.pipelines.create(name="rb", run_as=dlt.RunAs(user_name="ghost@example.com"))
    some = next(iter(ids))
    acl = w.pipelines.get_permissions(some)
    owner = [a for a in acl.access_control_list or [] if a.user_name == "admin@example.com"]
    assert owner and owner[0].all_permissions and owner[0].all_permissions[0].permission_level.value == "IS_OWNER"
    levels = w.pipelines.get_permission_levels(some).permission_levels or []
    assert {lvl.permission_level.value for lvl in levels if lvl.permission_level} >= {"CAN_RUN", "IS_OWNER"}


# -- serving endpoints -----------------------------------------------------------------------------------
@pytest.fixture
def model(w: WorkspaceClient) -> str:
    w.model_registry.create_model("churn")
    w.model_registry.create_model_version("churn", source="dbfs:/models/churn/1")
    w.model_registry.create_model_version("churn", source="dbfs:/models/churn/2")
    w.secrets.create_scope("serving")
    return "churn"


def _entity(name: str, version: str, **extra: object) -> serving.ServedEntityInput:
    fields: dict = {"workload_size": "Small", "scale_to_zero_enabled": True, **extra}
    return serving.ServedEntityInput(entity_name=name, entity_version=version, **fields)


def test_endpoint_deploys_on_the_clock_and_keeps_secret_references(
    w: WorkspaceClient, model: str, clock: FrozenDateTimeFactory
) -> None:
    """create answers at once with the config pending (state.config_update IN_PROGRESS), and the SDK's
    waiter polls until NOT_UPDATING (`wait_get_serving_endpoint_not_updating`)."""
    env = {"API_KEY": "{{secrets/serving/api_key}}", "MODE": "prod"}
    waiter = w.serving_endpoints.create(
        name="churn-endpoint",
        config=serving.EndpointCoreConfigInput(
            name="churn-endpoint", served_entities=[_entity(model, "1", environment_vars=env)]
        ),
        tags=[serving.EndpointTag(key="team", value="ml")],
    )
    pending = w.serving_endpoints.get("churn-endpoint")
    assert pending.state is not None and pending.state.config_update == serving.EndpointStateConfigUpdate.IN_PROGRESS
    assert pending.state.ready == serving.EndpointStateReady.NOT_READY and pending.pending_config is not None
    clock.tick(1)
    ready = waiter.result()
    assert ready.state is not None and ready.state.ready == serving.EndpointStateReady.READY
    assert ready.config is not None and ready.config.config_version == 1
    entity = (ready.config.served_entities or [])[0]
    assert entity.name == "churn-1" and entity.scale_to_zero_enabled is True and entity.workload_size == "Small"
    assert entity.environment_vars == env  # secret references are answered as references, never resolved
    routes = ready.config.traffic_config.routes if ready.config.traffic_config else []
    assert [(r.served_model_name, r.traffic_percentage) for r in routes or []] == [("churn-1", 100)]

    update = w.serving_endpoints.update_config(
        "churn-endpoint",
        served_entities=[_entity(model, "1"), _entity(model, "2")],
        traffic_config=serving.TrafficConfig(
            routes=[
                serving.Route(served_model_name="churn-1", traffic_percentage=80),
                serving.Route(served_model_name="churn-2", traffic_percentage=20),
            ]
        ),
    )
    with pytest.raises(ResourceConflict):
        w.serving_endpoints.update_config("churn-endpoint", served_entities=[_entity(model, "2")])
    clock.tick(1)
    assert update.result().config is not None and update.result().config.config_version == 2  # type: ignore[union-attr]


def test_endpoint_validates_model_versions_and_config(w: WorkspaceClient, model: str) -> None:
    def config(*entities: serving.ServedEntityInput) -> serving.EndpointCoreConfigInput:
        return serving.EndpointCoreConfigInput(name="e", served_entities=list(entities))

    with pytest.raises(NotFound):
        w.serving_endpoints.create(name="e", config=config(_entity(model, "9")))  # no such version
    with pytest.raises(NotFound):
        w.serving_endpoints.create(name="e", config=config(_entity("main.ml.churn", "1")))
    with pytest.raises(InvalidParameterValue):
        w.serving_endpoints.create(name="e", config=config(_entity(model, "1", workload_size="Huge")))
    with pytest.raises(InvalidParameterValue):
        w.serving_endpoints.create(
            name="e", config=config(_entity(model, "1", environment_vars={"K": "{{secrets/nope/k}}"}))
        )
    with pytest.raises(InvalidParameterValue):
        w.serving_endpoints.create(name="e", config=config(_entity(model, "1"), _entity(model, "2")))  # no traffic
    with pytest.raises(InvalidParameterValue):
        w.serving_endpoints.create(name="bad name!")
    assert list(w.serving_endpoints.list()) == []  # the refused requests created nothing
    legacy = serving.ServedModelInput(
        model_name=model, model_version="2", workload_size="Small", scale_to_zero_enabled=False
    )  # the older served_models shape is still accepted and answered in kind
    old = w.serving_endpoints.create(
        name="legacy", config=serving.EndpointCoreConfigInput(name="legacy", served_models=[legacy])
    )
    assert old.response.pending_config and [m.name for m in old.response.pending_config.served_models or []] == [
        "churn-2"
    ]
    w.serving_endpoints.create(name="e", config=config(_entity(model, "1")))
    with pytest.raises(ResourceAlreadyExists):
        w.serving_endpoints.create(name="e")


def test_endpoint_tags_limits_gateway_permissions_and_delete(w: WorkspaceClient, model: str) -> None:
    created = w.serving_endpoints.create(name="gw").response
    assert created.id
    tags = w.serving_endpoints.patch(
        "gw", add_tags=[serving.EndpointTag(key="a", value="1"), serving.EndpointTag(key="b", value="2")]
    )
    assert [(t.key, t.value) for t in tags.tags or []] == [("a", "1"), ("b", "2")]
    tags = w.serving_endpoints.patch("gw", delete_tags=["a"])
    assert [t.key for t in tags.tags or []] == ["b"]
    limits = w.serving_endpoints.put(
        "gw", rate_limits=[serving.RateLimit(calls=10, renewal_period=serving.RateLimitRenewalPeriod.MINUTE)]
    )
    assert limits.rate_limits and limits.rate_limits[0].calls == 10
    gateway = w.serving_endpoints.put_ai_gateway(
        "gw", usage_tracking_config=serving.AiGatewayUsageTrackingConfig(enabled=True)
    )
    assert gateway.usage_tracking_config and gateway.usage_tracking_config.enabled
    got = w.serving_endpoints.get("gw")
    assert got.ai_gateway and got.ai_gateway.usage_tracking_config
    # ServingEndpointDetailed has no rate_limits: the deprecated endpoint limits are write-only
    assert "rate_limits" not in w.api_client.do("GET", "/api/2.0/serving-endpoints/gw")
    assert [e.name for e in w.serving_endpoints.list()] == ["gw"]
    acl = w.serving_endpoints.get_permissions(created.id)
    assert acl.object_id == f"/serving-endpoints/{created.id}"
    w.serving_endpoints.delete("gw")
    with pytest.raises(NotFound):
        w.serving_endpoints.get("gw")


# -- notification destinations ------------------------------------------------------------------------------
def test_destination_secrets_are_write_only(w: WorkspaceClient) -> None:
    """settings.py documents url/password/integration_key as [Input-Only] and answers `*_set` [Output-Only]."""
    hook = w.notification_destinations.create(
        display_name="ops hook",
        config=settings.Config(
            generic_webhook=settings.GenericWebhookConfig(url="https://hooks.example.com/x", username="u", password="p")
        ),
    )
    assert hook.destination_type == settings.DestinationType.WEBHOOK
    read = w.notification_destinations.get(hook.id or "")
    webhook = read.config.generic_webhook if read.config else None
    assert webhook is not None and webhook.url is None and webhook.password is None and webhook.username is None
    assert webhook.url_set and webhook.password_set and webhook.username_set
    pager = w.notification_destinations.create(
        display_name="pager", config=settings.Config(pagerduty=settings.PagerdutyConfig(integration_key="k"))
    )
    assert pager.config and pager.config.pagerduty and pager.config.pagerduty.integration_key is None
    assert pager.config.pagerduty.integration_key_set
    mail = w.notification_destinations.create(
        display_name="mail", config=settings.Config(email=settings.EmailConfig(addresses=["a@example.com"]))
    )
    assert mail.config and mail.config.email and mail.config.email.addresses == ["a@example.com"]


def test_destination_validation_update_list_delete(w: WorkspaceClient) -> None:
    slack = settings.Config(slack=settings.SlackConfig(url="https://hooks.slack.com/services/T/B/X"))
    created = w.notification_destinations.create(display_name="slack", config=slack)
    with pytest.raises(ResourceAlreadyExists):
        w.notification_destinations.create(display_name="slack", config=slack)
    with pytest.raises(InvalidParameterValue):
        w.notification_destinations.create(
            display_name="http", config=settings.Config(slack=settings.SlackConfig(url="http://insecure"))
        )
    with pytest.raises(InvalidParameterValue):
        w.notification_destinations.update(
            created.id or "", config=settings.Config(email=settings.EmailConfig(addresses=["a@example.com"]))
        )
    renamed = w.notification_destinations.update(created.id or "", display_name="slack-ops")
    assert renamed.display_name == "slack-ops" and renamed.config and renamed.config.slack
    assert renamed.config.slack.url_set  # a rename keeps the secret
    for i in range(25):
        w.notification_destinations.create(
            display_name=f"m{i}", config=settings.Config(email=settings.EmailConfig(addresses=[f"u{i}@example.com"]))
        )
    listed = list(w.notification_destinations.list(page_size=7))  # pages of 7 until no token
    assert len(listed) == 26 and listed[0].display_name == "slack-ops" and listed[0].destination_type
    w.notification_destinations.delete(created.id or "")
    with pytest.raises(NotFound):
        w.notification_destinations.get(created.id or "")


# -- Lakeview schedules and subscriptions ----------------------------------------------------------------
def test_dashboard_schedules_pause_and_subscriptions(w: WorkspaceClient) -> None:
    dashboard = w.lakeview.create(dashboards.Dashboard(display_name="KPIs", parent_path="/Shared"))
    did = dashboard.dashboard_id or ""
    cron = dashboards.CronSchedule(quartz_cron_expression="0 0 8 * * ?", timezone_id="Europe/Paris")
    schedule = w.lakeview.create_schedule(did, dashboards.Schedule(cron_schedule=cron, display_name="morning"))
    assert schedule.pause_status == dashboards.SchedulePauseStatus.UNPAUSED and schedule.etag
    paused = w.lakeview.update_schedule(
        did,
        schedule.schedule_id or "",
        dashboards.Schedule(cron_schedule=cron, pause_status=dashboards.SchedulePauseStatus.PAUSED, etag=schedule.etag),
    )
    assert paused.pause_status == dashboards.SchedulePauseStatus.PAUSED and paused.etag != schedule.etag
    with pytest.raises(Aborted):  # a stale etag cannot overwrite a newer schedule
        w.lakeview.update_schedule(
            did, schedule.schedule_id or "", dashboards.Schedule(cron_schedule=cron, etag=schedule.etag)
        )
    with pytest.raises(InvalidParameterValue):
        w.lakeview.create_schedule(
            did, dashboards.Schedule(cron_schedule=dashboards.CronSchedule("0 8 * *", timezone_id="UTC"))
        )

    destination = w.notification_destinations.create(
        display_name="mail", config=settings.Config(email=settings.EmailConfig(addresses=["a@example.com"]))
    )
    subscriber = dashboards.Subscriber(
        destination_subscriber=dashboards.SubscriptionSubscriberDestination(destination_id=destination.id or "")
    )
    sid = schedule.schedule_id or ""
    sub = w.lakeview.create_subscription(did, sid, dashboards.Subscription(subscriber=subscriber))
    assert sub.subscription_id and sub.subscriber.destination_subscriber
    with pytest.raises(ResourceAlreadyExists):
        w.lakeview.create_subscription(did, sid, dashboards.Subscription(subscriber=subscriber))
    with pytest.raises(NotFound):
        missing = dashboards.SubscriptionSubscriberDestination(destination_id="nope")
        w.lakeview.create_subscription(
            did,
            schedule.schedule_id or "",
            dashboards.Subscription(subscriber=dashboards.Subscriber(destination_subscriber=missing)),
        )
    assert [s.subscription_id for s in w.lakeview.list_subscriptions(did, schedule.schedule_id or "")] == [
        sub.subscription_id
    ]
    assert [s.schedule_id for s in w.lakeview.list_schedules(did)] == [schedule.schedule_id]
    w.lakeview.delete_schedule(did, schedule.schedule_id or "")
    with pytest.raises(NotFound):
        w.lakeview.get_subscription(did, schedule.schedule_id or "", sub.subscription_id or "")
