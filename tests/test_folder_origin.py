"""Whose is a folder on the standby: dbsync's (deleted with the source's, its ACL the source's) or the DR team's.

mkdirs answers the same whether it made a folder or found one, so a folder's origin is read from the target's tree
before dbsync's mkdirs (watchers/workspace_objects.py: folder_was_on_target). These tests drive two emulated
workspaces over HTTP with the databricks-sdk, as `sync --once` would. What a real workspace does that they rely on:
`workspace/import` into a folder that does not exist answers 404 RESOURCE_DOES_NOT_EXIST, and `workspace/mkdirs`
makes every missing parent (like `mkdir -p`).
"""

from __future__ import annotations

import base64

from conftest import Pair
from databricks.sdk.errors import NotFound
from databricks.sdk.service.workspace import ImportFormat, Language

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
