"""A kind dbsync has never read is stale, not fresh: dbsync_staleness_seconds counts from when dbsync began
watching it.

On a new store whose instance-profile listing always failed, the kind had no object and no full read, so its
staleness was 0 (fresh) and it had no last-success series: neither DbsyncStalenessAboveTarget nor
DbsyncNoSuccessfulCycle could ever fire, however long the standby went without a single instance profile.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from conftest import Pair
from freezegun import freeze_time
from prometheus_client import REGISTRY

from dbsync.scheduler import Daemon

KIND = "instance_profiles"


def _sample(name: str) -> float | None:
    return REGISTRY.get_sample_value(name, {"kind": KIND})


def _until_dispatched(daemon: Daemon, job: str) -> None:
    """Wait (bounded) until the scheduler handed `job` to its worker: a shutdown in between raced with APScheduler
    removing the finished one-off job (an unhandled JobLookupError on its thread)."""
    deadline = time.monotonic() + 10
    while any(j["id"] == job for j in daemon.jobs()):
        assert time.monotonic() < deadline, daemon.jobs()
        time.sleep(0.01)


def test_a_kind_whose_listing_never_succeeded_grows_stale_from_its_first_try_across_a_restart(pair: Pair) -> None:
    pair.source.set_faults(rate_500=1.0, path_prefix="/api/2.0/instance-profiles/list")
    exported = _sample("dbsync_last_success_timestamp_seconds")  # the process's registry: an earlier test's pair
    first_try = time.time()
    assert pair.sync(only=[KIND], retry_timeout_seconds=2)[KIND].outcome == "listing_failed"

    assert _sample("dbsync_staleness_seconds") > 0, "never read: not fresh"
    target = _sample("dbsync_staleness_target_seconds")
    with freeze_time(datetime.now(UTC) + timedelta(hours=2)):
        assert _sample("dbsync_staleness_seconds") > target, "two hours unread: over its target, the alert fires"
    assert _sample("dbsync_last_success_timestamp_seconds") == exported, "a failed listing is no success"

    time.sleep(1.5)
    daemon = Daemon(pair.context(retry_timeout_seconds=2))  # `dbsync serve` started later on the same store
    try:
        with daemon._cycle_lock:  # no cycle runs: what is exported comes from the start alone
            daemon.start()
            staleness, since_first_try = _sample("dbsync_staleness_seconds"), time.time() - first_try
            _until_dispatched(daemon, "reconcile")
            daemon.stop.set()  # the reconcile waiting for the lock returns at once
    finally:
        daemon.shutdown(timeout=30)
    # From the first cycle's start (kept in the store), not from the restart 1.5 s after it.
    assert 1.5 <= staleness <= since_first_try
