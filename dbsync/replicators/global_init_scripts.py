"""Global init scripts on the target: adopted by name, created or patched, and kept in the source's order.

Positions are one shared order, so scripts are written one at a time. A new script goes right after
the target copy of its nearest source predecessor; after every write the replicated scripts are put
back in source order within the slots they occupy, so scripts made by hand on the target keep their
place and the replicated ones run in the source's order, whatever order the changes were applied in.
"""

from __future__ import annotations

import base64
import threading
from typing import Any

from databricks.sdk.errors import DatabricksError

from dbsync.apierrors import is_gone
from dbsync.context import SyncContext
from dbsync.errors import Permanent
from dbsync.model import Applied, Delete, Upsert
from dbsync.replicators.base import Replicator
from dbsync.replicators.common import TargetIndex, edited
from dbsync.runcache import CacheKey

KIND = "global_init_scripts"
_PATH = "/api/2.0/global-init-scripts"
_WRITE = threading.Lock()  # the positions of all scripts are one order: one writer at a time


def _unique_names(ctx: SyncContext) -> dict[str, str]:
    """{name: script_id} for names only one target script has (an ambiguous name is never adopted)."""
    seen: dict[str, list[str]] = {}
    for script in ctx.target.client.global_init_scripts.list():
        seen.setdefault(script.name or "", []).append(script.script_id or "")
    return {name: ids[0] for name, ids in seen.items() if len(ids) == 1}


BY_NAME = TargetIndex("global_init_scripts", lambda ctx: _unique_names(ctx).items())


SOURCE_ORDER: CacheKey[list[str]] = CacheKey("global-init-scripts:source-order")
PLACED: CacheKey[dict[str, str]] = CacheKey("global-init-scripts:placed")


def _source_order(ctx: SyncContext) -> list[str]:
    """Source script ids in run order, read once per run."""
    return ctx.cached(
        SOURCE_ORDER,
        lambda: [
            s.script_id or ""
            for s in sorted(ctx.source.client.global_init_scripts.list(), key=lambda s: s.position or 0)
        ],
    )


def _placed(ctx: SyncContext) -> dict[str, str]:
    """Source id → target id of the scripts written in this run (not in the store until recorded)."""
    return ctx.cached(PLACED, dict)


def _target_of(ctx: SyncContext, source_id: str) -> str | None:
    return _placed(ctx).get(source_id) or ctx.idmap.target_key(KIND, source_id)


def _target_order(ctx: SyncContext) -> list[str]:
    scripts = sorted(ctx.target.client.global_init_scripts.list(), key=lambda s: s.position or 0)
    return [s.script_id or "" for s in scripts]


def _insert_position(ctx: SyncContext, source_id: str) -> int:
    """Right after the target copy of the nearest source script before this one (0 when none is there)."""
    order = _source_order(ctx)
    if source_id not in order:
        return 0
    target = _target_order(ctx)
    for earlier in reversed(order[: order.index(source_id)]):
        target_id = _target_of(ctx, earlier)
        if target_id in target:
            return target.index(target_id) + 1
    return 0


def _reorder(ctx: SyncContext) -> None:
    """Replicated scripts in source order, within the slots they hold; other target scripts stay put."""
    current = _target_order(ctx)
    managed = [t for t in (_target_of(ctx, s) for s in _source_order(ctx)) if t in current]
    slots = [i for i, target_id in enumerate(current) if target_id in set(managed)]
    desired = list(current)
    for slot, target_id in zip(slots, managed, strict=True):
        desired[slot] = target_id
    for index, target_id in enumerate(desired):
        if current[index] == target_id:
            continue
        # PATCH with the position only: the documented partial update leaves the script itself alone.
        ctx.target.client.api_client.do("PATCH", f"{_PATH}/{target_id}", body={"position": index})
        current.remove(target_id)
        current.insert(index, target_id)


def _only_moved(change: Upsert) -> bool:
    """The source script only changed place: its name, content and state on the target are already right."""
    prior = change.prior
    if prior is None or prior.status != "synced" or not prior.payload:
        return False
    return _without_position(prior.payload) == _without_position(change.payload)


def _without_position(payload: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in payload.items() if k != "position"}


class GlobalInitScriptReplicator(Replicator):
    kind = KIND

    def apply(self, ctx: SyncContext, change: Upsert) -> Applied:
        resource = change.resource
        assert resource.body is not None  # a fetched script carries its body
        payload = resource.payload
        fields: dict[str, Any] = {
            "name": payload["name"],
            "script": base64.b64encode(resource.body).decode(),
            "enabled": payload["enabled"],
        }
        scripts = ctx.target.client.global_init_scripts
        with _WRITE:
            found = None if change.target_key else self._adoptable(ctx, payload["name"])
            script_id = change.target_key or found
            adopted = True if found else None  # one the target had is never deleted by dbsync
            try:
                if script_id is None or not (
                    _only_moved(change) or edited(lambda: scripts.update(script_id, **fields))
                ):
                    position = _insert_position(ctx, resource.key)
                    script_id = scripts.create(position=position, **fields).script_id or ""
                    adopted = False
                _placed(ctx)[resource.key] = script_id
                _reorder(ctx)
            except DatabricksError as err:
                if err.error_code == "INVALID_PARAMETER_VALUE" and not is_gone(err):
                    raise Permanent(f"the target rejected global init script {payload['name']!r}: {err}") from err
                raise
        return Applied(script_id, adopted=adopted)

    @staticmethod
    def _adoptable(ctx: SyncContext, name: str) -> str | None:
        """The target script of that name, unless another source script took it in this run (same names)."""
        script_id = BY_NAME.get(ctx, name)
        return None if script_id in _placed(ctx).values() else script_id

    def delete(self, ctx: SyncContext, change: Delete) -> None:
        try:
            ctx.target.client.global_init_scripts.delete(change.target_key or "")
        except DatabricksError as err:
            if not is_gone(err):
                raise


def replicator_for(kind: str) -> Replicator:
    return GlobalInitScriptReplicator()
