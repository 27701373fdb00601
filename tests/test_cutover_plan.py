"""The cutover's pure planning (dbsync/cutover/plan.py): which jobs a cutover pauses, unpauses and a rollback restores.

No workspace, no store: listings and records are built here, as the runbook reads them. The end-to-end
runs against the emulator are in test_cutover.py; these pin the decisions one case at a time.
"""

from __future__ import annotations

from typing import Any

from dbsync.config import KindSettings
from dbsync.cutover.common import SOURCE_ROW, TARGET_ROW, JobView
from dbsync.cutover.plan import (
    Restorer,
    repause_items,
    source_changes,
    target_changes,
    unpause_follower,
    wanted_states,
)
from dbsync.model import Prior

CRON = {"quartz_cron_expression": "0 0 * * * ?", "timezone_id": "UTC"}
FILE_ARRIVAL = {"file_arrival": {"url": "s3://landing/"}}


def _job(job_id: str, tag: str | None = None, **states: str) -> JobView:
    """A job as jobs/list shows it: schedule=/trigger=/continuous= give each trigger's pause status."""
    bodies = {"schedule": CRON, "trigger": FILE_ARRIVAL, "continuous": {}}
    triggers = {f: {**bodies[f], "pause_status": s} for f, s in states.items()}
    return JobView(job_id, f"job {job_id}", triggers, tag)


def _prior(key: str, target_key: str | None, pause: dict[str, str] | None = None) -> Prior:
    """A replicated job as the store keeps it: its copy's id and the source's pause state at the last sync."""
    meta: dict[str, Any] = {"pause": pause} if pause is not None else {}
    return Prior("jobs", key, None, None, target_key, None, "synced", 0, source_meta=meta)


def _listing(*jobs: JobView) -> dict[str, JobView]:
    return {j.job_id: j for j in jobs}


def _paused_source(**priors: dict[str, str]) -> dict[str, dict[str, Any]]:
    """The record after pause_source: each source job id with the pause state it had before."""
    rows: dict[str, dict[str, Any]] = {"pause_source": {"state": "done", "detail": {"states": {}}}}
    for job_id, prior in priors.items():
        rows[SOURCE_ROW + job_id] = {"state": "paused", "detail": {"name": job_id, "prior": prior}}
    return rows


# -- pause_source -----------------------------------------------------------------------------------
def test_every_unpaused_trigger_type_is_paused_and_the_others_are_counted() -> None:
    source = _listing(
        _job("1", schedule="UNPAUSED"),
        _job("2", trigger="UNPAUSED"),
        _job("3", continuous="UNPAUSED"),
        _job("4", schedule="PAUSED"),
        _job("5"),
    )
    todo, counts = source_changes(source, {}, KindSettings())
    assert {(p.job.job_id, tuple(p.fields)) for p in todo} == {
        ("1", ("schedule",)),
        ("2", ("trigger",)),
        ("3", ("continuous",)),
    }
    assert all(p.row == SOURCE_ROW + p.job.job_id for p in todo)
    assert todo[0].detail == {"name": "job 1", "prior": {"schedule": "UNPAUSED"}}  # recorded before the write
    assert (counts["already_paused"], counts["no_trigger"], counts["excluded"]) == (1, 1, 0)
    assert counts["states"] == {"4": {"schedule": "PAUSED"}}  # kept: its target copy stays paused


def test_jobs_excluded_by_kinds_jobs_are_never_paused() -> None:
    source = _listing(_job("1", schedule="UNPAUSED"), _job("2", schedule="UNPAUSED"))
    todo, counts = source_changes(source, {}, KindSettings(exclude=["2"]))
    assert [p.job.job_id for p in todo] == ["1"]
    assert counts["excluded"] == 1


def test_a_resumed_pause_keeps_the_prior_recorded_by_the_first_attempt() -> None:
    # The first attempt recorded job 1 as UNPAUSED and crashed; someone unpaused only its trigger since.
    rows = {SOURCE_ROW + "1": {"state": "pending", "detail": {"name": "job 1", "prior": {"schedule": "UNPAUSED"}}}}
    source = _listing(_job("1", schedule="PAUSED", trigger="UNPAUSED"), _job("2", schedule="PAUSED"))
    rows[SOURCE_ROW + "2"] = {"state": "pending", "detail": {"name": "job 2", "prior": {"schedule": "UNPAUSED"}}}
    todo, counts = source_changes(source, rows, KindSettings())
    assert [(p.job.job_id, p.fields, p.detail["prior"]) for p in todo] == [("1", ["trigger"], {"schedule": "UNPAUSED"})]
    assert counts["settled"] == ["2"]  # paused just before the crash: recorded paused, not written again
    assert counts["already_paused"] == 0  # job 2 is ours to restore, not "already paused"


# -- unpause_target ---------------------------------------------------------------------------------
def test_the_target_unpauses_exactly_what_was_unpaused_on_the_source() -> None:
    rows = _paused_source(**{"1": {"schedule": "UNPAUSED"}, "3": {"continuous": "UNPAUSED"}})
    rows["pause_source"]["detail"]["states"] = {"2": {"schedule": "PAUSED"}}
    priors = [_prior("1", "t1"), _prior("2", "t2"), _prior("3", "t3")]
    target = _listing(
        _job("t1", "1", schedule="PAUSED"), _job("t2", "2", schedule="PAUSED"), _job("t3", "3", continuous="PAUSED")
    )
    todo, counts = target_changes(rows, priors, target)
    assert {(p.job.job_id, tuple(p.fields)) for p in todo} == {("t1", ("schedule",)), ("t3", ("continuous",))}
    assert todo[0].row == TARGET_ROW + "t1"
    assert todo[0].detail == {"name": "job t1", "source_key": "1", "fields": ["schedule"]}  # what a rollback undoes
    assert counts["stay_paused"] == 1  # job 2 was paused on the source: its copy stays paused


def test_a_target_job_dbsync_did_not_create_is_never_unpaused() -> None:
    rows = _paused_source(**{"1": {"schedule": "UNPAUSED"}})
    target = _listing(_job("t1", "someone-else", schedule="PAUSED"))
    todo, counts = target_changes(rows, [_prior("1", "t1"), _prior("9", "t9")], target)
    assert todo == []
    assert counts["not_ours"] == ["t1"]
    assert counts["missing"] == ["9"]  # replicated, but its copy is gone from the target


def test_a_copy_with_another_trigger_type_unpauses_only_the_triggers_it_has() -> None:
    rows = _paused_source(**{"1": {"schedule": "UNPAUSED", "trigger": "UNPAUSED"}})
    target = _listing(_job("t1", "1", schedule="PAUSED"))
    todo, counts = target_changes(rows, [_prior("1", "t1")], target)
    assert [(p.job.job_id, p.fields) for p in todo] == [("t1", ["schedule"])]
    assert counts["mismatch"] == ["t1"]


def test_with_the_source_skipped_the_target_follows_the_state_of_the_last_sync() -> None:
    # --skip-source: pause_source is skipped, the source is not listed; the store kept each job's pause state.
    rows = {"pause_source": {"state": "skipped", "detail": {}}}
    priors = [_prior("1", "t1", {"schedule": "UNPAUSED"}), _prior("2", "t2", {"schedule": "PAUSED"})]
    target = _listing(_job("t1", "1", schedule="PAUSED"), _job("t2", "2", schedule="PAUSED"))
    todo, counts = target_changes(rows, priors, target)
    assert [p.job.job_id for p in todo] == ["t1"]
    assert counts["stay_paused"] == 1


def test_a_plan_before_pause_source_reads_the_live_source() -> None:
    prior = _prior("1", "t1", {"schedule": "PAUSED"})  # stale: unpaused on the source since the last sync
    live = _listing(_job("1", schedule="UNPAUSED"))
    assert wanted_states({}, prior, live) == {"schedule": "UNPAUSED"}
    assert wanted_states({}, _prior("2", "t2"), live) == {}  # deleted on the source: nothing to unpause


def test_each_source_pause_is_followed_by_its_copy_unpause_and_only_for_replicated_jobs() -> None:
    target = _listing(_job("t1", "1", continuous="PAUSED"))
    known = {"1": _prior("1", "t1")}
    follow = unpause_follower({}, target, known.get)
    paused, _ = source_changes(
        _listing(_job("1", continuous="UNPAUSED"), _job("2", schedule="UNPAUSED")), {}, KindSettings()
    )
    then = {p.job.job_id: follow(p) for p in paused}
    assert then["2"] is None  # not replicated: nothing on the target
    assert then["1"] is not None and (then["1"].job.job_id, then["1"].fields) == ("t1", ["continuous"])


def test_a_copy_already_unpaused_is_not_written_again() -> None:
    rows = _paused_source(**{"1": {"schedule": "UNPAUSED"}})
    rows[TARGET_ROW + "t1"] = {"state": "pending", "detail": {"name": "t1", "source_key": "1", "fields": ["schedule"]}}
    target = _listing(_job("t1", "1", schedule="UNPAUSED"))
    todo, counts = target_changes(rows, [_prior("1", "t1")], target)
    assert todo == []
    assert counts["settled"] == ["t1"]  # unpaused just before a crash: recorded unpaused, not written again


# -- rollback ---------------------------------------------------------------------------------------
def _target_rows(**fields: list[str]) -> dict[str, dict[str, Any]]:
    """The cutover's target records: copy id → the fields it unpaused (source key = copy id without "t")."""
    return {
        t: {"state": "unpaused", "detail": {"name": t, "source_key": t[1:], "fields": f}} for t, f in fields.items()
    }


def test_rollback_repauses_only_what_the_cutover_unpaused_and_still_runs() -> None:
    rows = _target_rows(t1=["schedule"], t2=["continuous"], t3=["schedule"])
    live = _listing(_job("t1", "1", schedule="UNPAUSED", trigger="UNPAUSED"), _job("t2", "2", continuous="PAUSED"))
    missing: list[str] = []
    repause = repause_items(rows, live, missing)
    assert [(p.job.job_id, p.fields) for p in repause] == [("t1", ["schedule"])]  # its trigger is not ours
    assert missing == ["target job t3"]


def test_rollback_restores_the_recorded_prior_state_of_each_source_job() -> None:
    source_rows = {
        "1": {"state": "paused", "detail": {"prior": {"schedule": "UNPAUSED", "trigger": "PAUSED"}}},
        "2": {"state": "paused", "detail": {"prior": {"continuous": "UNPAUSED"}}},
        "3": {"state": "paused", "detail": {"prior": {"schedule": "UNPAUSED"}}},
    }
    source = _listing(_job("1", schedule="PAUSED", trigger="PAUSED"), _job("2", continuous="PAUSED"))
    missing: list[str] = []
    restorer = Restorer(source_rows, source, {}, lambda key: None, missing)
    restore = restorer.remaining(set())
    # Only what was unpaused before the cutover runs again: job 1's trigger was paused before, stays paused.
    assert [(p.job.job_id, p.fields) for p in restore] == [("1", ["schedule"]), ("2", ["continuous"])]
    assert all(p.row == SOURCE_ROW + p.job.job_id for p in restore)
    assert missing == ["source job 3"]


def test_rollback_never_restores_a_source_job_while_its_target_copy_runs() -> None:
    source_rows = {k: {"state": "paused", "detail": {"prior": {"schedule": "UNPAUSED"}}} for k in ("1", "2")}
    source = _listing(_job("1", schedule="PAUSED"), _job("2", schedule="PAUSED"))
    target = _listing(_job("t1", "1", schedule="UNPAUSED"), _job("t2", "2", schedule="UNPAUSED"))
    restorer = Restorer(source_rows, source, target, lambda key: "t" + key, [])
    # Copy t1 was paused again by the rollback (its write succeeded): job 1 may run again.
    after = restorer.after_repause(_pause_of("t1", "1"))
    assert after is not None and after.job.job_id == "1"
    # Copy t2 could not be paused again (blocked) or runs outside dbsync: job 2 stays paused.
    assert restorer.remaining({"2"}) == []
    assert restorer.remaining(set()) == []
    assert restorer.kept == ["source job 2 (job 2) left paused: its target copy runs"]


def _pause_of(target_id: str, source_key: str) -> Any:
    """The re-pause write of a target copy, as the writer hands it to the restorer when it succeeded."""
    (item,) = repause_items(
        _target_rows(**{target_id: ["schedule"]}), _listing(_job(target_id, source_key, schedule="UNPAUSED")), []
    )
    return item
