"""databrickslabs/migrate (the seed's migration tool) against two emulators: export from a seeded source, import
into an empty target, call for call, and check that the target ends up with what the source had.

Every replayed call is read from migrate's `dbclient/` with the search tool (file and function named at each
call). Its HTTP wrapper (`dbclient/dbclient.py` get / http_req) sends `params=` on GET and `json=` otherwise,
calls `.json()` on EVERY answer (an empty or non-JSON body crashes it), raises only on 401/403 and otherwise
hands `{..., "http_status_code": N}` back to the caller, which looks for `error_code`. So the replay fails on
a non-JSON answer and records every answer carrying `error_code`; the test asserts that list is empty except
for what the real service also refuses (named where it is allowed).
"""

from __future__ import annotations

import base64
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from databricks.sdk import WorkspaceClient
from databricks.sdk.service import compute, iam, workspace

from dbsync_emulator import EmulatorHandle, start_emulator
from tests.conftest import sdk_client

ALICE, BOB = "alice@example.com", "bob@example.com"
PROFILE_ARN = "arn:aws:iam::123456789012:instance-profile/etl"
NOTEBOOKS = {
    f"/Users/{ALICE}/etl/ingest": ("PYTHON", b"# Databricks notebook source\nprint('ingest')\n"),
    "/Shared/reports/daily": ("SQL", b"-- Databricks notebook source\nSELECT 1\n"),
    "/Shared/reports/scala/agg": ("SCALA", b"// Databricks notebook source\nval x = 1\n"),
    "/Shared/reports/r/plot": ("R", b"# Databricks notebook source\nx <- 1\n"),
    "/Shared/Ünïcode reports/Daily (v2)": ("PYTHON", b"# Databricks notebook source\nprint(2)\n"),
}
CSV_PATH, CSV = "/Shared/reports/data.csv", b"id,name\n1,a\n"
# dbclient/ClustersClient.py ClustersClient.create_configs: the keys log_cluster_configs() keeps of each listed cluster
CREATE_CONFIGS = {
    "num_workers", "autoscale", "cluster_name", "spark_version", "spark_conf", "aws_attributes", "node_type_id",
    "driver_node_type_id", "ssh_public_keys", "custom_tags", "cluster_log_conf", "init_scripts", "docker_image",
    "spark_env_vars", "autotermination_minutes", "enable_elastic_disk", "instance_pool_id",
    "driver_instance_pool_id", "policy_id", "pinned_by_user_name", "creator_user_name", "cluster_id",
    "data_security_mode",
}  # fmt: skip


class Dbclient:
    """migrate's dbclient/dbclient.py `dbclient`: get() / post() / put() / patch() as it sends and reads them."""

    def __init__(self, handle: EmulatorHandle) -> None:
        self.url = handle.url
        self.headers = {"Authorization": f"Bearer {handle.token}"}
        self.errors: list[tuple[str, str, dict]] = []

    def get(self, endpoint: str, json_params: dict | None = None, version: str = "2.0") -> dict:
        """dbclient.get(): `params=` only when json_params is truthy; a list answer becomes `elements`."""
        raw = requests.get(
            f"{self.url}/api/{version}{endpoint}", headers=self.headers, params=json_params or None, timeout=30
        )
        return self._read("GET", endpoint, raw)

    def post(self, endpoint: str, json_params: dict, version: str = "2.0") -> dict:
        return self._send("post", endpoint, json_params, version)

    def put(self, endpoint: str, json_params: dict, version: str = "2.0") -> dict:
        return self._send("put", endpoint, json_params, version)

    def patch(self, endpoint: str, json_params: dict, version: str = "2.0") -> dict:
        return self._send("patch", endpoint, json_params, version)

    def _send(self, method: str, endpoint: str, body: dict, version: str) -> dict:
        """dbclient.http_req(): a falsy payload is never sent ("Must have a payload in json_args param.")."""
        assert body, f"migrate sends no request for an empty {method} payload to {endpoint}"
        raw = requests.request(
            method, f"{self.url}/api/{version}{endpoint}", headers=self.headers, json=body, timeout=30
        )
        return self._read(method.upper(), endpoint, raw)

    def _read(self, method: str, endpoint: str, raw: requests.Response) -> dict:
        if raw.status_code in (401, 403):  # dbclient.http_error_codes: the only answers it raises on
            raise AssertionError(f"{method} {endpoint} failed with code {raw.status_code}\n{raw.text}")
        results = raw.json()  # as migrate does: a body that is not JSON is a crash
        if isinstance(results, list):
            results = {"elements": results}
        if "error_code" in results or raw.status_code >= 400:
            self.errors.append((method, endpoint, results))
        results["http_status_code"] = raw.status_code
        return results

    def whoami(self) -> str:
        """dbclient.whoami()."""
        return self.get("/preview/scim/v2/Me")["userName"]

    def build_acl_args(self, full_acl_list: list[dict], is_jobs: bool = False) -> list[dict]:
        """dbclient.build_acl_args(): the first of `all_permissions` per principal; the admins group is dropped;
        for jobs the caller adds itself as CAN_MANAGE unless it is the owner."""
        acls, owner = [], ""
        for member in full_acl_list:
            level = member["all_permissions"][0]["permission_level"]
            if "user_name" in member:
                acls.append({"user_name": member["user_name"], "permission_level": level})
                owner = member["user_name"] if level == "IS_OWNER" else owner
            elif member.get("group_name") != "admins":
                acls.append({"group_name": member.get("group_name"), "permission_level": level})
                owner = member.get("group_name") if level == "IS_OWNER" else owner
        if is_jobs and owner != self.whoami():
            acls.append({"user_name": self.whoami(), "permission_level": "CAN_MANAGE"})
        return acls


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _write(path: Path, items: list[dict]) -> None:
    path.write_text("".join(json.dumps(i) + "\n" for i in items))


# -- seeding the source through the SDK -------------------------------------------------------------------
def _seed_identities(w: WorkspaceClient) -> None:
    w.instance_profiles.add(PROFILE_ARN, skip_validation=True)  # roles name a registered profile
    alice = w.users.create(
        user_name=ALICE,
        display_name="Alice A",
        name=iam.Name(given_name="Alice", family_name="A"),
        entitlements=[iam.ComplexValue(value="allow-cluster-create")],
        roles=[iam.ComplexValue(value=PROFILE_ARN)],
    )
    bob = w.users.create(user_name=BOB, display_name="Bob B")
    analysts = w.groups.create(display_name="analysts", members=[iam.ComplexValue(value=bob.id)])
    w.groups.create(
        display_name="data-eng",
        members=[iam.ComplexValue(value=alice.id), iam.ComplexValue(value=analysts.id)],
        entitlements=[iam.ComplexValue(value="allow-instance-pool-create")],
        roles=[iam.ComplexValue(value=PROFILE_ARN)],
    )


def _seed_workspace(w: WorkspaceClient) -> None:
    for path, (language, source) in NOTEBOOKS.items():
        w.workspace.mkdirs(os.path.dirname(path))
        w.workspace.import_(
            path,
            content=base64.b64encode(source).decode(),
            format=workspace.ImportFormat.SOURCE,
            language=workspace.Language(language),
        )
    w.workspace.import_(CSV_PATH, content=base64.b64encode(CSV).decode(), format=workspace.ImportFormat.AUTO)
    daily = w.workspace.get_status("/Shared/reports/daily").object_id
    reports = w.workspace.get_status("/Shared/reports").object_id
    w.permissions.update(
        "notebooks",
        str(daily),
        access_control_list=[
            iam.AccessControlRequest(group_name="data-eng", permission_level=iam.PermissionLevel.CAN_RUN)
        ],
    )
    w.permissions.update(
        "directories",
        str(reports),
        access_control_list=[iam.AccessControlRequest(user_name=BOB, permission_level=iam.PermissionLevel.CAN_EDIT)],
    )


def _seed_compute(w: WorkspaceClient) -> None:
    pool = w.instance_pools.create(
        instance_pool_name="small-pool",
        node_type_id="i3.xlarge",
        min_idle_instances=0,
        max_capacity=10,
        idle_instance_autotermination_minutes=15,
        custom_tags={"team": "data"},
        preloaded_spark_versions=["15.4.x-scala2.12"],
    )
    policy = w.cluster_policies.create(
        name="team-policy", definition=json.dumps({"autotermination_minutes": {"type": "fixed", "value": 30}})
    )
    w.permissions.set(
        "cluster-policies",
        policy.policy_id,
        access_control_list=[
            iam.AccessControlRequest(group_name="data-eng", permission_level=iam.PermissionLevel.CAN_USE)
        ],
    )
    shared = w.clusters.create(
        cluster_name="shared",
        spark_version="15.4.x-scala2.12",
        node_type_id="i3.xlarge",
        num_workers=1,
        autotermination_minutes=60,
        custom_tags={"team": "data"},
        aws_attributes=compute.AwsAttributes(instance_profile_arn=PROFILE_ARN),
    ).response
    w.clusters.create(
        cluster_name="on-pool",
        spark_version="15.4.x-scala2.12",
        instance_pool_id=pool.instance_pool_id,
        driver_instance_pool_id=pool.instance_pool_id,
        autoscale=compute.AutoScale(min_workers=1, max_workers=4),
        spark_conf={"spark.sql.shuffle.partitions": "64"},
        spark_env_vars={"STAGE": "prod"},
        init_scripts=[compute.InitScriptInfo(workspace=compute.WorkspaceStorageInfo("/Shared/init.sh"))],
        cluster_log_conf=compute.ClusterLogConf(dbfs=compute.DbfsStorageInfo("dbfs:/cluster-logs")),
        data_security_mode=compute.DataSecurityMode.USER_ISOLATION,
    )
    w.clusters.create(
        cluster_name="governed",
        spark_version="15.4.x-scala2.12",
        node_type_id="i3.xlarge",
        num_workers=1,
        autotermination_minutes=30,
        policy_id=policy.policy_id,
    )
    w.permissions.update(
        "clusters",
        shared.cluster_id,
        access_control_list=[
            iam.AccessControlRequest(group_name="data-eng", permission_level=iam.PermissionLevel.CAN_ATTACH_TO),
            iam.AccessControlRequest(user_name=BOB, permission_level=iam.PermissionLevel.CAN_RESTART),
        ],
    )
    w.clusters.pin(shared.cluster_id)


# -- ScimClient.py ------------------------------------------------------------------------------------------
def export_users_and_groups(src: Dbclient, logs: Path) -> None:
    """ScimClient.log_all_users() and log_all_groups() with add_username_to_group()."""
    users = src.get("/preview/scim/v2/Users").get("Resources", None)
    assert users, "log_all_users: 'Users returned an empty object'"
    kept = [
        u for u in users if not (u["userName"] == "admin" and (u.get("name") or {}).get("givenName") == "Administrator")
    ]
    _write(logs / "users.log", kept)
    (logs / "groups").mkdir()
    for group in src.get("/preview/scim/v2/Groups").get("Resources", []):
        for member in group.get("members", []):
            if "Users/" in member["$ref"]:
                member["userName"] = src.get(f"/preview/scim/v2/Users/{member['value']}")["userName"]
                member["type"] = "user"
            elif "Groups/" in member["$ref"]:
                member["type"] = "group"
            elif "ServicePrincipals/" in member["$ref"]:
                member["type"] = "service-principal"
            else:
                member["type"] = "unknown"
        (logs / "groups" / group["displayName"]).write_text(json.dumps(group))


def _patch_op(path: str | None, value: Any) -> dict:
    """ScimClient.assign_entitlements_args() / assign_roles_args() / get_member_args()."""
    op: dict[str, Any] = {"op": "add", "value": value}
    if path:
        op["path"] = path
    return {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [op]}


def import_users_and_groups(dst: Dbclient, logs: Path) -> None:
    """ScimClient.import_all_users_and_groups(): import_users, import_groups, then roles (AWS) and entitlements."""
    for user in _lines(logs / "users.log"):  # import_users()
        create = {k: user[k] for k in ("emails", "entitlements", "displayName", "name", "userName") if k in user}
        dst.post("/preview/scim/v2/Users", create)
    group_names = os.listdir(logs / "groups")  # import_groups()
    for name in group_names:
        dst.post(
            "/preview/scim/v2/Groups", {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": name}
        )
    group_ids = {g["displayName"]: g["id"] for g in dst.get("/preview/scim/v2/Groups").get("Resources", None)}
    user_ids = {u["emails"][0]["value"]: u["id"] for u in dst.get("/preview/scim/v2/Users")["Resources"]}
    old_emails = {u["id"]: u["emails"][0]["value"] for u in _lines(logs / "users.log")}
    for name in group_names:
        members = json.loads((logs / "groups" / name).read_text()).get("members", None)
        if not members:
            continue
        ids = []
        for m in members:
            if "Users/" in m["$ref"]:
                ids.append(user_ids.get(old_emails[m["value"]], ""))
            elif "Groups/" in m["$ref"]:
                ids.append(group_ids.get(m["display"]))
        dst.patch(
            f"/preview/scim/v2/Groups/{group_ids[name]}", _patch_op(None, {"members": [{"value": f"{i}"} for i in ids]})
        )
    for name in group_names:  # assign_group_roles() (is_aws) then assign_group_entitlements()
        data = json.loads((logs / "groups" / name).read_text())
        for key in ("roles", "entitlements"):
            if data.get(key):
                dst.patch(f"/preview/scim/v2/Groups/{group_ids[name]}", _patch_op(key, data[key]))
    by_name = {u["userName"]: u["id"] for u in dst.get("/preview/scim/v2/Users").get("Resources", None)}
    for user in _lines(logs / "users.log"):  # assign_user_roles()
        current = dst.get(f"/preview/scim/v2/Users/{by_name[user['userName']]}")
        needed = {r["value"] for r in user.get("roles") or []} - {r["value"] for r in current.get("roles") or []}
        if needed:
            dst.patch(
                f"/preview/scim/v2/Users/{by_name[user['userName']]}",
                _patch_op("roles", [{"value": r} for r in needed]),
            )
    for user in _lines(logs / "users.log"):  # assign_user_entitlements()
        if user.get("entitlements"):
            dst.patch(
                f"/preview/scim/v2/Users/{by_name[user['userName']]}", _patch_op("entitlements", user["entitlements"])
            )


# -- WorkspaceClient.py -------------------------------------------------------------------------------------
def _is_user_ws_item(ws_dir: str) -> bool:
    parts = [x for x in ws_dir.split("/") if x]
    return len(parts) >= 2 and parts[0] == "Users"


def _is_user_ws_root(ws_dir: str) -> bool:
    if ws_dir in ("/Users/", "/Users", "/Repos/", "/Repos"):
        return True
    parts = [x for x in ws_dir.split("/") if x]
    return len(parts) == 2 and parts[0] == "Users"


def _is_repo(ws_dir: str) -> bool:
    parts = [x for x in ws_dir.split("/") if x]
    return len(parts) >= 2 and parts[0] == "Repos"


def _is_user_trash(ws_path: str) -> bool:
    parts = ws_path.split("/")
    return len(parts) == 4 and parts[1] == "Users" and parts[3] == "Trash"


def log_all_workspace_items(src: Dbclient, ws_path: str, logged: dict[str, list[dict]]) -> None:
    """WorkspaceClient.log_all_workspace_items(): list, GET /repos on every call, recurse into directories."""
    items = src.get("/workspace/list", {"path": ws_path}).get("objects", None)
    src.get("/repos").get("repos", None)
    if not items:
        return
    for kind, log in (("NOTEBOOK", "notebooks"), ("LIBRARY", "libraries"), ("FILE", "files")):
        logged[log] += [
            {"path": x.get("path"), "object_id": x.get("object_id")} for x in items if x.get("object_type") == kind
        ]
    for folder in [
        {"path": x.get("path"), "object_id": x.get("object_id")} for x in items if x.get("object_type") == "DIRECTORY"
    ]:
        if not _is_user_trash(folder["path"]) and not _is_repo(folder["path"]):
            logged["dirs"].append(folder)
            log_all_workspace_items(src, folder["path"], logged)


def export_workspace(src: Dbclient, logs: Path, file_format: str = "DBC") -> None:
    """log_all_workspace_items_entry('/'), download_notebooks() in the configured file_format (DBC by default,
    SOURCE with --notebook-format), saved as `<name>.<file_type>`, then
    log_all_workspace_acls(): /permissions/notebooks|directories/{object_id} per logged item."""
    logged: dict[str, list[dict]] = {"notebooks": [], "libraries": [], "files": [], "dirs": []}
    log_all_workspace_items(src, "/", logged)
    _write(logs / "user_workspace.log", logged["notebooks"])
    _write(logs / "user_dirs.log", logged["dirs"])
    for item in logged["notebooks"]:  # download_notebook_helper()
        resp = src.get("/workspace/export", {"path": item["path"], "format": file_format})
        if resp.get("error_code", None):
            continue
        save_path = logs / "artifacts" / item["path"].lstrip("/")
        save_path.parent.mkdir(parents=True, exist_ok=True)
        Path(f"{save_path}.{resp.get('file_type')}").write_bytes(base64.b64decode(resp["content"]))
    for item in logged["files"]:  # download_workspace_file_helper(): AUTO, saved under its own name
        resp = src.get("/workspace/export", {"path": item["path"], "format": "AUTO"})
        if resp.get("error_code", None):
            continue
        save_path = logs / "file_artifacts" / item["path"].lstrip("/")
        save_path.parent.mkdir(parents=True, exist_ok=True)
        save_path.write_bytes(base64.b64decode(resp["content"]))
    for artifact_type, read_log, write_log in (
        ("notebooks", "user_workspace.log", "acl_notebooks.log"),
        ("directories", "user_dirs.log", "acl_directories.log"),
    ):  # log_acl_to_file()
        acls = []
        for data in _lines(logs / read_log):
            acl = src.get(f"/permissions/{artifact_type}/{data.get('object_id')}")
            acl["path"] = data.get("path")
            acl.pop("http_status_code")
            acls.append(acl)
        _write(logs / write_log, acls)


def _does_user_exist(dst: Dbclient, username: str) -> bool:
    return dst.get("/workspace/get-status", {"path": f"/Users/{username}"}).get("object_type", None) == "DIRECTORY"


def _upload_tree(dst: Dbclient, src_dir: str, import_args: Any) -> None:
    """import_all_workspace_items() / import_all_workspace_files(): walk the local tree, prepare_upload_dir()
    (mkdirs with a trailing slash, except user homes and /Users, /Repos), one import per file in
    base64.encodebytes (MIME: a line break every 76 characters)."""
    for root, _, files in os.walk(src_dir):
        ws_dir = "/" + root.replace(src_dir, "")
        upload_dir = ws_dir if ws_dir == "/" else ws_dir + "/"
        if _is_user_ws_item(upload_dir):
            assert _does_user_exist(dst, upload_dir.split("/")[2]), f"User is missing for {upload_dir}"
        if not _is_user_ws_root(upload_dir):
            dst.post("/workspace/mkdirs", {"path": upload_dir})
        for f in files:
            with open(os.path.join(root, f), "rb") as fp:
                dst.post(
                    "/workspace/import", import_args(upload_dir + f, base64.encodebytes(fp.read()).decode("utf-8"))
                )


def _notebook_import_args(file_format: str) -> Any:
    """WorkspaceClient.get_user_import_args(): SOURCE adds the language of the extension and object_type."""
    languages = {".py": "PYTHON", ".scala": "SCALA", ".r": "R", ".sql": "SQL"}  # WorkspaceClient._languages

    def args(path: str, content: str) -> dict:
        stem, ext = os.path.splitext(path)
        out = {"content": content, "path": stem, "format": file_format}
        if file_format == "SOURCE":
            out |= {"language": languages[ext], "object_type": "NOTEBOOK"}
        return out

    return args


def import_workspace(dst: Dbclient, logs: Path, file_format: str = "DBC") -> None:
    """import_all_workspace_items() (walk artifacts/, prepare_upload_dir(), DBC import with base64.encodebytes)
    then import_workspace_acls() (apply_acl_on_object(): get-status on the target path, PATCH the ACL)."""
    src_dir = str(logs / "artifacts") + "/"
    saved_users = len([x for x in os.listdir(src_dir + "Users") if os.path.isdir(src_dir + "Users/" + x)])
    current_users = len(dst.get("/workspace/list", {"path": "/Users/"}).get("objects", None) or [])
    assert current_users >= saved_users > 0, "Current number of users is less than number of user workspaces to import."
    _upload_tree(dst, src_dir, _notebook_import_args(file_format))
    # import_all_workspace_files(): the workspace path keeps its extension, AUTO format
    _upload_tree(
        dst, str(logs / "file_artifacts") + "/", lambda path, data: {"content": data, "path": path, "format": "AUTO"}
    )
    for acl_log in ("acl_notebooks.log", "acl_directories.log"):
        for object_acl in _lines(logs / acl_log):
            object_type, obj_path = object_acl.get("object_type", None), object_acl["path"]
            if obj_path == "/Shared" and object_type == "directory":
                continue  # "We cannot modify '/Shared' directory's ACL"
            if _is_user_ws_item(obj_path) and not _does_user_exist(dst, obj_path.split("/")[2]):
                continue
            status = dst.get("/workspace/get-status", {"path": obj_path})
            if "error_code" in status or not status.get("object_id"):
                continue  # logged to the error log, as apply_acl_on_object() does
            kind = {"directory": "directories", "notebook": "notebooks"}[object_type]
            acl = dst.build_acl_args(object_acl.get("access_control_list", None))
            if acl:
                dst.patch(f"/permissions/{kind}/{status['object_id']}", {"access_control_list": acl})


# -- ClustersClient.py --------------------------------------------------------------------------------------
def export_compute(src: Dbclient, logs: Path) -> None:
    """log_instance_profiles(), log_instance_pools(), log_cluster_policies(), log_cluster_configs()."""
    _write(logs / "instance_profiles.log", src.get("/instance-profiles/list").get("instance_profiles", None) or [])
    _write(logs / "instance_pools.log", src.get("/instance-pools/list").get("instance_pools", None) or [])
    policies = src.get("/policies/clusters/list").get("policies", [])
    _write(logs / "cluster_policies.log", policies)
    policy_acls = []
    for policy in policies:
        perms = src.get(f"/preview/permissions/cluster-policies/{policy.get('policy_id')}")
        perms["name"] = policy.get("name")
        policy_acls.append(perms)
    _write(logs / "acl_cluster_policies.log", policy_acls)
    clusters = src.get("/clusters/list").get("clusters", [])
    job_cluster = re.compile(r"job-\d+-run-\d+(-.+)?$")  # remove_automated_clusters()
    clusters = [
        c
        for c in clusters
        if not job_cluster.match(c["cluster_name"])
        and not c["cluster_name"].startswith(("mlflow-model-", "dlt-execution-"))
    ]
    registered = [
        x.get("instance_profile_arn") for x in src.get("/instance-profiles/list").get("instance_profiles", [])
    ]
    cluster_acls, configs = [], []
    for cluster in clusters:
        conf = {k: v for k, v in cluster.items() if k in CREATE_CONFIGS}
        aws = conf.get("aws_attributes")
        if aws and aws.get("instance_profile_arn") and registered and aws["instance_profile_arn"] not in registered:
            del aws["instance_profile_arn"]
        perms = src.get(f"/preview/permissions/clusters/{conf['cluster_id']}/")  # get_cluster_acls(): trailing slash
        perms["cluster_name"] = conf["cluster_name"]
        assert perms["http_status_code"] == 200, perms
        cluster_acls.append(perms)
        configs.append(conf)
    _write(logs / "clusters.log", configs)
    _write(logs / "acl_clusters.log", cluster_acls)


def import_instance_profiles(dst: Dbclient, logs: Path) -> None:
    """ClustersClient.import_instance_profiles(): the first import task, before users (their roles name profiles)."""
    current = [
        x["instance_profile_arn"] for x in dst.get("/instance-profiles/list").get("instance_profiles", None) or []
    ]
    for profile in _lines(logs / "instance_profiles.log"):
        if profile.get("instance_profile_arn") not in current:
            dst.post("/instance-profiles/add", {"instance_profile_arn": profile.get("instance_profile_arn")})


def import_compute(dst: Dbclient, logs: Path) -> None:
    """migration_pipeline's InstancePoolsImportTask then ClustersImportTask: import_instance_pools(),
    import_cluster_policies(), import_cluster_configs()."""
    for pool_conf in _lines(logs / "instance_pools.log"):
        dst.post("/instance-pools/create", pool_conf)  # the listed pool, every key, as logged
    for policy in _lines(logs / "cluster_policies.log"):
        dst.post("/policies/clusters/create", {"name": policy["name"], "definition": policy["definition"]})
    policy_ids = {p["name"]: p["policy_id"] for p in dst.get("/policies/clusters/list").get("policies", [])}
    for p_acl in _lines(logs / "acl_cluster_policies.log"):
        acl = {"access_control_list": dst.build_acl_args(p_acl["access_control_list"])}
        dst.put(f"/permissions/cluster-policies/{policy_ids[p_acl['name']]}", acl)
    existing = {c.get("cluster_name", None) for c in dst.get("/clusters/list").get("clusters", [])}
    old_to_new_policy = {p["policy_id"]: policy_ids[p["name"]] for p in _lines(logs / "cluster_policies.log")}
    for conf in _lines(logs / "clusters.log"):
        if conf["cluster_name"] in existing:
            continue
        creator = conf.pop("creator_user_name")
        if "policy_id" in conf:
            conf["policy_id"] = old_to_new_policy[conf["policy_id"]]
        if "instance_pool_id" in conf:  # cleanup_cluster_pool_configs()
            pools = {
                p["instance_pool_name"]: p["instance_pool_id"]
                for p in dst.get("/instance-pools/list").get("instance_pools", None)
            }
            old_pools = {
                p["instance_pool_id"]: pools[p["instance_pool_name"]] for p in _lines(logs / "instance_pools.log")
            }
            for key in ("node_type_id", "driver_node_type_id", "enable_elastic_disk"):
                conf.pop(key, None)
            conf["instance_pool_id"] = old_pools[conf["instance_pool_id"]]
            if conf.get("driver_instance_pool_id"):
                conf["driver_instance_pool_id"] = old_pools[conf["driver_instance_pool_id"]]
            aws = conf.pop("aws_attributes", None)
            if aws is not None and not aws.get("instance_profile_arn"):
                conf["aws_attributes"] = {"instance_profile_arn": None}
        conf["custom_tags"] = {**conf.get("custom_tags", {}), "OriginalCreator": creator}
        resp = dst.post("/clusters/create", conf)
        if resp["http_status_code"] == 200:
            dst.post("/clusters/delete", {"cluster_id": resp["cluster_id"]})
            if "pinned_by_user_name" in conf:
                dst.post("/clusters/pin", {"cluster_id": resp["cluster_id"]})
    by_name = {c["cluster_name"]: c["cluster_id"] for c in dst.get("/clusters/list").get("clusters", [])}
    for data in _lines(logs / "acl_clusters.log"):
        acl = {"access_control_list": dst.build_acl_args(data["access_control_list"])}
        assert data["cluster_name"] in by_name, "Cluster id must exist in new env. Re-import cluster configs."
        dst.put(f"/preview/permissions/clusters/{by_name[data['cluster_name']]}", acl)


# -- the migration ------------------------------------------------------------------------------------------
@pytest.fixture
def target() -> Iterator[EmulatorHandle]:
    handle = start_emulator(cluster_start_seconds=0.1, token="dapi-migrate-target")
    try:
        yield handle
    finally:
        handle.stop()


def _refused_by_the_service_too(method: str, endpoint: str, answer: dict) -> bool:
    """What a real target also refuses during this import, and migrate carries on past:
    - the importing admin and the built-in `admins`/`users` groups already exist (409, import_users/import_groups);
    - the `users` group's members are the workspace's, so import_groups' PATCH of them is refused;
    - the built-in family policies (Personal Compute, ...) exist on every workspace: import_cluster_policies()
      ignores INVALID_PARAMETER_VALUE from policies/clusters/create for exactly this."""
    detail = str(answer.get("detail") or answer.get("message"))
    if (method, endpoint) in (("POST", "/preview/scim/v2/Users"), ("POST", "/preview/scim/v2/Groups")):
        return answer.get("http_status_code") == 409 and "already exists" in detail
    if method == "PATCH" and endpoint.startswith("/preview/scim/v2/Groups/"):
        return "users group" in detail
    return endpoint == "/policies/clusters/create" and answer.get("error_code") == "INVALID_PARAMETER_VALUE"


def _by(items: list[dict], key: str, drop: set[str] = frozenset()) -> dict[str, dict]:  # type: ignore[assignment]
    return {str(i.get(key)): {k: v for k, v in i.items() if k not in drop} for i in items}


def _acl_view(acl: dict) -> dict:
    """Per principal, the levels it holds. Not whether they are inherited: build_acl_args() grants the first of
    `all_permissions` directly, inherited or not, so an inherited level also becomes a direct one on any target."""
    return {
        e.get("user_name") or e.get("group_name"): sorted({p["permission_level"] for p in e["all_permissions"]})
        for e in acl["access_control_list"]
    }


def _user_view(user: dict) -> list[list[str]]:
    """A users.log line as validate compares it: emails, roles, entitlements by value, groups by display."""
    keyed = (("emails", "value"), ("roles", "value"), ("groups", "display"), ("entitlements", "value"))
    return [sorted(item[key] for item in user.get(attr, [])) for attr, key in keyed]


def validated_logs(logs: Path) -> dict[str, Any]:
    """What migration_pipeline's build_validate_pipeline() diffs between a source and a target export, with the
    keys it ignores dropped (ids; spark_version, policy and pool ids of clusters; pool ids in default_tags)."""
    users = {u["userName"]: _user_view(u) for u in _lines(logs / "users.log")}
    groups = {}
    for name in os.listdir(logs / "groups"):
        g = json.loads((logs / "groups" / name).read_text())
        groups[name] = {
            k: sorted(json.dumps(x.get("display") or x.get("value")) for x in g.get(k, []))
            for k in ("members", "roles", "groups", "entitlements")
        }
    clusters = _by(
        _lines(logs / "clusters.log"),
        "cluster_name",
        {"cluster_id", "policy_id", "instance_pool_id", "driver_instance_pool_id", "spark_version"},
    )
    for conf in clusters.values():
        if "pinned_by_user_name" in conf:  # a user id: not the same across workspaces
            conf["pinned_by_user_name"] = "<pinned>"
        tags = {k: v for k, v in conf.pop("custom_tags", {}).items() if k != "OriginalCreator"}  # import adds it
        if tags:
            conf["custom_tags"] = tags
    pools = _by(
        _lines(logs / "instance_pools.log"),
        "instance_pool_name",
        {"instance_pool_id", "default_tags", "stats", "status"},
    )
    return {
        "users": users,
        "groups": groups,
        "user_dirs": sorted(d["path"] for d in _lines(logs / "user_dirs.log")),
        "user_workspace": sorted(d["path"] for d in _lines(logs / "user_workspace.log")),
        **{
            log: {a["path"]: _acl_view(a) for a in _lines(logs / f"{log}.log")}
            for log in ("acl_notebooks", "acl_directories")
        },
        "clusters": clusters,
        "cluster_policies": _by(_lines(logs / "cluster_policies.log"), "name", {"policy_id", "created_at_timestamp"}),
        "acl_clusters": {a["cluster_name"]: _acl_view(a) for a in _lines(logs / "acl_clusters.log")},
        "acl_cluster_policies": {a["name"]: _acl_view(a) for a in _lines(logs / "acl_cluster_policies.log")},
        "instance_pools": pools,
    }


def _direct(acl: dict) -> dict[str, str]:
    """Principal → directly granted level of an ObjectPermissions document."""
    out = {}
    for entry in acl["access_control_list"]:
        name = entry.get("user_name") or entry.get("group_name")
        for perm in entry["all_permissions"]:
            if not perm.get("inherited"):
                out[name] = perm["permission_level"]
    return out


@pytest.mark.parametrize("file_format", ["DBC", "SOURCE"])
def test_migrate_exports_and_imports_identities_notebooks_compute_and_acls(
    w: WorkspaceClient, emulator: EmulatorHandle, target: EmulatorHandle, tmp_path: Path, file_format: str
) -> None:
    """migration_pipeline.py's export, then its import order: instance profiles, users, groups, notebooks and
    workspace files, workspace ACLs, pools, cluster policies and clusters (jobs: tests/test_emulator_jobs_runs.py)."""
    _seed_identities(w)
    _seed_workspace(w)
    _seed_compute(w)
    src, dst = Dbclient(emulator), Dbclient(target)
    assert src.get("/clusters/spark-versions")["http_status_code"] == 200  # dbclient.test_connection()

    export_users_and_groups(src, tmp_path)
    export_workspace(src, tmp_path, file_format)
    export_compute(src, tmp_path)
    import_instance_profiles(dst, tmp_path)
    import_users_and_groups(dst, tmp_path)
    import_workspace(dst, tmp_path, file_format)
    import_compute(dst, tmp_path)

    assert src.errors == []
    assert [e for e in dst.errors if not _refused_by_the_service_too(*e)] == []
    (tmp_path / "validate").mkdir()  # migrate's validate pipeline: export the target too, then diff the logs
    export_users_and_groups(dst, tmp_path / "validate")
    export_workspace(dst, tmp_path / "validate", file_format)
    export_compute(dst, tmp_path / "validate")
    source_view, target_view = validated_logs(tmp_path), validated_logs(tmp_path / "validate")
    for log in source_view:
        assert target_view[log] == source_view[log], log
    t = sdk_client(target)
    assert {u.user_name for u in t.users.list()} >= {ALICE, BOB}
    groups = {g.display_name: g for g in t.groups.list()}
    assert {m.display for m in groups["data-eng"].members or []} == {"Alice A", "analysts"}
    assert {e.value for e in groups["data-eng"].entitlements or []} == {"allow-instance-pool-create"}
    alice = next(iter(t.users.list(filter=f'userName eq "{ALICE}"')))
    assert {e.value for e in alice.entitlements or []} == {"allow-cluster-create"}
    assert [r.value for r in alice.roles or []] == [PROFILE_ARN]
    assert [r.value for r in groups["data-eng"].roles or []] == [PROFILE_ARN]
    assert base64.b64decode(t.workspace.export(CSV_PATH, format=workspace.ExportFormat.AUTO).content or "") == CSV
    for path in NOTEBOOKS:
        fmt = workspace.ExportFormat.SOURCE
        assert t.workspace.export(path, format=fmt).content == w.workspace.export(path, format=fmt).content, path
    daily = t.workspace.get_status("/Shared/reports/daily").object_id
    reports = t.workspace.get_status("/Shared/reports").object_id
    assert _direct(t.permissions.get("notebooks", str(daily)).as_dict()).get("data-eng") == "CAN_RUN"
    assert _direct(t.permissions.get("directories", str(reports)).as_dict()).get(BOB) == "CAN_EDIT"
    assert [p.instance_profile_arn for p in t.instance_profiles.list()] == [PROFILE_ARN]
    pools = {p.instance_pool_name: p for p in t.instance_pools.list()}
    assert list(pools) == ["small-pool"]
    policies = {p.name: p for p in t.cluster_policies.list()}
    assert _direct(t.permissions.get("cluster-policies", policies["team-policy"].policy_id).as_dict()) == {
        "data-eng": "CAN_USE"
    }
    clusters = {c.cluster_name: c for c in t.clusters.list()}
    assert sorted(clusters) == ["governed", "on-pool", "shared"]
    assert clusters["on-pool"].instance_pool_id == pools["small-pool"].instance_pool_id
    assert clusters["governed"].policy_id == policies["team-policy"].policy_id
    assert clusters["shared"].custom_tags == {"team": "data", "OriginalCreator": w.current_user.me().user_name}
    # migrate re-pins a cluster whose listing carries `pinned_by_user_name` (import_cluster_configs())
    assert "pinned_by_user_name" in dst.get("/clusters/get", {"cluster_id": clusters["shared"].cluster_id})
    assert "pinned_by_user_name" not in dst.get("/clusters/get", {"cluster_id": clusters["governed"].cluster_id})
    shared_acl = _direct(t.permissions.get("clusters", clusters["shared"].cluster_id).as_dict())
    assert shared_acl["data-eng"] == "CAN_ATTACH_TO" and shared_acl[BOB] == "CAN_RESTART"


def test_a_pinned_cluster_names_the_user_id_that_pinned_it(w: WorkspaceClient, emulator: EmulatorHandle) -> None:
    """A real cluster document carries `pinned_by_user_name` while pinned: the pinning user's id as a string
    ("pinned_by_user_name": "100001" in databricks-cli's tests/libraries/test_cli.py CLUSTER_1_RV, a recorded
    clusters/get answer). migrate's log_cluster_configs() keeps it and import_cluster_configs() re-pins on it."""
    cluster_id = w.clusters.create(
        cluster_name="c", spark_version="15.4.x-scala2.12", node_type_id="i3.xlarge", num_workers=0
    ).response.cluster_id
    client = Dbclient(emulator)
    assert "pinned_by_user_name" not in client.get("/clusters/get", {"cluster_id": cluster_id})

    w.clusters.pin(cluster_id)
    pinned = client.get("/clusters/get", {"cluster_id": cluster_id})
    listed = {c["cluster_id"]: c for c in client.get("/clusters/list")["clusters"]}[cluster_id]
    w.clusters.unpin(cluster_id)

    assert pinned["pinned_by_user_name"] == listed["pinned_by_user_name"] == w.current_user.me().id
    assert "pinned_by_user_name" not in client.get("/clusters/get", {"cluster_id": cluster_id})


# -- JobsClient.py: job ACLs and clusters referenced by jobs ------------------------------------------------
def export_jobs(src: Dbclient, logs: Path) -> None:
    """JobsClient.log_job_configs(): settings renamed `<name>:::<job_id>`; a job is logged only when its ACL
    (/preview/permissions/jobs/{id}) has an IS_OWNER, and its ACL goes to acl_jobs.log with `job_name`."""
    jobs, acls = [], []
    for job in src.get("/jobs/list").get("jobs", []):
        job["settings"]["name"] = f"{job['settings']['name']}:::{job['job_id']}"
        perms = src.get(f"/preview/permissions/jobs/{job['job_id']}")
        levels = [p["permission_level"] for e in perms.get("access_control_list") or [] for p in e["all_permissions"]]
        assert "IS_OWNER" in levels, f"The following job id {job['job_id']} has malformed permissions: {perms}"
        jobs.append(job)
        acls.append(perms | {"job_name": job["settings"]["name"]})
    _write(logs / "jobs.log", jobs)
    _write(logs / "acl_jobs.log", acls)


def import_jobs(dst: Dbclient, logs: Path) -> None:
    """JobsClient.import_job_configs(): existing_cluster_id mapped by cluster name (get_cluster_id_mapping()),
    jobs/create, then the ACLs PATCHed (a refusal raises "Import job has failed"), then the names restored."""
    old_clusters = {c["cluster_name"]: c["cluster_id"] for c in _lines(logs / "clusters.log")}
    new_clusters = {c["cluster_name"]: c["cluster_id"] for c in dst.get("/clusters/list").get("clusters", [])}
    cluster_map = {old_clusters[name]: cid for name, cid in new_clusters.items() if name in old_clusters}
    for job in _lines(logs / "jobs.log"):
        settings = job["settings"]
        if "existing_cluster_id" in settings:
            settings["existing_cluster_id"] = cluster_map[settings["existing_cluster_id"]]
        assert "error_code" not in dst.post("/jobs/create", settings), "Import job has failed."
    by_name = {j["settings"]["name"]: j["job_id"] for j in dst.get("/jobs/list").get("jobs", [])}
    for acl_conf in _lines(logs / "acl_jobs.log"):
        acl = {"access_control_list": dst.build_acl_args(acl_conf["access_control_list"], True)}
        resp = dst.patch(f"/preview/permissions/jobs/{by_name[acl_conf['job_name']]}", acl)
        assert "error_code" not in resp, f"Import job has failed: {resp}"
    for name, job_id in by_name.items():  # update_imported_job_names()
        dst.post("/jobs/update", {"job_id": job_id, "new_settings": {"name": name.split(":::")[0]}})


def test_migrate_carries_a_jobs_owner_and_acl_and_its_existing_cluster(
    w: WorkspaceClient, emulator: EmulatorHandle, target: EmulatorHandle, tmp_path: Path
) -> None:
    """A job on an interactive cluster whose owner is not the migrating admin: the target job runs on the
    imported cluster, keeps its owner (IS_OWNER) and ACL, and the admin keeps CAN_MANAGE (build_acl_args)."""
    _seed_identities(w)
    _seed_compute(w)
    shared = next(c for c in w.clusters.list() if c.cluster_name == "shared")
    job = _raw_job(emulator, shared.cluster_id)
    w.permissions.update(
        "jobs",
        str(job),
        access_control_list=[
            iam.AccessControlRequest(user_name=ALICE, permission_level=iam.PermissionLevel.IS_OWNER),
            iam.AccessControlRequest(group_name="data-eng", permission_level=iam.PermissionLevel.CAN_MANAGE_RUN),
            iam.AccessControlRequest(user_name=BOB, permission_level=iam.PermissionLevel.CAN_VIEW),
        ],
    )
    src, dst = Dbclient(emulator), Dbclient(target)

    export_users_and_groups(src, tmp_path)
    export_compute(src, tmp_path)
    export_jobs(src, tmp_path)
    import_instance_profiles(dst, tmp_path)
    import_users_and_groups(dst, tmp_path)
    import_compute(dst, tmp_path)
    import_jobs(dst, tmp_path)

    assert src.errors == []
    assert [e for e in dst.errors if not _refused_by_the_service_too(*e)] == []
    t = sdk_client(target)
    imported = next(iter(t.jobs.list()))
    target_shared = next(c for c in t.clusters.list() if c.cluster_name == "shared")
    assert imported.settings.name == "nightly"  # type: ignore[union-attr]
    assert t.jobs.get(imported.job_id).settings.tasks[0].existing_cluster_id == target_shared.cluster_id  # type: ignore
    acl = _direct(t.permissions.get("jobs", str(imported.job_id)).as_dict())
    me = t.current_user.me().user_name
    assert acl == {ALICE: "IS_OWNER", "data-eng": "CAN_MANAGE_RUN", BOB: "CAN_VIEW", me: "CAN_MANAGE"}


def _raw_job(handle: EmulatorHandle, cluster_id: str | None) -> int:
    """A flat 2.0 job on an existing cluster, as older workspaces hold many."""
    body = {"name": "nightly", "existing_cluster_id": cluster_id, "notebook_task": {"notebook_path": "/Shared/n"}}
    answer = Dbclient(handle).post("/jobs/create", body)
    return answer["job_id"]


@pytest.mark.parametrize(
    ("imported", "exported"),
    [(b"print(1)\n", b"print(1)"), (b"print(1)", b"print(1)"), (b"print(1)\n\n", b"print(1)\n")],
)
def test_a_source_export_drops_the_notebooks_final_newline(
    w: WorkspaceClient, imported: bytes, exported: bytes
) -> None:
    """The service regenerates SOURCE from the notebook's cells: "A notebook with `foobar\\n` comes out from the
    API as `foobar`; `foobar` comes out as `foobar`; `foobar\\n\\n` comes out as `foobar\\n`" (inspera/blackbricks
    PR #36, whose --remote mode round-trips notebooks through workspace import/export). So a notebook migrated in
    DBC (cells) and one imported as SOURCE export the same bytes; a file keeps its bytes."""
    header = b"# Databricks notebook source\n"
    for path, fmt in (("/Shared/nb", workspace.ExportFormat.SOURCE), ("/Shared/dir/nb", workspace.ExportFormat.AUTO)):
        w.workspace.mkdirs(os.path.dirname(path))
        w.workspace.import_(
            path,
            content=base64.b64encode(header + imported).decode(),
            format=workspace.ImportFormat.SOURCE,
            language=workspace.Language.PYTHON,
        )
        assert base64.b64decode(w.workspace.export(path, format=fmt).content or "") == header + exported
    w.workspace.import_(
        CSV_PATH.replace("reports/", ""), content=base64.b64encode(CSV).decode(), format=workspace.ImportFormat.AUTO
    )
    assert (
        base64.b64decode(w.workspace.export("/Shared/data.csv", format=workspace.ExportFormat.AUTO).content or "")
        == CSV
    )
