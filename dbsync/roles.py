"""Role vocabulary, in one place: what a store's pair is doing, and what a workspace's marker says it is."""

from __future__ import annotations

from enum import StrEnum


class StoreRole(StrEnum):
    """The store's role: replicating to a standby, promoting the target, or done (the target is the primary)."""

    STANDBY = "standby"
    CUTOVER_IN_PROGRESS = "cutover-in-progress"
    CUTOVER_COMPLETE = "cutover-complete"


class MarkerRole(StrEnum):
    """What a workspace's role marker (written by dbsync on each side) says that workspace is."""

    STANDBY = "standby"
    PROMOTING = "promoting"
    PRIMARY = "primary"


# The dbsync_cutover_state gauge's value for each store role.
CUTOVER_STATES: dict[str, int] = {StoreRole.STANDBY: 0, StoreRole.CUTOVER_IN_PROGRESS: 1, StoreRole.CUTOVER_COMPLETE: 2}


def replication_refusal(role: str) -> str | None:
    """Why a store in this role must not replicate (None for a standby)."""
    if role == StoreRole.CUTOVER_COMPLETE:
        return (
            "cutover is complete: the target is now the primary and dbsync will not write to it. Run "
            "`dbsync cutover --rollback` to return to standby, or `dbsync reverse` to replicate the other way."
        )
    if role == StoreRole.CUTOVER_IN_PROGRESS:
        return (
            "a cutover is in progress: replication waits until it completes or is rolled back "
            "(`dbsync cutover` resumes it, `dbsync cutover --rollback` undoes it)"
        )
    return None
