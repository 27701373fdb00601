"""SQL data sources and query history; Model Registry webhooks and comments, driven by databricks-sdk.

Real behaviour relied on (databricks-sdk-py `service/sql.py`, `service/ml.py`):
- `GET /api/2.0/preview/sql/data_sources` answers a bare JSON array of DataSource (`id`, `warehouse_id`,
  `name`, ...), one per warehouse; legacy queries and alerts reference the data source id.
- `GET /api/2.0/sql/history/queries`: most recently started first, `max_results` "must be less than 1000
  and the default is 100", `filter_by.*` in dot notation, `has_next_page` / `next_page_token`.
- Registry webhooks: `events` required; `REGISTERED_MODEL_CREATED` "can only be specified for a
  registry-wide webhook" (no model_name); HttpUrlSpecWithoutSecret / JobSpecWithoutSecret are what lists
  answer (secrets are write-only); `status` ACTIVE (default) / DISABLED / TEST_MODE.
- Comments: create on a model version answers `{"comment": CommentObject}`, update and delete by id.
"""

from __future__ import annotations

import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import BadRequest, InvalidParameterValue, NotFound, ResourceDoesNotExist
from databricks.sdk.service import ml, sql

from dbsync_emulator import EmulatorHandle
from tests.test_emulator_files_tokens import _raw

HOOK = "https://hooks.example.com/registry"


def _warehouse(w: WorkspaceClient, name: str) -> str:
    return w.warehouses.create(name=name, cluster_size="2X-Small", auto_stop_mins=0).response.id  # type: ignore[return-value]


def test_data_sources_one_per_warehouse_with_a_stable_id(w: WorkspaceClient, emulator: EmulatorHandle) -> None:
    bi, etl = _warehouse(w, "BI"), _warehouse(w, "ETL")

    sources = list(w.data_sources.list())
    again = {s.warehouse_id: s.id for s in w.data_sources.list()}

    assert sorted((s.name, s.warehouse_id) for s in sources) == sorted([("BI", bi), ("ETL", etl)])
    assert all(s.id and s.id not in (bi, etl) for s in sources)
    assert again == {s.warehouse_id: s.id for s in sources}
    assert isinstance(_raw(emulator, "GET", "/api/2.0/preview/sql/data_sources").json(), list)


def test_query_history_lists_statements_newest_first_with_filters(w: WorkspaceClient) -> None:
    bi, etl = _warehouse(w, "BI"), _warehouse(w, "ETL")
    w.statement_execution.execute_statement("SELECT 1", bi)
    w.statement_execution.execute_statement("SHOW CATALOGS", etl)
    w.statement_execution.execute_statement("SELECT * FROM no_such_table", bi)

    history = w.query_history.list()
    only_bi = w.query_history.list(filter_by=sql.QueryFilter(warehouse_ids=[bi]))
    failed = w.query_history.list(filter_by=sql.QueryFilter(statuses=[sql.QueryStatus.FAILED]))
    first_page = w.query_history.list(max_results=2)

    assert [q.query_text for q in history.res or []] == ["SELECT * FROM no_such_table", "SHOW CATALOGS", "SELECT 1"]
    assert {q.warehouse_id for q in only_bi.res or []} == {bi}
    assert [q.query_text for q in failed.res or []] == ["SELECT * FROM no_such_table"]
    assert failed.res[0].error_message  # type: ignore[index]
    finished = (history.res or [])[2]
    assert (finished.status, finished.statement_type, finished.user_name) == (
        sql.QueryStatus.FINISHED,
        sql.QueryStatementType.SELECT,
        "admin@example.com",
    )
    assert first_page.has_next_page and len(first_page.res or []) == 2
    rest = w.query_history.list(max_results=2, page_token=first_page.next_page_token)
    assert [q.query_text for q in rest.res or []] == ["SELECT 1"] and not rest.has_next_page
    with pytest.raises(BadRequest):
        w.query_history.list(max_results=1000)


def test_registry_webhooks_lifecycle_without_leaking_secrets(w: WorkspaceClient, emulator: EmulatorHandle) -> None:
    w.model_registry.create_model("churn")
    created = w.model_registry.create_webhook(
        events=[ml.RegistryWebhookEvent.MODEL_VERSION_CREATED],
        model_name="churn",
        http_url_spec=ml.HttpUrlSpec(url=HOOK, secret="s3cr3t", authorization="Bearer xyz"),
        description="notify",
    ).webhook
    wide = w.model_registry.create_webhook(
        events=[ml.RegistryWebhookEvent.REGISTERED_MODEL_CREATED],
        job_spec=ml.JobSpec(job_id="123", access_token="dapi-secret"),
        status=ml.RegistryWebhookStatus.TEST_MODE,
    ).webhook

    assert created and created.id and created.status == ml.RegistryWebhookStatus.ACTIVE
    listed = list(w.model_registry.list_webhooks(model_name="churn"))
    assert [h.id for h in listed] == [created.id]
    assert listed[0].http_url_spec and listed[0].http_url_spec.url == HOOK
    raw = _raw(emulator, "GET", "/api/2.0/mlflow/registry-webhooks/list").text
    assert "s3cr3t" not in raw and "Bearer xyz" not in raw and "dapi-secret" not in raw
    by_event = list(w.model_registry.list_webhooks(events=[ml.RegistryWebhookEvent.REGISTERED_MODEL_CREATED]))
    assert [h.id for h in by_event] == [wide.id]  # type: ignore[union-attr]

    w.model_registry.update_webhook(created.id, status=ml.RegistryWebhookStatus.DISABLED)
    assert next(iter(w.model_registry.list_webhooks(model_name="churn"))).status == ml.RegistryWebhookStatus.DISABLED
    assert w.model_registry.test_registry_webhook(wide.id).status_code == 200  # type: ignore[arg-type, union-attr]
    w.model_registry.delete_webhook(created.id)
    assert [h.id for h in w.model_registry.list_webhooks()] == [wide.id]  # type: ignore[union-attr]
    with pytest.raises(NotFound):
        w.model_registry.delete_webhook(created.id)


def test_registry_webhook_validation(w: WorkspaceClient) -> None:
    w.model_registry.create_model("churn")
    url = ml.HttpUrlSpec(url=HOOK)
    with pytest.raises(InvalidParameterValue):  # registry-wide event on a model webhook
        w.model_registry.create_webhook(
            events=[ml.RegistryWebhookEvent.REGISTERED_MODEL_CREATED], model_name="churn", http_url_spec=url
        )
    with pytest.raises(InvalidParameterValue):
        w.model_registry.create_webhook(events=[], http_url_spec=url)
    with pytest.raises(InvalidParameterValue):
        w.model_registry.create_webhook(events=[ml.RegistryWebhookEvent.COMMENT_CREATED])  # no target
    with pytest.raises(InvalidParameterValue):
        w.model_registry.create_webhook(
            events=[ml.RegistryWebhookEvent.COMMENT_CREATED], http_url_spec=ml.HttpUrlSpec(url="http://plain")
        )
    with pytest.raises((NotFound, ResourceDoesNotExist)):
        w.model_registry.create_webhook(
            events=[ml.RegistryWebhookEvent.COMMENT_CREATED], model_name="nope", http_url_spec=url
        )


def test_model_version_comments(w: WorkspaceClient) -> None:
    w.model_registry.create_model("churn")
    w.model_registry.create_model_version("churn", "dbfs:/models/churn/1")

    comment = w.model_registry.create_comment("churn", "1", "AUC 0.91 on holdout").comment
    assert comment and comment.id and comment.comment == "AUC 0.91 on holdout"
    updated = w.model_registry.update_comment(comment.id, "AUC 0.92 on holdout").comment
    assert updated and updated.comment == "AUC 0.92 on holdout"
    assert updated.last_updated_timestamp > comment.last_updated_timestamp  # type: ignore[operator]
    w.model_registry.delete_comment(comment.id)
    with pytest.raises(NotFound):
        w.model_registry.update_comment(comment.id, "again")
    with pytest.raises(NotFound):
        w.model_registry.create_comment("churn", "9", "no such version")
