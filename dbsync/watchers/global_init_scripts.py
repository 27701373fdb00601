"""Global init scripts: keyed by script_id; the listing has no contents, so a script is fetched only
when its listing entry changed (name, position, enabled, updated_at).

The payload is name, enabled, position and the sha256 of the script; the script itself travels from
fetch to apply in `Resource.body` and never reaches the store (an init script may embed credentials).

A script dbsync creates ends with its marker line, `# dbsync_source_id=<source script id>` (a script has no
tags: its body is the only place to say whose copy it is). Every script read is compared without it, so the
copy equals its source and the marker never travels back to the old primary in a failback.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterator
from typing import Any

from databricks.sdk.errors import DatabricksError

from dbsync.apierrors import is_gone
from dbsync.context import SyncContext
from dbsync.declaration import Declaration
from dbsync.errors import ListingError, RetryLater
from dbsync.model import Resource, fingerprint
from dbsync.tags import SOURCE_ID_TAG
from dbsync.watchers.base import Watcher
from dbsync.workspace import Workspace

_MARKER = re.compile(rb"\n# " + SOURCE_ID_TAG.encode() + rb"=([^\n]+)\n\Z")


def marked(body: bytes, source_key: str) -> bytes:
    """The body of dbsync's copy: the source's, then its own line naming the source script.

    Always after a newline of its own, so `unmarked` gives back the source's bytes exactly (with or
    without a final newline) and the comment is a line of its own whatever the script's last line was.
    """
    return body + b"\n# " + SOURCE_ID_TAG.encode() + b"=" + source_key.encode() + b"\n"


def unmarked(body: bytes) -> tuple[bytes, str | None]:
    """(the body without dbsync's marker line, the source script id it names or None)."""
    found = _MARKER.search(body)
    if found is None:
        return body, None
    return body[: found.start()], found.group(1).decode(errors="replace")


def listing_facts(script: dict[str, Any], side: str) -> dict[str, Any]:
    """What the listing says of a script. On the target, position is left out: dbsync's own inserts and
    deletes shift the scripts after them, which is not an edit (drift) of those scripts."""
    facts = {k: script.get(k) for k in ("name", "enabled", "updated_at", "position")}
    if side == "target":
        facts.pop("position")
    return facts


class GlobalInitScriptWatcher(Watcher):
    kind = "global_init_scripts"
    # The body never enters the version history: an init script may embed credentials (an earlier history kept
    # them in plain text; the first prune of a run drops those versions).
    declaration = Declaration(interval=300, versions=False)

    def list(self, ctx: SyncContext, ws: Workspace) -> Iterator[Resource]:
        try:
            scripts = [s.as_dict() for s in ws.client.global_init_scripts.list()]
        except DatabricksError as err:
            raise ListingError(f"{ws.side}: cannot list global init scripts: {err}") from err
        for script in scripts:
            facts = listing_facts(script, ws.side)
            yield Resource(self.kind, script.get("script_id") or "", script.get("name") or "", fingerprint(facts))

    def fetch(self, ctx: SyncContext, ws: Workspace, stub: Resource) -> Resource:
        try:
            script = ws.client.global_init_scripts.get(stub.key)
        except DatabricksError as err:
            if is_gone(err):
                raise RetryLater(f"global init script {stub.name!r} was deleted on the source while listed") from None
            raise
        content, _ = unmarked(base64.b64decode(script.script or ""))
        stub.payload = {
            "name": script.name or "",
            "enabled": bool(script.enabled),
            "position": script.position or 0,
            "script_sha256": hashlib.sha256(content).hexdigest(),
        }
        stub.body = content
        return stub


def watcher_for(kind: str) -> GlobalInitScriptWatcher:
    return GlobalInitScriptWatcher()
