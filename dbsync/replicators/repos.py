"""Repos on the target: adopt the repo at the same path, create it (parent folder first), check out the branch.

A repo cannot change its remote: when the source repo at a path now points elsewhere, the target repo
is replaced. A checkout on the target is made only when the target differs from the source (branch,
head commit or sparse-checkout patterns); a PATCH with the same branch pulls the latest commit.
A source repo on a detached head (a tag or a commit) is created on its default branch and reported:
the Repos API does not name the tag. Private remotes need the calling user's Git credential on the
target; dbsync never copies credentials.
"""

from __future__ import annotations

import posixpath
from typing import Any

from databricks.sdk.errors import DatabricksError
from databricks.sdk.service.workspace import GetRepoResponse

from dbsync.apierrors import is_gone
from dbsync.context import SyncContext
from dbsync.errors import Permanent
from dbsync.model import Applied, Delete, Upsert
from dbsync.replicators.base import Replicator
from dbsync.replicators.common import sdk_call
from dbsync.watchers.repos import repo_id_at
from dbsync.watchers.workspace_objects import make_folder


def _same_remote(repo: GetRepoResponse, payload: dict[str, Any]) -> bool:
    return repo.url == payload["url"] and (repo.provider or "").lower() == (payload["provider"] or "").lower()


def _patterns(value: Any) -> list[str]:
    if value is None:
        return []
    patterns = value.get("patterns") if isinstance(value, dict) else value.patterns
    return list(patterns or [])


class RepoReplicator(Replicator):
    kind = "repos"

    def apply(self, ctx: SyncContext, change: Upsert) -> Applied:
        resource = change.resource
        payload = resource.payload
        path = payload["path"]
        repos = ctx.target.client.repos
        creating = change.target_key is None
        try:
            repo = self._existing(ctx, path)
            if repo is not None and not _same_remote(repo, payload):
                _may_replace(change, repo)
                repos.delete(int(repo.id or 0))  # the remote of a repo is fixed: replace it
                repo = None
            adopted = repo is not None if creating else None
            if repo is None:
                repo, adopted = self._create(ctx, payload), False
            self._checkout(ctx, repo, payload)
        except DatabricksError as err:
            if err.error_code in ("INVALID_PARAMETER_VALUE", "RESOURCE_ALREADY_EXISTS") and not is_gone(err):
                raise Permanent(f"the target rejected repo {path} ({payload['url']}): {err}") from err
            raise
        note = None
        if not payload.get("branch"):
            note = (
                f"the source repo is on a detached head (a tag or commit, {payload.get('head_commit_id')}); the "
                "Repos API does not name it, so the target repo stays on its default branch: check out the same "
                "tag on the target"
            )
        return Applied(path, note=note, adopted=adopted)

    @staticmethod
    def _existing(ctx: SyncContext, path: str) -> GetRepoResponse | None:
        """The repo already at `path` on the target (created by a run that crashed, or by hand)."""
        repo_id = repo_id_at(ctx.target, path)
        if repo_id is None:
            return None
        try:
            return ctx.target.client.repos.get(int(repo_id))
        except DatabricksError as err:
            if is_gone(err):
                return None
            raise

    @staticmethod
    def _create(ctx: SyncContext, payload: dict[str, Any]) -> GetRepoResponse:
        # The folder may not be on the target yet (the repos kind ran before the tree's, or its folder is excluded):
        # made here, and recorded as dbsync's, or the directories kind would find it there and adopt it (never
        # deleted with the source user's /Repos folder).
        make_folder(ctx, posixpath.dirname(payload["path"]))
        fields = {k: payload[k] for k in ("url", "provider", "path", "sparse_checkout") if payload.get(k)}
        created = sdk_call(ctx.target.client.repos.create, fields)
        return GetRepoResponse.from_dict(created.as_dict())

    @staticmethod
    def _checkout(ctx: SyncContext, repo: GetRepoResponse, payload: dict[str, Any]) -> None:
        """Check out the source's branch (a PATCH with the same branch pulls) and its sparse patterns."""
        update: dict[str, Any] = {}
        branch = payload.get("branch")
        if branch and (repo.branch != branch or repo.head_commit_id != payload.get("head_commit_id")):
            update["branch"] = branch
        if _patterns(repo.sparse_checkout) != _patterns(payload.get("sparse_checkout")):
            update["sparse_checkout"] = {"patterns": _patterns(payload.get("sparse_checkout"))}
        if update:
            sdk_call(ctx.target.client.repos.update, update, repo_id=int(repo.id or 0))

    def delete(self, ctx: SyncContext, change: Delete) -> None:
        path = change.target_key or change.key
        repo_id = repo_id_at(ctx.target, path)
        if repo_id is None:
            return  # already gone, or something else lives there now: not ours to delete
        try:
            ctx.target.client.repos.delete(int(repo_id))
        except DatabricksError as err:
            if not is_gone(err):
                raise


def _may_replace(change: Upsert, repo: GetRepoResponse) -> None:
    """Only a repo dbsync created is replaced when the remote differs; someone else's is left alone."""
    if change.prior is not None and change.target_key is not None and change.prior.origin == "created":
        return
    raise Permanent(
        f"{repo.path} on the target is a repo of {repo.url} that dbsync did not create: not replaced; "
        "move or delete it there, or exclude the source repo"
    )


def replicator_for(kind: str) -> Replicator:
    return RepoReplicator()
