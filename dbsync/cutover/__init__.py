"""`dbsync cutover`: the standby becomes the primary, as a runbook of recorded, resumable steps (+ rollback).

Steps, each a row of the store's `cutover` table (state running | done | skipped | failed, JSON detail):

  final_sync → validate → pause_source → unpause_target → mark_complete → report

A re-run resumes at the first step that is not done; a step that was running when the process died
runs again, and every step is idempotent (it compares the live state with the wanted one). Per-job
writes are recorded before they are made — `source_job:<id>` with the job's prior pause state,
`target_job:<id>` with the trigger fields unpaused — so a crash in the middle loses nothing and
`--rollback` knows exactly what to put back. Target jobs dbsync did not create are never touched.

pause_source unpauses each job's target copy as soon as the source job is recorded paused: the two
workspaces have their own rate limits, so the writes of both sides overlap, and per job the target
still starts only after the source stopped. unpause_target then does what is left (a resumed run,
`--skip-source`, a job created or edited on the source after the final sync, which pause_source
replicates once its source is paused). Writes are paced at `cutover.max_writes_per_second` per workspace.

The store's role is `cutover-in-progress` from the first write and `cutover-complete` at the end, when
`dbsync serve` stops replicating into the new primary; `dbsync_cutover_state` follows.

The package, one concern a module:

  runbook.py   the step machine: `Runbook` (plan, run, rollback), records and role markers
  steps.py     what each step does
  late_jobs.py jobs created or edited after the final sync, replicated with their ACLs once step 3 paused them
  plan.py      pure pause / unpause / rollback planning (no I/O, like dbsync/planner.py)
  writer.py    the paced two-sided writer (a Pacer per workspace, bounded thread pools)
  render.py    the plan's lines, the report document and its text
  rollback.py  `--rollback`
  pair.py      opening the pair (with or without the source) and the age of the last sync
  common.py    step and row names, the live job view, errors
"""

from dbsync.cutover.common import (
    DONE_STATES,
    ROLE_STATES,
    RUN_ROW,
    SOURCE_ROW,
    STEPS,
    TARGET_ROW,
    CutoverError,
    CutoverRefused,
    JobView,
    list_jobs,
)
from dbsync.cutover.pair import last_sync_age, open_cutover_context
from dbsync.cutover.render import format_report, states_text
from dbsync.cutover.rollback import needs_source as rollback_needs_source
from dbsync.cutover.runbook import Runbook
from dbsync.cutover.writer import Pacer, set_pause

__all__ = [
    "DONE_STATES",
    "ROLE_STATES",
    "RUN_ROW",
    "SOURCE_ROW",
    "STEPS",
    "TARGET_ROW",
    "CutoverError",
    "CutoverRefused",
    "JobView",
    "Pacer",
    "Runbook",
    "format_report",
    "last_sync_age",
    "list_jobs",
    "open_cutover_context",
    "rollback_needs_source",
    "set_pause",
    "states_text",
]
