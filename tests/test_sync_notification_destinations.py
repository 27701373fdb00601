"""Notification destinations between two emulated workspaces: copied with their type and name; the secrets
the API never answers (webhook URLs, tokens: "[Input-Only]" in databricks-sdk `service/settings.py`, read
back as `<field>_set` flags) come from `secrets.values_from` or the destination is `blocked` with the
variable to set; jobs' webhook notifications follow the copy's id.
"""

from __future__ import annotations

import pytest
from conftest import Pair
from databricks.sdk.service import jobs, settings

from dbsync.store import Store

KINDS = ["notification_destinations", "jobs"]
URL = "https://hooks.example.com/services/T000/B000/very-secret-token"
NEW_URL = "https://hooks.example.com/services/T000/B000/rotated-token"
URL_VARIABLE = "DBSYNC_SECRET__NOTIFICATION_DESTINATIONS__OPS_WEBHOOK_URL"
ENV = {"secrets": {"values_from": "env"}}
TASKS = [jobs.Task(task_key="t", environment_key="e", notebook_task=jobs.NotebookTask(notebook_path="/x"))]


def _seed(pair: Pair) -> dict[str, str]:
    src = pair.src.notification_destinations
    email = src.create(
        display_name="ops-email", config=settings.Config(email=settings.EmailConfig(addresses=["ops@example.com"]))
    )
    hook = src.create(
        display_name="ops-webhook", config=settings.Config(generic_webhook=settings.GenericWebhookConfig(url=URL))
    )
    job = pair.src.jobs.create(
        name="etl",
        tasks=TASKS,
        environments=[jobs.JobEnvironment(environment_key="e")],
        webhook_notifications=jobs.WebhookNotifications(on_failure=[jobs.Webhook(id=hook.id)]),
    )
    return {"email": email.id or "", "hook": hook.id or "", "job": str(job.job_id)}


def _target_config(pair: Pair, name: str) -> dict:
    """The target destination as the emulator holds it, secrets included (no API answers them)."""
    records = pair.target.workspace.table("notification_destinations").values()
    return next(r["config"] for r in records if r["display_name"] == name)


def test_without_a_values_source_a_secret_destination_is_blocked_and_names_the_variable(pair: Pair) -> None:
    _seed(pair)
    reports = pair.sync(only=KINDS)
    assert reports["notification_destinations"].created == 1  # the email destination needs no secret
    assert reports["notification_destinations"].blocked == 1
    assert reports["jobs"].blocked == 1, "the job waits for the destination it notifies"
    assert [d.display_name for d in pair.dst.notification_destinations.list()] == ["ops-email"]
    store = Store(pair.state_path)
    problems = store.problems("notification_destinations")
    store.close()
    assert [(p["name"], p["status"]) for p in problems] == [("ops-webhook", "blocked")]
    assert URL_VARIABLE in problems[0]["last_error"], "the reason names the variable to set"
    assert URL not in problems[0]["last_error"]


def test_secret_destinations_come_from_the_values_source_and_jobs_follow(
    pair: Pair, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = _seed(pair)
    monkeypatch.setenv(URL_VARIABLE, URL)
    reports = pair.sync(only=KINDS, **ENV)
    assert reports["notification_destinations"].created == 2 and reports["jobs"].created == 1
    assert _target_config(pair, "ops-webhook") == {"url": URL}
    assert _target_config(pair, "ops-email") == {"addresses": ["ops@example.com"]}
    target_hook = next(d.id for d in pair.dst.notification_destinations.list() if d.display_name == "ops-webhook")
    assert target_hook != ids["hook"]
    job = next(iter(pair.dst.jobs.list(expand_tasks=True)))
    assert job.settings.webhook_notifications.on_failure[0].id == target_hook
    assert URL.encode() not in pair.state_path.read_bytes(), "a destination's secret never reaches the store"

    pair.reset_stats()
    reports = pair.sync(only=KINDS, **ENV)
    assert pair.target_writes() == 0 and reports["notification_destinations"].updated == 0

    monkeypatch.setenv(URL_VARIABLE, NEW_URL)  # rotated where the values come from: written again
    reports = pair.sync(only=["notification_destinations"], **ENV)
    assert reports["notification_destinations"].updated == 1
    assert _target_config(pair, "ops-webhook") == {"url": NEW_URL}

    pair.src.notification_destinations.delete(ids["email"])
    reports = pair.sync(only=["notification_destinations"], **ENV)
    assert reports["notification_destinations"].deleted == 1
    assert [d.display_name for d in pair.dst.notification_destinations.list()] == ["ops-webhook"]


def test_a_lost_store_adopts_destinations_by_name(pair: Pair, monkeypatch: pytest.MonkeyPatch) -> None:
    _seed(pair)
    monkeypatch.setenv(URL_VARIABLE, URL)
    pair.sync(only=KINDS, **ENV)
    pair.state_path.unlink()
    reports = pair.sync(only=KINDS, **ENV)
    assert reports["notification_destinations"].errors == 0 and reports["jobs"].errors == 0
    assert sorted(d.display_name for d in pair.dst.notification_destinations.list()) == ["ops-email", "ops-webhook"]
    assert len(list(pair.dst.jobs.list())) == 1


def test_with_values_read_on_a_cluster_the_variable_still_supplies_a_destination_secret(
    pair: Pair, monkeypatch: pytest.MonkeyPatch
) -> None:
    """values_from cluster reads secret scopes, where a destination's URL is not: the variable is used."""
    _seed(pair)
    monkeypatch.setenv(URL_VARIABLE, URL)
    reports = pair.sync(only=["notification_destinations"], secrets={"values_from": "cluster", "cluster_id": "c-1"})
    assert reports["notification_destinations"].created == 2
    assert _target_config(pair, "ops-webhook") == {"url": URL}
