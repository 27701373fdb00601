"""Logs and human output stay apart: a person at a terminal reads lines, a log collector reads JSON."""

from __future__ import annotations

import io
import json
import os
import pty
import subprocess
import sys
from pathlib import Path

from tests.conftest import Pair


def _sync_with_stderr_on_a_terminal(pair: Pair, cwd: Path, *flags: str) -> tuple[str, str]:
    """`dbsync sync --once` with stdout piped and stderr on a pseudo-terminal: (stdout, what the terminal showed)."""
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "dbsync.cli", "sync", "--once", "--log-level", "DEBUG", *flags],
            stdout=subprocess.PIPE,
            stderr=slave,
            env=pair.env(),
            cwd=cwd,
            text=True,
        )
        os.close(slave)
        slave = -1
        terminal = b""
        while True:  # bounded: the read fails (EIO) once the child closed the terminal
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            terminal += chunk
        stdout, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0, terminal.decode(errors="replace")
        return stdout, terminal.decode(errors="replace")
    finally:
        os.close(master)
        if slave != -1:
            os.close(slave)


def test_logs_on_a_terminal_are_readable_lines_not_json(pair: Pair, tmp_path: Path) -> None:
    pair.src.workspace.upload("/Shared/a.py", io.BytesIO(b"print(1)"), overwrite=True)
    stdout, terminal = _sync_with_stderr_on_a_terminal(pair, tmp_path)
    lines = [line for line in terminal.splitlines() if line.strip()]
    assert lines, "a DEBUG sync logs something"
    assert not any(line.lstrip().startswith("{") for line in lines), lines[:3]
    assert any(" info " in line or " debug " in line for line in lines), lines[:3]
    assert "notebooks" in stdout and "{" not in stdout  # the summary stays on stdout, free of log lines
    for token in (pair.source.token, pair.target.token):
        assert token not in terminal


def test_log_format_json_is_kept_on_a_terminal_when_asked(pair: Pair, tmp_path: Path) -> None:
    _, terminal = _sync_with_stderr_on_a_terminal(pair, tmp_path, "--log-format", "json")
    lines = [line for line in terminal.splitlines() if line.strip()]
    assert lines
    for line in lines:
        json.loads(line)
