"""Managed table data: dbsync replicates a managed table's definition, never its rows, so every replicated
managed table is listed by `dbsync validate` (and /report) under "needs manual action", with its size when
the source's `DESCRIBE DETAIL` tells it and the way to copy it (DEEP CLONE, or Delta Sharing).
External tables are not listed: their data stays at their LOCATION, which both sides read.
"""

from __future__ import annotations

from test_sync_metastore import MetastorePair, _finance, mp  # noqa: F401  (mp is the shared fixture)

from dbsync.report import format_text, validate
from dbsync.watchers.metastore import managed_table_action


def test_validate_lists_each_managed_table_for_manual_copy(mp: MetastorePair) -> None:  # noqa: F811
    _finance(mp.src)
    mp.sync(only=["schemas", "tables"])
    ctx = mp.pair.context(metastore={"source_warehouse_id": mp.src.id, "target_warehouse_id": mp.dst.id})
    try:
        report = validate(ctx, ["schemas", "tables"])
    finally:
        ctx.store.close()
    actions = {a["key"]: a["action"] for a in report.manual_actions if a["kind"] == "tables"}
    assert list(actions) == ["hive_metastore.finance.ledger"], "the external raw_events keeps its data in place"
    action = actions["hive_metastore.finance.ledger"]
    assert "size unknown" in action  # the emulated warehouse has no DESCRIBE DETAIL
    assert "DEEP CLONE" in action and "Delta Sharing" in action
    assert "hive_metastore.finance.ledger" in format_text(report)
    assert "needs manual action" in format_text(report)


def test_the_action_names_the_size_and_location_when_the_source_tells_them() -> None:
    action = managed_table_action(
        "main.finance.ledger", {"sizeInBytes": "1048576", "location": "s3://lake/managed/ledger"}
    )
    assert "1,048,576 bytes" in action
    assert "CREATE OR REPLACE TABLE main.finance.ledger DEEP CLONE delta.`s3://lake/managed/ledger`" in action
