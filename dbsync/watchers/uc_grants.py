"""Unity Catalog grants: the direct privileges on every UC securable dbsync replicated over REST.

Securables: what the Unity Catalog kinds (each watcher with a `uc_securable`: storage credentials, external
locations, connections, catalogs, volumes, functions) recorded as on the target, listed from the store like
object permissions, so this kind makes no listing call of its own. `GET /api/2.1/unity-catalog/permissions/
{type}/{full_name}` has no version, so each securable is read once a cycle on the source and compared by
fingerprint; only a change reads (and PATCHes) the target. The answer holds direct grants only (inherited ones
are `effective-permissions`'), and no owner: a securable's owner is part of its own kind's payload, written by a
PATCH of the securable. Principals are mapped (`mapping.emails`, `mapping.principals`).

A separate kind rather than part of each securable's payload: the grants need a call per securable per cycle
(the listings that carry the securables cost one call per kind), so they keep their own interval, a grant the
target's principal lacks leaves only the grant `partial` (never the securable), and the securable kinds keep
their no-change cycle at the listing calls.

On any securable, a grant the target had that the source lacks is kept unless dbsync itself added it (recorded
with the grants' row: dbsync/replicators/added.py): the DR team's grants on its own `main` or on a credential made
by hand, found there when dbsync adopted it, are never removed.

The payload also carries the fingerprint of the securable's own payload: a function or catalog created again on
the target (which drops its grants) gets its grants compared again.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from databricks.sdk.errors import DatabricksError

from dbsync import registry
from dbsync.context import SyncContext
from dbsync.declaration import Declaration
from dbsync.errors import RetryLater
from dbsync.model import Resource
from dbsync.watchers.base import Watcher
from dbsync.workspace import Workspace


def securable_kinds() -> list[tuple[str, str]]:
    """(kind, UC securable type) of every kind whose securables' grants this kind copies."""
    out = []
    for kind in registry.kinds():
        securable = getattr(kind.watcher, "uc_securable", "")
        if securable:
            out.append((kind.name, securable))
    return out


def read_grants(ws: Workspace, securable: str, full_name: str) -> list[tuple[str, str]]:
    """(principal, privilege) of the securable's direct grants in `ws`, as the service spells them."""
    got = ws.client.grants.get(securable, full_name)
    rows = []
    for assignment in got.privilege_assignments or []:
        for privilege in assignment.privileges or []:
            value = getattr(privilege, "value", privilege)
            rows.append((assignment.principal or "", str(value)))
    return rows


class UcGrantsWatcher(Watcher):
    kind = "uc_grants"
    # Reading the target's grants costs one GET per securable; a write compares with them instead.
    drift_check = False
    declaration = Declaration(interval=900, target_listed=False, listed_in_turn=True)  # lists this run's records

    def list(self, ctx: SyncContext, ws: Workspace) -> Iterator[Resource]:
        for object_kind, securable in securable_kinds():
            listed = ctx.listed.get(object_kind)  # None when the kind was not listed in this run
            for prior in ctx.history.priors(object_kind, payloads=False):
                if prior.target_key is None or (listed is not None and prior.key not in listed):
                    continue
                definition = prior.fingerprint if prior.status in ("synced", "partial") else None
                key = f"{securable.lower()}:{prior.key}"
                meta = {
                    "securable": securable,
                    "full_name": prior.key,
                    "definition": definition,
                    "adopted": prior.origin != "created",
                }
                yield Resource(self.kind, key, prior.key, None, source_meta=meta)

    def fetch(self, ctx: SyncContext, ws: Workspace, stub: Resource) -> Resource:
        securable, full_name = stub.source_meta["securable"], stub.source_meta["full_name"]
        try:
            rows = read_grants(ws, securable, full_name)
        except DatabricksError as err:
            raise RetryLater(
                f"cannot read the grants of {securable.lower()} {full_name} on the {ws.side}: {err}"
            ) from None
        meta = stub.source_meta
        stub.payload = self.normalize(ctx, securable, full_name, rows, meta.get("definition"))
        stub.payload["adopted"] = bool(meta.get("adopted"))
        return stub

    @staticmethod
    def normalize(
        ctx: SyncContext, securable: str, full_name: str, rows: list[tuple[str, str]], definition: str | None
    ) -> dict[str, Any]:
        """Grants with principals mapped for the target, sorted."""
        grants = sorted({(ctx.principals.any_principal(p), privilege) for p, privilege in rows})
        return {
            "securable": securable,
            "full_name": full_name,
            "grants": [list(g) for g in grants],
            "definition": definition,
        }


def watcher_for(kind: str) -> UcGrantsWatcher:
    return UcGrantsWatcher()
