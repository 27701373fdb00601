"""Libraries API, Global Init Scripts API and DBFS mounts (through Command Execution 1.2), driven over
HTTP by the real databricks-sdk."""

from __future__ import annotations

import ast
import base64
import json
from collections.abc import Iterator

import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import BadRequest, InvalidParameterValue, NotFound
from databricks.sdk.service.compute import (
    Language,
    Library,
    LibraryInstallStatus,
    MavenLibrary,
    PythonPyPiLibrary,
)
from freezegun import freeze_time
from freezegun.api import FrozenDateTimeFactory

from dbsync_emulator import EmulatorHandle
from dbsync_emulator.apis import clusters, workspace

SPARK = "15.4.x-scala2.12"
PYPI = Library(pypi=PythonPyPiLibrary(package="requests==2.31.0"))
JAR = Library(jar="dbfs:/FileStore/jars/etl.jar")
MISSING_WHEEL = Library(whl="/Workspace/Shared/libs/missing-0.1-py3-none-any.whl")


@pytest.fixture
def clock() -> Iterator[FrozenDateTimeFactory]:
    """Frozen time shared by the test and the emulator thread (cluster_start_seconds is 0.2)."""
    with freeze_time("2025-06-01 08:00:00") as frozen:
        yield frozen


def _cluster(emulator: EmulatorHandle, state: str = "TERMINATED", spark: str = SPARK) -> str:
    ws = emulator.workspace
    with ws.lock:
        spec = {"cluster_name": "libs", "spark_version": spark, "node_type_id": "i3.xlarge", "num_workers": 1}
        return clusters.create_cluster(ws, spec, state=state)


def _statuses(w: WorkspaceClient, cluster_id: str) -> list[tuple[dict, str]]:
    return [(s.library.as_dict(), s.status.value) for s in w.libraries.cluster_status(cluster_id)]


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


# -- libraries ------------------------------------------------------------------------------------------
def test_install_on_a_terminated_cluster_queues_until_start(
    w: WorkspaceClient, emulator: EmulatorHandle, clock: FrozenDateTimeFactory
) -> None:
    cluster_id = _cluster(emulator)
    assert list(w.libraries.cluster_status(cluster_id)) == []  # `library_statuses` absent when none
    w.libraries.install(cluster_id, [PYPI, JAR])
    assert _statuses(w, cluster_id) == [(PYPI.as_dict(), "PENDING"), (JAR.as_dict(), "PENDING")]

    clock.tick(60)
    assert {s for _, s in _statuses(w, cluster_id)} == {"PENDING"}, "a terminated cluster installs nothing"
    w.clusters.start(cluster_id)
    clock.tick(0.2)  # the cluster is RUNNING: installation begins
    assert _statuses(w, cluster_id) == [(PYPI.as_dict(), "PENDING"), (JAR.as_dict(), "PENDING")]
    clock.tick(0.08)
    assert [s for _, s in _statuses(w, cluster_id)] == ["RESOLVING", "INSTALLING"]  # a jar needs no resolving
    clock.tick(0.2)
    assert _statuses(w, cluster_id) == [(PYPI.as_dict(), "INSTALLED"), (JAR.as_dict(), "INSTALLED")]

    w.libraries.install(cluster_id, [PYPI])  # already set: nothing changes
    assert len(_statuses(w, cluster_id)) == 2


def test_failed_and_skipped_libraries_carry_messages(
    w: WorkspaceClient, emulator: EmulatorHandle, clock: FrozenDateTimeFactory
) -> None:
    cluster_id = _cluster(emulator, state="RUNNING")
    with emulator.workspace.lock:
        workspace.mkdirs(emulator.workspace, "/Shared/libs")
        workspace.put_file(emulator.workspace, "/Shared/libs/ok-0.1-py3-none-any.whl", b"PK")
    present = Library(whl="/Workspace/Shared/libs/ok-0.1-py3-none-any.whl")
    scala_211 = Library(maven=MavenLibrary(coordinates="com.acme:spark-utils_2.11:1.0.0"))
    typo = Library(pypi=PythonPyPiLibrary(package="pandas=2.0"))
    w.libraries.install(cluster_id, [present, MISSING_WHEEL, scala_211, typo])
    clock.tick(1)

    by_library = {json.dumps(s.library.as_dict()): s for s in w.libraries.cluster_status(cluster_id)}
    assert by_library[json.dumps(present.as_dict())].status == LibraryInstallStatus.INSTALLED
    failed = by_library[json.dumps(MISSING_WHEEL.as_dict())]
    assert failed.status == LibraryInstallStatus.FAILED and "FileNotFoundException" in failed.messages[0]
    assert by_library[json.dumps(scala_211.as_dict())].status == LibraryInstallStatus.SKIPPED
    assert by_library[json.dumps(typo.as_dict())].status == LibraryInstallStatus.FAILED
    assert by_library[json.dumps(present.as_dict())].messages is None


def test_uninstall_waits_for_a_restart_and_a_reinstall_restores(
    w: WorkspaceClient, emulator: EmulatorHandle, clock: FrozenDateTimeFactory
) -> None:
    cluster_id = _cluster(emulator, state="RUNNING")
    w.libraries.install(cluster_id, [PYPI, JAR])
    clock.tick(1)
    w.libraries.uninstall(cluster_id, [PYPI, Library(jar="dbfs:/never-installed.jar")])  # unknown ones ignored
    # Libraries being removed come last, whatever the order they were added in.
    assert _statuses(w, cluster_id) == [(JAR.as_dict(), "INSTALLED"), (PYPI.as_dict(), "UNINSTALL_ON_RESTART")]

    w.libraries.install(cluster_id, [PYPI])
    assert _statuses(w, cluster_id)[0] == (PYPI.as_dict(), "RESTORED")
    w.libraries.uninstall(cluster_id, [PYPI])
    w.clusters.restart(cluster_id)
    clock.tick(1)
    assert _statuses(w, cluster_id) == [(JAR.as_dict(), "INSTALLED")]

    w.clusters.delete(cluster_id)  # terminate: nothing is loaded, so an uninstall takes effect at once
    clock.tick(1)
    w.libraries.uninstall(cluster_id, [JAR])
    assert _statuses(w, cluster_id) == []


def test_all_cluster_statuses_covers_terminated_clusters_only_with_libraries(
    w: WorkspaceClient, emulator: EmulatorHandle
) -> None:
    assert list(w.libraries.all_cluster_statuses()) == []
    with_libraries, without = _cluster(emulator), _cluster(emulator)
    running = _cluster(emulator, state="RUNNING")
    w.libraries.install(with_libraries, [PYPI])
    w.libraries.install(running, [JAR])
    listed = {s.cluster_id: s for s in w.libraries.all_cluster_statuses()}
    assert set(listed) == {with_libraries, running}
    assert without not in listed
    assert [s.library.as_dict() for s in listed[with_libraries].library_statuses] == [PYPI.as_dict()]

    w.clusters.permanent_delete(running)
    assert {s.cluster_id for s in w.libraries.all_cluster_statuses()} == {with_libraries}


def test_library_requests_are_validated(w: WorkspaceClient, emulator: EmulatorHandle) -> None:
    cluster_id = _cluster(emulator)
    with pytest.raises(InvalidParameterValue, match="Cluster 0000-000000-nothere0 does not exist"):
        list(w.libraries.cluster_status("0000-000000-nothere0"))
    with pytest.raises(BadRequest, match="does not exist"):
        w.libraries.install("0000-000000-nothere0", [PYPI])
    with pytest.raises(BadRequest, match="Exactly one of"):
        w.libraries.install(cluster_id, [Library(jar="a.jar", whl="b.whl")])
    with pytest.raises(BadRequest, match=r"pypi\.package"):
        w.api_client.do(
            "POST",
            "/api/2.0/libraries/install",
            body={"cluster_id": cluster_id, "libraries": [{"pypi": {"repo": "https://pypi.example.com"}}]},
        )
    assert list(w.libraries.cluster_status(cluster_id)) == []  # a rejected request installs nothing


# -- global init scripts ------------------------------------------------------------------------------------
def test_global_init_scripts_keep_their_order(w: WorkspaceClient) -> None:
    assert list(w.global_init_scripts.list()) == []
    first = w.global_init_scripts.create("install agents", _b64("#!/bin/bash\necho 1"), enabled=True).script_id
    second = w.global_init_scripts.create("proxy", _b64("echo 2")).script_id
    head = w.global_init_scripts.create("certs", _b64("echo 0"), position=0).script_id  # shifts the others
    last = w.global_init_scripts.create("tail", _b64("echo 3"), position=99).script_id  # past the end: last

    listed = list(w.global_init_scripts.list())
    assert [(s.script_id, s.position) for s in listed] == [(head, 0), (first, 1), (second, 2), (last, 3)]
    assert listed[1].enabled is True and listed[2].enabled is False  # disabled unless asked
    assert all(s.created_by == "admin@example.com" and s.created_at for s in listed)
    assert "script" not in w.api_client.do("GET", "/api/2.0/global-init-scripts")["scripts"][0]
    assert len(first) == 16 and first == first.upper()

    got = w.global_init_scripts.get(first)
    assert base64.b64decode(got.script) == b"#!/bin/bash\necho 1" and got.name == "install agents"

    # PATCH changes only the fields given; moving to the end takes any position past the last.
    w.api_client.do("PATCH", f"/api/2.0/global-init-scripts/{head}", body={"position": 10})
    w.global_init_scripts.update(second, name="proxy v2", script=_b64("echo 22"), enabled=True)
    assert [s.script_id for s in w.global_init_scripts.list()] == [first, second, last, head]
    patched = w.global_init_scripts.get(second)
    assert patched.name == "proxy v2" and patched.enabled is True and patched.position == 1
    assert w.global_init_scripts.get(head).name == "certs"

    w.global_init_scripts.delete(first)
    assert [(s.script_id, s.position) for s in w.global_init_scripts.list()] == [(second, 0), (last, 1), (head, 2)]


def test_global_init_script_errors(w: WorkspaceClient) -> None:
    with pytest.raises(NotFound, match="does not exist"):
        w.global_init_scripts.get("0123456789ABCDEF")
    with pytest.raises(NotFound):
        w.global_init_scripts.delete("0123456789ABCDEF")
    with pytest.raises(BadRequest, match="name"):
        w.global_init_scripts.create("bad/name", _b64("echo"))
    with pytest.raises(BadRequest, match="Base64"):
        w.global_init_scripts.create("ok", "not base64!")
    with pytest.raises(BadRequest, match="64 KB"):
        w.global_init_scripts.create("big", base64.b64encode(b"#" * (64 * 1024 + 1)).decode())
    with pytest.raises(BadRequest, match="position"):
        w.global_init_scripts.create("neg", _b64("echo"), position=-1)
    assert list(w.global_init_scripts.list()) == []


# -- DBFS mounts through the Command Execution API ------------------------------------------------------------
def _python(w: WorkspaceClient, emulator: EmulatorHandle) -> tuple[str, str]:
    cluster_id = _cluster(emulator, state="RUNNING")
    context = w.command_execution.create(cluster_id=cluster_id, language=Language.PYTHON).result()
    return cluster_id, context.id or ""


def _run(w: WorkspaceClient, cluster_id: str, context_id: str, command: str) -> dict:
    status = w.command_execution.execute(
        cluster_id=cluster_id, context_id=context_id, language=Language.PYTHON, command=command
    ).result()
    assert status.status and status.status.value == "Finished" and status.results
    return status.results.as_dict()


def test_mounts_are_made_and_listed_with_dbutils(w: WorkspaceClient, emulator: EmulatorHandle) -> None:
    cluster_id, context_id = _python(w, emulator)
    made = _run(
        w,
        cluster_id,
        context_id,
        'bucket = "acme-raw"\n'
        'dbutils.fs.mount("s3a://%s/landing" % bucket, f"/mnt/{bucket}",'
        ' extra_configs={"fs.s3a.access.key": "AKIA", "fs.s3a.secret.key": "hunter2"})',
    )
    assert made == {"resultType": "text", "data": "True"}

    # The way dbsync lists them: one JSON line printed by the command.
    listing = _run(
        w,
        cluster_id,
        context_id,
        "import json\n"
        "print(json.dumps([{'mount_point': m.mountPoint, 'source': m.source} for m in dbutils.fs.mounts()"
        " if m.mountPoint.startswith('/mnt/')]))",
    )
    assert json.loads(listing["data"]) == [{"mount_point": "/mnt/acme-raw", "source": "s3a://acme-raw/landing"}]
    assert "hunter2" not in json.dumps(_run(w, cluster_id, context_id, "dbutils.fs.mounts()"))

    # databrickslabs/migrate's way: variables persist between commands of one context.
    _run(
        w,
        cluster_id,
        context_id,
        'all_mounts = [{"path": x.mountPoint, "source": x.source} for x in dbutils.fs.mounts()]',
    )
    count = int(_run(w, cluster_id, context_id, "print(len(all_mounts))")["data"])
    first = ast.literal_eval(_run(w, cluster_id, context_id, "print(all_mounts[0:1])")["data"])
    assert count == 10 and first == [{"path": "/mnt/acme-raw", "source": "s3a://acme-raw/landing"}]

    table = _run(w, cluster_id, context_id, "display(dbutils.fs.mounts())")
    assert table["resultType"] == "table" and [c["name"] for c in table["schema"]] == [
        "mountPoint",
        "source",
        "encryptionType",
    ]
    assert ["/", "DatabricksRoot", ""] in table["data"]  # the built-in mounts every workspace has


def test_mount_errors_come_back_as_error_results(w: WorkspaceClient, emulator: EmulatorHandle) -> None:
    cluster_id, context_id = _python(w, emulator)
    _run(w, cluster_id, context_id, 'dbutils.fs.mount("abfss://c@acct.dfs.core.windows.net/", "/mnt/lake")')
    again = _run(w, cluster_id, context_id, 'dbutils.fs.mount("abfss://c@acct.dfs.core.windows.net/", "/mnt/lake")')
    assert again["resultType"] == "error" and "Directory already mounted: /mnt/lake" in again["summary"]
    gone = _run(w, cluster_id, context_id, 'dbutils.fs.unmount("/mnt/lake")')
    assert gone["data"].startswith("/mnt/lake has been unmounted.")
    missing = _run(w, cluster_id, context_id, 'dbutils.fs.unmount("/mnt/lake")')
    assert missing["resultType"] == "error" and "Directory not mounted" in missing["summary"]
    outside = _run(w, cluster_id, context_id, "import subprocess\nsubprocess.run(['id'])")
    assert outside["resultType"] == "error" and "not executed" in outside["summary"]
    many = "dbutils.fs.mounts() + dbutils.fs.mounts() + dbutils.fs.mounts()"
    doubling = _run(w, cluster_id, context_id, f"x = 'a'\nfor i in {many}:\n  x = x + x")
    assert doubling["resultType"] == "error" and "MemoryError" in doubling["summary"]
