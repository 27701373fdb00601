"""How long things take in an emulated workspace.

The fast profile (the default, for tests) is fixed: clusters start in `cluster_start_seconds`, a job run
takes `run_seconds`. The realistic profile (for benchmarks) draws durations like a real workspace's:
clusters start in 3-5 minutes, tasks last from tens of seconds to hours (log-normal, median 4 min).
Every draw is seeded by the workspace seed and the draw's ordinal, so the same workload gives the same
durations. `time_scale` multiplies every duration of either profile.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

# Realistic ranges, in seconds, by what happens (uniform between the bounds).
CLUSTER_SECONDS = {
    "start": (180.0, 300.0),
    "restart": (180.0, 300.0),
    "resize": (120.0, 240.0),
    "terminate": (20.0, 60.0),
}
# From a run's start to its first task, by what it runs on: a new job cluster starts like any cluster.
RUN_PENDING_SECONDS = {
    "job_cluster": CLUSTER_SECONDS["start"],
    "serverless": (5.0, 40.0),
    "existing": (1.0, 5.0),
}
TASK_MEDIAN_SECONDS = 240.0
TASK_SIGMA = 1.0
TASK_BOUNDS_SECONDS = (20.0, 6 * 3600.0)
FAST_RUN_PENDING_SECONDS = 1.0


@dataclass
class Timing:
    """The timing profile of one workspace; `draw(...)` ordinals come from the workspace's counters."""

    realistic: bool = False
    time_scale: float = 1.0
    run_seconds: float = 60.0
    seed: int = 0

    def _rng(self, kind: str, ordinal: int) -> random.Random:
        return random.Random(f"timing:{self.seed}:{kind}:{ordinal}")

    def cluster_seconds(self, fixed: float, kind: str, ordinal: int) -> float:
        """A cluster's transition (start, restart, resize, terminate); `fixed` is the fast profile's value."""
        if not self.realistic:
            return fixed * self.time_scale
        low, high = CLUSTER_SECONDS.get(kind, CLUSTER_SECONDS["start"])
        return self._rng(f"cluster:{kind}", ordinal).uniform(low, high) * self.time_scale

    def run_pending_seconds(self, compute: str, ordinal: int) -> float:
        """From a run's start to its first task: `compute` is "job_cluster", "existing" or "serverless"."""
        if not self.realistic:
            return FAST_RUN_PENDING_SECONDS * self.time_scale
        low, high = RUN_PENDING_SECONDS[compute]
        return self._rng(f"run-pending:{compute}", ordinal).uniform(low, high) * self.time_scale

    def task_seconds(self, levels: int, ordinal: int) -> float:
        """One task's duration; in the fast profile a run of `levels` dependency levels takes run_seconds."""
        if not self.realistic:
            return self.run_seconds * self.time_scale / max(levels, 1)
        drawn = self._rng("task", ordinal).lognormvariate(math.log(TASK_MEDIAN_SECONDS), TASK_SIGMA)
        low, high = TASK_BOUNDS_SECONDS
        return min(max(drawn, low), high) * self.time_scale
