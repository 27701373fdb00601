"""The target's principals by name (users, service principals, groups), read once per run.

Shared by the identity kinds (adoption, memberships), the kinds whose objects name principals (a job's
run_as, SQL grants) and the mapping (has a principal a partial object waits for arrived?).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dbsync.runcache import CacheKey

if TYPE_CHECKING:
    from dbsync.context import SyncContext

# {lower-cased name → (SCIM id, name)} of the target's principals of one SCIM type: .part(scim_type)
SCIM_INDEX: CacheKey[dict[str, tuple[str, str]]] = CacheKey("scim:target-index")
# Lower-cased names the target answered no principal for when asked directly (ScimIndex.confirm): .part(scim_type)
SCIM_ABSENT: CacheKey[set[str]] = CacheKey("scim:target-absent")
# SCIM page size: the SDK starts at index 1, asks for `count` per page and stops on an empty page.
SCIM_PAGE = 1000
NAME_FIELD = {"users": "userName", "service_principals": "applicationId", "groups": "displayName"}


def by_name(client: Any, scim_type: str, name: str) -> tuple[str, str] | None:
    """(SCIM id, the name as spelled there) of the principal of that type and name in a workspace, asked directly
    (one SCIM filter); None when it has none. `client`: the workspace's SDK client."""
    field = NAME_FIELD[scim_type]
    quoted = name.replace("\\", "\\\\").replace('"', '\\"')
    for record in getattr(client, scim_type).list(attributes=f"id,{field}", filter=f'{field} eq "{quoted}"'):
        found = record.as_dict().get(field)
        if record.id and found:
            return record.id, str(found)
    return None


class ScimIndex:
    """{lower-cased natural name → (SCIM id, the name as the target spells it)} of one type, once per run."""

    def __init__(self, scim_type: str) -> None:
        self.scim_type = scim_type
        self.field = NAME_FIELD[scim_type]

    def _index(self, ctx: SyncContext) -> dict[str, tuple[str, str]]:
        def build() -> dict[str, tuple[str, str]]:
            api = getattr(ctx.target.client, self.scim_type)
            out = {}
            for record in api.list(attributes=f"id,{self.field}", count=SCIM_PAGE):
                name = record.as_dict().get(self.field)
                if name and record.id:
                    out[str(name).lower()] = (record.id, str(name))
            return out

        return ctx.cached(SCIM_INDEX.part(self.scim_type), build)

    def get(self, ctx: SyncContext, name: str) -> tuple[str, str] | None:
        return self._index(ctx).get(name.lower())

    def add(self, ctx: SyncContext, name: str, scim_id: str) -> None:
        self._index(ctx)[name.lower()] = (scim_id, name)

    def forget(self, ctx: SyncContext, name: str) -> None:
        self._index(ctx).pop(name.lower(), None)

    def lookup(self, ctx: SyncContext, name: str) -> tuple[str, str] | None:
        """Ask the target directly (after a 409: someone created it since the index was read)."""
        found = by_name(ctx.target.client, self.scim_type, name)
        if found is not None:
            self.add(ctx, found[1], found[0])
        return found

    def confirm(self, ctx: SyncContext, name: str) -> tuple[str, str] | None:
        """The index's answer; for a name it lacks, the target asked directly (one SCIM GET, once a run per name).

        The index is read page by page by offset (startIndex): a principal deleted on the target between two pages
        makes the next page start one later, and the principal it skips is missing from the index though the
        target has it. Read as absent, that removed a user from a target group (adopted ones too), revoked its
        grants, or wrote a job without its run_as. Callers about to act on an absence ask this instead of `get`;
        the per-cycle checks ("has a principal arrived?") keep to the index, which costs no request.
        """
        found = self.get(ctx, name)
        if found is not None:
            return found
        absent = ctx.cached(SCIM_ABSENT.part(self.scim_type), set)
        if name.lower() in absent:
            return None
        found = self.lookup(ctx, name)
        if found is None:
            absent.add(name.lower())
        return found


# Shared by the watchers (is a skipped principal there now?) and the replicators (adoption, members).
INDEXES = {scim_type: ScimIndex(scim_type) for scim_type in NAME_FIELD}


def principal_on_target(ctx: SyncContext, scim_type: str, name: str) -> bool:
    """Whether the target has the principal (`any`: a user when it looks like an email, else group or SP)."""
    if scim_type in INDEXES:
        return INDEXES[scim_type].get(ctx, name) is not None
    types = ("users",) if "@" in name else ("groups", "service_principals")
    return any(INDEXES[t].get(ctx, name) is not None for t in types)


def principal_confirmed(ctx: SyncContext, scim_type: str, name: str) -> bool:
    """`principal_on_target`, with a name the index lacks asked for directly (ScimIndex.confirm): before a write
    that would leave the principal out (a membership removed, a grant revoked, a job without its run_as)."""
    if principal_on_target(ctx, scim_type, name):
        return True
    types = [scim_type] if scim_type in INDEXES else (["users"] if "@" in name else ["groups", "service_principals"])
    return any(INDEXES[t].confirm(ctx, name) is not None for t in types)
