"""Identities, principal remapping, ownership and instance profiles, synced between two emulators."""

from __future__ import annotations

import io

from conftest import Pair
from databricks.sdk.service import compute, iam, jobs

from dbsync.engine import Engine
from dbsync.report import validate

IDENTITY_KINDS = ["instance_profiles", "groups", "service_principals", "users", "group_members"]
SOURCE_PROFILE = "arn:aws:iam::111111111111:instance-profile/etl"
TARGET_PROFILE = "arn:aws:iam::222222222222:instance-profile/etl"


def _user(w, user_name: str) -> iam.User | None:
    found = list(w.users.list(filter=f'userName eq "{user_name}"'))
    return w.users.get(found[0].id) if found else None


def _group(w, name: str) -> iam.Group | None:
    found = list(w.groups.list(filter=f'displayName eq "{name}"'))
    return w.groups.get(found[0].id) if found else None


def _member_names(w, group_name: str) -> set[str]:
    """The group's direct members by natural name (userName / displayName / applicationId)."""
    group = _group(w, group_name)
    assert group is not None, f"group {group_name} is not on the workspace"
    names = set()
    for member in group.members or []:
        kind = (member.ref or "").split("/")[0]
        if kind == "Users":
            names.add(w.users.get(member.value).user_name)
        elif kind == "ServicePrincipals":
            names.add(w.service_principals.get(member.value).application_id)
        else:
            names.add(w.groups.get(member.value).display_name)
    return names


def _values(items) -> set[str]:
    return {i.value for i in items or []}


def _scim_patch(w, resource: str, scim_id: str, *operations: dict) -> None:
    """A SCIM PatchOp as a client sends it (iam.Patch cannot carry `"value": false`)."""
    w.api_client.do(
        "PATCH",
        f"/api/2.0/preview/scim/v2/{resource}/{scim_id}",
        body={"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": list(operations)},
    )


def _add_members(w, group_id: str, *member_ids: str) -> None:
    _scim_patch(w, "Groups", group_id, {"op": "add", "path": "members", "value": [{"value": m} for m in member_ids]})


def _scim_posts(pair: Pair) -> int:
    endpoints = pair.target.stats.document()["endpoints"]
    return sum(v["count"] for k, v in endpoints.items() if k.startswith("POST /api/2.0/preview/scim"))


def test_groups_nested_members_users_and_service_principals_arrive(pair: Pair) -> None:
    src, dst = pair.src, pair.dst
    ana = src.users.create(
        user_name="ana@example.com", display_name="Ana", entitlements=[iam.ComplexValue(value="allow-cluster-create")]
    )
    bob = src.users.create(user_name="bob@example.com")
    robot = src.service_principals.create(
        display_name="etl-robot", application_id="6e1a3c1e-0000-4000-8000-000000000001"
    )
    platform = src.groups.create(
        display_name="platform", entitlements=[iam.ComplexValue(value="databricks-sql-access")]
    )
    data_eng = src.groups.create(display_name="data-eng")
    _add_members(src, data_eng.id, ana.id, robot.id)
    _add_members(src, platform.id, data_eng.id, bob.id)  # nested: data-eng inside platform

    reports = pair.sync(only=IDENTITY_KINDS, identities={"create_users": True})
    assert not [r for r in reports.values() if r.errors or r.blocked], reports

    assert _member_names(dst, "data-eng") == {"ana@example.com", robot.application_id}
    assert _member_names(dst, "platform") == {"data-eng", "bob@example.com"}
    assert _values(_group(dst, "platform").entitlements) == {"databricks-sql-access"}
    target_ana = _user(dst, "ana@example.com")
    assert target_ana.display_name == "Ana" and _values(target_ana.entitlements) == {"allow-cluster-create"}
    assert src.users.get(ana.id).id != target_ana.id  # SCIM ids are never copied
    # the implicit `users` group and the built-in admins group are left alone
    assert _member_names(dst, "admins") == {"admin@example.com"}


def test_user_changes_reach_the_target_and_an_unchanged_cycle_writes_nothing(pair: Pair) -> None:
    src, dst = pair.src, pair.dst
    user = src.users.create(user_name="carol@example.com", display_name="Carol")
    group = src.groups.create(display_name="analysts", members=[iam.ComplexValue(value=user.id)])
    pair.sync(only=IDENTITY_KINDS, identities={"create_users": True})
    pair.reset_stats()
    reports = pair.sync(only=IDENTITY_KINDS, identities={"create_users": True})
    assert pair.target_writes() == 0
    assert all(r.created == r.updated == r.deleted == r.drifted == 0 for r in reports.values())

    _scim_patch(
        src,
        "Users",
        user.id,
        {"op": "replace", "path": "displayName", "value": "Carol Jones"},
        {"op": "replace", "path": "active", "value": False},
        {"op": "add", "path": "entitlements", "value": [{"value": "databricks-sql-access"}]},
    )
    _scim_patch(src, "Groups", group.id, {"op": "remove", "path": f'members[value eq "{user.id}"]'})
    reports = pair.sync(only=IDENTITY_KINDS, identities={"create_users": True})
    assert reports["users"].updated == 1 and reports["group_members"].updated == 1
    target = _user(dst, "carol@example.com")
    assert target.display_name == "Carol Jones" and target.active is False
    assert _values(target.entitlements) == {"databricks-sql-access"}
    assert _member_names(dst, "analysts") == set()


def test_users_are_not_created_by_default_missing_ones_are_recorded(pair: Pair) -> None:
    src, dst = pair.src, pair.dst
    both = src.users.create(user_name="both@example.com", display_name="Both")
    only = src.users.create(user_name="only.source@example.com")
    existing = dst.users.create(user_name="both@example.com", display_name="Both")
    src.groups.create(display_name="team", members=[iam.ComplexValue(value=both.id), iam.ComplexValue(value=only.id)])
    pair.reset_stats()

    reports = pair.sync(only=IDENTITY_KINDS)
    assert reports["users"].errors == 0 and reports["group_members"].errors == 0
    assert _user(dst, "only.source@example.com") is None
    assert _user(dst, "both@example.com").id == existing.id  # adopted, never recreated
    assert _member_names(dst, "team") == {"both@example.com"}
    events = pair.context().store.events()
    skipped = [e["message"] for e in events if e["outcome"] == "skipped"]  # not written at all
    assert any("only.source@example.com" in m and "create_users is false" in m for m in skipped)
    partial = [e["message"] for e in events if e["outcome"] == "partial"]  # written, the missing member left out
    assert any("team" in m and "only.source@example.com" in m for m in partial)

    # a skipped user is not looked at again every cycle
    pair.reset_stats()
    reports = pair.sync(only=IDENTITY_KINDS)
    assert all(r.fetched == r.created == r.updated == 0 for r in reports.values()) and pair.target_writes() == 0

    # turning creation on creates the user it skipped (and nothing else), and completes the group
    pair.reset_stats()
    pair.sync(only=IDENTITY_KINDS, identities={"create_users": True})
    assert _user(dst, "only.source@example.com") is not None
    assert _scim_posts(pair) == 1
    assert _member_names(dst, "team") == {"both@example.com", "only.source@example.com"}


def test_user_provisioned_on_the_target_later_is_adopted_and_joins_its_groups(pair: Pair) -> None:
    src, dst = pair.src, pair.dst
    late = src.users.create(user_name="late@example.com", display_name="Late")
    src.groups.create(display_name="crew", members=[iam.ComplexValue(value=late.id)])
    pair.sync(only=IDENTITY_KINDS)
    assert _member_names(dst, "crew") == set()

    dst.users.create(user_name="late@example.com", display_name="Late")  # the target's IdP catches up
    reports = pair.sync(only=IDENTITY_KINDS)
    assert reports["users"].errors == reports["group_members"].errors == 0
    assert _member_names(dst, "crew") == {"late@example.com"}
    validation = {k.kind: k for k in validate(pair.context(), IDENTITY_KINDS).kinds}
    assert validation["users"].missing_count == validation["group_members"].missing_count == 0


def test_a_leaver_deactivated_on_the_source_is_deactivated_on_the_target_that_provisioned_them(pair: Pair) -> None:
    """A user adopted by userName is the IdP's one identity on both sides (unlike a service principal taken by display
    name): when the source deactivates a leaver, their account on the standby is deactivated too."""
    src, dst = pair.src, pair.dst
    leaver = src.users.create(user_name="leaver@example.com", display_name="Leaver")
    dst.users.create(user_name="leaver@example.com", display_name="Leaver")  # the target's IdP
    pair.sync(only=IDENTITY_KINDS)

    _scim_patch(src, "Users", leaver.id, {"op": "replace", "path": "active", "value": False})
    reports = pair.sync(only=IDENTITY_KINDS)

    assert reports["users"].errors == 0, reports["users"]
    assert _user(dst, "leaver@example.com").active is False


def test_missing_user_is_an_error_with_principals_missing_fail(pair: Pair) -> None:
    pair.src.users.create(user_name="nobody@example.com")
    reports = pair.sync(only=["users"], principals_missing="fail")
    assert reports["users"].errors == 1
    problem = pair.context().store.problems("users")[0]
    assert "nobody@example.com" in problem["last_error"] and "create_users" in problem["last_error"]


def test_email_domain_remap_end_to_end_with_job_owner_and_home_notebook(pair: Pair) -> None:
    src, dst = pair.src, pair.dst
    src.users.create(user_name="a@old.com", display_name="A")
    src.groups.create(display_name="owners", members=[iam.ComplexValue(value=_user(src, "a@old.com").id)])
    src.workspace.upload("/Users/a@old.com/etl.py", io.BytesIO(b"print('etl')"))
    job_id = src.jobs.create(
        name="nightly",
        tasks=[
            jobs.Task(
                task_key="t",
                environment_key="e",
                notebook_task=jobs.NotebookTask(notebook_path="/Users/a@old.com/etl"),
            )
        ],
        environments=[jobs.JobEnvironment(environment_key="e")],
        run_as=jobs.JobRunAs(user_name="a@old.com"),
    ).job_id
    src.permissions.set(
        "jobs",
        str(job_id),
        access_control_list=[
            iam.AccessControlRequest(user_name="a@old.com", permission_level=iam.PermissionLevel.IS_OWNER)
        ],
    )

    reports = pair.sync(identities={"create_users": True}, mapping={"emails": {"@old.com": "@new.com"}})
    assert not [r for r in reports.values() if r.errors or r.blocked], reports

    assert _user(dst, "a@new.com") is not None and _user(dst, "a@old.com") is None
    assert _member_names(dst, "owners") == {"a@new.com"}
    assert dst.workspace.download("/Users/a@new.com/etl.py").read().strip().endswith(b"print('etl')")
    target_job = next(iter(dst.jobs.list(expand_tasks=True)))
    assert target_job.settings.tasks[0].notebook_task.notebook_path == "/Users/a@new.com/etl"
    assert dst.jobs.get(target_job.job_id).settings.run_as.user_name == "a@new.com"
    acl = dst.permissions.get("jobs", str(target_job.job_id)).access_control_list
    owners = {a.user_name for a in acl for p in a.all_permissions if p.permission_level.value == "IS_OWNER"}
    assert owners == {"a@new.com"}


def test_job_owner_missing_on_the_target_is_kept_and_reported(pair: Pair) -> None:
    src, dst = pair.src, pair.dst
    src.users.create(user_name="a@old.com")
    job_id = src.jobs.create(
        name="owned",
        tasks=[jobs.Task(task_key="t", environment_key="e", notebook_task=jobs.NotebookTask(notebook_path="/x"))],
        environments=[jobs.JobEnvironment(environment_key="e")],
    ).job_id
    src.permissions.set(
        "jobs",
        str(job_id),
        access_control_list=[
            iam.AccessControlRequest(user_name="a@old.com", permission_level=iam.PermissionLevel.IS_OWNER)
        ],
    )
    reports = pair.sync(mapping={"emails": {"@old.com": "@new.com"}})  # users are not created by default
    assert reports["permissions"].errors == 0
    target_job = next(iter(dst.jobs.list()))
    acl = dst.permissions.get("jobs", str(target_job.job_id)).access_control_list
    owners = {a.user_name for a in acl for p in a.all_permissions if p.permission_level.value == "IS_OWNER"}
    assert owners == {"admin@example.com"}
    messages = [e["message"] for e in pair.context().store.events(outcome="partial")]  # the ACL, less its owner
    assert any("owner a@new.com" in m and "kept as admin@example.com" in m for m in messages), messages


def test_instance_profile_arn_rewrite_reaches_profiles_roles_and_clusters(pair: Pair) -> None:
    src, dst = pair.src, pair.dst
    src.instance_profiles.add(SOURCE_PROFILE, iam_role_arn="arn:aws:iam::111111111111:role/etl", skip_validation=True)
    src.groups.create(display_name="etl", roles=[iam.ComplexValue(value=SOURCE_PROFILE)])
    src.clusters.create(
        cluster_name="etl",
        spark_version="15.4.x-scala2.12",
        node_type_id="i3.xlarge",
        num_workers=1,
        aws_attributes=compute.AwsAttributes(instance_profile_arn=SOURCE_PROFILE),
    )
    reports = pair.sync(only=[*IDENTITY_KINDS, "clusters"], mapping={"aws_account_id": "222222222222"})
    assert not [r for r in reports.values() if r.errors or r.blocked], reports

    profiles = {p.instance_profile_arn: p for p in dst.instance_profiles.list()}
    assert set(profiles) == {TARGET_PROFILE}
    assert profiles[TARGET_PROFILE].iam_role_arn == "arn:aws:iam::222222222222:role/etl"
    assert _values(_group(dst, "etl").roles) == {TARGET_PROFILE}
    cluster = next(iter(dst.clusters.list()))
    assert cluster.aws_attributes.instance_profile_arn == TARGET_PROFILE

    pair.reset_stats()
    pair.sync(only=[*IDENTITY_KINDS, "clusters"], mapping={"aws_account_id": "222222222222"})
    assert pair.target_writes() == 0

    src.instance_profiles.add("arn:aws:iam::111111111111:instance-profile/other")
    src.instance_profiles.remove(SOURCE_PROFILE)  # also takes it out of the group's roles
    pair.sync(only=[*IDENTITY_KINDS], mapping={"aws_account_id": "222222222222"})
    assert {p.instance_profile_arn for p in dst.instance_profiles.list()} == {
        "arn:aws:iam::222222222222:instance-profile/other"
    }
    assert not _group(dst, "etl").roles


def test_instance_profile_already_on_the_target_is_adopted(pair: Pair) -> None:
    pair.src.instance_profiles.add(SOURCE_PROFILE)
    pair.dst.instance_profiles.add(SOURCE_PROFILE)
    pair.reset_stats()
    reports = pair.sync(only=["instance_profiles"])
    assert reports["instance_profiles"].created == 1 and pair.target_writes() == 0


def test_group_deleted_on_source_is_deleted_on_target_unless_dbsync_did_not_create_it(pair: Pair) -> None:
    src, dst = pair.src, pair.dst
    for name in ("stays", "stays-too"):  # two of five groups go: not most of the kind (the delete guard)
        src.groups.create(display_name=name)
    made = src.groups.create(display_name="temporary")
    kept = src.groups.create(display_name="standby-own")
    dst.groups.create(display_name="standby-own")  # the target had it before dbsync: adopted
    pair.sync(only=IDENTITY_KINDS)
    assert _group(dst, "temporary") is not None

    src.groups.delete(made.id)
    src.groups.delete(kept.id)
    reports = pair.sync(only=IDENTITY_KINDS)
    assert reports["groups"].deleted == 1 and reports["groups"].errors == 0  # the adopted one is kept, not counted
    assert _group(dst, "temporary") is None
    assert _group(dst, "standby-own") is not None
    kept = [e["message"] for e in pair.context().store.events(outcome="kept")]
    assert any("standby-own" in m and "dbsync adopted it" in m for m in kept)


def test_group_deletes_obey_the_delete_guard(pair: Pair) -> None:
    src, dst = pair.src, pair.dst
    ids = [src.groups.create(display_name=f"team-{i}").id for i in range(12)]
    pair.sync(only=IDENTITY_KINDS)
    for group_id in ids:
        src.groups.delete(group_id)
    reports = pair.sync(only=IDENTITY_KINDS)
    assert reports["groups"].outcome == "delete_guard" and reports["groups"].deleted == 0
    assert _group(dst, "team-0") is not None


def test_admins_membership_is_added_only_with_sync_admins(pair: Pair) -> None:
    src, dst = pair.src, pair.dst
    boss = src.users.create(user_name="boss@example.com")
    _add_members(src, _group(src, "admins").id, boss.id)
    dr_admin = dst.users.create(user_name="dr.admin@example.com")
    _add_members(dst, _group(dst, "admins").id, dr_admin.id)

    pair.sync(only=IDENTITY_KINDS, identities={"create_users": True})
    assert "boss@example.com" not in _member_names(dst, "admins")

    pair.sync(only=IDENTITY_KINDS, identities={"create_users": True, "sync_admins": True})
    assert _member_names(dst, "admins") == {"admin@example.com", "dr.admin@example.com", "boss@example.com"}


def test_lost_store_adopts_identities_instead_of_duplicating(pair: Pair) -> None:
    src = pair.src
    user = src.users.create(user_name="dana@example.com")
    src.groups.create(display_name="ops", members=[iam.ComplexValue(value=user.id)])
    src.service_principals.create(display_name="bot", application_id="6e1a3c1e-0000-4000-8000-000000000002")
    src.instance_profiles.add(SOURCE_PROFILE)
    pair.sync(only=IDENTITY_KINDS, identities={"create_users": True})
    pair.state_path.unlink()
    for suffix in ("-wal", "-shm"):
        pair.state_path.with_name(pair.state_path.name + suffix).unlink(missing_ok=True)
    pair.reset_stats()
    ctx = pair.context(identities={"create_users": True})
    reports = {r.kind: r for r in Engine(ctx).cycle(IDENTITY_KINDS)}
    ctx.store.close()
    assert not [r for r in reports.values() if r.errors or r.blocked], reports
    assert pair.target_writes() == 0


def test_only_what_dbsync_gave_a_principal_or_put_in_a_group_is_taken_away(pair: Pair) -> None:
    """A group dbsync created: the entitlement and the member the source drops leave the copy; the ones the DR team
    gave it on the target by hand stay, as the entitlements and members of a group it adopted do."""
    src, dst = pair.src, pair.dst
    ana = src.users.create(user_name="ana@example.com")
    bob = src.users.create(user_name="bob@example.com")
    group = src.groups.create(
        display_name="analysts",
        entitlements=[iam.ComplexValue(value="databricks-sql-access")],
        members=[iam.ComplexValue(value=ana.id), iam.ComplexValue(value=bob.id)],
    )
    pair.sync(only=IDENTITY_KINDS, identities={"create_users": True})
    copy = _group(dst, "analysts")
    dr_member = dst.users.create(user_name="oncall@example.com")
    _scim_patch(dst, "Groups", copy.id, {"op": "add", "path": "entitlements", "value": [{"value": "workspace-access"}]})
    _add_members(dst, copy.id, dr_member.id)

    _scim_patch(
        src,
        "Groups",
        group.id,
        {"op": "remove", "path": 'entitlements[value eq "databricks-sql-access"]'},
        {"op": "remove", "path": f'members[value eq "{bob.id}"]'},
    )
    reports = pair.sync(only=IDENTITY_KINDS, identities={"create_users": True})

    assert not [r for r in reports.values() if r.errors or r.blocked], reports
    assert _values(_group(dst, "analysts").entitlements) == {"workspace-access"}
    assert _member_names(dst, "analysts") == {"ana@example.com", "oncall@example.com"}
