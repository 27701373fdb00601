"""A kind turned off after a sync had replicated it: the cutover starts none of its stale copies on the new primary.

With `kinds.<kind>.enabled: false` the target's objects of that kind are the DR team's, yet the store keeps the rows
an earlier sync wrote. Steps 3-4 read those rows: step 4 started dbsync's stale copy of each continuous pipeline,
unpaused its copy of each dashboard schedule that ran on the source, and PUT the source's serving config as last
synced over the endpoint (undoing what the DR team deployed since), beside the DR team's own objects. The jobs kind
had the same fault (tests/test_cutover_late_jobs.py, the disabled-jobs tests).

As for jobs, the source side is stopped all the same: the old primary must not keep running what it ran beside the
new one (a rollback restores it). Each test turns the kind off after a sync, cuts over, and looks at both sides.
"""

from __future__ import annotations

from typing import Any

from conftest import Pair
from databricks.sdk.service import serving
from test_sync_dashboard_schedules import KINDS as SCHEDULE_KINDS
from test_sync_dashboard_schedules import MAPPING as SCHEDULE_MAPPING
from test_sync_dashboard_schedules import _seed as _seed_schedules
from test_sync_dashboard_schedules import _states as _schedule_states
from test_sync_dashboard_schedules import _target_dashboard
from test_sync_pipelines import NOTEBOOK, _notebook, _pipeline, _running, _source_setup, _target
from test_sync_pipelines import READY as PIPELINES_READY
from test_sync_serving_endpoints import _config_puts, _entities, _finish_deployments
from test_sync_serving_endpoints import _seed as _seed_endpoint
from test_sync_serving_endpoints import _target as _target_endpoint

from dbsync.cutover import Runbook, open_cutover_context


def _off(kind: str, **settings: Any) -> dict[str, Any]:
    """The settings with `kind` turned off."""
    return {**settings, "kinds": {kind: {"enabled": False}}}


def _cut_over(pair: Pair, settings: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
    """The dry run's lines, then a whole cutover's document, each with its own store opened as a new process."""
    ctx = open_cutover_context(pair.settings(**settings))
    lines = Runbook(ctx).plan()
    ctx.store.close()
    ctx = open_cutover_context(pair.settings(**settings))
    document = Runbook(ctx).run()
    ctx.store.close()
    return lines, document


def _line(lines: list[str], step: str) -> str:
    return next(line for line in lines if step in line)


def _summary(document: dict[str, Any], step: str) -> str:
    return str(next(s for s in document["steps"] if s["step"] == step)["summary"])


def test_with_the_pipelines_kind_disabled_the_cutover_starts_no_stale_copy(pair: Pair) -> None:
    _source_setup(pair)
    pair.sync(**PIPELINES_READY)  # dbsync's copy of orders-stream is on the standby, triggered
    # Then the DR team took pipelines over: their own, running, on a notebook of theirs (a pipeline whose notebook
    # is missing fails once its update initializes: seconds later on a loaded machine, and this test flaked).
    _notebook(pair.dst, NOTEBOOK)
    _pipeline(pair.dst, "dr stream", continuous=True)
    off = _off("pipelines", **PIPELINES_READY)
    pair.sync(**off)

    lines, document = _cut_over(pair, off)

    assert _running(pair.dst) == {"dr stream"}, "dbsync's stale copy would run beside the DR team's pipeline"
    assert _target(pair, "orders-stream").spec.continuous is False
    assert _running(pair.src) == set(), "the old primary's continuous pipeline is stopped all the same"
    assert "1 continuous pipeline(s) stopped" in _summary(document, "pause_source")
    step4 = _summary(document, "unpause_target")
    assert "0 continuous pipeline(s) started" in step4, step4
    assert "the pipelines kind is disabled (kinds.pipelines.enabled: false): no copy started" in step4, step4
    plan = _line(lines, "unpause_target")
    assert "1 continuous pipeline(s) stopped on the source, none started on the target" in plan, plan
    assert "the pipelines kind is disabled" in plan, plan


def test_with_the_dashboard_schedules_kind_disabled_the_cutover_unpauses_no_stale_copy(pair: Pair) -> None:
    ids = _seed_schedules(pair)
    pair.sync(only=SCHEDULE_KINDS, **SCHEDULE_MAPPING)  # dbsync's copies are on the standby, PAUSED
    did = _target_dashboard(pair.dst)
    off = _off("dashboard_schedules", **SCHEDULE_MAPPING)
    pair.sync(only=SCHEDULE_KINDS, **off)

    lines, document = _cut_over(pair, off)

    assert _schedule_states(pair.dst, did) == {"morning": "PAUSED", "evening": "PAUSED"}, "no stale copy runs"
    assert _schedule_states(pair.src, ids["dashboard"]) == {"morning": "PAUSED", "evening": "PAUSED"}
    assert "1 dashboard schedule(s) paused" in _summary(document, "pause_source")
    step4 = _summary(document, "unpause_target")
    assert "0 dashboard schedule(s) unpaused" in step4, step4
    assert "the dashboard_schedules kind is disabled (kinds.dashboard_schedules.enabled: false)" in step4, step4
    plan = _line(lines, "unpause_target")
    assert "1 dashboard schedule(s) paused on the source, none unpaused on the target" in plan, plan

    ctx = open_cutover_context(pair.settings(**off))
    Runbook(ctx).rollback()
    ctx.store.close()
    assert _schedule_states(pair.src, ids["dashboard"]) == {"morning": "UNPAUSED", "evening": "PAUSED"}


def test_with_the_serving_endpoints_kind_disabled_the_cutover_leaves_the_endpoint_as_the_dr_team_has_it(
    pair: Pair,
) -> None:
    _seed_endpoint(pair)
    ready = {"identities": {"create_users": True}}
    pair.sync(**ready)  # dbsync's copy on the standby, scaled to zero
    _finish_deployments(pair.source)
    _finish_deployments(pair.target)
    # Then the DR team took the endpoints over: they serve the endpoint their way (a small workload).
    mine = serving.ServedEntityInput(
        entity_name="churn", entity_version="1", workload_size="Small", scale_to_zero_enabled=True
    )
    pair.dst.serving_endpoints.update_config("churn-endpoint", served_entities=[mine])
    _finish_deployments(pair.target)
    off = _off("serving_endpoints", **ready)
    pair.sync(**off)
    pair.reset_stats()

    lines, document = _cut_over(pair, off)

    assert _config_puts(pair) == 0, "the source's config as last synced was PUT over the DR team's"
    (entity,) = _entities(_target_endpoint(pair))
    assert (entity.entity_version, entity.workload_size) == ("1", "Small")
    step4 = _summary(document, "unpause_target")
    assert "0 serving endpoint(s) given their source scaling" in step4, step4
    assert "the serving_endpoints kind is disabled (kinds.serving_endpoints.enabled: false)" in step4, step4
    plan = _line(lines, "unpause_target")
    assert "no serving endpoint scaled up: the serving_endpoints kind is disabled" in plan, plan
