"""Global init scripts on the target: found again by dbsync's marker, adopted by name, created or patched, and
kept in the source's order.

A copy dbsync makes ends with the marker line naming its source script (watchers/global_init_scripts.py):
names need not be unique, so after a kill -9 between the creates of two scripts named `setup` and their
record, only the marker tells the copies apart; without it both were created again, and every cluster start
ran each script twice. A script found by name is the DR team's: it is adopted and never gets the marker.

Positions are one shared order, so scripts are written one at a time. A new script goes right after
the target copy of its nearest source predecessor; after every write the replicated scripts are put
back in source order within the slots they occupy, so scripts made by hand on the target keep their
place and the replicated ones run in the source's order, whatever order the changes were applied in.
"""

from __future__ import annotations

import base64
import threading
from dataclasses import dataclass
from typing import Any

from databricks.sdk.errors import DatabricksError

from dbsync.apierrors import is_gone
from dbsync.context import SyncContext
from dbsync.errors import Permanent
from dbsync.model import Applied, Delete, Resource, Upsert
from dbsync.replicators.base import Replicator
from dbsync.replicators.common import claim, edited
from dbsync.runcache import CacheKey
from dbsync.watchers.global_init_scripts import marked, unmarked

KIND = "global_init_scripts"
_PATH = "/api/2.0/global-init-scripts"
_WRITE = threading.Lock()  # the positions of all scripts are one order: one writer at a time


MAX_SCRIPT_BYTES = 64 * 1024  # the service refuses a larger body


@dataclass
class _TargetScript:
    script_id: str
    name: str
    source_key: str | None  # named by dbsync's marker line: the copy of that source script


TARGET_SCRIPTS: CacheKey[list[_TargetScript]] = CacheKey("global-init-scripts:target")


def _target_scripts(ctx: SyncContext) -> list[_TargetScript]:
    """Every target script with the source id its marker names, read once per run, and only when a source
    script has no recorded copy (one GET a script: the listing has no bodies). This run's creates are added."""

    def read() -> list[_TargetScript]:
        api = ctx.target.client.global_init_scripts
        found = []
        for listed in api.list():
            try:
                script = api.get(listed.script_id or "")
            except DatabricksError as err:
                if is_gone(err):
                    continue  # deleted since the listing
                raise
            _, source_key = unmarked(base64.b64decode(script.script or ""))
            found.append(_TargetScript(listed.script_id or "", listed.name or "", source_key))
        return found

    return ctx.cached(TARGET_SCRIPTS, read)


def _found(ctx: SyncContext, source_key: str, name: str) -> tuple[str | None, bool | None]:
    """(target script, adopted) for a source script without a recorded copy; (None, None) when it is created.

    dbsync's own copy by its marker first (adopted False: dbsync made it); else the one target script of that
    name, unless it is dbsync's copy of another source script or another source script took it (`claim`).
    """
    scripts = _target_scripts(ctx)
    for script in scripts:
        if script.source_key == source_key and claim(ctx, KIND, script.script_id, source_key):
            return script.script_id, False
    named = [s for s in scripts if s.name == name]
    if len(named) == 1 and named[0].source_key is None and claim(ctx, KIND, named[0].script_id, source_key):
        return named[0].script_id, True
    return None, None


def _fields(resource: Resource, ours: bool) -> dict[str, Any]:
    """The create / PATCH body; the marker only on dbsync's own copy, and only when it fits the size limit
    (without it, such a copy is found again by its name when that is unique)."""
    assert resource.body is not None  # a fetched script carries its body
    payload = resource.payload or {}
    body = marked(resource.body, resource.key) if ours else resource.body
    if len(body) > MAX_SCRIPT_BYTES:
        body = resource.body
    return {"name": payload["name"], "script": base64.b64encode(body).decode(), "enabled": payload["enabled"]}


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
    if prior is None or prior.copy_status != "synced" or not prior.payload:
        return False
    return _without_position(prior.payload) == _without_position(change.payload)


def _without_position(payload: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in payload.items() if k != "position"}


class GlobalInitScriptReplicator(Replicator):
    kind = KIND

    def apply(self, ctx: SyncContext, change: Upsert) -> Applied:
        resource = change.resource
        name = resource.payload["name"]
        scripts = ctx.target.client.global_init_scripts
        with _WRITE:
            script_id, adopted = change.target_key, None  # a recorded copy keeps its recorded origin
            if script_id is None:
                script_id, adopted = _found(ctx, resource.key, name)
            ours = adopted is False or (
                adopted is None and change.prior is not None and change.prior.origin == "created"
            )
            try:
                if script_id is None or not (
                    _only_moved(change) or edited(lambda: scripts.update(script_id, **_fields(resource, ours)))
                ):
                    position = _insert_position(ctx, resource.key)
                    script_id = scripts.create(position=position, **_fields(resource, ours=True)).script_id or ""
                    adopted = False
                    claim(ctx, KIND, script_id, resource.key)
                    known = ctx.peek(TARGET_SCRIPTS)  # read before this create: it is added (a later read has it)
                    if known is not None:
                        known.append(_TargetScript(script_id, name, resource.key))
                _placed(ctx)[resource.key] = script_id
                _reorder(ctx)
            except DatabricksError as err:
                if err.error_code == "INVALID_PARAMETER_VALUE" and not is_gone(err):
                    raise Permanent(f"the target rejected global init script {name!r}: {err}") from err
                raise
        return Applied(script_id, adopted=adopted)

    def delete(self, ctx: SyncContext, change: Delete) -> None:
        try:
            ctx.target.client.global_init_scripts.delete(change.target_key or "")
        except DatabricksError as err:
            if not is_gone(err):
                raise


def replicator_for(kind: str) -> Replicator:
    return GlobalInitScriptReplicator()
