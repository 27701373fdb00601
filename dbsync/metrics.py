"""Prometheus collectors: names and labels are a public contract (README "Metrics", deploy/prometheus/rules.yml, the
Grafana dashboard; tests/test_deploy.py checks those use only these). Labels are bounded: kinds, actions, statuses,
endpoint templates."""

from __future__ import annotations

import time
from collections.abc import Iterable

from prometheus_client import Counter, Gauge, Histogram

from dbsync.model import COUNTED

RESOURCES = Gauge("dbsync_resources", "Replicated resources by kind and status", ["kind", "status"])
CHANGES_APPLIED = Counter("dbsync_changes_applied_total", "Changes written to the target", ["kind", "action"])
SYNC_ERRORS = Counter("dbsync_sync_errors_total", "Changes or listings that failed", ["kind"])
CYCLE_DURATION = Histogram(
    "dbsync_cycle_duration_seconds",
    "Duration of one sync cycle of one kind",
    ["kind"],
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800),
)
LAST_SUCCESS = Gauge("dbsync_last_success_timestamp_seconds", "End of the last successful cycle", ["kind"])
REPLICATION_LAG = Gauge(
    "dbsync_replication_lag_seconds", "Age of the oldest source change not yet applied (0 in sync)", ["kind"]
)
API_REQUESTS = Counter(
    "dbsync_api_requests_total", "Databricks REST requests", ["workspace", "method", "endpoint", "status"]
)
API_BUDGET = Gauge(
    "dbsync_api_budget_requests_per_second",
    "The configured request budget of a workspace (source.max_requests_per_second); absent when unpaced",
    ["workspace"],
)
API_FAMILY_BUDGET = Gauge(
    "dbsync_api_family_budget_requests_per_second",
    "The configured request budget of one API family of a workspace (workspace, permissions, scim, jobs, ...)",
    ["workspace", "family"],
)
DRIFT_DETECTED = Counter("dbsync_drift_detected_total", "Target objects edited outside dbsync", ["kind"])
DELETE_GUARD_TRIPPED = Gauge(
    "dbsync_delete_guard_tripped", "1 while a kind's deletes are held by the delete guard", ["kind"]
)
STALENESS = Gauge(
    "dbsync_staleness_seconds",
    "Age of the oldest object of a kind not read on the source since (never read: since dbsync watches the kind)",
    ["kind"],
)
REVISIT_NEED = Gauge(
    "dbsync_revisit_need_requests_per_second",
    "Source reads per second a kind read by need asks at the least: its objects once per max_staleness",
    ["kind"],
)
STALENESS_TARGET = Gauge(
    "dbsync_staleness_target_seconds",
    "The kind's freshness target: its max_staleness, or its interval when every cycle reads every object",
    ["kind"],
)
UPDATE_GUARD_TRIPPED = Gauge(
    "dbsync_update_guard_tripped", "1 while a kind's updates are held by the edit-storm guard", ["kind"]
)
CUTOVER_READY = Gauge(
    "dbsync_cutover_ready", "1 while /cutover-readyz is 200: replicating, both workspaces answered, nothing stale"
)
CUTOVER_STATE = Gauge("dbsync_cutover_state", "0 standby replication, 1 cutover in progress, 2 cutover complete")

ACTIONS = ("create", "update", "delete")


def set_oldest_verification(kind: str, at: float | None) -> None:
    """dbsync_staleness_seconds{kind} grows from `at` (when the least recently read object was read) at each scrape.

    `at` None (a kind not watched yet: Store.oldest_verification) is 0 until its first cycle or the daemon's start
    records the watch; a kind watched but never read grows from then on."""
    child = STALENESS.labels(kind)
    if at is None:
        child.set(0)
        return
    child.set_function(lambda: max(0.0, time.time() - at))


def zero_series(kind_names: Iterable[str]) -> None:
    """Create every kind's labelled series at 0, so `increase()` sees a kind's first drift or error.

    A counter child that first appears at 1 has no earlier sample: Prometheus sees no increase and
    an alert on it stays silent for a one-off event.
    """
    for kind in kind_names:
        SYNC_ERRORS.labels(kind)
        DRIFT_DETECTED.labels(kind)
        DELETE_GUARD_TRIPPED.labels(kind)
        UPDATE_GUARD_TRIPPED.labels(kind)
        for action in ACTIONS:
            CHANGES_APPLIED.labels(kind, action)


def forget_kinds(kind_names: Iterable[str]) -> None:
    """Drop the dbsync_resources and dbsync_replication_lag_seconds series of kinds dbsync does not replicate.

    Both are read from the store at each scrape, which keeps a disabled kind's rows as its last cycle left them:
    one whose listing had failed exported `unknown` > 0 for ever, and DbsyncKindUnknown paged for a kind the
    operator turned off on purpose. Like its last success and staleness (the scheduler's, enabled kinds only),
    such a kind has no series: `validate` and /report do not compare it either."""
    for kind in kind_names:
        for status in COUNTED:
            RESOURCES.remove(kind, status)
        REPLICATION_LAG.remove(kind)
