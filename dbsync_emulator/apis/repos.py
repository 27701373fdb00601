"""Repos API 2.0 ("Git folders") and a minimal Git credentials API.

A repo is also a workspace object of type REPO with the same id (created through the workspace
module), so it shows up in `workspace/list` and `repo_id == object_id`. Table "repos" holds the Git
state (str(id) → {id, path, url, provider, branch?, head_commit_id, sparse_checkout?}); a record whose
workspace object was deleted through `workspace/delete` is dropped the next time it is looked at.
Table "git_credentials" holds credentials (the token is stored but never returned).

Not modelled: real Git (no files are checked out; head_commit_id is a hash of url and branch/tag),
Git-CLI-enabled repos, per-user credentials (everything belongs to the admin caller).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import posixpath
import re
from typing import Any

from dbsync_emulator.apis import permissions
from dbsync_emulator.apis import workspace as ws_api
from dbsync_emulator.errors import already_exists, invalid, not_found
from dbsync_emulator.router import Request, Routes
from dbsync_emulator.state import Workspace

routes = Routes()

PAGE_SIZE = 20
PROVIDERS = (
    "gitHub",
    "bitbucketCloud",
    "gitLab",
    "azureDevOpsServices",
    "gitHubEnterprise",
    "bitbucketServer",
    "gitLabEnterpriseEdition",
    "awsCodeCommit",
)
_CANONICAL = {p.lower(): p for p in PROVIDERS}
_URL = re.compile(r"^https?://[^/\s]+/\S+$")
LEVELS = ("CAN_READ", "CAN_RUN", "CAN_EDIT", "CAN_MANAGE")
REPOS, CREDENTIALS = "repos", "git_credentials"


# -- helpers ----------------------------------------------------------------------------------------
def _provider(value: Any) -> str:
    canonical = _CANONICAL.get(str(value).lower()) if value else None
    if canonical is None:
        raise invalid(f"Invalid Git provider: {value!r}. Supported providers: {', '.join(PROVIDERS)}")
    return canonical


def _commit(url: str, ref: str) -> str:
    """A stable 40-hex commit id for the head of a branch or tag."""
    return hashlib.sha1(f"{url}@{ref}".encode()).hexdigest()


def _repo_name(url: str) -> str:
    name = url.rstrip("/").rsplit("/", 1)[-1]
    return name[: -len(".git")] if name.endswith(".git") else name


def _default_path(ws: Workspace, url: str) -> str:
    return f"/Repos/{ws.admin_user}/{_repo_name(url)}"


def _check_path(ws: Workspace, path: Any) -> str:
    path = ws_api.normalize_path(path)
    parts = path.strip("/").split("/")
    if parts[0] == "Repos" and len(parts) != 3:
        raise invalid(f"Invalid repo path {path}: repos under /Repos must be at /Repos/<folder>/<repo-name>")
    if len(parts) < 2:
        raise invalid(f"Invalid repo path {path}")
    if ws_api.get_object(ws, path) is not None:
        raise already_exists(f"{path} already exists. Please choose a different path for the repo.")
    return path


def _live(ws: Workspace, record: dict) -> bool:
    obj = ws_api.get_object(ws, record["path"])
    return obj is not None and obj["object_type"] == "REPO" and obj["object_id"] == record["id"]


def _find(ws: Workspace, repo_id: Any) -> dict | None:
    record = ws.table(REPOS).get(str(repo_id))
    if record is not None and not _live(ws, record):
        ws.table(REPOS).pop(str(repo_id))  # deleted through workspace/delete
        return None
    return record


def _require(ws: Workspace, repo_id: str) -> dict:
    if not str(repo_id).isdigit():
        raise invalid(f"Invalid repo id: {repo_id}")
    record = _find(ws, repo_id)
    if record is None:
        raise not_found(f"Repo {repo_id} does not exist.")
    return record


def _info(record: dict) -> dict:
    return {k: v for k, v in record.items() if v is not None}


# -- internal API (handlers and the seeder) ---------------------------------------------------------
def create_repo(
    ws: Workspace,
    url: str,
    provider: str,
    path: str | None = None,
    branch: str | None = None,
    sparse_checkout: dict | None = None,
) -> dict:
    """Create a repo (and its REPO workspace object); the RepoInfo."""
    if not isinstance(url, str) or not _URL.match(url):
        raise invalid(f"Invalid Git URL: {url!r}")
    canonical = _provider(provider)
    path = _check_path(ws, path or _default_path(ws, url))
    if path.startswith("/Repos/"):
        ws_api.mkdirs(ws, posixpath.dirname(path))  # the user's /Repos folder is created on first use
    branch = branch or "main"
    obj = ws_api.create_object(ws, path, "REPO")
    record: dict[str, Any] = {
        "id": obj["object_id"],
        "path": path,
        "url": url,
        "provider": canonical,
        "branch": branch,
        "head_commit_id": _commit(url, branch),
    }
    if sparse_checkout:
        record["sparse_checkout"] = {"patterns": list(sparse_checkout.get("patterns") or [])}
    ws.table(REPOS)[str(obj["object_id"])] = record
    return _info(record)


def update_repo(ws: Workspace, repo_id: str, branch: str | None = None, tag: str | None = None) -> None:
    """Check out a branch or a tag (detached head: no branch)."""
    record = _require(ws, repo_id)
    if branch and tag:
        raise invalid("Only one of branch or tag can be specified.")
    if branch:
        record["branch"] = branch
        record["head_commit_id"] = _commit(record["url"], branch)
    elif tag:
        record.pop("branch", None)
        record["head_commit_id"] = _commit(record["url"], f"tags/{tag}")


def _inherited(ws: Workspace, repo_id: str) -> list[str]:
    record = ws.table(REPOS).get(repo_id)
    parent = ws_api.get_object(ws, posixpath.dirname(record["path"])) if record else None
    return [f"/directories/{parent['object_id']}"] if parent else ["/directories/"]


permissions.register("repos", "repo", LEVELS, lambda ws, oid: _find(ws, oid) is not None, _inherited)


# -- repos handlers ---------------------------------------------------------------------------------
def _prefix(raw: Any) -> str:
    if not raw or raw in ("/", "/Workspace", "/Workspace/"):
        return "/Repos"
    return ws_api.normalize_path(raw)


def _after(token: str | None) -> str | None:
    if not token:
        return None
    try:
        return base64.urlsafe_b64decode(token.encode()).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise invalid(f"Invalid next_page_token: {token}") from None


@routes.get("/api/2.0/repos")
def list_repos(ws: Workspace, req: Request) -> dict:
    """Repos whose path starts with path_prefix, by path, PAGE_SIZE per page."""
    prefix, after = _prefix(req.arg("path_prefix")), _after(req.arg("next_page_token"))
    matching = sorted(
        (r for r in list(ws.table(REPOS).values()) if r["path"].startswith(prefix) and _find(ws, r["id"])),
        key=lambda r: r["path"],
    )
    if after is not None:
        matching = [r for r in matching if r["path"] > after]
    page = matching[:PAGE_SIZE]
    body: dict[str, Any] = {}
    if page:
        body["repos"] = [_info(r) for r in page]
    if len(matching) > PAGE_SIZE:
        body["next_page_token"] = base64.urlsafe_b64encode(page[-1]["path"].encode()).decode()
    return body


@routes.post("/api/2.0/repos")
def create(ws: Workspace, req: Request) -> dict:
    return create_repo(
        ws, req.require("url"), req.require("provider"), req.param("path"), None, req.param("sparse_checkout")
    )


@routes.get("/api/2.0/repos/{repo_id}")
def get(ws: Workspace, req: Request) -> dict:
    return _info(_require(ws, req.path_params["repo_id"]))


@routes.patch("/api/2.0/repos/{repo_id}")
def update(ws: Workspace, req: Request) -> dict:
    repo_id = req.path_params["repo_id"]
    update_repo(ws, repo_id, req.param("branch"), req.param("tag"))
    sparse = req.param("sparse_checkout")
    if isinstance(sparse, dict):
        _require(ws, repo_id)["sparse_checkout"] = {"patterns": list(sparse.get("patterns") or [])}
    return {}


@routes.delete("/api/2.0/repos/{repo_id}")
def delete(ws: Workspace, req: Request) -> dict:
    record = _require(ws, req.path_params["repo_id"])
    ws_api.delete_object(ws, record["path"], recursive=True)
    ws.table(REPOS).pop(str(record["id"]), None)
    return {}


# -- git credentials --------------------------------------------------------------------------------
_CREDENTIAL_FIELDS = ("git_username", "git_email", "name", "is_default_for_provider")


def _credential(ws: Workspace, credential_id: str) -> dict:
    record = ws.table(CREDENTIALS).get(str(credential_id))
    if record is None:
        raise not_found(f"Git credential with id {credential_id} does not exist.")
    return record


def _public(record: dict) -> dict:
    return {k: v for k, v in record.items() if k != "personal_access_token"}


def _apply_credential(ws: Workspace, record: dict, body: dict) -> None:
    record["git_provider"] = _provider(body.get("git_provider"))
    for field in (*_CREDENTIAL_FIELDS, "personal_access_token"):
        if body.get(field) is not None:
            record[field] = body[field]
    if record.get("is_default_for_provider"):
        for other in ws.table(CREDENTIALS).values():
            if other is not record and other["git_provider"] == record["git_provider"]:
                other["is_default_for_provider"] = False


@routes.get("/api/2.0/git-credentials")
def list_credentials(ws: Workspace, req: Request) -> dict:
    credentials = [_public(r) for r in ws.table(CREDENTIALS).values()]
    return {"credentials": credentials} if credentials else {}


@routes.post("/api/2.0/git-credentials")
def create_credential(ws: Workspace, req: Request) -> dict:
    record: dict[str, Any] = {"credential_id": ws.next_id("git_credential")}
    _apply_credential(ws, record, req.json)
    ws.table(CREDENTIALS)[str(record["credential_id"])] = record
    return _public(record)


@routes.get("/api/2.0/git-credentials/{credential_id}")
def get_credential(ws: Workspace, req: Request) -> dict:
    return _public(_credential(ws, req.path_params["credential_id"]))


@routes.patch("/api/2.0/git-credentials/{credential_id}")
def update_credential(ws: Workspace, req: Request) -> dict:
    _apply_credential(ws, _credential(ws, req.path_params["credential_id"]), req.json)
    return {}


@routes.delete("/api/2.0/git-credentials/{credential_id}")
def delete_credential(ws: Workspace, req: Request) -> dict:
    _credential(ws, req.path_params["credential_id"])
    ws.table(CREDENTIALS).pop(req.path_params["credential_id"])
    return {}
