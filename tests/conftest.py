"""Shared fixtures: emulated workspaces served over real HTTP, driven by the real databricks-sdk."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.core import Config

from dbsync.config import Settings
from dbsync.context import SyncContext, open_context
from dbsync.engine import Engine
from dbsync.outcomes import KindReport
from dbsync_emulator import EmulatorHandle, start_emulator


def debian_tool(binary: str, package: str, timeout: float = 900) -> str:
    """`binary`, installed from Debian's `package` when missing and we may (root + apt-get).

    The README's test command must work on a fresh machine; elsewhere the test fails with the install line.
    The suite runs in several worker processes (pytest-xdist): one installs at a time (dpkg's lock refuses a second).
    """
    found = shutil.which(binary)
    if not found and os.geteuid() == 0 and shutil.which("apt-get"):
        with open(Path(tempfile.gettempdir()) / "dbsync-tests-apt.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            found = shutil.which(binary)  # another worker may have installed it while this one waited
            if not found:
                env = os.environ | {"DEBIAN_FRONTEND": "noninteractive"}
                for command in (
                    ["apt-get", "update", "-qq"],
                    ["apt-get", "install", "-y", "-qq", "--no-install-recommends", package],
                ):
                    subprocess.run(command, env=env, capture_output=True, timeout=timeout, check=False)
                found = shutil.which(binary)
    if not found:
        pytest.fail(f"{binary} is missing: apt-get install -y {package} (Debian's package provides /usr/bin/{binary})")
    return found


@pytest.fixture(scope="session")
def promtool() -> str:
    """promtool, from Debian's `prometheus` package: the alert rules and the exposition are checked with it."""
    return debian_tool("promtool", "prometheus")


ALERT_RULES = Path(__file__).resolve().parent.parent / "deploy" / "prometheus" / "rules.yml"


def promtool_verdict(
    promtool: str, tmp_path: Path, input_series: list[dict[str, str]], alert_rule_test: list[dict[str, Any]]
) -> subprocess.CompletedProcess[str]:
    """`promtool test rules` of deploy/prometheus/rules.yml fed `input_series` (a sample a minute), checked by
    `alert_rule_test` (promtool's own unit-test format): returncode 0 when every check holds."""
    import yaml  # the tests that check alert rules only

    document = {
        "rule_files": [str(ALERT_RULES)],
        "evaluation_interval": "1m",
        "tests": [{"interval": "1m", "input_series": input_series, "alert_rule_test": alert_rule_test}],
    }
    path = tmp_path / "alert_rules_test.yml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return subprocess.run([promtool, "test", "rules", str(path)], capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="session")
def chromium() -> str:
    """Headless Chromium: the report page's tests look at it with a real browser."""
    return debian_tool("chromium", "chromium")


# The SDK reads DATABRICKS_* and ~/.databrickscfg; tests must see only what they configure.
for _name in [n for n in os.environ if n.startswith("DATABRICKS_")]:
    del os.environ[_name]


def sdk_client(handle: EmulatorHandle, token: str | None = None, retry_timeout_seconds: int = 60) -> WorkspaceClient:
    """A WorkspaceClient for an emulator, configured the way a user would (host + PAT)."""
    config = Config(
        host=handle.url,
        token=token or handle.token,
        auth_type="pat",
        retry_timeout_seconds=retry_timeout_seconds,
    )
    return WorkspaceClient(config=config)


@pytest.fixture
def emulator() -> Iterator[EmulatorHandle]:
    """A fresh, empty emulated workspace on a free loopback port."""
    handle = start_emulator(cluster_start_seconds=0.2)
    try:
        yield handle
    finally:
        handle.stop()


@pytest.fixture
def w(emulator: EmulatorHandle) -> WorkspaceClient:
    """The databricks-sdk client for `emulator`."""
    return sdk_client(emulator)


def endpoint_count(handle: EmulatorHandle, endpoint: str) -> int:
    """How many requests the emulator served for `endpoint` ("GET /api/2.0/workspace/export")."""
    return handle.stats.document()["endpoints"].get(endpoint, {}).get("count", 0)


class Pair:
    """A source and a target emulator, a state file, and helpers to sync between them like a user would."""

    def __init__(self, source: EmulatorHandle, target: EmulatorHandle, state_path: Path) -> None:
        self.source = source
        self.target = target
        self.state_path = state_path
        self.src = sdk_client(source)
        self.dst = sdk_client(target)
        self._contexts: list = []

    def settings(self, **overrides: Any) -> Settings:
        document: dict[str, Any] = {
            "source": {"host": self.source.url, "token": self.source.token},
            "target": {"host": self.target.url, "token": self.target.token},
            "state_path": str(self.state_path),
            "retry_timeout_seconds": 60,
        }
        document.update(overrides)
        return Settings(**document)

    def context(self, dry_run: bool = False, **overrides: Any) -> SyncContext:
        ctx = open_context(self.settings(**overrides), dry_run=dry_run)
        self._contexts.append(ctx)
        return ctx

    def sync(
        self, only: list[str] | None = None, force_deletes: bool = False, **overrides: Any
    ) -> dict[str, KindReport]:
        """One `sync --once` cycle (of the kinds in `only`, or all) with a fresh context, as a new process."""
        ctx = self.context(**overrides)
        try:
            return {r.kind: r for r in Engine(ctx, force_deletes=force_deletes).cycle(only)}
        finally:
            ctx.store.close()

    def env(self) -> dict[str, str]:
        """Environment for a `dbsync` subprocess pointed at this pair."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DBSYNC_", "DATABRICKS_"))}
        env.update(
            {
                "DBSYNC_SOURCE__HOST": self.source.url,
                "DBSYNC_SOURCE__TOKEN": self.source.token,
                "DBSYNC_TARGET__HOST": self.target.url,
                "DBSYNC_TARGET__TOKEN": self.target.token,
                "DBSYNC_STATE_PATH": str(self.state_path),
                "DBSYNC_RETRY_TIMEOUT_SECONDS": "60",
            }
        )
        return env

    def target_writes(self) -> int:
        """Requests that changed the target (anything but GET) since the last stats reset."""
        return sum(v["count"] for k, v in self.target.stats.document()["endpoints"].items() if not k.startswith("GET"))

    def reset_stats(self) -> None:
        self.source.stats.reset()
        self.target.stats.reset()


def run_cli(
    pair: Pair,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    *argv: str,
    env: dict[str, str] | None = None,
) -> tuple[int, str, str]:
    """`dbsync <argv>` in-process with the pair's environment (and `env`): (exit code, stdout, stderr)."""
    import logging

    from dbsync.cli import main

    for name, value in {**pair.env(), **(env or {})}.items():
        if name.startswith("DBSYNC_"):
            monkeypatch.setenv(name, value)
    capsys.readouterr()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        code = main(list(argv))
    finally:  # `main` logs to the captured stderr; later tests must not write to it once it is closed
        root.handlers[:], root.level = handlers, level
    out = capsys.readouterr()
    return code, out.out, out.err


def killed_before_the_record(pair: Pair, kinds: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """A cycle whose writes reach the target and whose process dies before it records them (kill -9).

    `Store.record_applied_many` is where the engine records a window of applied changes: raising there leaves the
    target written and the store not, exactly what a kill -9 between the two leaves. (tests/test_chaos.py kills a
    real process, at random points; this one must die at this point.)
    """

    from dbsync.store import Store

    def killed(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt("kill -9 between the target writes and their record")

    ctx = pair.context()
    try:
        with monkeypatch.context() as patch:
            patch.setattr(Store, "record_applied_many", killed)
            with pytest.raises(KeyboardInterrupt):
                Engine(ctx).cycle(kinds)
    finally:
        ctx.store.close()


@pytest.fixture(autouse=True)
def cutover_waits_in_test_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """A cutover waits MARKER_WAIT_SECONDS (12 s) after marking the target before anything runs there
    (dbsync/role.py, MarkerWait): every cutover test would sleep them. Here it does not sleep; the wait itself
    is checked against freezegun's clock in tests/test_fence_wait.py."""
    from dbsync.cutover import Runbook

    monkeypatch.setattr(Runbook, "sleep", staticmethod(lambda seconds: None))


def _target_token() -> str:
    return "dapi-target-token-" + "9" * 8


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[Pair]:
    """An empty source and an empty target emulator (distinct tokens) and a fresh state path."""
    source = start_emulator(cluster_start_seconds=0.1)
    target = start_emulator(cluster_start_seconds=0.1, token=_target_token())
    try:
        yield Pair(source, target, tmp_path / "state.db")
    finally:
        source.stop()
        target.stop()


@pytest.fixture
def seeded_pair(pair: Pair) -> Pair:
    """`pair` with a realistic source of about 150 objects of every kind."""
    from dbsync_emulator.seed import seed_workspace

    with pair.source.workspace.lock:
        seed_workspace(pair.source.workspace, 150, seed=3)
    return pair
