"""Failback: replicate the new primary (the old target) back into the old primary (the old source).

`dbsync reverse` seeds a new store for the reversed pair from the forward store's mapping, without an
API call: each forward resource (source key S on the old primary, target key T on the new primary)
becomes a reverse resource keyed by T whose target is S, status `pending` and no usable fingerprint.
The first reverse cycle then fetches every object and updates S in place instead of creating a copy:
objects on the old primary carry no dbsync tags (the forward direction never wrote there), so this
seeded mapping is what prevents duplicates of tag-adopted kinds (jobs, clusters, pools). Kinds
adopted by natural key (paths, names, ARNs) would be found anyway; they are seeded alike.

`direction: reverse` (DBSYNC_DIRECTION=reverse) in the same config then swaps the sides and inverts
the mapping when the settings are loaded, so the tokens stay where they were configured.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field
from pathlib import Path

from dbsync.declaration import Declaration
from dbsync.errors import ConfigError, DbsyncError, StoreError
from dbsync.registry import kinds
from dbsync.roles import StoreRole
from dbsync.store import Store

SEED_MARKER = {"reverse_seed": True}  # the placeholder payload: its fingerprint matches no real payload
_ARN_ACCOUNT = re.compile(r"^arn:aws:iam::(\d{12}):")


@dataclass
class ReverseSeed:
    """What `dbsync reverse` wrote: per-kind counts and the facts the next steps need."""

    path: Path
    source_workspace_id: str  # of the reversed pair: the new primary
    target_workspace_id: str
    seeded: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)  # forward objects that never reached the target
    collisions: int = 0  # two forward objects with one target key (the later one wins)
    old_aws_accounts: set[str] = field(default_factory=set)
    already: bool = False  # the store was seeded by an earlier run: nothing was written


def default_reverse_path(forward_path: Path) -> Path:
    """dbsync.db → dbsync-reverse.db, beside the forward store."""
    return forward_path.with_name(f"{forward_path.stem}-reverse{forward_path.suffix or '.db'}")


def seed_reverse_store(forward: Store, path: Path, force: bool = False) -> ReverseSeed:
    """Create (or finish) the reverse store at `path` from the forward store's mapping. Idempotent.

    Refuses while the forward pair is still replicating (role not cutover-complete) unless `force`:
    two daemons writing in both directions would undo each other's changes.
    """
    source_id, target_id = forward.get_meta("source_workspace_id"), forward.get_meta("target_workspace_id")
    if source_id is None or target_id is None:
        raise StoreError(f"state store {forward.path} has never synced a pair: there is no mapping to reverse")
    if forward.role != StoreRole.CUTOVER_COMPLETE and not force:
        raise DbsyncError(
            f"the store {forward.path} is still {forward.role}: reverse replication is for after a cutover "
            "(`dbsync cutover`), or two daemons would write in both directions. Pass --force to seed anyway."
        )
    if path.resolve() == forward.path.resolve():
        raise ConfigError("the reverse store must be a new file, not the forward store: pass --reverse-state-path")
    reverse = Store(path)
    try:
        result = ReverseSeed(path, target_id, source_id)
        progress = reverse.get_meta("reverse_seed")
        bound = reverse.get_meta("source_workspace_id")
        if bound is not None and progress is None:
            raise StoreError(
                f"state store {path} already replicates {bound} → {reverse.get_meta('target_workspace_id')}: "
                "pass a new file with --reverse-state-path"
            )
        reverse.bind_pair(target_id, source_id)  # refuses a store of another pair
        if progress == "done":
            result.already = True
            return result
        reverse.set_meta("reverse_seed", "started")  # a crash mid-seed resumes: every row is an upsert
        reverse.set_meta("reversed_from", str(forward.path))
        _seed(forward, reverse, result)
        reverse.set_meta("reverse_seed", "done")
        return result
    finally:
        reverse.close()


def _seed(forward: Store, reverse: Store, result: ReverseSeed) -> None:
    for declared in kinds():
        kind, declaration = declared.name, declared.declaration
        seen: set[str] = set()
        for prior in forward.priors(kind):
            key = _reverse_key(forward, declaration, prior.key, prior.target_key)
            if key is None:
                result.skipped[kind] = result.skipped.get(kind, 0) + 1
                continue
            if key in seen:
                result.collisions += 1
            seen.add(key)
            target_key = key if declaration.reverse_key == "object" else prior.key
            if declaration.key_names_aws_account and prior.target_key != prior.key:
                match = _ARN_ACCOUNT.match(prior.key)
                if match:
                    result.old_aws_accounts.add(match.group(1))
            _seed_row(reverse, kind, key, target_key)
            result.seeded[kind] = result.seeded.get(kind, 0) + 1


def _reverse_key(forward: Store, declaration: Declaration, source_key: str, target_key: str | None) -> str | None:
    """The key of a forward object in the reverse direction: its key on the new primary."""
    if declaration.reverse_key != "object":
        return target_key
    # An ACL is keyed "<object kind>:<object key>": the object's key on the new primary.
    object_kind, _, object_key = source_key.partition(":")
    object_target = forward.target_key(object_kind, object_key)
    return f"{object_kind}:{object_target}" if object_target is not None else None


def _seed_row(reverse: Store, kind: str, key: str, target_key: str) -> None:
    """A pending row that knows its target: the next cycle fetches and updates it, never creates."""
    name = posixpath.basename(key) if key.startswith("/") else key
    # Adopted: the old primary's objects were made by its users, so the reverse direction never deletes them.
    reverse.seed_reversed(kind, key, name, target_key, dict(SEED_MARKER))


def next_steps(seed: ReverseSeed, forward_path: Path) -> list[str]:
    """What to run after seeding, as lines for the terminal."""
    lines = [
        f"Then replicate {seed.source_workspace_id} (the new primary) → {seed.target_workspace_id} (the old one) "
        "with the same config:",
        f"  DBSYNC_DIRECTION=reverse DBSYNC_STATE_PATH={seed.path} dbsync plan        # check: updates, no duplicates",
        f"  DBSYNC_DIRECTION=reverse DBSYNC_STATE_PATH={seed.path} dbsync sync --once",
        f"  DBSYNC_DIRECTION=reverse DBSYNC_STATE_PATH={seed.path} dbsync serve",
        "(or `direction: reverse` and `state_path:` in the config file). The first reverse cycle rewrites each "
        "seeded object once; later cycles write only what changes.",
    ]
    if seed.old_aws_accounts:
        accounts = ", ".join(sorted(seed.old_aws_accounts))
        lines.append(f"Instance-profile ARNs were rewritten: set DBSYNC_MAPPING__REVERSE_AWS_ACCOUNT_ID={accounts}")
    lines.append(
        f"To cut back later: `DBSYNC_DIRECTION=reverse DBSYNC_STATE_PATH={seed.path} dbsync cutover`. "
        f"The forward store {forward_path} stays as it is."
    )
    return lines
