"""What dbsync says matches what the standby holds: drift, metrics, one-line errors, view text.

Every test drives two emulated workspaces over real HTTP with the databricks-sdk, or runs the `dbsync`
command as a user would.
"""

from __future__ import annotations

import io
import itertools

from conftest import Pair
from databricks.sdk.service import iam
from databricks.sdk.service.workspace import ImportFormat, Language

# Principals are created on the target too, so owner changes (a permissions write that touches a job) happen.
ALL_KINDS = {"identities": {"create_users": True}}


def _notebooks(w) -> list[str]:
    return sorted(o.path for o in w.workspace.list("/", recursive=True) if o.object_type.value == "NOTEBOOK")


def _files(w) -> list[str]:
    return sorted(o.path for o in w.workspace.list("/", recursive=True) if o.object_type.value == "FILE")


def _edit_every_kind_on_the_source(pair: Pair, round_: int) -> None:
    """A normal working day on the primary: edits of many kinds, some touching the same objects."""
    src = pair.src
    notebook = _notebooks(src)[round_]
    body = f"# Databricks notebook source\nprint('edit {round_}')".encode()
    src.workspace.upload(
        notebook, io.BytesIO(body), format=ImportFormat.SOURCE, language=Language.PYTHON, overwrite=True
    )
    src.workspace.upload(
        _files(src)[round_], io.BytesIO(f"edit {round_}".encode()), format=ImportFormat.AUTO, overwrite=True
    )
    src.workspace.mkdirs(f"/Shared/new-{round_}")
    src.workspace.upload(f"/Shared/new-{round_}/nb.py", io.BytesIO(b"print(1)"), overwrite=True)
    job = list(src.jobs.list(expand_tasks=True))[round_]
    job.settings.name = f"renamed-{round_}"
    src.jobs.reset(job.job_id, job.settings)
    pools = list(src.instance_pools.list())
    pool = pools[round_ % len(pools)]
    src.instance_pools.edit(pool.instance_pool_id, pool.instance_pool_name, pool.node_type_id, max_capacity=50 + round_)
    policies = [p for p in src.cluster_policies.list() if not p.is_default]
    policy = policies[round_ % len(policies)]
    src.cluster_policies.edit(
        policy.policy_id, name=policy.name, definition=policy.definition, description=f"r{round_}"
    )
    scope = next(iter(src.secrets.list_scopes())).name
    src.secrets.put_secret(scope, f"added-{round_}", string_value="s3cr3t")
    users = list(src.users.list())
    groups = [g for g in src.groups.list() if g.display_name not in ("admins", "users")]
    group = groups[round_ % len(groups)]
    src.groups.patch(
        group.id,
        operations=[iam.Patch(op=iam.PatchOp.ADD, path="members", value=[{"value": users[round_].id}])],
        schemas=[iam.PatchSchema.URN_IETF_PARAMS_SCIM_API_MESSAGES_2_0_PATCH_OP],
    )
    # New ACLs on an edited notebook and the renamed job (the permissions kind writes the same objects).
    notebook_id = str(src.workspace.get_status(notebook).object_id)
    src.permissions.update(
        "notebooks",
        notebook_id,
        access_control_list=[
            iam.AccessControlRequest(user_name=users[round_].user_name, permission_level=iam.PermissionLevel.CAN_EDIT)
        ],
    )
    src.permissions.update(
        "jobs",
        str(job.job_id),
        access_control_list=[
            iam.AccessControlRequest(user_name=users[round_].user_name, permission_level=iam.PermissionLevel.CAN_VIEW)
        ],
    )


def _drift_events(pair: Pair) -> list[dict]:
    ctx = pair.context()
    try:
        return [e for e in ctx.store.events(limit=100_000) if e["action"] == "drift"]
    finally:
        ctx.store.close()


def test_source_edits_over_many_cycles_with_every_kind_are_never_drift(seeded_pair: Pair) -> None:
    """Defect: the workspace kinds baselined a notebook's target version from a tree listed before their own
    import (the directories kind's drift check had cached it), so the next cycle called dbsync's write a
    hand edit; with `drift: heal` the notebook was rewritten every other cycle, forever."""
    seeded_pair.sync(**ALL_KINDS)
    for round_ in range(3):
        _edit_every_kind_on_the_source(seeded_pair, round_)
        for _ in range(2):
            reports = seeded_pair.sync(**ALL_KINDS)
            assert {k: r.drifted for k, r in reports.items() if r.drifted} == {}, f"round {round_}"
    assert _drift_events(seeded_pair) == []
    # With heal, nothing is rewritten: a quiet cycle writes nothing at all.
    seeded_pair.reset_stats()
    reports = seeded_pair.sync(drift="heal", **ALL_KINDS)
    assert seeded_pair.target_writes() == 0, seeded_pair.target.stats.document()["endpoints"]
    assert sum(r.drifted for r in reports.values()) == 0


def test_one_target_edit_is_one_drift_event_and_one_heal(seeded_pair: Pair) -> None:
    """A hand edit on the standby: one drift event, rewritten once, then quiet for good."""
    seeded_pair.sync(**ALL_KINDS)
    _edit_every_kind_on_the_source(seeded_pair, 0)  # a source edit first: its write must not count as drift
    seeded_pair.sync(drift="heal", **ALL_KINDS)
    notebook = _notebooks(seeded_pair.dst)[3]
    source_body = seeded_pair.src.workspace.download(notebook).read()
    seeded_pair.dst.workspace.upload(
        notebook, io.BytesIO(b"# Databricks notebook source\nprint('by hand')"), format=ImportFormat.SOURCE,
        language=Language.PYTHON, overwrite=True,
    )  # fmt: skip
    drifted, imports = [], []
    for _ in range(4):
        seeded_pair.reset_stats()
        reports = seeded_pair.sync(drift="heal", **ALL_KINDS)
        drifted.append(sum(r.drifted for r in reports.values()))
        imports.append(seeded_pair.target.stats.document()["endpoints"].get("POST /api/2.0/workspace/import", {}))
    assert drifted == [1, 0, 0, 0]
    assert [i.get("count", 0) for i in imports] == [0, 1, 0, 0]  # detected, healed next cycle, then nothing
    assert seeded_pair.dst.workspace.download(notebook).read() == source_body
    events = _drift_events(seeded_pair)
    assert len(events) == 1 and events[0]["source_key"] == notebook and events[0]["outcome"] == "healing"


_ = itertools  # reserved for the metrics tests below
