"""Source → target translation: ids of replicated objects (IdMap) and principals / ARNs (PrincipalMap)."""

from __future__ import annotations

import re
import threading
from typing import Any

from dbsync.config import MappingSettings
from dbsync.errors import Blocked
from dbsync.model import REF_MARKER, is_ref
from dbsync.principals import principal_on_target
from dbsync.store import Store

_ARN_ACCOUNT = re.compile(r"^(arn:aws:iam::)(\d{12})(:.*)$")
# The SCIM type of a principal named in an ACL entry, by the entry's field.
SCIM_TYPE = {"user_name": "users", "group_name": "groups", "service_principal_name": "service_principals"}
ANY = "any"  # a principal of unknown type (secret scope ACLs, SQL grants)
# Workspace roots whose first folder is named after a user (its email), and the prefix jobs, pipelines and
# libraries put before a workspace path.
USER_ROOTS = ("/Users/", "/Repos/")
WORKSPACE_PREFIX = "/Workspace"


def waiting_ref(scim_type: str, name: str) -> str:
    """How a partial object records a principal it waits for: `users:a@x.com`, `groups:eng`, `any:eng`."""
    return f"{scim_type}:{name}"


def acl_waiting_ref(principal_field: str, name: str) -> str:
    """waiting_ref of a principal named by an ACL field (user_name / group_name / service_principal_name)."""
    return waiting_ref(SCIM_TYPE.get(principal_field, ANY), name)


def arrived(ctx: Any, waiting: list[str]) -> list[str]:
    """The principals of `waiting` the target has now (its SCIM listings, read once per run)."""
    try:
        return [w for w in waiting if principal_on_target(ctx, *w.split(":", 1))]
    except Exception:  # the target's SCIM could not be read: nothing is known to have arrived, ask next cycle
        return []


class IdMap:
    """Resolves `Ref`s in payloads to target keys recorded in the store."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._cache: dict[tuple[str, str], str | None] = {}
        self._lock = threading.Lock()

    def target_key(self, kind: str, source_key: str) -> str | None:
        with self._lock:
            if (kind, source_key) in self._cache:
                return self._cache[(kind, source_key)]
        value = self.store.target_key(kind, source_key)
        if value is not None:
            with self._lock:
                self._cache[(kind, source_key)] = value
        return value

    def remember(self, kind: str, source_key: str, target_key: str | None) -> None:
        with self._lock:
            self._cache[(kind, source_key)] = target_key

    def resolve(self, payload: Any) -> Any:
        """A copy of `payload` with every Ref replaced by its target key; Blocked if any is unmapped."""
        missing: list[str] = []
        resolved = self._walk(payload, missing)
        if missing:
            raise Blocked("waiting for " + ", ".join(sorted(set(missing))) + " to be replicated first")
        return resolved

    def _walk(self, value: Any, missing: list[str]) -> Any:
        if is_ref(value):
            kind, key = value[REF_MARKER]
            target = self.target_key(kind, key)
            if target is None:
                missing.append(f"{kind} {key}")
            return target
        if isinstance(value, dict):
            return {k: self._walk(v, missing) for k, v in value.items()}
        if isinstance(value, list):
            return [self._walk(v, missing) for v in value]
        return value


class PrincipalMap:
    """Renames users (exact email or @domain rules), groups / service principals, and AWS account ids."""

    def __init__(self, settings: MappingSettings) -> None:
        self.exact = {k.lower(): v for k, v in settings.emails.items() if not k.startswith("@")}
        self.domains = [(k.lower(), v) for k, v in settings.emails.items() if k.startswith("@")]
        self.principals = dict(settings.principals)
        self.aws_account_id = settings.aws_account_id

    def user(self, email: str) -> str:
        mapped = self.exact.get(email.lower())
        if mapped:
            return mapped
        for old, new in self.domains:
            if email.lower().endswith(old):
                return email[: -len(old)] + new
        return email

    def group(self, name: str) -> str:
        return self.principals.get(name, name)

    def service_principal(self, application_id: str) -> str:
        return self.principals.get(application_id, application_id)

    def principal(self, principal_type: str, name: str) -> str:
        """Map a principal named in an ACL by its type (user_name / group_name / service_principal_name)."""
        if principal_type == "user_name":
            return self.user(name)
        if principal_type == "group_name":
            return self.group(name)
        return self.service_principal(name)

    def any_principal(self, name: str) -> str:
        """A principal of unknown type (secret scope ACLs, SQL grants): email rules, then renames."""
        return self.user(name) if "@" in name else self.principals.get(name, name)

    def path(self, path: str) -> str:
        """A workspace path whose first folder is a user's follows the user's rename: /Users/<email>/... and
        /Repos/<email>/..., also after /Workspace. Any other path, or one whose user has no mapping, is unchanged.

        /Repos/<email> was left as the source named it while the repos kind mapped its repos: the directories kind
        made an empty /Repos/<source email> folder on the standby, and the mapped /Repos/<target email> folder the
        repos kind made had no row (its ACL never replicated, never deleted with the source's). A job's notebook
        in a repo pointed at the unmapped path. One rule for every kind keeps them on the same paths.
        """
        prefix = WORKSPACE_PREFIX if path.startswith(WORKSPACE_PREFIX + "/") else ""
        rest = path[len(prefix) :]
        root = next((r for r in USER_ROOTS if rest.startswith(r)), None)
        if root is None:
            return path
        user, slash, tail = rest[len(root) :].partition("/")
        if root == "/Repos/" and "@" not in user:
            return path  # /Repos/<team folder>: no user's
        return f"{prefix}{root}{self.user(user)}{slash}{tail}"

    def arn(self, arn: str) -> str:
        if not self.aws_account_id:
            return arn
        return _ARN_ACCOUNT.sub(lambda m: m.group(1) + self.aws_account_id + m.group(3), arn)  # type: ignore[operator]


class StorageMap:
    """Unity Catalog storage URLs and cloud identities, source → target (`mapping.storage_urls`, `cloud_identities`).

    Entries are prefixes matched at a path boundary, the longest first: `s3://prod` maps `s3://prod/a` but not
    `s3://production`. A URL with no entry has no target (None): it is never copied pointing at the source's storage.
    """

    def __init__(self, settings: MappingSettings) -> None:
        self.urls = _by_length(settings.storage_urls)
        self.identities = _by_length(settings.cloud_identities)

    def url(self, url: str) -> str | None:
        """The target URL of a source storage URL, None when `mapping.storage_urls` has no entry for it."""
        return _rewrite(self.urls, url.rstrip("/"))

    def identity(self, identity: str) -> str:
        """The target's cloud identity (IAM role ARN, access connector id); unmapped ones are kept as they are."""
        mapped = _rewrite(self.identities, identity)
        return identity if mapped is None else mapped


def _by_length(entries: dict[str, str]) -> list[tuple[str, str]]:
    cleaned = [(k.rstrip("/"), v.rstrip("/")) for k, v in entries.items() if k.strip("/")]
    return sorted(cleaned, key=lambda e: len(e[0]), reverse=True)


def _rewrite(entries: list[tuple[str, str]], value: str) -> str | None:
    for old, new in entries:
        if value == old or value.startswith(old + "/") or (old.endswith(":") and value.startswith(old)):
            return new + value[len(old) :]
    return None


class SourceForm:
    """A kept payload back in the source's own form (`dbsync restore --to source`): each Ref becomes the source
    key it names, and principals and /Users/, /Repos/ paths follow the inverted mapping (`back`, e.g. the reverse
    direction's PrincipalMap), so the source gets its own users back, not the target's."""

    def __init__(self, back: PrincipalMap) -> None:
        self.back = back

    def payload(self, value: Any) -> Any:
        """A copy of `value` with Refs unresolved to source keys and /Users/<email>, /Repos/<email> paths mapped
        back."""
        if is_ref(value):
            return value[REF_MARKER][1]
        if isinstance(value, dict):
            return {k: self.payload(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.payload(v) for v in value]
        if isinstance(value, str):
            return self.back.path(value)
        return value

    def run_as(self, run_as: dict[str, Any]) -> dict[str, Any]:
        """A job's or pipeline's run_as, named as the source names the principal."""
        if run_as.get("user_name"):
            return {"user_name": self.back.user(run_as["user_name"])}
        if run_as.get("service_principal_name"):
            return {"service_principal_name": self.back.service_principal(run_as["service_principal_name"])}
        return run_as
