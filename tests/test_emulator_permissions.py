"""Permissions API 2.0 on jobs, notebooks and directories, driven by databricks-sdk."""

from __future__ import annotations

import base64

import pytest
import requests
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import InvalidParameterValue, NotFound
from databricks.sdk.service import compute, iam, jobs
from databricks.sdk.service.workspace import ImportFormat, Language

from dbsync_emulator import EmulatorHandle

ADMIN = "admin@example.com"
ANA = "ana@example.com"
GROUP = "data-eng"


@pytest.fixture
def principals(w: WorkspaceClient) -> str:
    """A user (ana), a group (data-eng) and a service principal; returns the SP's application id."""
    w.users.create(user_name=ANA, display_name="Ana")
    w.groups.create(display_name=GROUP)
    sp = w.service_principals.create(display_name="etl-bot")
    assert sp.application_id is not None
    return sp.application_id


def _job(w: WorkspaceClient) -> str:
    job = w.jobs.create(
        name="nightly",
        tasks=[
            jobs.Task(
                task_key="main",
                notebook_task=jobs.NotebookTask(notebook_path="/Shared/nb"),
                new_cluster=compute.ClusterSpec(
                    spark_version="15.4.x-scala2.12", node_type_id="i3.xlarge", num_workers=1
                ),
            )
        ],
    )
    return str(job.job_id)


def _acl(permissions: iam.ObjectPermissions | jobs.JobPermissions) -> dict[str, set[tuple[str, bool]]]:
    """principal → {(level, inherited)}, for the generic and the jobs-specific permission documents."""
    out: dict[str, set[tuple[str, bool]]] = {}
    for entry in permissions.access_control_list or []:
        name = entry.user_name or entry.group_name or entry.service_principal_name or ""
        out[name] = {(p.permission_level.value, bool(p.inherited)) for p in entry.all_permissions or []}  # type: ignore[union-attr]
    return out


def _grant(**kwargs: object) -> iam.AccessControlRequest:
    return iam.AccessControlRequest(**kwargs)  # type: ignore[arg-type]


# -- jobs -------------------------------------------------------------------------------------------
def test_a_new_job_has_its_creator_as_owner_and_inherited_admins(w: WorkspaceClient) -> None:
    job_id = _job(w)

    permissions = w.permissions.get("jobs", job_id)

    assert permissions.object_id == f"/jobs/{job_id}"
    assert permissions.object_type == "job"
    assert _acl(permissions) == {ADMIN: {("IS_OWNER", False)}, "admins": {("CAN_MANAGE", True)}}
    admins = next(e for e in permissions.access_control_list or [] if e.group_name == "admins")
    assert admins.all_permissions[0].inherited_from_object == ["/jobs/"]  # type: ignore[index]


def test_create_applies_its_access_control_list(w: WorkspaceClient, principals: str) -> None:
    job = w.jobs.create(
        name="with-acl",
        access_control_list=[
            jobs.JobAccessControlRequest(user_name=ANA, permission_level=jobs.JobPermissionLevel.CAN_MANAGE_RUN),
            jobs.JobAccessControlRequest(group_name=GROUP, permission_level=jobs.JobPermissionLevel.CAN_VIEW),
        ],
    )

    acl = _acl(w.permissions.get("jobs", str(job.job_id)))

    assert acl[ADMIN] == {("IS_OWNER", False)}
    assert acl[ANA] == {("CAN_MANAGE_RUN", False)}
    assert acl[GROUP] == {("CAN_VIEW", False)}


def test_create_with_an_unknown_principal_creates_nothing(w: WorkspaceClient) -> None:
    with pytest.raises(InvalidParameterValue, match=r"UserName\(ghost@example.com\)"):
        w.jobs.create(
            name="bad-acl",
            access_control_list=[
                jobs.JobAccessControlRequest(
                    user_name="ghost@example.com", permission_level=jobs.JobPermissionLevel.CAN_VIEW
                )
            ],
        )

    assert list(w.jobs.list()) == []


def test_put_replaces_direct_entries_with_the_owner_it_names(w: WorkspaceClient, principals: str) -> None:
    job_id = _job(w)
    w.jobs.set_permissions(
        job_id,
        access_control_list=[
            jobs.JobAccessControlRequest(user_name=ADMIN, permission_level=jobs.JobPermissionLevel.IS_OWNER),
            jobs.JobAccessControlRequest(user_name=ANA, permission_level=jobs.JobPermissionLevel.CAN_VIEW),
        ],
    )

    replaced = w.jobs.set_permissions(
        job_id,
        access_control_list=[
            jobs.JobAccessControlRequest(user_name=ANA, permission_level=jobs.JobPermissionLevel.IS_OWNER),
            jobs.JobAccessControlRequest(group_name=GROUP, permission_level=jobs.JobPermissionLevel.CAN_MANAGE_RUN),
            jobs.JobAccessControlRequest(
                service_principal_name=principals, permission_level=jobs.JobPermissionLevel.CAN_MANAGE
            ),
        ],
    )

    assert _acl(replaced) == {
        ANA: {("IS_OWNER", False)},
        GROUP: {("CAN_MANAGE_RUN", False)},
        principals: {("CAN_MANAGE", False)},
        "admins": {("CAN_MANAGE", True)},
    }


def test_a_put_that_names_no_owner_is_refused_and_changes_nothing(w: WorkspaceClient, principals: str) -> None:
    """The service does not keep the current owner of a job when a PUT names none: it answers 400 "The job must
    have exactly one owner." (terraform-provider-databricks#303, databricks/cli#5682; the terraform provider adds
    the caller as IS_OWNER to every job or pipeline PUT that names none for that reason)."""
    job_id = _job(w)
    before = _acl(w.permissions.get("jobs", job_id))

    with pytest.raises(InvalidParameterValue, match="The job must have exactly one owner"):
        w.permissions.set(
            "jobs", job_id, access_control_list=[_grant(user_name=ANA, permission_level=iam.PermissionLevel.CAN_VIEW)]
        )

    assert (
        _acl(w.permissions.get("jobs", job_id))
        == before
        == {
            ADMIN: {("IS_OWNER", False)},
            "admins": {("CAN_MANAGE", True)},
        }
    )


def test_the_creator_gets_a_direct_manage_entry_on_what_it_creates(w: WorkspaceClient) -> None:
    """ "Users automatically have the CAN MANAGE permission for objects that they create"
    (docs.databricks.com/security/access-control.html), and the entry is a direct one: a PUT that does not repeat
    it takes it away, which is why the terraform provider adds the caller's CAN_MANAGE to every PUT on clusters,
    pools, warehouses, queries, registered models and serving endpoints (terraform-provider-databricks#1139,
    #1504, #2165; permissions/update/customizers.go AddCurrentUserAsManage). Jobs get IS_OWNER (above)."""
    cluster_id = w.clusters.create(spark_version="15.4.x-scala2.12", node_type_id="i3.xlarge", num_workers=1).cluster_id
    pool_id = w.instance_pools.create(instance_pool_name="pool", node_type_id="i3.xlarge").instance_pool_id
    w.workspace.mkdirs("/Shared/team")
    folder_id = w.workspace.get_status("/Shared/team").object_id
    experiment_id = w.experiments.create_experiment(name="/Shared/team/exp").experiment_id

    for object_type, object_id in (
        ("clusters", cluster_id),
        ("instance-pools", pool_id),
        ("directories", str(folder_id)),
        ("experiments", experiment_id),
    ):
        assert _acl(w.permissions.get(object_type, str(object_id)))[ADMIN] >= {("CAN_MANAGE", False)}, object_type


def test_patch_adds_and_changes_entries(w: WorkspaceClient, principals: str) -> None:
    job_id = _job(w)
    w.permissions.update(
        "jobs",
        job_id,
        access_control_list=[_grant(user_name=ANA, permission_level=iam.PermissionLevel.CAN_VIEW)],
    )

    updated = w.permissions.update(
        "jobs",
        job_id,
        access_control_list=[
            _grant(user_name=ANA, permission_level=iam.PermissionLevel.CAN_MANAGE_RUN),
            _grant(group_name=GROUP, permission_level=iam.PermissionLevel.CAN_VIEW),
        ],
    )

    assert _acl(updated) == {
        ADMIN: {("IS_OWNER", False)},
        ANA: {("CAN_MANAGE_RUN", False)},
        GROUP: {("CAN_VIEW", False)},
        "admins": {("CAN_MANAGE", True)},
    }
    ana = next(e for e in updated.access_control_list or [] if e.user_name == ANA)
    assert ana.display_name == "Ana"


def test_a_new_owner_replaces_the_old_one(w: WorkspaceClient, principals: str) -> None:
    job_id = _job(w)

    updated = w.permissions.update(
        "jobs",
        job_id,
        access_control_list=[_grant(user_name=ANA, permission_level=iam.PermissionLevel.IS_OWNER)],
    )

    owners = [name for name, levels in _acl(updated).items() if ("IS_OWNER", False) in levels]
    assert owners == [ANA]


def test_a_job_has_exactly_one_owner_and_never_a_group(w: WorkspaceClient, principals: str) -> None:
    job_id = _job(w)

    with pytest.raises(InvalidParameterValue, match="only one owner"):
        w.permissions.set(
            "jobs",
            job_id,
            access_control_list=[
                _grant(user_name=ANA, permission_level=iam.PermissionLevel.IS_OWNER),
                _grant(user_name=ADMIN, permission_level=iam.PermissionLevel.IS_OWNER),
            ],
        )
    with pytest.raises(InvalidParameterValue, match="cannot be the owner"):
        w.permissions.update(
            "jobs",
            job_id,
            access_control_list=[_grant(group_name=GROUP, permission_level=iam.PermissionLevel.IS_OWNER)],
        )
    assert [n for n, lv in _acl(w.permissions.get("jobs", job_id)).items() if ("IS_OWNER", False) in lv] == [ADMIN]


def test_unknown_principal_is_invalid(w: WorkspaceClient, emulator: EmulatorHandle) -> None:
    job_id = _job(w)

    with pytest.raises(InvalidParameterValue, match=r"Principal: UserName\(ghost@example.com\) does not exist"):
        w.permissions.update(
            "jobs",
            job_id,
            access_control_list=[_grant(user_name="ghost@example.com", permission_level=iam.PermissionLevel.CAN_VIEW)],
        )
    with pytest.raises(InvalidParameterValue, match=r"Principal: GroupName\(ghosts\) does not exist"):
        w.permissions.update(
            "jobs",
            job_id,
            access_control_list=[_grant(group_name="ghosts", permission_level=iam.PermissionLevel.CAN_VIEW)],
        )
    answer = requests.patch(
        f"{emulator.url}/api/2.0/permissions/jobs/{job_id}",
        timeout=10,
        headers={"Authorization": f"Bearer {emulator.token}"},
        json={"access_control_list": [{"user_name": "x", "permission_level": "CAN_VIEW"}]},
    )
    assert answer.status_code == 400
    assert answer.json() == {
        "error_code": "INVALID_PARAMETER_VALUE",
        "message": "Principal: UserName(x) does not exist",
    }


def test_a_level_of_another_object_type_is_invalid(w: WorkspaceClient, principals: str) -> None:
    job_id = _job(w)

    with pytest.raises(InvalidParameterValue, match="CAN_RUN is not supported for object type job"):
        w.permissions.update(
            "jobs",
            job_id,
            access_control_list=[_grant(user_name=ANA, permission_level=iam.PermissionLevel.CAN_RUN)],
        )


def test_permission_levels_per_type(w: WorkspaceClient) -> None:
    job_id = _job(w)
    w.workspace.mkdirs("/Shared/d")
    directory = w.workspace.get_status("/Shared/d")

    job_levels = w.jobs.get_permission_levels(job_id).permission_levels or []
    dir_levels = w.permissions.get_permission_levels("directories", str(directory.object_id)).permission_levels or []

    assert [lv.permission_level.value for lv in job_levels] == [
        "CAN_VIEW",
        "CAN_MANAGE_RUN",
        "IS_OWNER",
        "CAN_MANAGE",
    ]  # type: ignore[union-attr]
    assert [lv.permission_level.value for lv in dir_levels] == [
        "CAN_READ",
        "CAN_RUN",
        "CAN_EDIT",
        "CAN_MANAGE",
    ]  # type: ignore[union-attr]


def test_preview_path_is_an_alias(w: WorkspaceClient, emulator: EmulatorHandle) -> None:
    job_id = _job(w)

    answer = requests.get(
        f"{emulator.url}/api/2.0/preview/permissions/jobs/{job_id}",
        timeout=10,
        headers={"Authorization": f"Bearer {emulator.token}"},
    )

    assert answer.status_code == 200
    assert answer.json() == w.permissions.get("jobs", job_id).as_dict()


def test_unknown_object_is_not_found(w: WorkspaceClient) -> None:
    with pytest.raises(NotFound):
        w.permissions.get("jobs", "12345")
    with pytest.raises(NotFound):
        w.permissions.get("notebooks", "12345")


def test_object_acls_go_away_with_the_object(w: WorkspaceClient, principals: str) -> None:
    job_id = _job(w)
    w.jobs.delete(int(job_id))

    with pytest.raises(NotFound):
        w.permissions.get("jobs", job_id)


# -- notebooks and directories ----------------------------------------------------------------------
def test_notebook_permissions_are_keyed_by_object_id(w: WorkspaceClient, principals: str) -> None:
    w.workspace.mkdirs("/Shared/team")
    w.workspace.import_(
        "/Shared/team/nb",
        content=base64.b64encode(b"print(1)").decode(),
        format=ImportFormat.SOURCE,
        language=Language.PYTHON,
    )
    notebook = w.workspace.get_status("/Shared/team/nb")
    directory = w.workspace.get_status("/Shared/team")

    w.workspace.set_permissions(
        "notebooks",
        str(notebook.object_id),
        access_control_list=[
            _ws_grant(user_name=ANA, level="CAN_RUN"),
        ],
    )
    permissions = w.permissions.get("notebooks", str(notebook.object_id))

    assert permissions.object_type == "notebook"
    assert permissions.object_id == f"/notebooks/{notebook.object_id}"
    assert _acl(permissions)[ANA] == {("CAN_RUN", False)}
    assert _sources(permissions, "admins") == {"CAN_MANAGE": ["/directories/"]}
    with pytest.raises(NotFound):
        w.permissions.get("directories", str(notebook.object_id))  # a notebook id is not a directory id
    assert directory.object_id


def test_notebooks_inherit_the_acls_of_their_folders(w: WorkspaceClient, principals: str) -> None:
    w.workspace.mkdirs("/Shared/team/sub")
    w.workspace.upload("/Shared/team/sub/nb.py", b"print(1)")
    shared, team, sub = (
        str(w.workspace.get_status(p).object_id) for p in ("/Shared", "/Shared/team", "/Shared/team/sub")
    )
    notebook = str(w.workspace.get_status("/Shared/team/sub/nb.py").object_id)
    w.permissions.set(
        "directories", team, access_control_list=[_grant(user_name=ANA, permission_level=iam.PermissionLevel.CAN_EDIT)]
    )
    w.permissions.set(
        "directories", sub, access_control_list=[_grant(user_name=ANA, permission_level=iam.PermissionLevel.CAN_EDIT)]
    )

    permissions = w.permissions.get("notebooks", notebook)

    assert _sources(permissions, ANA) == {"CAN_EDIT": [f"/directories/{sub}", f"/directories/{team}"]}
    assert _sources(permissions, "users") == {"CAN_MANAGE": [f"/directories/{shared}"]}  # everyone manages /Shared
    assert ("CAN_MANAGE", False) in _acl(permissions)[ADMIN]  # the creator's direct entry


def _sources(permissions: iam.ObjectPermissions, principal: str) -> dict[str, list[str]]:
    """level → inherited_from_object of one principal's inherited permissions."""
    for entry in permissions.access_control_list or []:
        if principal in (entry.user_name, entry.group_name, entry.service_principal_name):
            return {
                p.permission_level.value: p.inherited_from_object or []  # type: ignore[union-attr]
                for p in entry.all_permissions or []
                if p.inherited
            }
    return {}


def test_directory_permissions_put_and_patch(w: WorkspaceClient, principals: str) -> None:
    w.workspace.mkdirs("/Shared/team")
    directory_id = str(w.workspace.get_status("/Shared/team").object_id)

    w.permissions.set(
        "directories",
        directory_id,
        access_control_list=[_grant(group_name=GROUP, permission_level=iam.PermissionLevel.CAN_EDIT)],
    )
    w.permissions.update(
        "directories",
        directory_id,
        access_control_list=[_grant(service_principal_name=principals, permission_level=iam.PermissionLevel.CAN_READ)],
    )
    acl = _acl(w.permissions.get("directories", directory_id))
    cleared = _acl(w.permissions.set("directories", directory_id, access_control_list=[]))

    assert acl[GROUP] == {("CAN_EDIT", False)}
    assert acl[principals] == {("CAN_READ", False)}
    assert cleared == {"users": {("CAN_MANAGE", True)}, "admins": {("CAN_MANAGE", True)}}  # inherited only


def _ws_grant(user_name: str, level: str) -> object:
    from databricks.sdk.service.workspace import (
        WorkspaceObjectAccessControlRequest,
        WorkspaceObjectPermissionLevel,
    )

    return WorkspaceObjectAccessControlRequest(
        user_name=user_name, permission_level=WorkspaceObjectPermissionLevel(level)
    )
