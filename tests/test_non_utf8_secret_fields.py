"""A connection password or a webhook URL given as `{base64: ...}` bytes that are not UTF-8 text.

The field takes text: the object fails with one clear reason naming the values file's scope/key, never a
UnicodeDecodeError quoting the value's bytes and their positions in the log and the store's events.
"""

from __future__ import annotations

import base64
import json
import logging
from pathlib import Path

import pytest
from conftest import Pair
from databricks.sdk.service import catalog, settings

from dbsync.store import Store

NOT_TEXT = b"\xffP@ss-\xfe-word"


def _values_file(tmp_path: Path, scope: str, key: str) -> dict[str, dict[str, str]]:
    path = tmp_path / "values.json"
    path.write_text(json.dumps({scope: {key: {"base64": base64.b64encode(NOT_TEXT).decode()}}}))
    return {"values_from": "file", "values_file": str(path)}


def _last_error_and_events(pair: Pair, kind: str) -> tuple[str, str]:
    store = Store(pair.state_path)
    try:
        [problem] = store.problems(kind)
        return problem["last_error"], " | ".join(e["message"] for e in store.events(100))
    finally:
        store.close()


def _nothing_of_the_value(*texts: str) -> None:
    for text in texts:
        assert "UnicodeDecodeError" not in text and "can't decode" not in text and "position" not in text, text
        assert "0xff" not in text and "0xfe" not in text, text


def test_a_connection_password_that_is_not_text_fails_with_a_clear_reason(
    pair: Pair, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pair.src.connections.create(
        name="pg",
        connection_type=catalog.ConnectionType.POSTGRESQL,
        options={"host": "pg.prod", "port": "5432", "user": "reader", "password": "x"},
    )
    caplog.set_level(logging.DEBUG)

    report = pair.sync(only=["connections"], secrets=_values_file(tmp_path, "connections", "pg/password"))

    assert report["connections"].errors == 1
    assert list(pair.dst.connections.list()) == []
    error, events = _last_error_and_events(pair, "connections")
    assert "secret value connections/pg/password is not UTF-8 text" in error
    _nothing_of_the_value(error, events, caplog.text)
    assert "Traceback" not in caplog.text


def test_a_webhook_url_that_is_not_text_fails_with_a_clear_reason(
    pair: Pair, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pair.src.notification_destinations.create(
        display_name="ops-webhook",
        config=settings.Config(generic_webhook=settings.GenericWebhookConfig(url="https://hooks.example.com/x")),
    )
    caplog.set_level(logging.DEBUG)
    values = _values_file(tmp_path, "notification_destinations", "ops-webhook/url")

    report = pair.sync(only=["notification_destinations"], secrets=values)

    assert report["notification_destinations"].errors == 1
    error, events = _last_error_and_events(pair, "notification_destinations")
    assert "secret value notification_destinations/ops-webhook/url is not UTF-8 text" in error
    _nothing_of_the_value(error, events, caplog.text)
    assert "Traceback" not in caplog.text
