"""Repos (Git folders): keyed by path; the listing carries everything (url, provider, branch, head commit).

The version hint is the fingerprint of that listing, so a checkout of another branch or a pull on the
source (a new head commit) is an update and a no-change cycle costs the listing calls only. Git
credentials are per user and hold tokens: they are never replicated.

`repos/list` without a prefix serves /Repos only, so the roots where Git folders can live are listed
one by one. The workspace tree walker skips REPO objects; this kind owns them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from databricks.sdk.errors import NotFound

from dbsync.context import SyncContext
from dbsync.declaration import Declaration
from dbsync.watchers.listed import ListedWatcher
from dbsync.workspace import Workspace

# Git folders live under /Repos (classic) or, as Git folders, in user and shared folders.
LIST_ROOTS = ("/Repos", "/Users", "/Shared")


def repo_id_at(ws: Workspace, path: str) -> str | None:
    """The id of the repo at `path` (a repo's id is its workspace object_id); None when no repo is there."""
    try:
        status = ws.client.workspace.get_status(path)
    except NotFound:
        return None
    if status.object_type is None or status.object_type.value != "REPO":
        return None
    return str(status.object_id)


class RepoWatcher(ListedWatcher):
    declaration = Declaration(interval=120)

    def items(self, ws: Workspace) -> Iterator[tuple[str, str, dict[str, Any]]]:
        seen: set[int] = set()
        for root in LIST_ROOTS:
            for repo in ws.client.repos.list(path_prefix=root):
                if repo.id in seen or not repo.path:
                    continue
                seen.add(repo.id or 0)
                yield repo.path, repo.path.rsplit("/", 1)[-1], repo.as_dict()

    def normalize(self, ctx: SyncContext, raw: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        payload: dict[str, Any] = {
            # /Repos/<email>/... and /Users/<email>/... follow the email mapping, as the directories kind's folders.
            "path": ctx.principals.path(raw["path"]),
            "url": raw.get("url"),
            "provider": raw.get("provider"),
            # No branch means a detached head (a tag or a commit); the API does not say which tag.
            "branch": raw.get("branch"),
            "head_commit_id": raw.get("head_commit_id"),
        }
        patterns = (raw.get("sparse_checkout") or {}).get("patterns")
        if patterns:
            payload["sparse_checkout"] = {"patterns": list(patterns)}
        return payload, {"repo_id": raw.get("id")}

    def acl_object_id(self, ctx: SyncContext, ws: Workspace, key: str, meta: dict) -> str | None:
        """Repo ACLs are keyed by repo id, which differs per workspace: the target's is found by path."""
        if ws.side == "source" and meta.get("repo_id"):
            return str(meta["repo_id"])
        return repo_id_at(ws, key)


def watcher_for(kind: str) -> RepoWatcher:
    return RepoWatcher(kind, "repos")
