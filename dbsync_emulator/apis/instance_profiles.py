"""Instance profiles API 2.0 (AWS): list, add, edit, remove.

Table "instance_profiles": ARN → {instance_profile_arn, iam_role_arn?, is_meta_instance_profile?}.
Users, groups and service principals are granted a profile through SCIM `roles`; removing a profile
takes it out of every principal's roles. The service validates a new profile against AWS with a dry
run unless `skip_validation`; the emulator accepts every well-formed ARN either way.
"""

from __future__ import annotations

import re
from typing import Any

from dbsync_emulator.errors import already_exists, invalid, not_found
from dbsync_emulator.router import Request, Routes
from dbsync_emulator.state import Workspace

routes = Routes()

TABLE = "instance_profiles"
_PROFILE_ARN = re.compile(r"^arn:aws(?:-[a-z]+)*:iam::\d{12}:instance-profile/[\w+=,.@/-]{1,128}$")
_ROLE_ARN = re.compile(r"^arn:aws(?:-[a-z]+)*:iam::\d{12}:role/[\w+=,.@/-]{1,128}$")
_SCIM_TABLES = ("scim_users", "scim_groups", "scim_service_principals")


def _check_arn(arn: Any) -> str:
    if not isinstance(arn, str) or not _PROFILE_ARN.match(arn):
        raise invalid(
            f"Invalid instance profile ARN: {arn!r}; expected arn:aws:iam::<account-id>:instance-profile/<name>"
        )
    return arn


def _profile(arn: str, iam_role_arn: Any, is_meta: Any) -> dict:
    record: dict[str, Any] = {"instance_profile_arn": arn}
    if iam_role_arn:
        if not isinstance(iam_role_arn, str) or not _ROLE_ARN.match(iam_role_arn):
            raise invalid(f"Invalid IAM role ARN: {iam_role_arn!r}; expected arn:aws:iam::<account-id>:role/<name>")
        record["iam_role_arn"] = iam_role_arn
    if is_meta:
        record["is_meta_instance_profile"] = True
    return record


def add_instance_profile(
    ws: Workspace, arn: str, iam_role_arn: str | None = None, is_meta_instance_profile: bool = False
) -> dict:
    """Register an instance profile (internal API for handlers and the seeder)."""
    _check_arn(arn)
    if arn in ws.table(TABLE):
        raise already_exists(f"Instance profile with ARN {arn} already exists.")
    record = _profile(arn, iam_role_arn, is_meta_instance_profile)
    ws.table(TABLE)[arn] = record
    return record


def _require(ws: Workspace, arn: Any) -> dict:
    record = ws.table(TABLE).get(_check_arn(arn))
    if record is None:
        raise not_found(f"Instance profile {arn} does not exist.")
    return record


@routes.get("/api/2.0/instance-profiles/list")
def list_profiles(ws: Workspace, req: Request) -> dict:
    profiles = [dict(p) for p in ws.table(TABLE).values()]
    return {"instance_profiles": profiles} if profiles else {}


@routes.post("/api/2.0/instance-profiles/add")
def add(ws: Workspace, req: Request) -> dict:
    add_instance_profile(
        ws,
        req.require("instance_profile_arn"),
        req.param("iam_role_arn"),
        bool(req.param("is_meta_instance_profile", False)),
    )
    return {}


@routes.post("/api/2.0/instance-profiles/edit")
def edit(ws: Workspace, req: Request) -> dict:
    """Replace the optional fields of a registered profile."""
    arn = req.require("instance_profile_arn")
    _require(ws, arn)
    ws.table(TABLE)[arn] = _profile(arn, req.param("iam_role_arn"), req.param("is_meta_instance_profile"))
    return {}


@routes.post("/api/2.0/instance-profiles/remove")
def remove(ws: Workspace, req: Request) -> dict:
    arn = req.require("instance_profile_arn")
    _require(ws, arn)
    del ws.table(TABLE)[arn]
    for table in _SCIM_TABLES:
        for record in ws.table(table).values():
            if arn in record.get("roles", []):
                record["roles"].remove(arn)
    return {}
