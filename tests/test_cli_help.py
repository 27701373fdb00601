"""`dbsync <command> --help` as a user reads it, and `--kinds` refused in one line when it names no real kind."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import Pair

from dbsync.registry import kind_names

COMMANDS = ("emulator", "demo", "sync", "plan", "status", "serve", "validate", "cutover", "reverse")
KINDS_COMMANDS = ("sync", "plan", "validate")


def dbsync(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DBSYNC_", "DATABRICKS_"))}
    return subprocess.run(
        [sys.executable, "-m", "dbsync.cli", *args],
        capture_output=True,
        text=True,
        env=env or base,
        cwd=cwd,
        timeout=120,
    )


def _blocks(text: str) -> list[str]:
    """The help text's paragraphs: usage, description, options, epilog."""
    return [b for b in re.split(r"\n\s*\n", text.strip()) if b.strip()]


def _options_without_help(text: str) -> list[str]:
    """Each option line in the `options:` block that has no help text on its line or the next one."""
    options = next(b for b in _blocks(text) if b.startswith("options:")).splitlines()[1:]
    missing = []
    for i, line in enumerate(options):
        if not line.startswith("  -"):
            continue
        has_inline = re.match(r"^  \S.*?\S {2,}\S", line) is not None
        has_next = i + 1 < len(options) and options[i + 1].startswith(" " * 10) and options[i + 1].strip()
        if not has_inline and not has_next:
            missing.append(line.strip())
    return missing


@pytest.mark.parametrize("command", COMMANDS)
def test_help_has_description_exit_codes_and_option_help(command: str) -> None:
    result = dbsync(command, "--help")
    assert result.returncode == 0, result.stderr
    blocks = _blocks(result.stdout)
    assert not blocks[1].startswith("options:"), f"`dbsync {command} --help` has no description"
    assert _options_without_help(result.stdout) == []
    epilog = next((b for b in blocks if b.startswith("exit status:")), "")
    for code in ("0", "1", "2"):
        assert re.search(rf"^\s+{code}\s+\w", epilog, re.M), f"`dbsync {command} --help` does not explain exit {code}"


@pytest.mark.parametrize("command", KINDS_COMMANDS)
def test_kinds_help_lists_every_valid_kind(command: str) -> None:
    help_text = " ".join(dbsync(command, "--help").stdout.split())
    for name in kind_names():
        assert name in help_text.replace("- ", "-"), f"`--kinds` help does not name {name}"


@pytest.mark.parametrize(
    ("kinds", "expected"),
    [(",", "names no kind"), ("notebookz", "did you mean 'notebooks'"), ("", "names no kind")],
)
def test_bad_kinds_is_one_line_exit_2_naming_the_valid_kinds(
    pair: Pair, tmp_path: Path, kinds: str, expected: str
) -> None:
    """Checked before any API call: `--kinds ,` used to mean every kind, deletes included."""
    for command in ("plan", "validate"):
        result = dbsync(command, "--kinds", kinds, env=pair.env(), cwd=tmp_path)
        assert result.returncode == 2, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert expected in lines[0] and "notebooks" in lines[0] and "jobs" in lines[0]
        assert result.stdout == ""


def test_kinds_is_checked_before_the_configuration(tmp_path: Path) -> None:
    """A typo in --kinds is named even when no workspace is configured: the user fixes both in one go."""
    result = dbsync("sync", "--once", "--kinds", "notebookz", cwd=tmp_path)
    assert result.returncode == 2
    assert "did you mean 'notebooks'" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_no_httpx_request_lines_at_the_default_log_level(pair: Pair, tmp_path: Path) -> None:
    """The host preflight goes through httpx: its per-request INFO line is noise in a user's log."""
    result = dbsync("plan", "--kinds", "notebooks", env=pair.env(), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "HTTP Request" not in result.stderr and "httpx" not in result.stderr
