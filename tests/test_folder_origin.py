"""Whose is a folder on the standby: dbsync's (deleted with the source's, its ACL the source's) or the DR team's.

mkdirs answers the same whether it made a folder or found one, so a folder's origin is read from the target's tree
before dbsync's mkdirs (watchers/workspace_objects.py: folder_was_on_target). These tests drive two emulated
workspaces over HTTP with the databricks-sdk, as `sync --once` would. What a real workspace does that they rely on:
`workspace/import` into a folder that does not exist answers 404 RESOURCE_DOES_NOT_EXIST, and `workspace/mkdirs`
makes every missing parent (like `mkdir -p`).
"""

from __future__ import annotations

import base64

import pytest
from conftest import Pair
from databricks.sdk.errors import NotFound
from databricks.sdk.mixins.workspace import WorkspaceExt
from databricks.sdk.service import iam
from databricks.sdk.service.workspace import ImportFormat, Language
from freezegun import freeze_time
from test_safety_grants import _groups

from dbsync.model import Prior
from dbsync.store import Store

TREE_KINDS = ["directories", "notebooks", "files"]


def _notebook(w, path: str) -> None:
    w.workspace.mkdirs(path.rsplit("/", 1)[0])
    content = base64.b64encode(b"print(1)").decode()
    w.workspace.import_(path, content=content, format=ImportFormat.SOURCE, language=Language.PYTHON, overwrite=True)


def _folder_there(w, path: str) -> bool:
    try:
        return w.workspace.get_status(path).object_type.value == "DIRECTORY"
    except NotFound:
        return False


def _origin(pair: Pair, key: str) -> str | None:
    store = Store(pair.state_path)
    try:
        prior = store.prior("directories", key)
        return prior.origin if prior else None
    finally:
        store.close()


def _row(pair: Pair, key: str) -> Prior | None:
    store = Store(pair.state_path)
    try:
        return store.prior("directories", key)
    finally:
        store.close()


def _seed(pair: Pair) -> None:
    _notebook(pair.src, "/Shared/finance/q1/summary")
    for name in ("daily", "weekly", "monthly"):  # the source keeps most of its tree: no delete guard in play
        _notebook(pair.src, f"/Shared/ops/{name}")


def test_a_folder_a_notebooks_only_sync_made_is_dbsyncs_and_goes_with_the_sources(pair: Pair) -> None:
    """`sync --once --kinds notebooks` imports a notebook whose folder the standby lacks: the import makes the folder
    (mkdirs), so the next full sync found it there and took it for the DR team's (adopted), kept for ever once the
    source deleted it. It is dbsync's: deleted with the source's."""
    _seed(pair)
    pair.sync(only=["notebooks"])
    assert _folder_there(pair.dst, "/Shared/finance/q1")

    pair.sync(only=TREE_KINDS)
    assert _origin(pair, "/Shared/finance") == "created"
    assert _origin(pair, "/Shared/finance/q1") == "created"

    pair.src.workspace.delete("/Shared/finance", recursive=True)
    reports = pair.sync(only=TREE_KINDS)

    assert all(r.errors == 0 for r in reports.values()), reports
    assert not _folder_there(pair.dst, "/Shared/finance")


def test_a_folder_the_dr_team_made_is_still_adopted_after_a_notebooks_only_sync(pair: Pair) -> None:
    """The notebooks' fallback mkdirs records only the folders the standby lacked: the DR team's stays theirs."""
    _seed(pair)
    pair.dst.workspace.mkdirs("/Shared/finance")
    pair.sync(only=["notebooks"])
    pair.sync(only=TREE_KINDS)

    assert _origin(pair, "/Shared/finance") == "adopted"
    assert _origin(pair, "/Shared/finance/q1") == "created"
    pair.src.workspace.delete("/Shared/finance", recursive=True)
    pair.sync(only=TREE_KINDS)
    assert _folder_there(pair.dst, "/Shared/finance") and not _folder_there(pair.dst, "/Shared/finance/q1")


def test_a_parent_a_subfolders_mkdirs_made_is_dbsyncs_when_its_own_row_comes_later(pair: Pair) -> None:
    """/Shared/finance excluded from the directories kind, /Shared/finance/q1 not: q1's mkdirs made the parent (mkdirs
    makes the parents). Once the exclusion was lifted the next sync found the parent there and adopted it, a folder
    never deleted with the source's. It is dbsync's. (A parent whose own mkdirs failed that run is the same case.)"""
    _notebook(pair.src, "/Shared/finance/q1/summary")
    pair.sync(only=TREE_KINDS, kinds={"directories": {"exclude": ["/Shared/finance"]}})
    assert _origin(pair, "/Shared/finance") is None and _folder_there(pair.dst, "/Shared/finance")

    pair.sync(only=TREE_KINDS)
    assert _origin(pair, "/Shared/finance") == "created"

    pair.src.workspace.delete("/Shared/finance", recursive=True)
    pair.sync(only=TREE_KINDS, force_deletes=True)  # most of the source tree goes: past the delete guard
    assert not _folder_there(pair.dst, "/Shared/finance")


# -- /Repos/<user> folders the repos kind made ----------------------------------------------------------------------
REPO_URL = "https://github.com/acme/etl.git"
REPO_KINDS = [*TREE_KINDS, "repos"]


def test_a_repos_folder_the_repos_kind_made_is_dbsyncs_and_goes_with_the_sources(pair: Pair) -> None:
    """The repos kind ran before the tree (`sync --once --kinds repos`, or the daemon's repos worker first): its
    mkdirs made /Repos/ana@example.com, so the next tree sync found the folder there and took it for the DR team's
    (adopted), kept for ever once the source user's folder went. It is dbsync's: deleted with the source's."""
    _seed(pair)
    repo = pair.src.repos.create(REPO_URL, "gitHub", path="/Repos/ana@example.com/etl")
    pair.src.repos.create(REPO_URL, "gitHub", path="/Repos/bob@example.com/etl")  # stays: no delete guard in play
    pair.sync(only=["repos"])
    assert _folder_there(pair.dst, "/Repos/ana@example.com")

    pair.sync(only=REPO_KINDS)
    assert _origin(pair, "/Repos/ana@example.com") == "created"

    pair.src.repos.delete(repo.id)
    pair.src.workspace.delete("/Repos/ana@example.com", recursive=True)
    reports = pair.sync(only=REPO_KINDS)

    assert all(r.errors == 0 for r in reports.values()), reports
    assert not _folder_there(pair.dst, "/Repos/ana@example.com")


def test_a_folder_the_dr_team_made_after_a_sync_was_killed_at_its_mkdirs_stays_theirs(
    pair: Pair, monkeypatch: pytest.MonkeyPatch
) -> None:
    """kill -9 as a notebook's write was about to make its missing folder /Shared/finance. The DR team then makes
    that folder on the standby by hand, with an entry of their own. With the folder recorded as dbsync's before its
    mkdirs (0c49122), the record outlived the kill, the retried import found the folder there (no 404, nothing to
    correct the record), and the directories kind took the DR team's folder for dbsync's: its ACL PUT whole (their
    entry erased) and the folder deleted with the source's. Recorded after the mkdirs, it is adopted: theirs."""
    _notebook(pair.src, "/Shared/finance/summary")
    for name in ("daily", "weekly", "monthly"):  # the source keeps most of its tree: no delete guard in play
        _notebook(pair.src, f"/Shared/ops/{name}")
    for w in (pair.src, pair.dst):
        w.groups.create(display_name="dr-admins")
    real_mkdirs = WorkspaceExt.mkdirs

    def killed_at_mkdirs(self: WorkspaceExt, path: str) -> None:
        if path.startswith("/Shared/finance"):
            raise KeyboardInterrupt("kill -9 before the mkdirs reached the target")
        real_mkdirs(self, path)

    with monkeypatch.context() as patch:
        patch.setattr(WorkspaceExt, "mkdirs", killed_at_mkdirs)
        with pytest.raises(KeyboardInterrupt):
            pair.sync(only=["notebooks"])
    assert not _folder_there(pair.dst, "/Shared/finance")

    pair.dst.workspace.mkdirs("/Shared/finance")  # the DR team's, by hand
    folder_id = str(pair.dst.workspace.get_status("/Shared/finance").object_id)
    entry = iam.AccessControlRequest(group_name="dr-admins", permission_level=iam.PermissionLevel.CAN_MANAGE)
    pair.dst.permissions.update("directories", folder_id, access_control_list=[entry])
    pair.sync(only=[*TREE_KINDS, "permissions"])

    assert _origin(pair, "/Shared/finance") == "adopted"
    acl = pair.dst.permissions.get("directories", folder_id).access_control_list or []
    assert any(e.group_name == "dr-admins" for e in acl)

    pair.src.workspace.delete("/Shared/finance", recursive=True)
    pair.sync(only=TREE_KINDS)
    assert _folder_there(pair.dst, "/Shared/finance")


def test_a_repos_folder_the_dr_team_made_stays_adopted_after_the_repos_kind_wrote_into_it(pair: Pair) -> None:
    """The repos kind records only the folders its mkdirs made: /Repos/ana@example.com made on the standby by hand
    is the DR team's, kept when the source user's folder goes."""
    _seed(pair)
    repo = pair.src.repos.create(REPO_URL, "gitHub", path="/Repos/ana@example.com/etl")
    pair.src.repos.create(REPO_URL, "gitHub", path="/Repos/bob@example.com/etl")
    pair.dst.workspace.mkdirs("/Repos/ana@example.com")
    pair.sync(only=["repos"])
    pair.sync(only=REPO_KINDS)
    assert _origin(pair, "/Repos/ana@example.com") == "adopted"
    assert _origin(pair, "/Repos/bob@example.com") == "created"

    pair.src.repos.delete(repo.id)
    pair.src.workspace.delete("/Repos/ana@example.com", recursive=True)
    pair.sync(only=REPO_KINDS)

    assert _folder_there(pair.dst, "/Repos/ana@example.com")


def _grant(w, path: str, group: str, level: str) -> None:
    entry = iam.AccessControlRequest(group_name=group, permission_level=iam.PermissionLevel(level))
    w.permissions.update("directories", str(w.workspace.get_status(path).object_id), access_control_list=[entry])


def test_a_repos_folder_the_repos_kind_made_gets_the_sources_exact_acl(pair: Pair) -> None:
    """Adopted, /Repos/ana@example.com had its ACL PATCHed: an entry given on the standby by hand stayed through
    every change of the source's ACL. dbsync's folder gets the source's ACL whole, as every folder it made."""
    for w in (pair.src, pair.dst):
        for group in ("etl", "analysts", "dr-admins"):
            w.groups.create(display_name=group)
    pair.src.repos.create(REPO_URL, "gitHub", path="/Repos/ana@example.com/etl")
    _grant(pair.src, "/Repos/ana@example.com", "etl", "CAN_EDIT")
    _grant(pair.src, "/Repos/ana@example.com", "analysts", "CAN_READ")
    pair.sync(only=["repos"])
    with freeze_time("2026-12-05 00:00:00") as clock:
        assert pair.sync(only=[*REPO_KINDS, "permissions"])["permissions"].errors == 0
        assert _groups(pair.dst, "directories", "/Repos/ana@example.com") == {"etl": "CAN_EDIT", "analysts": "CAN_READ"}
        _grant(pair.dst, "/Repos/ana@example.com", "dr-admins", "CAN_MANAGE")  # by hand, on dbsync's own folder
        _grant(pair.src, "/Repos/ana@example.com", "etl", "CAN_READ")
        clock.tick(3600)  # object ACLs are read by need: this one is due again within max_staleness
        assert pair.sync(only=[*REPO_KINDS, "permissions"])["permissions"].updated >= 1

    assert _groups(pair.dst, "directories", "/Repos/ana@example.com") == {"etl": "CAN_READ", "analysts": "CAN_READ"}


def test_a_repos_folder_whose_mkdirs_failed_is_not_recorded_so_the_dr_teams_stays_adopted(pair: Pair) -> None:
    """A folder is recorded as dbsync's only once its mkdirs has answered: one the target refused is not, so the folder
    the DR team then makes at that path by hand is theirs (recorded, it was taken for dbsync's: its ACL PUT whole,
    deleted with the source's)."""
    _seed(pair)
    pair.src.repos.create(REPO_URL, "gitHub", path="/Repos/ana@example.com/etl")
    pair.target.set_faults(rate_500=1.0, path_prefix="/api/2.0/workspace/mkdirs", max_faults=1)
    assert pair.sync(only=["repos"])["repos"].errors == 1
    pair.target.set_faults()
    assert not _folder_there(pair.dst, "/Repos/ana@example.com")

    pair.dst.workspace.mkdirs("/Repos/ana@example.com")
    pair.sync(only=REPO_KINDS)

    assert _origin(pair, "/Repos/ana@example.com") == "adopted"


def test_a_folder_whose_first_mkdirs_failed_is_written_by_the_next_sync(pair: Pair) -> None:
    """A 500 on a folder's first mkdirs leaves its row in `error` with no target path. The next write of it is a first
    write, not a move: it was taken for a folder moved from a recorded path that did not exist, and failed after its
    mkdirs every cycle (the folder stayed in `error` for good, validate never ready)."""
    _notebook(pair.src, "/Shared/finance/summary")
    finance = {"kinds": {"directories": {"include": ["/Shared/finance"]}}}  # its mkdirs is the only one
    pair.target.set_faults(rate_500=1.0, path_prefix="/api/2.0/workspace/mkdirs", max_faults=1)
    assert pair.sync(only=["directories"], **finance)["directories"].errors == 1
    pair.target.set_faults()
    failed = _row(pair, "/Shared/finance")
    assert failed is not None and failed.status == "error" and failed.target_key is None

    report = pair.sync(only=["directories"], **finance)["directories"]

    assert report.errors == 0 and report.created == 1, report
    written = _row(pair, "/Shared/finance")
    assert written is not None
    assert (written.status, written.target_key, written.origin) == ("synced", "/Shared/finance", "created")
    assert _folder_there(pair.dst, "/Shared/finance")
