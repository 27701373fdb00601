"""Service principals on a target that gives them its own applicationId (AWS and GCP workspaces): one copy each.

The copy's applicationId is not the source's, so it is found by the one the store recorded, and, when the store has
no record (a kill -9 between the create and its record, a lost store), by its display name when that names one
principal on each side.
"""

from __future__ import annotations

import pytest
from conftest import Pair, killed_before_the_record

SP_KINDS = ["service_principals"]
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
