"""Service principals on a target that gives them its own applicationId (AWS and GCP workspaces): one copy each.

The copy's applicationId is not the source's, so it is found by the one the store recorded, and, when the store has
no record (a kill -9 between the create and its record, a lost store), by its display name when that names one
principal on each side.
"""

from __future__ import annotations

import pytest
from conftest import Pair, killed_before_the_record
from databricks.sdk.service import iam

SP_KINDS = ["service_principals"]
IDENTITY_KINDS = ["groups", "service_principals", "group_members"]
APP_ID = "6e1a3c1e-0000-4000-8000-000000000002"


@pytest.fixture
def aws_pair(pair: Pair) -> Pair:
    """`pair` whose target chooses every new service principal's applicationId, as AWS and GCP workspaces do."""
    pair.target.workspace.scim_assigns_application_ids = True
    return pair


def _target_principals(pair: Pair) -> list[tuple[str, str]]:
    """(displayName, applicationId) of every service principal on the target."""
    return sorted((sp.display_name or "", sp.application_id or "") for sp in pair.dst.service_principals.list())


def _rename(pair: Pair, scim_id: str, display_name: str) -> None:
    pair.src.api_client.do(
        "PATCH",
        f"/api/2.0/preview/scim/v2/ServicePrincipals/{scim_id}",
        body={
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "displayName", "value": display_name}],
        },
    )


def _scim_patch(pair: Pair, resource: str, scim_id: str, *operations: dict) -> None:
    pair.src.api_client.do(
        "PATCH",
        f"/api/2.0/preview/scim/v2/{resource}/{scim_id}",
        body={"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": list(operations)},
    )


def _entitlements(pair: Pair, scim_id: str) -> set[str]:
    return {e.value or "" for e in pair.dst.service_principals.get(scim_id).entitlements or []}


def _groups_of(pair: Pair, scim_id: str) -> set[str]:
    """The target groups `scim_id` is a direct member of, by name (not the implicit `users`)."""
    return {
        group.display_name or ""
        for group in pair.dst.groups.list(attributes="displayName,members", filter='displayName ne "users"')
        if any(member.value == scim_id for member in group.members or [])
    }


def _lose_the_store(pair: Pair) -> None:
    pair.state_path.unlink()
    for suffix in ("-wal", "-shm"):
        pair.state_path.with_name(pair.state_path.name + suffix).unlink(missing_ok=True)


def test_an_edit_after_the_first_copy_updates_that_copy(aws_pair: Pair) -> None:
    pair = aws_pair
    robot = pair.src.service_principals.create(display_name="bot", application_id=APP_ID)
    assert pair.sync(only=SP_KINDS)["service_principals"].created == 1
    [(_, chosen)] = _target_principals(pair)
    assert chosen != APP_ID  # the target chose its own

    _rename(pair, robot.id or "", "bot-renamed")
    report = pair.sync(only=SP_KINDS)["service_principals"]

    assert report.created == 0 and report.errors == 0, report
    assert _target_principals(pair) == [("bot-renamed", chosen)]


def test_a_kill_between_the_create_and_its_record_leaves_one_copy(
    aws_pair: Pair, monkeypatch: pytest.MonkeyPatch
) -> None:
    pair = aws_pair
    pair.src.service_principals.create(display_name="bot", application_id=APP_ID)

    killed_before_the_record(pair, SP_KINDS, monkeypatch)
    assert len(_target_principals(pair)) == 1

    report = pair.sync(only=SP_KINDS)["service_principals"]

    assert report.errors == 0, report
    assert [name for name, _ in _target_principals(pair)] == ["bot"]


def test_a_lost_store_finds_the_copy_and_keeps_it_when_the_source_deletes_it(aws_pair: Pair) -> None:
    pair = aws_pair
    robot = pair.src.service_principals.create(display_name="bot", application_id=APP_ID)
    pair.sync(only=SP_KINDS)
    copy = _target_principals(pair)
    _lose_the_store(pair)

    pair.sync(only=SP_KINDS)
    assert _target_principals(pair) == copy

    # Found by display name, it may have been the DR team's: adopted, so never deleted (a leak, never a loss).
    pair.src.service_principals.delete(robot.id or "")
    pair.sync(only=SP_KINDS)
    assert _target_principals(pair) == copy


def test_a_display_name_shared_on_the_source_is_not_matched(aws_pair: Pair) -> None:
    """Two source principals called "bot": a target "bot" could be either one's copy, so neither takes it."""
    pair = aws_pair
    dr_team = pair.dst.service_principals.create(display_name="bot")
    pair.src.service_principals.create(display_name="bot", application_id=APP_ID)
    pair.src.service_principals.create(display_name="bot", application_id="6e1a3c1e-0000-4000-8000-000000000003")

    report = pair.sync(only=SP_KINDS)["service_principals"]

    assert report.created == 2, report
    assert len(_target_principals(pair)) == 3
    assert pair.dst.service_principals.get(dr_team.id or "").display_name == "bot"


def test_a_dr_team_principal_taken_for_the_copy_keeps_its_own_entitlements_and_is_never_deleted(
    aws_pair: Pair,
) -> None:
    """The store has no record of the copy (a lost store, or none made yet) and the DR team has a "bot" of its own: it
    is taken for the copy. dbsync removes only the entitlements it gave it, and never deletes it."""
    pair = aws_pair
    theirs = pair.dst.service_principals.create(
        display_name="bot", entitlements=[iam.ComplexValue(value="allow-cluster-create")]
    )
    robot = pair.src.service_principals.create(
        display_name="bot", application_id=APP_ID, entitlements=[iam.ComplexValue(value="databricks-sql-access")]
    )

    report = pair.sync(only=SP_KINDS)["service_principals"]

    assert report.errors == 0, report
    assert _target_principals(pair) == [("bot", theirs.application_id)]
    assert _entitlements(pair, theirs.id or "") == {"allow-cluster-create", "databricks-sql-access"}

    _scim_patch(pair, "ServicePrincipals", robot.id or "", {"op": "remove", "path": "entitlements"})
    pair.sync(only=SP_KINDS)
    assert _entitlements(pair, theirs.id or "") == {"allow-cluster-create"}

    pair.src.service_principals.delete(robot.id or "")
    pair.sync(only=SP_KINDS)
    assert _target_principals(pair) == [("bot", theirs.application_id)]
    assert _entitlements(pair, theirs.id or "") == {"allow-cluster-create"}


def test_a_dr_team_principal_taken_for_the_copy_keeps_its_own_group_memberships(aws_pair: Pair) -> None:
    """The DR team's "bot" is in its `oncall` group, which the source has too, and is taken for the source's "bot"
    (the `mapping.principals` entry the copy's event names, added by the operator): when the source takes its "bot"
    out of `oncall` and `etl`, the target one leaves only `etl`, the group dbsync put it in."""
    pair = aws_pair
    theirs = pair.dst.service_principals.create(display_name="bot")
    pair.dst.groups.create(display_name="oncall", members=[iam.ComplexValue(value=theirs.id)])
    robot = pair.src.service_principals.create(display_name="bot", application_id=APP_ID)
    oncall = pair.src.groups.create(display_name="oncall", members=[iam.ComplexValue(value=robot.id)])
    etl = pair.src.groups.create(display_name="etl", members=[iam.ComplexValue(value=robot.id)])
    mapping = {"principals": {APP_ID: theirs.application_id}}

    reports = pair.sync(only=IDENTITY_KINDS, mapping=mapping)

    assert not [r for r in reports.values() if r.errors or r.blocked], reports
    assert _groups_of(pair, theirs.id or "") == {"oncall", "etl"}

    for group in (oncall, etl):
        _scim_patch(pair, "Groups", group.id or "", {"op": "remove", "path": f'members[value eq "{robot.id}"]'})
    reports = pair.sync(only=IDENTITY_KINDS, mapping=mapping)

    assert not [r for r in reports.values() if r.errors or r.blocked], reports
    assert _groups_of(pair, theirs.id or "") == {"oncall"}


def _deactivate(pair: Pair, scim_id: str) -> None:
    _scim_patch(pair, "ServicePrincipals", scim_id, {"op": "replace", "path": "active", "value": False})


def test_a_dr_team_principal_taken_by_display_name_is_never_deactivated_nor_renamed(aws_pair: Pair) -> None:
    """The DR team's "bot" is taken for the copy of the source's "bot" by display name only: nothing says they are
    the same principal. When the source deactivates and renames its "bot", the DR team's stays active under its own
    name (their automation keeps running on the standby); the copy dbsync created of "etl" is deactivated."""
    pair = aws_pair
    theirs = pair.dst.service_principals.create(display_name="bot")
    robot = pair.src.service_principals.create(display_name="bot", application_id=APP_ID)
    etl = pair.src.service_principals.create(display_name="etl", application_id="6e1a3c1e-0000-4000-8000-000000000003")
    pair.sync(only=SP_KINDS)
    [etl_copy] = [sp for sp in pair.dst.service_principals.list() if sp.display_name == "etl"]
    assert [name for name, _ in _target_principals(pair)] == ["bot", "etl"]  # the DR team's bot is taken, not copied

    _deactivate(pair, robot.id or "")
    _rename(pair, robot.id or "", "bot-retired")
    _deactivate(pair, etl.id or "")
    report = pair.sync(only=SP_KINDS)["service_principals"]

    assert report.errors == 0, report
    dr_bot = pair.dst.service_principals.get(theirs.id or "")
    assert (dr_bot.display_name, dr_bot.active) == ("bot", True)
    assert pair.dst.service_principals.get(etl_copy.id or "").active is False
    [said] = [
        e["message"]
        for e in pair.context().store.events()
        if e["source_key"] == APP_ID and "display name" in e["message"]
    ]
    assert f'"{APP_ID}": "{theirs.application_id}"' in said  # the mapping.principals entry that says it is the same


def test_a_dr_team_principal_first_taken_by_display_name_is_not_deactivated(aws_pair: Pair) -> None:
    """The source's "bot" is already inactive when the DR team's active "bot" is taken for its copy (a first sync, a
    lost store): the DR team's stays active."""
    pair = aws_pair
    theirs = pair.dst.service_principals.create(display_name="bot")
    robot = pair.src.service_principals.create(display_name="bot", application_id=APP_ID)
    _deactivate(pair, robot.id or "")

    report = pair.sync(only=SP_KINDS)["service_principals"]

    assert report.errors == 0, report
    assert _target_principals(pair) == [("bot", theirs.application_id)]
    assert pair.dst.service_principals.get(theirs.id or "").active is True


def test_a_principal_mapping_principals_names_follows_the_source_active(aws_pair: Pair) -> None:
    """A `mapping.principals` entry says the DR team's "bot" is the source's: its display name and active follow."""
    pair = aws_pair
    theirs = pair.dst.service_principals.create(display_name="bot")
    robot = pair.src.service_principals.create(display_name="bot", application_id=APP_ID)
    mapping = {"principals": {APP_ID: theirs.application_id}}
    pair.sync(only=SP_KINDS, mapping=mapping)

    _deactivate(pair, robot.id or "")
    _rename(pair, robot.id or "", "bot-retired")
    report = pair.sync(only=SP_KINDS, mapping=mapping)["service_principals"]

    assert report.errors == 0, report
    dr_bot = pair.dst.service_principals.get(theirs.id or "")
    assert (dr_bot.display_name, dr_bot.active) == ("bot-retired", False)


def test_a_principal_adopted_by_its_application_id_follows_the_source_active(pair: Pair) -> None:
    """A target that takes the given applicationId (Azure) and already has the source's principal: the same one."""
    theirs = pair.dst.service_principals.create(display_name="bot", application_id=APP_ID)
    robot = pair.src.service_principals.create(display_name="bot", application_id=APP_ID)
    pair.sync(only=SP_KINDS)

    _deactivate(pair, robot.id or "")
    report = pair.sync(only=SP_KINDS)["service_principals"]

    assert report.errors == 0, report
    assert pair.dst.service_principals.get(theirs.id or "").active is False
