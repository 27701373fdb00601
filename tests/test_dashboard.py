"""The Grafana dashboard as operators read it (issue 21): the words the runbook names, a 0 where nothing failed.

Grafana reads a stat panel's value mappings from `fieldConfig.defaults.mappings` only; a `mappings` key anywhere
else is ignored and the panel shows the raw 0/1/2 (Grafana docs, "Configure value mappings": mappings are a
standard field option). A counter with labels has no series until its first increment, so `increase()` over it
returns nothing and a stat panel says "No data" unless the query or the panel supplies a 0.
The metric names themselves are checked in tests/test_deploy.py.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
GENERATOR = ROOT / "deploy" / "grafana" / "dashboard.py"
DASHBOARD = ROOT / "deploy" / "grafana" / "dbsync.json"
CHART_COPY = ROOT / "deploy" / "helm" / "dbsync" / "files" / "dbsync.json"
# dbsync/server.py and dbsync/cutover/ set dbsync_cutover_state to these values (metrics.py's help text).
CUTOVER_VALUES = {"standby": 0, "cutover-in-progress": 1, "cutover-complete": 2}


def _document() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def _panel(title: str) -> dict[str, Any]:
    (panel,) = [p for p in _document()["panels"] if p.get("title") == title]
    return panel


def _runbook_words() -> list[str]:
    """What the README's cutover runbook tells operators the *Cutover state* panel shows, in order of mention."""
    runbook = (ROOT / "README.md").read_text().split("## Cutover runbook", 1)[1].split("\n## ", 1)[0]
    words = re.findall(r"\*Cutover state\*\s+\"([^\"]+)\"", runbook)
    assert len(words) == 3, f"expected the runbook to name 3 cutover states, found {words}"
    return words


def test_cutover_state_shows_the_runbooks_words_through_field_defaults() -> None:
    panel = _panel("Cutover state")
    assert "mappings" not in panel, "a panel-level `mappings` is ignored by Grafana: use fieldConfig.defaults"
    mappings = panel["fieldConfig"]["defaults"]["mappings"]
    shown = {
        int(value): option["text"]
        for mapping in mappings
        if mapping["type"] == "value"
        for value, option in mapping["options"].items()
    }
    assert shown == dict(zip(sorted(CUTOVER_VALUES.values()), _runbook_words(), strict=True))


def test_the_errors_stat_shows_zero_when_nothing_failed() -> None:
    panel = _panel("Errors (1h)")
    (target,) = panel["targets"]
    assert re.search(r"\bor\s+vector\(0\)\s*$", target["expr"]), target["expr"]
    assert panel["fieldConfig"]["defaults"]["noValue"] == "0"


def test_every_panel_with_a_fallback_or_mapping_keeps_it_in_field_config() -> None:
    """No field option may sit at a panel's top level, where Grafana never looks."""
    field_options = {"mappings", "noValue", "unit", "thresholds", "decimals", "min", "max", "color"}
    for panel in _document()["panels"]:
        misplaced = field_options & set(panel)
        assert not misplaced, f"{panel['title']}: {sorted(misplaced)} outside fieldConfig.defaults"


def test_the_committed_json_is_what_the_typed_builder_generates() -> None:
    """deploy/grafana/dashboard.py builds the board with grafana-foundation-sdk; both committed copies match it."""
    source = GENERATOR.read_text()
    assert "grafana_foundation_sdk" in source, "the dashboard must be built with Grafana's typed builder"
    result = subprocess.run(
        [sys.executable, str(GENERATOR), "--stdout"], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == DASHBOARD.read_text(), "stale: run python deploy/grafana/dashboard.py"
    assert CHART_COPY.read_text() == DASHBOARD.read_text(), "stale: run python deploy/grafana/dashboard.py"
