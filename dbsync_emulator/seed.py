"""Deterministic, realistic content for an emulated workspace (`--seed-objects N`, POST /_emulator/seed).

Same (N, seed) → same workspace. Objects are created through each API module's internal functions,
so validation and side effects (home folders, creator ACLs, REPO objects) are those of the API.
"""

from __future__ import annotations

import base64
import json
import random
from typing import Any

from dbsync_emulator import dbutils
from dbsync_emulator.apis import (
    clusters,
    global_init_scripts,
    jobs,
    libraries,
    permissions,
    policies,
    pools,
    scim,
    secrets,
    sql,
    workspace,
)
from dbsync_emulator.seed_bi_ml import seed_bi_ml
from dbsync_emulator.state import Workspace

TEAMS = ("data-eng", "analytics", "ml-platform", "finance", "marketing", "risk", "growth", "platform")
FIRST = ("ana", "ben", "chen", "dara", "eli", "fay", "gus", "hana", "ivan", "jo", "kai", "lena", "mo", "nia")
LAST = ("smith", "garcia", "kim", "mueller", "rossi", "novak", "tanaka", "silva", "okafor", "berg")
NODE_TYPES = ("i3.xlarge", "m5d.large", "r5d.xlarge", "m5d.xlarge", "i3.2xlarge")
SPARK = ("15.4.x-scala2.12", "14.3.x-scala2.12", "13.3.x-scala2.12")
LANGS = ("PYTHON", "SQL", "SCALA", "R")
CRONS = ("0 0 2 * * ?", "0 30 6 * * ?", "0 0 * * * ?", "0 15 22 ? * MON-FRI", "0 0 12 1 * ?")


def _notebook(rng: random.Random, language: str, name: str) -> bytes:
    table = f"{rng.choice(TEAMS).replace('-', '_')}.{name.replace('-', '_')}"
    cells = {
        "PYTHON": [
            f"# {name}: daily load\nfrom pyspark.sql import functions as F",
            f"df = spark.read.table('{table}_raw')\n"
            f"df = df.filter(F.col('ts') >= F.date_sub(F.current_date(), {rng.randint(1, 30)}))",
            f"df.write.mode('overwrite').saveAsTable('{table}')\ndisplay(df.limit({rng.randint(5, 50)}))",
        ],
        "SQL": [
            f"-- {name}\nCREATE OR REPLACE TEMP VIEW recent AS "
            f"SELECT * FROM {table}_raw WHERE ts > current_date() - {rng.randint(1, 30)}",
            "SELECT count(*), max(ts) FROM recent",
        ],
        "SCALA": [
            f'// {name}\nval df = spark.table("{table}_raw")',
            f'df.groupBy("key").count().write.mode("overwrite").saveAsTable("{table}")',
        ],
        "R": [
            f'# {name}\nlibrary(SparkR)\ndf <- sql("SELECT * FROM {table}_raw")',
            f"head(summarize(groupBy(df, df$key), n = n(df$key)), {rng.randint(5, 20)})",
        ],
    }[language]
    lang = {"PYTHON": "#", "SQL": "--", "SCALA": "//", "R": "#"}[language]
    return f"\n\n{lang} COMMAND ----------\n\n".join(cells).encode()


def seed_workspace(ws: Workspace, objects: int, seed: int = 0) -> dict[str, int]:
    """Fill `ws` with about `objects` objects of every kind; returns counts per kind."""
    rng = random.Random(seed)
    n = max(objects, 20)
    counts: dict[str, int] = {}
    users = _identities(ws, rng, n, counts)
    policy_ids = _compute_policies(ws, rng, n, counts)
    pool_ids = [
        pools.create_pool(
            ws,
            {
                "instance_pool_name": f"pool-{t}-{i}",
                "node_type_id": rng.choice(NODE_TYPES),
                "min_idle_instances": 0,
                "max_capacity": rng.choice((10, 20, 50)),
                "idle_instance_autotermination_minutes": 30,
                "custom_tags": {"team": t},
            },
        )
        for i, t in enumerate(rng.choice(TEAMS) for _ in range(max(1, n // 100)))
    ]
    counts["instance_pools"] = len(pool_ids)
    cluster_ids = _clusters(ws, rng, n, users, policy_ids, pool_ids, counts)
    notebook_paths = _tree(ws, rng, n, users, counts)
    _jobs(ws, rng, n, users, cluster_ids, pool_ids, policy_ids, notebook_paths, counts)
    _secrets(ws, rng, n, users, counts)
    _metastore(ws, rng, n, counts)
    _cluster_extras(ws, rng, n, cluster_ids, counts)
    seed_bi_ml(ws, rng, n, users, counts)  # queries, alerts, dashboards, MLflow, workspace settings
    return counts


def _cluster_extras(ws: Workspace, rng: random.Random, n: int, cluster_ids: list[str], counts: dict[str, int]) -> None:
    """Global init scripts, cluster libraries, SQL warehouses (one used by a SQL task) and DBFS mounts."""
    scripts = {
        "install-monitoring-agent": "#!/bin/bash\ncurl -fsSL https://agents.example.com/install.sh | bash\n",
        "corporate-ca-certs": "#!/bin/bash\ncp /dbfs/certs/*.crt /usr/local/share/ca-certificates/\n"
        "update-ca-certificates\n",
    }
    for position, (name, body) in enumerate(scripts.items()):
        global_init_scripts.create_script(ws, name, base64.b64encode(body.encode()).decode(), True, position)
    counts["global_init_scripts"] = len(scripts)
    packages = ("requests==2.31.0", "great-expectations==0.18.8", "mlflow==2.9.2", "pyyaml")
    with_libraries = cluster_ids[::3]
    for cluster_id in with_libraries:
        wanted: list[dict[str, Any]] = [{"pypi": {"package": rng.choice(packages)}}]
        if rng.random() < 0.5:
            wanted.append({"maven": {"coordinates": "com.databricks:spark-xml_2.12:0.17.0"}})
        libraries.install_libraries(ws, cluster_id, wanted)
    counts["cluster_libraries"] = len(with_libraries)
    warehouses = []
    for i in range(max(1, n // 200)):
        spec = {
            "name": f"{rng.choice(TEAMS)}-warehouse-{i}",
            "cluster_size": rng.choice(("2X-Small", "Small", "Medium")),
            "auto_stop_mins": rng.choice((10, 30, 60)),
            "max_num_clusters": rng.choice((1, 2, 4)),
            "tags": {"custom_tags": [{"key": "team", "value": rng.choice(TEAMS)}]},
        }
        warehouses.append(sql.create_warehouse(ws, spec))
        _grant(ws, "sql/warehouses", warehouses[-1], "group_name", TEAMS[0], "CAN_USE")
    counts["sql_warehouses"] = len(warehouses)
    task = {"task_key": "refresh", "sql_task": {"warehouse_id": warehouses[0], "file": {"path": "/Shared/kpis.sql"}}}
    jobs.create_job(ws, {"name": "kpi-refresh", "tasks": [task], "max_concurrent_runs": 1})
    for name in ("landing", "curated"):
        dbutils.add_mount(ws, f"s3a://acme-{name}-{seed_hex(rng)[:6]}/", f"/mnt/{name}")
    counts["mounts"] = 2


def _identities(ws: Workspace, rng: random.Random, n: int, counts: dict[str, int]) -> list[str]:
    group_names = list(TEAMS[: max(2, min(len(TEAMS), n // 100))])
    groups = [scim.create_group(ws, name) for name in group_names]
    users = []
    for i in range(max(3, n // 50)):
        user_name = f"{rng.choice(FIRST)}.{rng.choice(LAST)}{i}@example.com"
        scim.create_user(
            ws,
            user_name,
            user_name.split("@")[0].replace(".", " ").title(),
            groups=[rng.choice(groups)["id"]],
        )
        users.append(user_name)
    if len(groups) > 1:
        scim.add_member(ws, groups[0]["id"], groups[1]["id"])  # nested groups exist in real workspaces
    for i in range(max(1, n // 200)):
        scim.create_service_principal(ws, f"sp-etl-{i}")
    counts["users"], counts["groups"] = len(users), len(groups)
    return users


def _compute_policies(ws: Workspace, rng: random.Random, n: int, counts: dict[str, int]) -> list[str]:
    ids = []
    for i in range(max(1, n // 100)):
        definition = {
            "spark_version": {"type": "fixed", "value": rng.choice(SPARK)},
            "autotermination_minutes": {"type": "range", "maxValue": 120, "defaultValue": 60},
            "custom_tags.cost_center": {"type": "fixed", "value": str(1000 + i)},
        }
        ids.append(
            policies.create_policy(
                ws,
                {
                    "name": f"policy-{rng.choice(TEAMS)}-{i}",
                    "definition": json.dumps(definition),
                    "description": "Team cluster policy",
                    "max_clusters_per_user": rng.choice((1, 2, 5)),
                },
            )
        )
    counts["cluster_policies"] = len(ids)
    return ids


def _clusters(
    ws: Workspace,
    rng: random.Random,
    n: int,
    users: list[str],
    policy_ids: list[str],
    pool_ids: list[str],
    counts: dict[str, int],
) -> list[str]:
    ids = []
    for i in range(max(2, n // 50)):
        spec: dict[str, Any] = {
            "cluster_name": f"{rng.choice(TEAMS)}-interactive-{i}",
            "spark_version": rng.choice(SPARK),
            "autotermination_minutes": rng.choice((30, 60, 120)),
            "custom_tags": {"team": rng.choice(TEAMS)},
            "spark_conf": {"spark.sql.shuffle.partitions": str(rng.choice((8, 64, 200)))},
        }
        if i % 3 == 0 and pool_ids:
            spec["instance_pool_id"] = rng.choice(pool_ids)
        else:
            spec["node_type_id"] = rng.choice(NODE_TYPES)
        if i % 2:
            spec["autoscale"] = {"min_workers": 1, "max_workers": rng.choice((4, 8))}
        else:
            spec["num_workers"] = rng.choice((1, 2, 4))
        cluster_id = clusters.create_cluster(ws, spec, state="TERMINATED", creator=rng.choice(users))
        ids.append(cluster_id)
        if i % 2 == 0:
            _grant(ws, "clusters", cluster_id, "group_name", rng.choice(TEAMS[:2]), "CAN_ATTACH_TO")
    counts["clusters"] = len(ids)
    return ids


def _tree(ws: Workspace, rng: random.Random, n: int, users: list[str], counts: dict[str, int]) -> list[str]:
    roots = [f"/Shared/{t}" for t in TEAMS[:4]] + [f"/Users/{u}" for u in users]
    directories = list(roots)
    for i in range(max(4, n // 20)):
        parent = rng.choice(directories)
        directories.append(f"{parent}/{rng.choice(('etl', 'reports', 'ml', 'adhoc', 'lib'))}_{i}")
    for path in directories:
        workspace.mkdirs(ws, path)
    notebooks = []
    for i in range(max(8, n * 6 // 10)):
        language = LANGS[i % 4]
        name = f"{rng.choice(('load', 'clean', 'report', 'train', 'score', 'audit'))}_{i}"
        path = f"{rng.choice(directories)}/{name}"
        workspace.put_notebook(ws, path, language, _notebook(rng, language, name))
        notebooks.append(path)
        if i % 10 == 0:
            obj = workspace.get_object(ws, path) or {}
            _grant(ws, "notebooks", str(obj.get("object_id")), "group_name", rng.choice(TEAMS[:2]), "CAN_RUN")
    for i in range(max(2, n // 10)):
        workspace.put_file(
            ws,
            f"{rng.choice(directories)}/config_{i}.json",
            json.dumps({"env": "prod", "retries": rng.randint(1, 5), "id": i}).encode(),
        )
    counts["directories"], counts["notebooks"], counts["files"] = (
        len(directories),
        len(notebooks),
        max(2, n // 10),
    )
    return [p for p in notebooks if workspace.get_object(ws, p)]


def _jobs(
    ws: Workspace,
    rng: random.Random,
    n: int,
    users: list[str],
    cluster_ids: list[str],
    pool_ids: list[str],
    policy_ids: list[str],
    notebook_paths: list[str],
    counts: dict[str, int],
) -> None:
    total = max(4, n // 10)
    for i in range(total):
        tasks = []
        for t in range(rng.choice((1, 1, 2, 3))):
            task: dict[str, Any] = {
                "task_key": f"step_{t}",
                "notebook_task": {"notebook_path": rng.choice(notebook_paths)},
            }
            if t:
                task["depends_on"] = [{"task_key": f"step_{t - 1}"}]
            if i % 3 == 0:
                task["existing_cluster_id"] = rng.choice(cluster_ids)
            else:
                task["job_cluster_key"] = "main"
            tasks.append(task)
        settings: dict[str, Any] = {
            "name": f"{rng.choice(TEAMS)}-job-{i}",
            "tasks": tasks,
            "tags": {"team": rng.choice(TEAMS)},
            "max_concurrent_runs": 1,
            "email_notifications": {"on_failure": [rng.choice(users)]},
        }
        if i % 3:
            cluster: dict[str, Any] = {
                "spark_version": rng.choice(SPARK),
                "num_workers": rng.choice((1, 2, 8)),
            }
            if pool_ids and i % 2:
                cluster["instance_pool_id"] = rng.choice(pool_ids)
            else:
                cluster["node_type_id"] = rng.choice(NODE_TYPES)
            settings["job_clusters"] = [{"job_cluster_key": "main", "new_cluster": cluster}]
        trigger = i % 5
        if trigger in (0, 1):
            settings["schedule"] = {
                "quartz_cron_expression": rng.choice(CRONS),
                "timezone_id": "UTC",
                "pause_status": "PAUSED" if trigger else "UNPAUSED",
            }
        elif trigger == 2:
            settings["trigger"] = {"file_arrival": {"url": f"s3://landing/{i}/"}, "pause_status": "UNPAUSED"}
        elif trigger == 3 and i % 10 == 3:
            settings["continuous"] = {"pause_status": "UNPAUSED"}
        job_id = jobs.create_job(ws, settings, creator=rng.choice(users))
        if i % 4 == 0:
            _grant(ws, "jobs", str(job_id), "group_name", rng.choice(TEAMS[:2]), "CAN_MANAGE_RUN")
    counts["jobs"] = total


def _secrets(ws: Workspace, rng: random.Random, n: int, users: list[str], counts: dict[str, int]) -> None:
    total = max(1, n // 200)
    for i in range(total):
        scope = f"{rng.choice(TEAMS)}-{i}"
        secrets.create_scope(ws, scope)
        for key in ("db-password", "api-key", "token")[: rng.randint(1, 3)]:
            secrets.put_secret(ws, scope, key, f"value-{seed_hex(rng)}".encode())
        secrets.put_acl(ws, scope, rng.choice(TEAMS[:2]), "READ")
    counts["secret_scopes"] = total


def _metastore(ws: Workspace, rng: random.Random, n: int, counts: dict[str, int]) -> None:
    try:
        from dbsync_emulator import sqlengine
    except ImportError:
        return
    execute = getattr(sqlengine, "execute_sql", None)
    if execute is None:
        return
    schemas = [t.replace("-", "_") for t in TEAMS[: max(1, min(len(TEAMS), n // 200))]]
    tables = 0
    for schema in schemas:
        execute(ws, f"CREATE SCHEMA IF NOT EXISTS hive_metastore.{schema}")
        for i in range(max(2, n // 100)):
            execute(
                ws,
                f"CREATE TABLE IF NOT EXISTS hive_metastore.{schema}.events_{i} "
                f"(id BIGINT, ts TIMESTAMP, payload STRING) USING DELTA",
            )
            tables += 1
        execute(
            ws,
            f"CREATE OR REPLACE VIEW hive_metastore.{schema}.recent AS "
            f"SELECT * FROM hive_metastore.{schema}.events_0 WHERE ts > current_date() - 7",
        )
        execute(ws, f"GRANT SELECT ON SCHEMA hive_metastore.{schema} TO `{rng.choice(TEAMS[:2])}`")
    counts["schemas"], counts["tables"] = len(schemas), tables


def _grant(ws: Workspace, request_type: str, object_id: str, principal_type: str, principal: str, level: str) -> None:
    if not permissions.principal_exists(ws, principal_type, principal):
        return
    entries = permissions.direct_acl(ws, request_type, object_id)
    entries.append({"principal_type": principal_type, "principal": principal, "level": level})
    ws.table("acls")[(request_type, object_id)] = entries


def seed_hex(rng: random.Random) -> str:
    return "".join(rng.choice("0123456789abcdef") for _ in range(12))
