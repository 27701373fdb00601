"""The baseline dbsync is measured against: export everything, import everything, every run.

What one-shot migration tools do (databrickslabs/migrate and the scripts built on it): no state
between runs; each run walks the whole source, exports every notebook and file and imports each with
overwrite, recreates or resets every job, cluster, pool and policy (matched on the target by one
listing per kind, so a re-run does not duplicate), re-applies every group membership, secret and
object ACL. It uses the same databricks-sdk, the same connection pool size and the same number of
worker threads as dbsync (`--concurrency`), and the same target conventions (clusters created then
terminated, job triggers paused, the `dbsync_source_*` tags as the match key), so the two tools do the
same work on the target and differ only in how they decide what to do.

    python benchmarks/baseline_export_import.py --source URL --source-token T --target URL --target-token T
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests.adapters
from databricks.sdk import WorkspaceClient
from databricks.sdk.core import Config
from databricks.sdk.errors import DatabricksError, NotFound

SOURCE_ID_TAG = "dbsync_source_id"
SOURCE_JOB_TAG = "dbsync_source_job_id"
CLUSTER_FIELDS = [
    "cluster_name",
    "spark_version",
    "node_type_id",
    "driver_node_type_id",
    "num_workers",
    "autoscale",
    "autotermination_minutes",
    "spark_conf",
    "spark_env_vars",
    "custom_tags",
    "instance_pool_id",
    "driver_instance_pool_id",
    "policy_id",
    "aws_attributes",
    "azure_attributes",
    "gcp_attributes",
    "init_scripts",
    "cluster_log_conf",
    "data_security_mode",
    "single_user_name",
    "runtime_engine",
    "enable_elastic_disk",
    "enable_local_disk_encryption",
    "ssh_public_keys",
    "docker_image",
]
POOL_FIELDS = [
    "instance_pool_name",
    "node_type_id",
    "min_idle_instances",
    "max_capacity",
    "idle_instance_autotermination_minutes",
    "custom_tags",
    "aws_attributes",
    "azure_attributes",
    "gcp_attributes",
    "enable_elastic_disk",
    "disk_spec",
    "preloaded_spark_versions",
    "preloaded_docker_images",
]
TRIGGERS = ("schedule", "trigger", "continuous")
PRINCIPALS = ("user_name", "group_name", "service_principal_name")


def client(host: str, token: str, concurrency: int) -> WorkspaceClient:
    """An SDK client with dbsync's pool sizing (connect() in dbsync/workspace.py)."""
    size = max(20, concurrency * 2)
    config = Config(
        host=host,
        token=token,
        auth_type="pat",
        retry_timeout_seconds=600,
        max_connection_pools=size,
        max_connections_per_pool=size,
    )
    w = WorkspaceClient(config=config)
    adapter = requests.adapters.HTTPAdapter(pool_connections=size, pool_maxsize=size)
    w.api_client._api_client._session.mount("http://", adapter)
    return w


class Baseline:
    """One full export + import of every supported kind; `counts` says what it did."""

    def __init__(self, src: WorkspaceClient, dst: WorkspaceClient, concurrency: int, with_acls: bool = True) -> None:
        self.src, self.dst = src, dst
        self.with_acls = with_acls
        self.seconds: dict[str, float] = {}
        self.pool = ThreadPoolExecutor(concurrency)
        self.counts: Counter[str] = Counter()
        self.errors: list[str] = []
        self.maps: dict[str, dict[str, str]] = {"policies": {}, "pools": {}, "clusters": {}, "jobs": {}}
        self.acl_objects: list[tuple[str, str, str]] = []  # (permissions type, source id, target id)

    def each(self, function: Callable[[Any], Any], items: Iterable[Any], label: str) -> list[Any]:
        """`function` over `items` on the worker pool; an error is counted and reported, never fatal."""

        def guarded(item: Any) -> Any:
            try:
                return function(item)
            except DatabricksError as err:
                self.errors.append(f"{label}: {str(err).splitlines()[0][:200]}")
                return None

        results = list(self.pool.map(guarded, list(items)))
        self.counts[label] += len(results)
        return results

    def run(self) -> None:
        phases = (self.identities, self.policies, self.pools, self.clusters, self.workspace, self.jobs, self.secrets)
        for phase in (*phases, self.acls) if self.with_acls else phases:
            started = time.monotonic()
            phase()
            self.seconds[phase.__name__] = round(time.monotonic() - started, 2)
        self.pool.shutdown()

    # -- identities -----------------------------------------------------------------------------
    def identities(self) -> None:
        src, dst = self.src, self.dst
        users = {u.user_name: u for u in dst.users.list(attributes="id,userName")}
        self.each(
            lambda u: (
                None if u.user_name in users else dst.users.create(user_name=u.user_name, display_name=u.display_name)
            ),
            list(src.users.list(attributes="userName,displayName")),
            "users",
        )
        sps = {s.application_id for s in dst.service_principals.list(attributes="applicationId")}
        self.each(
            lambda s: (
                None
                if s.application_id in sps
                else dst.service_principals.create(application_id=s.application_id, display_name=s.display_name)
            ),
            list(src.service_principals.list()),
            "service principals",
        )
        groups = {g.display_name: g.id for g in dst.groups.list(attributes="id,displayName")}
        source_groups = [g for g in src.groups.list(attributes="id,displayName,members") if g.display_name != "users"]
        created = self.each(
            lambda g: None if g.display_name in groups else dst.groups.create(display_name=g.display_name),
            [g for g in source_groups if g.display_name != "admins"],
            "groups",
        )
        groups.update({g.display_name: g.id for g in created if g is not None})
        names = self._principal_names(src)
        target_ids = self._principal_ids(dst)

        def members(group: Any) -> None:
            wanted = [
                {"value": target_ids[names[m.value]]} for m in group.members or [] if names.get(m.value) in target_ids
            ]
            dst.api_client.do(
                "PATCH",
                f"/api/2.0/preview/scim/v2/Groups/{groups[group.display_name]}",
                body={
                    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                    "Operations": [{"op": "replace", "path": "members", "value": wanted}],
                },
            )

        self.each(members, [g for g in source_groups if g.display_name != "admins"], "group members")

    @staticmethod
    def _principal_names(w: WorkspaceClient) -> dict[str, str]:
        out = {u.id: f"u:{u.user_name}" for u in w.users.list(attributes="id,userName")}
        out |= {s.id: f"s:{s.application_id}" for s in w.service_principals.list(attributes="id,applicationId")}
        return out | {g.id: f"g:{g.display_name}" for g in w.groups.list(attributes="id,displayName")}

    def _principal_ids(self, w: WorkspaceClient) -> dict[str, str]:
        return {name: pid for pid, name in self._principal_names(w).items()}

    # -- compute --------------------------------------------------------------------------------
    def policies(self) -> None:
        target = {p.name: p for p in self.dst.cluster_policies.list()}

        def one(p: Any) -> None:
            existing = target.get(p.name)
            if p.policy_family_id or (existing and existing.policy_family_id):
                self.maps["policies"][p.policy_id] = existing.policy_id if existing else p.policy_id
                return  # built-in policies exist everywhere
            body = {
                "name": p.name,
                "definition": p.definition,
                "description": p.description,
                "max_clusters_per_user": p.max_clusters_per_user,
            }
            body = {k: v for k, v in body.items() if v is not None}
            if existing:
                self.dst.api_client.do(
                    "POST", "/api/2.0/policies/clusters/edit", body={**body, "policy_id": existing.policy_id}
                )
                policy_id = existing.policy_id
            else:
                policy_id = self.dst.api_client.do("POST", "/api/2.0/policies/clusters/create", body=body)["policy_id"]
            self.maps["policies"][p.policy_id] = policy_id
            self.acl_objects.append(("cluster-policies", p.policy_id, policy_id))

        self.each(one, list(self.src.cluster_policies.list()), "cluster policies")

    def pools(self) -> None:
        target = {(p.custom_tags or {}).get(SOURCE_ID_TAG): p.instance_pool_id for p in self.dst.instance_pools.list()}

        def one(p: Any) -> None:
            doc = p.as_dict()
            body = {k: doc[k] for k in POOL_FIELDS if doc.get(k) not in (None, [], {})}
            body["custom_tags"] = {**body.get("custom_tags", {}), SOURCE_ID_TAG: p.instance_pool_id}
            pool_id = target.get(p.instance_pool_id)
            if pool_id:
                self.dst.api_client.do(
                    "POST", "/api/2.0/instance-pools/edit", body={**body, "instance_pool_id": pool_id}
                )
            else:
                pool_id = self.dst.api_client.do("POST", "/api/2.0/instance-pools/create", body=body)[
                    "instance_pool_id"
                ]
            self.maps["pools"][p.instance_pool_id] = pool_id
            self.acl_objects.append(("instance-pools", p.instance_pool_id, pool_id))

        self.each(one, list(self.src.instance_pools.list()), "instance pools")

    def _remap(self, spec: dict[str, Any]) -> dict[str, Any]:
        for field, kind in (
            ("instance_pool_id", "pools"),
            ("driver_instance_pool_id", "pools"),
            ("policy_id", "policies"),
        ):
            if spec.get(field):
                spec[field] = self.maps[kind].get(spec[field], spec[field])
        return spec

    def clusters(self) -> None:
        target = {(c.custom_tags or {}).get(SOURCE_ID_TAG): c.cluster_id for c in self.dst.clusters.list()}

        def one(c: Any) -> None:
            doc = c.as_dict()
            spec = self._remap({k: doc[k] for k in CLUSTER_FIELDS if doc.get(k) not in (None, [], {})})
            spec["custom_tags"] = {**spec.get("custom_tags", {}), SOURCE_ID_TAG: c.cluster_id}
            cluster_id = target.get(c.cluster_id)
            if cluster_id:
                self.dst.api_client.do("POST", "/api/2.1/clusters/edit", body={**spec, "cluster_id": cluster_id})
            else:
                cluster_id = self.dst.api_client.do("POST", "/api/2.1/clusters/create", body=spec)["cluster_id"]
                self.dst.api_client.do("POST", "/api/2.1/clusters/delete", body={"cluster_id": cluster_id})
            self.maps["clusters"][c.cluster_id] = cluster_id
            self.acl_objects.append(("clusters", c.cluster_id, cluster_id))

        interactive = [
            c
            for c in self.src.clusters.list()
            if (c.cluster_source.value if c.cluster_source else "UI") in ("UI", "API")
        ]
        self.each(one, interactive, "clusters")

    # -- workspace ------------------------------------------------------------------------------
    def workspace(self) -> None:
        directories, objects = self._walk()
        self.each(lambda path: self.dst.workspace.mkdirs(path), directories, "directories")

        def copy(item: tuple[str, str, str | None]) -> None:
            path, kind, language = item
            fmt = "SOURCE" if kind == "NOTEBOOK" else "AUTO"
            # The JSON export answers base64, which the import takes as it is.
            body = self.src.api_client.do("GET", "/api/2.0/workspace/export", query={"path": path, "format": fmt})[
                "content"
            ]
            request = {
                "path": path,
                "content": body,
                "format": "SOURCE" if kind == "NOTEBOOK" else "AUTO",
                "overwrite": True,
            }
            if language:
                request["language"] = language
            self.dst.api_client.do("POST", "/api/2.0/workspace/import", body=request)

        self.each(copy, objects, "notebooks and files")
        # Workspace ACLs are keyed by object id, which differs per workspace: one get-status per object.
        paths = [(p, "directories") for p in directories] + [
            (p, "notebooks" if k == "NOTEBOOK" else "files") for p, k, _ in objects
        ]
        ids = self._source_ids

        def target_id(item: tuple[str, str]) -> tuple[str, str, str] | None:
            path, request_type = item
            try:
                return request_type, ids[path], str(self.dst.workspace.get_status(path).object_id)
            except NotFound:
                return None

        self.acl_objects += [x for x in self.each(target_id, paths, "target object ids") if x]

    def _walk(self) -> tuple[list[str], list[tuple[str, str, str | None]]]:
        directories: list[str] = []
        objects: list[tuple[str, str, str | None]] = []
        self._source_ids: dict[str, str] = {}
        level = ["/"]
        while level:
            following = []
            for listing in self.pool.map(lambda p: list(self.src.workspace.list(p)), level):
                for o in listing:
                    kind = o.object_type.value if o.object_type else ""
                    path = o.path or ""
                    self._source_ids[path] = str(o.object_id)
                    if kind == "DIRECTORY":
                        directories.append(path)
                        following.append(path)
                    elif kind in ("NOTEBOOK", "FILE"):
                        objects.append((path, kind, o.language.value if o.language else None))
            level = following
            self.counts["listings"] += len(level)
        return directories, objects

    # -- jobs -----------------------------------------------------------------------------------
    def jobs(self) -> None:
        target = {}
        for job in self.dst.jobs.list(limit=100):
            tag = (job.settings.tags or {}).get(SOURCE_JOB_TAG) if job.settings else None
            if tag:
                target[tag] = job.job_id

        def one(job: Any) -> None:
            settings = job.settings.as_dict()
            for task in settings.get("tasks", []):
                if task.get("existing_cluster_id"):
                    task["existing_cluster_id"] = self.maps["clusters"].get(
                        task["existing_cluster_id"], task["existing_cluster_id"]
                    )
                if task.get("new_cluster"):
                    self._remap(task["new_cluster"])
            for cluster in settings.get("job_clusters", []):
                self._remap(cluster.get("new_cluster", {}))
            for field in TRIGGERS:
                if settings.get(field):
                    settings[field]["pause_status"] = "PAUSED"  # a standby runs nothing
            settings["tags"] = {**settings.get("tags", {}), SOURCE_JOB_TAG: str(job.job_id)}
            job_id = target.get(str(job.job_id))
            if job_id:
                self.dst.api_client.do("POST", "/api/2.2/jobs/reset", body={"job_id": job_id, "new_settings": settings})
            else:
                job_id = self.dst.api_client.do("POST", "/api/2.2/jobs/create", body=settings)["job_id"]
            self.acl_objects.append(("jobs", str(job.job_id), str(job_id)))

        self.each(one, list(self.src.jobs.list(expand_tasks=True, limit=100)), "jobs")

    # -- secrets --------------------------------------------------------------------------------
    def secrets(self) -> None:
        existing = {s.name for s in self.dst.secrets.list_scopes()}
        scopes = [
            s
            for s in self.src.secrets.list_scopes()
            if (s.backend_type.value if s.backend_type else "DATABRICKS") == "DATABRICKS"
        ]
        self.each(
            lambda s: None if s.name in existing else self.dst.secrets.create_scope(s.name), scopes, "secret scopes"
        )

        def keys(scope: Any) -> list[tuple[str, str]]:
            for acl in self.src.secrets.list_acls(scope.name):
                self.dst.secrets.put_acl(scope.name, acl.principal, acl.permission)
            return [(scope.name, k.key) for k in self.src.secrets.list_secrets(scope.name)]

        pairs = [p for found in self.each(keys, scopes, "secret scope ACLs") if found for p in found]

        def copy(item: tuple[str, str]) -> None:
            value = self.src.secrets.get_secret(*item).value or ""
            self.dst.secrets.put_secret(item[0], item[1], bytes_value=value)

        self.each(copy, pairs, "secrets")

    # -- object ACLs ----------------------------------------------------------------------------
    def acls(self) -> None:
        def one(item: tuple[str, str, str]) -> None:
            request_type, source_id, target_id = item
            acl = self.src.api_client.do("GET", f"/api/2.0/permissions/{request_type}/{source_id}")
            entries = []
            for entry in acl.get("access_control_list", []):
                principal = next((f for f in PRINCIPALS if entry.get(f)), None)
                if principal is None or entry.get(principal) == "admins":
                    continue
                for permission in entry.get("all_permissions", []):
                    if not permission.get("inherited"):
                        entries.append(
                            {principal: entry[principal], "permission_level": permission["permission_level"]}
                        )
            self.dst.api_client.do(
                "PUT", f"/api/2.0/permissions/{request_type}/{target_id}", body={"access_control_list": entries}
            )

        self.each(one, self.acl_objects, "object ACLs")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", required=True)
    parser.add_argument("--source-token", required=True)
    parser.add_argument("--target", required=True)
    parser.add_argument("--target-token", required=True)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--no-acls", action="store_true", help="skip object ACLs (to compare with dbsync without them)")
    args = parser.parse_args(argv)
    started = time.monotonic()
    baseline = Baseline(
        client(args.source, args.source_token, args.concurrency),
        client(args.target, args.target_token, args.concurrency),
        args.concurrency,
        with_acls=not args.no_acls,
    )
    baseline.run()
    seconds = time.monotonic() - started
    print(
        json.dumps(
            {
                "seconds": round(seconds, 2),
                "counts": baseline.counts,
                "phase_seconds": baseline.seconds,
                "errors": len(baseline.errors),
                "first_errors": baseline.errors[:10],
            }
        )
    )
    return 1 if baseline.errors else 0


if __name__ == "__main__":
    sys.exit(main())
