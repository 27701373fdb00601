"""Source objects without a row, as the last `validate` or /report listing counted them, stay `pending` in `status`
and dbsync_resources until they have rows, are gone, or a cycle has read every object of their kind.

- new source objects deleted before a cycle reached them: the next `validate` (or /report) counts 0 and says so;
- a cycle that read only part of its kind (the workspace tree listed by need, a sweep of object ACLs cut at its
  time slice) ended `ok` and cleared the count, and with it the lag clock: new objects in the part it did not read
  vanished from `status` and the metric while `validate` still called them pending;
- such a cycle recorded other new objects, appeared since, and each of their rows took one off the count: the
  counted objects' keys are kept, and only their own rows take them out.

Every test drives two emulated workspaces over HTTP with the databricks-sdk and runs the `dbsync` commands
in-process, as a user would.
"""

from __future__ import annotations

import json
import time

import pytest
from conftest import Pair, endpoint_count, run_cli
from databricks.sdk.service import iam
from freezegun import freeze_time
from prometheus_client import REGISTRY
from test_listing_by_need import BY_NEED as TREE_BY_NEED
from test_listing_by_need import WINDOW as TREE_WINDOW
from test_listing_by_need import _dir, _upload
from test_listing_by_need import _seed as _seed_tree
from test_revisit import ACL_GET, KINDS, _grant
from test_revisit import BY_NEED as ACLS_BY_NEED
from test_revisit import _seed as _seed_acls
from test_truth_rows import _job

from dbsync.engine import Engine, update_gauges
from dbsync.store import Store

TREE = ["directories", "notebooks", "files"]
NEW_ACLS = 12


def _validated(pair: Pair, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], kind: str) -> int:
    """`dbsync validate --kinds <kind>`: how many of the kind's source objects it calls pending."""
    code, out, err = run_cli(pair, monkeypatch, capsys, "validate", "--kinds", kind, "--format", "json")
    assert code in (0, 1), err
    return next(k for k in json.loads(out)["kinds"] if k["kind"] == kind)["pending"]


def _pending(pair: Pair, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], kind: str) -> int:
    """How many of the kind `dbsync status --json` counts pending; dbsync_resources, refreshed, says the same."""
    code, out, err = run_cli(pair, monkeypatch, capsys, "status", "--json")
    assert code == 0, err
    status = json.loads(out)["counts"].get(kind, {}).get("pending", 0)
    ctx = pair.context()
    try:
        update_gauges(ctx.store, [kind])
    finally:
        ctx.store.close()
    assert REGISTRY.get_sample_value("dbsync_resources", {"kind": kind, "status": "pending"}) == status
    return status


def test_new_source_objects_deleted_before_a_cycle_reached_them_are_no_longer_pending_after_validate(
    pair: Pair, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two jobs added on the source are pending in `validate`, then in `status`; deleted on the source before any
    cycle reached them, the next `validate` counts none, and `status` and the metric say none either."""
    _job(pair, "old")
    pair.sync(only=["jobs"])
    added = [_job(pair, "first"), _job(pair, "second")]
    assert _validated(pair, monkeypatch, capsys, "jobs") == 2
    assert _pending(pair, monkeypatch, capsys, "jobs") == 2

    for job_id in added:
        pair.src.jobs.delete(job_id)
    assert _validated(pair, monkeypatch, capsys, "jobs") == 0
    assert _pending(pair, monkeypatch, capsys, "jobs") == 0


def test_a_store_upgraded_from_schema_6_keeps_the_number_of_new_objects_it_counted_pending(
    pair: Pair, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A store of schema 6 kept only how many new source objects `validate` counted, not which. Upgraded, `status` and
    the metric still count them pending (dropped, they would say 0 until the next `validate`); that `validate` keeps
    their keys, and the cycle that records them takes them out."""
    _job(pair, "old")
    pair.sync(only=["jobs"])
    for name in ("first", "second"):
        _job(pair, name)
    store = Store(pair.state_path)
    with store._transaction():  # the store as dbsync of schema 6 left it after a `validate`
        store.db.execute("DROP TABLE pending_new")
        store.db.execute("UPDATE meta SET value = '6' WHERE key = 'schema_version'")
        store.db.execute(
            "INSERT INTO meta (key, value) VALUES ('pending_new:jobs', ?), ('pending_new_since:jobs', ?)",
            [json.dumps({"count": 2, "listed_at": time.time()}), repr(time.time())],
        )
    store.close()

    assert _pending(pair, monkeypatch, capsys, "jobs") == 2
    assert _validated(pair, monkeypatch, capsys, "jobs") == 2
    assert _pending(pair, monkeypatch, capsys, "jobs") == 2
    assert pair.sync(only=["jobs"])["jobs"].created == 2
    assert _pending(pair, monkeypatch, capsys, "jobs") == 0


def test_a_cycle_that_listed_only_the_due_directories_leaves_a_new_notebook_elsewhere_pending(
    pair: Pair, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The tree listed by need: a notebook added to a directory not due is pending in `validate`. The next cycle
    lists only the directories due and ends `ok`; it did not see the notebook, so `status` and the metric still count it
    pending (they said 0 while `validate` said 1, and its lag clock restarted), until a cycle lists its directory."""
    _seed_tree(pair)
    with freeze_time("2026-12-05 00:00:00") as clock:
        pair.sync(only=TREE, **TREE_BY_NEED)
        clock.tick(1)
        _upload(pair, f"{_dir(6)}/added", "print('new')\n")
        assert _validated(pair, monkeypatch, capsys, "notebooks") == 1
        assert _pending(pair, monkeypatch, capsys, "notebooks") == 1

        clock.tick(60)
        reports = pair.sync(only=TREE, **TREE_BY_NEED)
        assert reports["notebooks"].outcome == "ok" and reports["notebooks"].created == 0  # d06 was not listed
        assert _pending(pair, monkeypatch, capsys, "notebooks") == 1

        clock.tick(TREE_WINDOW)  # every directory due: the cycle lists the whole tree
        assert pair.sync(only=TREE, **TREE_BY_NEED)["notebooks"].created == 1
        assert _pending(pair, monkeypatch, capsys, "notebooks") == 0
        assert _validated(pair, monkeypatch, capsys, "notebooks") == 0


def test_new_objects_a_partial_cycle_recorded_do_not_hide_the_counted_ones_it_did_not_reach(
    pair: Pair, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`validate` counts five new notebooks in a directory not due; then five others appear in a new folder at the
    root, which the next cycle lists and records (the root is listed every cycle, a new directory always), while it
    does not list the first five's. `status` and the metric still count those five pending, as `validate` does: the
    rows recorded since are not theirs (every row of the kind recorded since the listing was subtracted: 5 - 5,
    nothing pending while the standby lacked five notebooks)."""
    _seed_tree(pair)
    with freeze_time("2026-12-05 00:00:00") as clock:
        pair.sync(only=TREE, **TREE_BY_NEED)
        clock.tick(1)
        for name in "ABCDE":
            _upload(pair, f"{_dir(6)}/counted_{name}", "print('counted')\n")
        assert _validated(pair, monkeypatch, capsys, "notebooks") == 5
        assert _pending(pair, monkeypatch, capsys, "notebooks") == 5

        pair.src.workspace.mkdirs("/Later")
        for name in "FGHIJ":
            _upload(pair, f"/Later/{name}", "print('later')\n")
        clock.tick(60)
        reports = pair.sync(only=TREE, **TREE_BY_NEED)
        assert reports["notebooks"].outcome == "ok" and reports["notebooks"].created == 5  # F..J, not A..E
        assert pair.dst.workspace.get_status("/Later/F") is not None
        assert _pending(pair, monkeypatch, capsys, "notebooks") == 5
        assert _validated(pair, monkeypatch, capsys, "notebooks") == 5

        clock.tick(TREE_WINDOW)  # every directory due: the cycle lists the whole tree and records A..E
        assert pair.sync(only=TREE, **TREE_BY_NEED)["notebooks"].created == 5
        assert _pending(pair, monkeypatch, capsys, "notebooks") == 0


def _new_acls(pair: Pair) -> None:
    """NEW_ACLS notebooks added and replicated, their ACLs not yet (the permissions kind has not run since)."""
    pair.src.workspace.mkdirs("/Shared/acl/new")
    for i in range(NEW_ACLS):
        path = f"/Shared/acl/new/nb{i:02d}"
        _upload(pair, path, "print(2)\n")
        _grant(pair, path, iam.PermissionLevel.CAN_READ)
    pair.sync(only=[k for k in KINDS if k != "permissions"], **ACLS_BY_NEED)


def test_a_sweep_cut_at_its_time_slice_leaves_the_new_acls_it_did_not_reach_pending(
    pair: Pair, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The daemon's sweep of object ACLs stops at its time slice, `ok`: the new ACLs past the cut were not read.
    `status` and the metric count them pending, as `validate` does (they said 0); the next slice, listing on to
    the end, reads them and the count is 0."""
    _seed_acls(pair)
    pair.sync(only=KINDS, **ACLS_BY_NEED)
    _new_acls(pair)
    new = _validated(pair, monkeypatch, capsys, "permissions")
    assert new >= NEW_ACLS  # the notebooks' ACLs and their directory's
    assert _pending(pair, monkeypatch, capsys, "permissions") == new

    pair.source.set_faults(latency_ms=700, path_prefix="/api/2.0/permissions")
    pair.reset_stats()
    ctx = pair.context(time_slice_seconds=1, concurrency=1, **ACLS_BY_NEED)  # 4 reads in flight at most
    engine = Engine(ctx, retry_now=False, time_slice=1)
    (report,) = engine.cycle(["permissions"])
    ctx.store.close()
    assert engine.sliced == {"permissions"} and report.outcome == "ok"
    read = endpoint_count(pair.source, ACL_GET)
    assert 0 < read < new
    left = _pending(pair, monkeypatch, capsys, "permissions")
    assert left == new - report.created > 0
    assert _validated(pair, monkeypatch, capsys, "permissions") == left

    pair.source.set_faults(latency_ms=0)
    ctx = pair.context(**ACLS_BY_NEED)
    (report,) = Engine(ctx, retry_now=False, time_slice=60).cycle(["permissions"])
    ctx.store.close()
    assert report.created == left
    assert _pending(pair, monkeypatch, capsys, "permissions") == 0
