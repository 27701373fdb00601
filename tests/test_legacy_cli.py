"""The legacy databricks-cli 0.18 against the emulator served on port 80 of a loopback address.

The CLI runs as a subprocess (`python -m databricks_cli.cli`, so a newer `databricks` binary on PATH cannot
shadow it) with only DATABRICKS_HOST / DATABRICKS_TOKEN and a temporary HOME, as a user would configure it.
What the CLI sends is databricks-cli 0.18's `databricks_cli/sdk/service.py`: jobs through `/api/2.0/jobs/*`
unless `--version=2.1`, groups through the legacy `/api/2.0/groups/*`, `fs cp` of a file under 2 GB as a
multipart `/api/2.0/dbfs/put` with the part named "file", `fs cp` back to local as 1 MB `dbfs/read` calls.
Port 80 needs root; elsewhere (or when 127.0.0.2:80 is taken) the emulator takes a free port instead.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from dbsync_emulator import EmulatorHandle, start_emulator

HOST = "127.0.0.2"
SPARK = "13.3.x-scala2.12"
NODE = "i3.xlarge"
Cli = Callable[..., str]


@pytest.fixture(scope="module")
def port80() -> Iterator[EmulatorHandle]:
    """One emulator for the module, on 127.0.0.2:80 when it can bind there."""
    try:
        handle = start_emulator(host=HOST, port=80, cluster_start_seconds=0.2)
    except OSError:  # not root, or the port is taken: the CLI talks to any port just the same
        handle = start_emulator(host=HOST, port=0, cluster_start_seconds=0.2)
    try:
        yield handle
    finally:
        handle.stop()


@pytest.fixture(scope="module")
def cli(port80: EmulatorHandle, tmp_path_factory: pytest.TempPathFactory) -> Cli:
    """`cli(*args)` runs one databricks-cli command and answers its stdout; a non-zero exit fails the test."""
    home = tmp_path_factory.mktemp("home")
    host = port80.url.removesuffix(":80")  # http://127.0.0.2 when on port 80, as a user would write it
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(home), "DATABRICKS_HOST": host}
    env["DATABRICKS_TOKEN"] = port80.token

    def run(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "databricks_cli.cli", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, f"databricks {' '.join(args)}: {done.stdout}{done.stderr}"
        assert "Error" not in done.stdout, done.stdout
        return done.stdout

    return run


def _json_file(tmp_path: Path, name: str, body: dict) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(body))
    return str(path)


def test_served_on_port_80_when_root(port80: EmulatorHandle) -> None:
    if os.geteuid() != 0:
        pytest.skip("binding port 80 needs root; the other tests ran on a free port of 127.0.0.2")
    assert port80.url == f"http://{HOST}:80"


def test_workspace_commands(cli: Cli, tmp_path: Path) -> None:
    source = tmp_path / "etl.py"
    source.write_text("print('etl')\n")
    cli("workspace", "mkdirs", "/Shared/cli")
    cli("workspace", "import", "-l", "PYTHON", str(source), "/Shared/cli/etl")

    assert cli("workspace", "ls", "/Shared/cli").split() == ["etl"]
    exported = tmp_path / "etl-export.py"
    cli("workspace", "export", "/Shared/cli/etl", str(exported))
    assert "print('etl')" in exported.read_text()
    cli("workspace", "export_dir", "/Shared/cli", str(tmp_path / "tree"))
    cli("workspace", "import_dir", str(tmp_path / "tree"), "/Shared/cli-copy")
    assert cli("workspace", "ls", "/Shared/cli-copy").split() == ["etl"]
    cli("workspace", "rm", "-r", "/Shared/cli-copy")
    assert "cli-copy" not in cli("workspace", "ls", "/Shared")


def test_clusters_pools_and_policies(cli: Cli, tmp_path: Path) -> None:
    spec = {"cluster_name": "cli-etl", "spark_version": SPARK, "node_type_id": NODE, "num_workers": 1}
    created = cli("clusters", "create", "--json-file", _json_file(tmp_path, "c.json", spec))
    cluster_id = json.loads(created)["cluster_id"]

    assert "cli-etl" in cli("clusters", "list")
    assert json.loads(cli("clusters", "get", "--cluster-id", cluster_id))["cluster_name"] == "cli-etl"
    cli("clusters", "delete", "--cluster-id", cluster_id)
    cli("clusters", "permanent-delete", "--cluster-id", cluster_id)
    assert "cli-etl" not in cli("clusters", "list")

    pool = {"instance_pool_name": "cli-pool", "node_type_id": NODE, "idle_instance_autotermination_minutes": 10}
    pool_id = json.loads(cli("instance-pools", "create", "--json-file", _json_file(tmp_path, "p.json", pool)))[
        "instance_pool_id"
    ]
    assert "cli-pool" in cli("instance-pools", "list")
    cli("instance-pools", "delete", "--instance-pool-id", pool_id)

    definition = json.dumps({"spark_version": {"type": "fixed", "value": SPARK}})
    policy = {"name": "cli-policy", "definition": definition}
    policy_id = json.loads(cli("cluster-policies", "create", "--json-file", _json_file(tmp_path, "pol.json", policy)))[
        "policy_id"
    ]
    assert "cli-policy" in cli("cluster-policies", "list")
    assert json.loads(cli("cluster-policies", "get", "--policy-id", policy_id))["name"] == "cli-policy"
    cli("cluster-policies", "delete", "--policy-id", policy_id)


def test_jobs_api_2_0_and_2_1(cli: Cli, tmp_path: Path) -> None:
    notebook = tmp_path / "nb.py"
    notebook.write_text("print(1)\n")
    cli("workspace", "import", "-l", "PYTHON", "-o", str(notebook), "/Shared/jobs-nb")
    cluster = {"spark_version": SPARK, "node_type_id": NODE, "num_workers": 1}
    job = {"name": "cli-job", "new_cluster": cluster, "notebook_task": {"notebook_path": "/Shared/jobs-nb"}}
    job_id = str(json.loads(cli("jobs", "create", "--json-file", _json_file(tmp_path, "j.json", job)))["job_id"])

    assert f"{job_id}  cli-job" in cli("jobs", "list")
    run_id = str(json.loads(cli("jobs", "run-now", "--job-id", job_id))["run_id"])
    assert run_id in cli("runs", "list", "--job-id", job_id)
    renamed = {**job, "name": "cli-job-renamed"}
    cli("jobs", "reset", "--job-id", job_id, "--json-file", _json_file(tmp_path, "j2.json", renamed))
    listed_21 = json.loads(cli("jobs", "list", "--version=2.1", "--output", "JSON"))
    assert [j["settings"]["name"] for j in listed_21["jobs"]] == ["cli-job-renamed"]
    cli("jobs", "delete", "--job-id", job_id)
    assert "cli-job" not in cli("jobs", "list")


def test_secrets_commands_never_print_the_value(cli: Cli) -> None:
    cli("secrets", "create-scope", "--scope", "cli-scope", "--initial-manage-principal", "users")
    cli("secrets", "put", "--scope", "cli-scope", "--key", "db-password", "--string-value", "hunter2")
    cli("secrets", "put-acl", "--scope", "cli-scope", "--principal", "users", "--permission", "READ")

    assert "cli-scope" in cli("secrets", "list-scopes")
    listed = cli("secrets", "list", "--scope", "cli-scope")
    assert "db-password" in listed and "hunter2" not in listed
    assert "users" in cli("secrets", "list-acls", "--scope", "cli-scope")
    cli("secrets", "delete", "--scope", "cli-scope", "--key", "db-password")
    cli("secrets", "delete-scope", "--scope", "cli-scope")


def test_groups_commands(cli: Cli) -> None:
    cli("groups", "create", "--group-name", "cli-group")
    cli("groups", "add-member", "--parent-name", "cli-group", "--user-name", "admin@example.com")

    assert "cli-group" in json.loads(cli("groups", "list"))["group_names"]
    members = json.loads(cli("groups", "list-members", "--group-name", "cli-group"))["members"]
    assert members == [{"user_name": "admin@example.com"}]
    assert "cli-group" in json.loads(cli("groups", "list-parents", "--user-name", "admin@example.com"))["group_names"]
    cli("groups", "remove-member", "--parent-name", "cli-group", "--user-name", "admin@example.com")
    assert json.loads(cli("groups", "list-members", "--group-name", "cli-group"))["members"] == []
    cli("groups", "delete", "--group-name", "cli-group")


def test_dbfs_commands_round_trip_a_3_mb_file(cli: Cli, tmp_path: Path) -> None:
    payload = os.urandom(3 * 1024 * 1024 + 17)
    local = tmp_path / "lib.whl"
    local.write_bytes(payload)
    cli("fs", "mkdirs", "dbfs:/cli/libs")
    cli("fs", "cp", str(local), "dbfs:/cli/libs/lib.whl")

    assert str(len(payload)) in cli("fs", "ls", "-l", "dbfs:/cli/libs")
    cli("fs", "cp", "dbfs:/cli/libs/lib.whl", str(tmp_path / "back.whl"))
    assert (tmp_path / "back.whl").read_bytes() == payload
    (tmp_path / "init.sh").write_text("#!/bin/bash\necho init\n")
    cli("fs", "cp", str(tmp_path / "init.sh"), "dbfs:/cli/init.sh")
    assert cli("fs", "cat", "dbfs:/cli/init.sh") == "#!/bin/bash\necho init\n"
    cli("fs", "mv", "dbfs:/cli/init.sh", "dbfs:/cli/libs/init.sh")
    assert sorted(cli("fs", "ls", "dbfs:/cli/libs").split()) == ["init.sh", "lib.whl"]
    cli("fs", "rm", "-r", "dbfs:/cli")
    assert "cli" not in cli("fs", "ls", "dbfs:/").split()


def test_tokens_commands(cli: Cli) -> None:
    created = json.loads(cli("tokens", "create", "--comment", "cli-token", "--lifetime-seconds", "600"))
    token_id = created["token_info"]["token_id"]

    listed = cli("tokens", "list")
    assert "cli-token" in listed and created["token_value"] not in listed
    cli("tokens", "revoke", "--token-id", token_id)
    assert "cli-token" not in cli("tokens", "list")
