"""One path records an applied change: the store's row, the id map, the metrics, the version history, the event.

The cutover's step 3 writes the jobs made or edited on the source after the final sync (cutover/late_jobs.py). It
used to record them with a copy of its own of the engine's recording, and a rule added to one copy (a write-ahead
record, the version history, the events' words) was easily missed in the other. Both now record through
dbsync/apply.py: the engine in windows of many, step 3 in windows of one.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
from conftest import Pair, run_cli
from prometheus_client import REGISTRY
from test_cutover import READY
from test_cutover_late_jobs import _after_validation, _create_owned_late_job, people  # noqa: F401 (a fixture)

from dbsync.cutover import Runbook, open_cutover_context

ROOT = Path(__file__).resolve().parent.parent / "dbsync"
# What records an applied change; only dbsync/apply.py calls them (the store and update_guard.py define them).
RECORDING = {"record_applied", "record_applied_many", "keep_version", "remember"}
# A restore writes a kept version back, action `restore`: not a sync's change (no changes_applied, its own event).
NOT_A_SYNC = {"restore.py"}


def _changes_applied(kind: str, action: str) -> float:
    return REGISTRY.get_sample_value("dbsync_changes_applied_total", {"kind": kind, "action": action}) or 0.0


def _calls(path: Path) -> set[str]:
    """The names of the recording functions this module calls (as a method or a plain function), but through
    dbsync/apply.py (`apply.record_applied`)."""
    called = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "apply":
                continue
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if name in RECORDING:
                called.add(name)
    return called


def test_only_one_module_records_an_applied_change() -> None:
    """The engine and the cutover's late jobs record through dbsync/apply.py, not each with its own copy."""
    callers = {
        str(path.relative_to(ROOT)): called
        for path in sorted(ROOT.rglob("*.py"))
        if (called := _calls(path)) and path.parent.name != "store" and path.name not in NOT_A_SYNC
    }
    assert callers == {"apply.py": RECORDING}, callers


def test_a_late_job_is_recorded_as_a_sync_records_a_job(
    people: Pair,  # noqa: F811 (the fixture imported above)
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Its row (synced, its copy's id), changes_applied for it and its ACL, its version in `dbsync history`, its event:
    step 3 writes them as the engine writes a job it replicates."""
    pair = people
    before: dict[tuple[str, str], float] = {}

    def create_late_job() -> None:
        _create_owned_late_job(pair, "alice@example.com")
        before.update({(kind, "create"): _changes_applied(kind, "create") for kind in ("jobs", "permissions")})

    ctx = open_cutover_context(pair.settings(**READY))
    try:
        Runbook(ctx, progress=_after_validation(create_late_job)).run()
        late = next(str(j.job_id) for j in pair.src.jobs.list() if j.settings.name == "late")
        copy = next(str(j.job_id) for j in pair.dst.jobs.list() if j.settings.name == "late")
        row, acl = ctx.store.prior("jobs", late), ctx.store.prior("permissions", f"jobs:{late}")
        events = [e for e in ctx.store.events(limit=500) if e["kind"] == "jobs" and e["source_key"] == late]
    finally:
        ctx.store.close()

    assert row is not None and (row.status, row.target_key) == ("synced", copy)
    assert acl is not None and acl.status == "synced", "its ACL is recorded too"
    after = {key: _changes_applied(*key) for key in before}
    assert {key: after[key] - before[key] for key in before} == {("jobs", "create"): 1, ("permissions", "create"): 1}
    assert [(e["action"], e["outcome"], e["message"]) for e in events] == [
        ("create", "synced", f"jobs {late}: created on the source after the final sync, replicated after it was paused")
    ]
    code, out, err = run_cli(pair, monkeypatch, capsys, "history", f"jobs:{late}", "--json")
    assert code == 0, err
    assert [(v["action"], v["target_key"]) for v in json.loads(out)] == [("create", copy)]
