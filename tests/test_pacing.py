"""Client-side pacing: a request budget per workspace (and per API family) that no request goes around.

The service limits requests per workspace and per API family and answers 429 (`REQUEST_LIMIT_EXCEEDED`,
often with Retry-After) past them (Databricks "Resource limits", API rate limits: e.g. Jobs create ~20/s,
Workspace import ~30/s, Permissions PUT ~30/s). Those limits are shared with the people working in the
workspace, so dbsync keeps under a budget instead of discovering the limit through 429s.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from dbsync import pacing
from dbsync.config import Settings, load_settings
from dbsync.engine import Engine
from dbsync.errors import ConfigError
from dbsync.pacing import RequestBudget, TokenBucket, family_of
from tests.conftest import Pair


class FakeClock:
    """A monotonic clock that only moves when someone sleeps: pacing is checked without waiting."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.lock = threading.Lock()

    def __call__(self) -> float:
        with self.lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.now += seconds


def _max_in_any_second(times: list[float]) -> int:
    """The most requests that left in any window of one second (half-open, starting at a request)."""
    ordered = sorted(times)
    return max(sum(1 for t in ordered if start <= t < start + 1.0) for start in ordered)


def test_a_bucket_never_lets_more_than_its_rate_leave_in_any_second() -> None:
    clock = FakeClock()
    bucket = TokenBucket(10, clock=clock, sleep=clock.sleep)
    sent = []
    for _ in range(55):
        bucket.take()
        sent.append(clock())
    assert _max_in_any_second(sent) == 10
    assert sent[-1] - sent[0] == pytest.approx(5.4)  # 54 gaps of 0.1 s: the budget is used, not wasted


def test_threads_share_one_bucket_and_each_waits_its_turn() -> None:
    """Eight workers asking at once are spaced like one: the budget is per workspace, not per thread."""
    clock = FakeClock()
    bucket = TokenBucket(20, clock=clock, sleep=lambda s: None)  # the slot is reserved; time stands still
    waits: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(10):
            waited = bucket.take()
            with lock:
                waits.append(waited)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    # 80 requests at 20/s from one instant: the slots are 0, 0.05, ..., 3.95 s, each given out once.
    assert sorted(round(w, 6) for w in waits) == [round(i * 0.05, 6) for i in range(80)]


def test_a_family_budget_paces_its_own_requests_and_still_draws_on_the_workspace_budget() -> None:
    clock = FakeClock()
    budget = RequestBudget("source", 50, {"permissions": 5}, clock=clock, sleep=clock.sleep)
    acl_times, other_times = [], []
    for i in range(40):
        path = "/api/2.0/permissions/jobs/1" if i % 2 else "/api/2.1/jobs/get?job_id=1"
        budget.take(path)
        (acl_times if i % 2 else other_times).append(clock())
    assert _max_in_any_second(acl_times) <= 5
    assert _max_in_any_second(acl_times + other_times) <= 50
    assert family_of("/api/2.0/workspace/export?path=/a") == "workspace"
    assert family_of("/api/2.0/preview/scim/v2/Users") == "scim"
    assert family_of("/api/2.0/clusters/list") is None


def test_a_request_that_leaves_late_puts_no_more_than_the_rate_in_any_second() -> None:
    """A thread that wakes late from its wait (a busy machine, the GIL) must not put more than the rate in a
    second: with slots alone, a request 60 ms late and the ten on time after it were 11 in a second under a
    budget of 10/s. Its lateness is not passed on to every request after it either."""
    clock = FakeClock()
    late = {3}  # the 4th wait oversleeps by 60 ms

    def sleep(seconds: float) -> None:
        clock.sleep(seconds + (0.06 if len(sent) in late else 0.0))
        late.discard(len(sent))

    budget = RequestBudget("source", 10 / 0.9, clock=clock, sleep=sleep)  # paced at 10/s after the headroom
    sent: list[float] = []
    for _ in range(30):
        budget.take("/api/2.0/workspace/list")
        sent.append(clock())
    assert _max_in_any_second(sent) == 10
    assert sent[13] - sent[3] == pytest.approx(1.0)  # the 11th in the late one's second waited for that second
    assert sent[-1] - sent[0] == pytest.approx(2.9)  # and the slots after it came back: nothing of the budget lost


def test_requests_that_each_leave_a_little_late_still_use_the_whole_budget() -> None:
    """Every wake-up a few milliseconds late (the daemon's interpreter is busy: each thread waits for the GIL)
    costs no requests: spacing each 1/rate after the one before actually left lost every one's lateness, and a
    budget paced at 45/s sent ~38 in the daemon's process."""
    clock = FakeClock()
    jitter = itertools.cycle([0.004, 0.001, 0.003, 0.0, 0.005, 0.002])

    budget = RequestBudget("source", 50, clock=clock, sleep=lambda seconds: clock.sleep(seconds + next(jitter)))
    sent: list[float] = []
    for _ in range(451):
        budget.take("/api/2.0/permissions/notebooks/1")
        sent.append(clock())
    assert _max_in_any_second(sent) <= 45
    assert 450 / (sent[-1] - sent[0]) > 44.5  # paced at 45/s: ~38/s when each lateness pushed the next back


def test_requests_late_together_catch_up_without_a_burst() -> None:
    """Eight requests queued for their slots and the whole process paused 300 ms (a garbage collection, the GIL):
    they leave half a slot apart, not at once. Let out in one burst they reached the service with the next second's
    requests and it counted 51 in a second against a budget of 50 paced at 45 (steady state, 100,000 objects).
    They still catch up: the slots after them are not pushed back."""
    clock = FakeClock()
    budget = RequestBudget("source", 10 / 0.9, clock=clock, sleep=clock.sleep)  # paced at 10/s: slots 100 ms apart
    bucket = budget.overall
    slots = [bucket.reserve(max(clock(), bucket.free_at())) for _ in range(8)]  # queued: 0, 0.1, ..., 0.7 s
    clock.sleep(0.8)  # the pause: every slot has passed when the threads wake
    left = []
    for _ in slots:
        if (gate := bucket.gate()) > clock():
            clock.sleep(gate - clock())
        bucket.leave(clock())
        left.append(clock())
    gaps = [b - a for a, b in itertools.pairwise(left)]
    assert min(gaps) == pytest.approx(0.05)  # twice the rate at most (all 8 in the same instant before)
    assert left[-1] - slots[-1] < 0.5  # caught up within the second: not spaced 1/rate after the late ones
    budget.take("/api/2.0/workspace/list")
    assert clock() - left[-1] == pytest.approx(0.05)  # the next, its slot long past, follows half a slot after


def _race(budget: RequestBudget, others: int) -> tuple[list[str], float]:
    """Four threads send `others` requests between them, one asking first; a request that gives way asks once
    they all queue. The order they left in, and when the one giving way left (seconds from the start)."""
    order: list[str] = []
    lock = threading.Lock()
    queued = threading.Barrier(5)
    start = time.monotonic()
    left_at = 0.0

    def other(n: int) -> None:
        queued.wait(timeout=10)
        for _ in range(n):
            budget.take("/api/2.1/jobs/list")
            with lock:
                order.append("other")

    def sweep() -> None:
        nonlocal left_at
        queued.wait(timeout=10)
        while budget.overall.free_at() <= time.monotonic():  # the others have queued
            time.sleep(0.001)
        with pacing.giving_way():
            budget.take("/api/2.0/permissions/notebooks/1", pacing.gives_way())
        left_at = time.monotonic() - start
        with lock:
            order.append("sweep")

    threads = [threading.Thread(target=other, args=(others // 4,)) for _ in range(4)] + [threading.Thread(target=sweep)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return order, left_at


def test_a_request_that_gives_way_leaves_after_the_others_queued_however_late_they_asked() -> None:
    """The ACL sweep's reads give way: a jobs page asked after one of them still leaves before it. At 100,000
    objects the sweep is 32 of the 45 paced requests/s, and a kind listed whole waited for each of its pages
    behind the sweep's queue (jobs: 49 s a cycle against a 120 s interval)."""
    budget = RequestBudget("source", 100 / 0.9)  # 10 ms apart
    order, _ = _race(budget, 40)
    assert order.index("sweep") >= 36, order  # the four threads asked again and again: they went first


def test_a_request_that_gives_way_queues_once_its_patience_is_out() -> None:
    """However busy the budget, the sweep moves: after its patience the request waits in the queue."""
    budget = RequestBudget("source", 100 / 0.9, patience=0.1)
    order, left_at = _race(budget, 80)  # 0.8 s of others
    assert 0.1 <= left_at < 0.5, left_at
    assert order.index("sweep") < 60, order


def test_a_budget_must_be_positive() -> None:
    with pytest.raises(ConfigError, match=r"source\.max_requests_per_second"):
        load_settings(
            overrides={
                "source": {"host": "https://a.cloud.databricks.com", "token": "x", "max_requests_per_second": 0}
            },
            require_workspaces=False,
        )


def _statuses(stats: dict) -> dict[str, int]:
    out: dict[str, int] = {}
    for entry in stats["endpoints"].values():
        for status, n in entry["statuses"].items():
            out[status] = out.get(status, 0) + n
    return out


KINDS = ["cluster_policies", "instance_pools", "directories", "notebooks", "jobs"]


def test_a_sync_under_a_budget_never_exceeds_it_per_second_and_meets_no_429(pair: Pair) -> None:
    """Both emulators allow exactly the budget, 8 requests/s (a token bucket with one second's burst, as the
    service measures its limits; 429 + Retry-After past it), and dbsync's budget is 8/s a side.

    Without the budget the same sync meets 429s (eight workers ask far faster than 8/s); with it, none.
    The emulators' per-second counts (by arrival) stay at the budget: requests leave at least 1/8 s apart,
    and only a request that a loaded machine delayed across a second's boundary can add one to the next.
    """
    from dbsync_emulator.seed import seed_workspace

    with pair.source.workspace.lock:
        seed_workspace(pair.source.workspace, 40, seed=5)
    pair.source.set_rate_limit(8)
    pair.target.set_rate_limit(8)
    budget = {"max_requests_per_second": 8}
    ctx = pair.context(
        source={"host": pair.source.url, "token": pair.source.token, **budget},
        target={"host": pair.target.url, "token": pair.target.token, **budget},
    )
    pair.reset_stats()  # the start-up probes (host reachable, the SDK's host metadata) precede the budget
    try:
        reports = {r.kind: r for r in Engine(ctx).cycle(KINDS)}
    finally:
        ctx.store.close()

    assert all(r.outcome == "ok" and r.errors == 0 for r in reports.values()), reports
    assert reports["notebooks"].created > 0
    for side in (pair.source, pair.target):
        stats = side.stats.document()
        assert "429" not in _statuses(stats), _statuses(stats)
        counts = sorted(stats["per_second"].values(), reverse=True)
        assert counts[0] <= 8, stats["per_second"]  # paced at 90 %: arrival jitter stays under the budget
        assert stats["total"] > 24  # the run spanned several seconds: the bound was exercised
    assert REGISTRY.get_sample_value("dbsync_api_budget_requests_per_second", {"workspace": "source"}) == 8


class RecordingBudget(RequestBudget):
    """A real budget that notes each request's path and whether it gave way."""

    def __init__(self) -> None:
        super().__init__("source", 1000)
        self.sent: list[tuple[str, bool]] = []

    def take(self, path: str, gives_way: bool = False) -> float:
        self.sent.append((path, gives_way))
        return super().take(path, gives_way)


def test_the_acl_sweep_gives_way_and_an_acl_the_audit_log_named_does_not(pair: Pair) -> None:
    """The sweep's source reads in turn give way; the rest of the cycle and a hinted ACL's read queue as usual."""
    from dbsync_emulator.seed import seed_workspace

    with pair.source.workspace.lock:
        seed_workspace(pair.source.workspace, 12, seed=3)
    pair.sync(only=["directories", "notebooks", "permissions"])
    ctx = pair.context()
    try:
        recorder = RecordingBudget()
        ctx.source.budget = recorder
        acl_keys = [r.key for r in ctx.history.priors("permissions", payloads=False)]
        ctx.store.hint_visits("permissions", acl_keys[:1])
        engine = Engine(ctx, full_sweep=True)  # every ACL read, due or not
        reports = {r.kind: r for r in engine.cycle(["directories", "notebooks", "permissions"])}
    finally:
        ctx.store.close()
    assert reports["permissions"].outcome == "ok", reports["permissions"]
    acl_reads = [(p, g) for p, g in recorder.sent if p.startswith("/api/2.0/permissions/")]
    assert len(acl_reads) >= len(acl_keys) > 3
    assert sum(1 for _, g in acl_reads if not g) == 1  # the named one, read ahead of its turn
    assert not any(g for p, g in recorder.sent if p.startswith("/api/2.0/workspace/"))  # the tree queues


def test_budgets_are_settings_of_each_side() -> None:
    settings = Settings(
        source={
            "host": "https://a.cloud.databricks.com",
            "max_requests_per_second": 25,
            "family_requests_per_second": {"permissions": 20, "jobs": 10},
        },
    )
    assert settings.source.max_requests_per_second == 25
    assert settings.source.family_requests_per_second.permissions == 20
    assert settings.target.max_requests_per_second is None  # unpaced unless set
    assert settings.listing_concurrency >= 1


def test_the_dashboard_shows_requests_spent_against_the_budget() -> None:
    """Operators read requests/s vs budget per workspace on one panel (deploy/grafana/dashboard.py)."""
    dashboard = json.loads((Path(__file__).parents[1] / "deploy" / "grafana" / "dbsync.json").read_text())
    panel = next(p for p in dashboard["panels"] if p.get("title") == "Requests/s vs budget")
    exprs = [t["expr"] for t in panel["targets"]]
    assert any("rate(dbsync_api_requests_total" in e and "by (workspace)" in e for e in exprs), exprs
    assert any("dbsync_api_budget_requests_per_second" in e for e in exprs), exprs
    assert panel["fieldConfig"]["defaults"]["unit"] == "reqps"
