"""/report.html at each moment an operator opens it, looked at with a real browser (headless Chromium).

Each state is fetched over HTTP from the daemon's server (emulated source and target, the real
databricks-sdk), screenshotted with `chromium --headless --screenshot`, and its DOM (`--dump-dom`)
read for the state class on <body>, the headline and the links: compared by structure, not by pixels.
"""

from __future__ import annotations

import io
import itertools
import re
import subprocess
import sys
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import Pair
from databricks.sdk.service import jobs
from databricks.sdk.service.workspace import ImportFormat, Language

from dbsync.cutover import Runbook, open_cutover_context
from dbsync.scheduler import Daemon
from dbsync.server import StatusServer
from dbsync_emulator.apis import clusters as emulated_clusters

READY = {"identities": {"create_users": True}}  # the emulated target has no identity provider
NOTEBOOK = "/Shared/ops/etl"


class Dom(HTMLParser):
    """What a person sees first: <body>'s state class, the headline, each link and the problems' kinds."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.body_class = ""
        self.headline = ""
        self.links: list[tuple[str, str]] = []
        self.problem_kinds: list[str] = []
        self.text = ""
        self._in_headline = False
        self._href: str | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "body":
            self.body_class = found.get("class") or ""
        if tag == "h2" and not self.headline:
            self._in_headline = True
        if tag == "a":
            self._href = found.get("href") or ""
            self.links.append((self._href, ""))
        if tag == "div" and found.get("class") == "problem":
            self.problem_kinds.append(found.get("data-kind") or "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "h2":
            self._in_headline = False
        if tag == "a":
            self._href = None

    def handle_data(self, data: str) -> None:
        self.text += data
        if self._in_headline:
            self.headline += data
        if self._href is not None:
            href, label = self.links[-1]
            self.links[-1] = (href, label + data)


def look(chromium: str, url: str, shot: Path) -> Dom:
    """Screenshot the page and read its DOM as Chromium rendered it."""
    flags = [
        "--headless",
        "--no-sandbox",  # the tests run as root in a container
        "--disable-gpu",
        "--hide-scrollbars",
        f"--user-data-dir={shot.parent / 'chromium-profile'}",
        "--window-size=1280,1500",
    ]
    subprocess.run([chromium, *flags, f"--screenshot={shot}", url], capture_output=True, timeout=120, check=False)
    assert shot.exists() and shot.stat().st_size > 5_000, f"no screenshot of {url}"
    dumped = subprocess.run([chromium, *flags, "--dump-dom", url], capture_output=True, text=True, timeout=120)
    assert "<body" in dumped.stdout, dumped.stderr[-2000:]
    return Dom(dumped.stdout)


def _job(w: Any, name: str) -> int:
    task = jobs.Task(task_key="t", environment_key="e", notebook_task=jobs.NotebookTask(notebook_path=NOTEBOOK))
    schedule = jobs.CronSchedule(
        quartz_cron_expression="0 0 * * * ?", timezone_id="UTC", pause_status=jobs.PauseStatus.UNPAUSED
    )
    return w.jobs.create(
        name=name, tasks=[task], environments=[jobs.JobEnvironment(environment_key="e")], schedule=schedule
    ).job_id


@pytest.fixture
def synced(pair: Pair) -> Pair:
    """A source with a notebook and a scheduled job, synced once to the target."""
    pair.src.workspace.mkdirs("/Shared/ops")
    pair.src.workspace.upload(
        NOTEBOOK, io.BytesIO(b"print('v1')"), format=ImportFormat.SOURCE, language=Language.PYTHON, overwrite=True
    )
    _job(pair.src, "nightly etl")
    pair.sync(**READY)
    return pair


@pytest.fixture
def page_server(synced: Pair) -> Iterator[StatusServer]:
    """The daemon's HTTP server (loopback, no token) over the synced pair; every request computes a fresh report."""
    ctx = synced.context(**READY)
    ticks = itertools.count(step=1000)  # past the report's TTL at each read: each state is computed anew
    server = StatusServer(("127.0.0.1", 0), Daemon(ctx), None, clock=lambda: float(next(ticks)))
    server.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        ctx.store.close()


def _target_job_id(pair: Pair, name: str) -> int:
    return next(j.job_id for j in pair.dst.jobs.list() if j.settings and j.settings.name == name)


def test_each_moment_of_a_cutover_has_its_own_headline_in_a_browser(
    synced: Pair, page_server: StatusServer, chromium: str, tmp_path: Path
) -> None:
    pair = synced
    url = page_server.url + "/report.html"
    ready = look(chromium, url, tmp_path / "1-ready.png")
    assert "state-ready" in ready.body_class and ready.headline.startswith("Ready for cutover")

    seen: dict[str, Dom] = {}

    def during(event: str, name: str, detail: dict[str, Any]) -> None:
        if event == "step" and name == "pause_source" and detail["state"] == "running":
            seen["cutover"] = look(chromium, url, tmp_path / "2-cutover-in-progress.png")

    ctx = open_cutover_context(pair.settings(**READY))
    try:
        Runbook(ctx, progress=during).run()
        cutover = seen["cutover"]
        assert "state-cutover" in cutover.body_class
        assert cutover.headline.startswith("Cutover in progress: step 3/6 pause_source"), cutover.headline

        primary = look(chromium, url, tmp_path / "3-primary.png")
        assert "state-primary" in primary.body_class and primary.headline.startswith("Cutover complete")
        assert "not ready" not in primary.text.lower(), "the success of a cutover must not read as a failure"
        target_job = f"{pair.target.url}/jobs/{_target_job_id(pair, 'nightly etl')}"
        assert (target_job, "nightly etl") in primary.links, "the cutover report names each job, linked on the primary"

        cli = subprocess.run(
            [sys.executable, "-m", "dbsync.cli", "validate", "--format", "html"],
            env=pair.env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert 'class="state-primary"' in cli.stdout and "not ready" not in cli.stdout.lower(), cli.stderr[-2000:]

        Runbook(ctx).rollback()
    finally:
        ctx.store.close()
    rolled = look(chromium, url, tmp_path / "4-rolled-back.png")
    assert "state-rolled-back" in rolled.body_class and rolled.headline.startswith("Rolled back")
    assert "Ready for cutover" in rolled.text

    pair.source.stop()
    outage = look(chromium, url, tmp_path / "5-source-outage.png")
    assert "state-source-outage" in outage.body_class
    assert outage.headline.startswith("Source unreachable"), outage.headline
    assert "not ready" not in outage.text.lower()
    assert re.search(r"The target holds \d+ objects as of .* \(\d+ s ago\)", outage.text), "what it holds, how stale"


def test_a_standby_that_is_not_ready_names_each_problem_once_with_its_fix(
    synced: Pair, page_server: StatusServer, chromium: str, tmp_path: Path
) -> None:
    pair = synced
    target_job = _target_job_id(pair, "nightly etl")
    pair.dst.workspace.upload(
        NOTEBOOK, io.BytesIO(b"print('edited')"), format=ImportFormat.SOURCE, language=Language.PYTHON, overwrite=True
    )
    pair.dst.jobs.update(target_job, new_settings=jobs.JobSettings(name="nightly etl (edited on the DR side)"))
    pair.sync(**READY)  # the drift check sees both target copies edited outside dbsync

    url = page_server.url + "/report.html"
    page = look(chromium, url, tmp_path / "standby-not-ready.png")
    assert "state-not-ready" in page.body_class and page.headline.startswith("Not ready for cutover")
    # Drift is on the target: the links open the edited target copies, by the objects' names.
    assert (f"{pair.target.url}/#workspace{NOTEBOOK}", "etl") in page.links
    assert (f"{pair.target.url}/jobs/{target_job}", "nightly etl") in page.links
    assert not any(label.strip().isdigit() for _, label in page.links), "a job shown as a bare id"
    assert page.text.count("Fix:") == len(page.problem_kinds) == 2
    assert "never" not in page.text.split("last verified")[-1], "every kind has its last verified time"

    pair.source.stop()  # the store against the live target: the drifted notebook is one problem, not two
    outage = look(chromium, url, tmp_path / "outage-with-drift.png")
    assert "state-source-outage" in outage.body_class
    assert outage.problem_kinds.count("notebooks") == 1
    assert outage.text.count(NOTEBOOK) == 1, "the notebook is counted once"
    cli = subprocess.run(
        [sys.executable, "-m", "dbsync.cli", "validate", "--format", "html"],
        env=pair.env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert 'class="state-source-outage"' in cli.stdout, cli.stderr[-2000:]  # the same page from the command line


def test_a_ready_page_never_claims_everything_while_mounts_were_never_looked_at(
    synced: Pair, page_server: StatusServer
) -> None:
    """No running source cluster: dbsync cannot list the mounts, so the page says so instead of "everything"."""
    page = httpx.get(page_server.url + "/report.html", timeout=60).text
    assert "Ready for cutover" in page
    assert "holds everything the source has" not in page
    assert "Not checked: mounts" in page
    assert re.search(r"mounts</span></td>\s*<td>\d+</td><td>\d+</td><td>unknown</td>", page), "mounts row"

    validate = subprocess.run(
        [sys.executable, "-m", "dbsync.cli", "validate"], env=synced.env(), capture_output=True, text=True, timeout=120
    )
    mounts_row = next(line for line in validate.stdout.splitlines() if line.startswith("mounts "))
    assert "unknown" in mounts_row, validate.stdout  # one vocabulary: the CLI and the page agree

    with synced.source.workspace.lock:  # a running cluster with no mounts: the inventory is now complete
        spec = {"cluster_name": "analysts", "spark_version": "15.4.x-scala2.12", "node_type_id": "i3.xlarge"}
        emulated_clusters.create_cluster(synced.source.workspace, {**spec, "num_workers": 1}, state="RUNNING")
    page = httpx.get(page_server.url + "/report.html", timeout=60).text
    assert "Not checked" not in page
