"""The quick start: `dbsync demo` seeds two emulated workspaces, syncs them and ends ready for cutover."""

from __future__ import annotations

import pytest

import dbsync_emulator
from dbsync.cli.demo import run_demo


def test_demo_ends_ready_for_cutover_and_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    """The README's first command must succeed on a fresh machine: every kind in sync after the second sync
    (secret values read on a running source cluster, as a real workspace requires)."""
    assert run_demo(dbsync_emulator, seed_objects=120) == 0
    out = capsys.readouterr().out
    assert "ready for cutover: yes" in out
    assert "3. Second sync: only what changed is exported and written." in out
