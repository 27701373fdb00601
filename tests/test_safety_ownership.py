"""Ownership on the target: dbsync deletes only what it created, and leaves no standby compute running.

Every test drives two emulated workspaces over HTTP with the databricks-sdk, as `sync --once` would.
What a real workspace does that these tests rely on:
- `workspace/delete` with `recursive: false` on a non-empty folder answers DIRECTORY_NOT_EMPTY (the
  REST reference's "Delete a workspace object", mirrored in brickster's `db_workspace_delete` docs), so
  a folder can be emptied of dbsync's objects and checked before it goes.
- `workspace/import` without `overwrite` onto an existing path answers 400 RESOURCE_ALREADY_EXISTS (the
  SDK raises ResourceAlreadyExists): that is how a first write tells "created" from "adopted".
- `secrets/scopes/delete` deletes the scope with every key in it; `secrets/scopes/create` answers
  RESOURCE_ALREADY_EXISTS for a name that exists; `secrets/put` overwrites a key silently.
- `clusters/create` starts the cluster (there is no "create stopped"); `clusters/delete` terminates it.
"""

from __future__ import annotations

import base64
import time

from conftest import Pair
from databricks.sdk.errors import NotFound
from databricks.sdk.service import compute, jobs
from databricks.sdk.service.workspace import ImportFormat, Language

from dbsync.model import Applied, Resource
from dbsync.reverse import seed_reverse_store
from dbsync.store import Store

SPARK = "15.4.x-scala2.12"
NODE = "i3.xlarge"
TASKS = [
    jobs.Task(
        task_key="main",
        notebook_task=jobs.NotebookTask(notebook_path="/Shared/nb"),
        new_cluster=compute.ClusterSpec(spark_version=SPARK, node_type_id=NODE, num_workers=1),
    )
]


def _events(pair: Pair, outcome: str | None = None) -> list[dict]:
    store = Store(pair.state_path)
    try:
        return store.events(limit=500, outcome=outcome)
    finally:
        store.close()


def _row(pair: Pair, kind: str, key: str) -> tuple | None:
    """(status, target key, origin) of a store row; origin None on a store without the column."""
    store = Store(pair.state_path)
    try:
        columns = {r[1] for r in store._rows("PRAGMA table_info(resources)")}
        origin = "origin" if "origin" in columns else "NULL"
        sql = f"SELECT status, target_key, {origin} FROM resources WHERE kind = ? AND source_key = ?"
        return store._row(sql, [kind, key])
    finally:
        store.close()


def _wait_terminated(w, seconds: float = 30) -> None:
    """Until no cluster is TERMINATING (the emulator's state machine runs on its clock; bounded)."""
    deadline = time.monotonic() + seconds
    while any(c.state and c.state.value == "TERMINATING" for c in w.clusters.list()):
        assert time.monotonic() < deadline, "clusters still TERMINATING"
        time.sleep(0.1)


def _notebook(w, path: str, text: str = "print(1)") -> None:
    w.workspace.mkdirs(path.rsplit("/", 1)[0])
    w.workspace.import_(
        path,
        content=base64.b64encode(text.encode()).decode(),
        format=ImportFormat.SOURCE,
        language=Language.PYTHON,
        overwrite=True,
    )


def _tree(w) -> set[str]:
    return {o.path for o in w.workspace.list("/", recursive=True)}


def _folder_there(w, path: str) -> bool:
    """Whether the workspace has a folder at `path` (a recursive listing answers notebooks and files only)."""
    try:
        return w.workspace.get_status(path).object_type.value == "DIRECTORY"
    except NotFound:
        return False


def _cluster(w, name: str, tags: dict[str, str] | None = None) -> str:
    created = w.clusters.create(
        spark_version=SPARK, node_type_id=NODE, num_workers=1, cluster_name=name, custom_tags=tags
    )
    return created.response.cluster_id


def _state(w, cluster_id: str) -> str:
    return w.clusters.get(cluster_id).state.value


# -- defect 1: what dbsync did not create is never deleted ------------------------------------------
def test_scope_that_existed_on_the_target_keeps_its_dr_only_key_when_the_source_deletes_it(pair: Pair) -> None:
    pair.src.secrets.create_scope("risk-0")
    pair.src.secrets.put_secret("risk-0", "app-key", string_value="source-value")
    pair.src.secrets.create_scope("keep-0")  # the source still has scopes and keys: no delete guard in play
    pair.src.secrets.put_secret("keep-0", "k", string_value="v")
    pair.dst.secrets.create_scope("risk-0")
    pair.dst.secrets.put_secret("risk-0", "dr-only-key", string_value="dr-value")
    assert pair.sync(only=["secret_scopes", "secrets"])["secret_scopes"].errors == 0

    pair.src.secrets.delete_scope("risk-0")
    reports = pair.sync(only=["secret_scopes", "secrets"])

    assert reports["secret_scopes"].errors == 0 and reports["secrets"].errors == 0
    assert "risk-0" in {s.name for s in pair.dst.secrets.list_scopes()}
    assert {s.key for s in pair.dst.secrets.list_secrets("risk-0")} == {"dr-only-key"}  # dbsync's key went
    kept = [e for e in _events(pair, "kept") if e["kind"] == "secret_scopes"]
    assert kept and "risk-0" in kept[0]["message"]


def test_scope_created_by_dbsync_is_not_deleted_while_it_holds_a_key_dbsync_did_not_write(pair: Pair) -> None:
    pair.src.secrets.create_scope("risk-1")
    pair.src.secrets.put_secret("risk-1", "app-key", string_value="source-value")
    pair.src.secrets.create_scope("keep-0")
    pair.src.secrets.put_secret("keep-0", "k", string_value="v")
    pair.sync(only=["secret_scopes", "secrets"])
    pair.dst.secrets.put_secret("risk-1", "dr-only-key", string_value="dr-value")  # the DR team adds a key

    pair.src.secrets.delete_scope("risk-1")
    reports = pair.sync(only=["secret_scopes", "secrets"])

    assert reports["secret_scopes"].errors == 0
    assert {s.key for s in pair.dst.secrets.list_secrets("risk-1")} == {"dr-only-key"}


def test_key_that_was_on_the_target_before_dbsync_wrote_it_is_not_deleted(pair: Pair) -> None:
    for scope in ("app", "keep-0"):
        pair.src.secrets.create_scope(scope)
        pair.dst.secrets.create_scope(scope)
    pair.src.secrets.put_secret("app", "shared", string_value="source-value")
    pair.src.secrets.put_secret("app", "mine", string_value="source-value")
    pair.dst.secrets.put_secret("app", "shared", string_value="dr-value")
    pair.src.secrets.put_secret("keep-0", "k", string_value="v")
    pair.sync(only=["secret_scopes", "secrets"])

    pair.src.secrets.delete_secret("app", "shared")
    pair.src.secrets.delete_secret("app", "mine")
    pair.sync(only=["secret_scopes", "secrets"])

    assert {s.key for s in pair.dst.secrets.list_secrets("app")} == {"shared"}


def test_warehouse_made_by_the_dr_team_is_not_deleted_when_the_source_deletes_its_namesake(
    pair: Pair,
) -> None:
    for name in ("bi", "etl"):
        pair.src.warehouses.create(name=name, cluster_size="2X-Small", max_num_clusters=1)
    theirs = pair.dst.warehouses.create(name="bi", cluster_size="2X-Small", max_num_clusters=1).response.id
    assert pair.sync(only=["sql_warehouses"])["sql_warehouses"].errors == 0
    assert _row(pair, "sql_warehouses", _source_id(pair, "bi"))[2] == "adopted"

    pair.src.warehouses.delete(_source_id(pair, "bi"))
    reports = pair.sync(only=["sql_warehouses"])

    assert reports["sql_warehouses"].errors == 0 and reports["sql_warehouses"].deleted == 0
    assert pair.dst.warehouses.get(theirs).state.value not in ("DELETED", "DELETING")
    assert any(theirs in e["message"] for e in _events(pair, "kept"))


def _source_id(pair: Pair, name: str) -> str:
    return next(w.id for w in pair.src.warehouses.list() if w.name == name)


def test_dr_runbook_in_a_folder_the_source_deleted_survives(pair: Pair) -> None:
    _notebook(pair.src, "/Shared/finance/report")
    _notebook(pair.src, "/Shared/finance/q1/summary")
    for name in ("daily", "weekly", "monthly"):  # the source keeps most notebooks: no delete guard in play
        _notebook(pair.src, f"/Shared/ops/{name}")
    kinds = ["directories", "notebooks", "files"]
    pair.sync(only=kinds)
    _notebook(pair.dst, "/Shared/finance/DR_RUNBOOK", "# what to do when the primary is down")

    pair.src.workspace.delete("/Shared/finance", recursive=True)
    reports = pair.sync(only=kinds)

    assert all(r.errors == 0 for r in reports.values()), reports
    tree = _tree(pair.dst)
    assert "/Shared/finance/DR_RUNBOOK" in tree
    assert "/Shared/finance/report" not in tree and "/Shared/finance/q1/summary" not in tree
    assert "/Shared/finance/q1" not in tree  # dbsync's own folder, empty of anything else, goes
    assert any("/Shared/finance" in e["message"] for e in _events(pair, "kept"))


def test_an_empty_folder_the_dr_team_made_at_a_replicated_path_is_kept_when_the_source_deletes_it(pair: Pair) -> None:
    """/Shared/finance made on the standby by hand before dbsync replicated its namesake is the DR team's (adopted),
    empty or not; dbsync's own empty subfolder goes with the source's."""
    _notebook(pair.src, "/Shared/finance/q1/summary")
    for name in ("daily", "weekly", "monthly"):  # the source keeps most notebooks: no delete guard in play
        _notebook(pair.src, f"/Shared/ops/{name}")
    pair.dst.workspace.mkdirs("/Shared/finance")
    kinds = ["directories", "notebooks", "files"]
    pair.sync(only=kinds)
    assert _row(pair, "directories", "/Shared/finance")[2] == "adopted"
    assert _row(pair, "directories", "/Shared/finance/q1")[2] == "created"

    pair.src.workspace.delete("/Shared/finance", recursive=True)
    reports = pair.sync(only=kinds)

    assert all(r.errors == 0 for r in reports.values()), reports
    assert _folder_there(pair.dst, "/Shared/finance") and not _folder_there(pair.dst, "/Shared/finance/q1")
    assert any("/Shared/finance is kept" in e["message"] and "adopted" in e["message"] for e in _events(pair, "kept"))


def test_notebook_that_was_on_the_target_before_dbsync_overwrote_it_is_not_deleted(pair: Pair) -> None:
    _notebook(pair.src, "/Shared/team/shared-nb", "source")
    _notebook(pair.src, "/Shared/team/keep", "source")
    _notebook(pair.dst, "/Shared/team/shared-nb", "the DR team's")
    pair.sync(only=["directories", "notebooks"])
    assert _row(pair, "notebooks", "/Shared/team/shared-nb")[2] == "adopted"

    pair.src.workspace.delete("/Shared/team/shared-nb")
    pair.sync(only=["directories", "notebooks"])

    assert "/Shared/team/shared-nb" in _tree(pair.dst)


def test_adopted_policy_and_the_dr_teams_namesakes_are_never_deleted(pair: Pair) -> None:
    """A policy adopted by name is kept; a cluster and a job the DR team made under the source's names
    (without dbsync's tag) are neither adopted nor touched; what dbsync created still goes with the source."""
    src, dst = pair.src, pair.dst
    policies = {n: src.cluster_policies.create(name=n, definition="{}").policy_id for n in ("team", "other")}
    dst_policy = dst.cluster_policies.create(name="team", definition="{}").policy_id
    clusters = {n: _cluster(src, n) for n in ("shared", "other")}
    dst_cluster = _cluster(dst, "shared")
    dst.clusters.delete(dst_cluster)  # terminated, as a standby's clusters are
    job_ids = {n: src.jobs.create(name=n, tasks=TASKS).job_id for n in ("nightly", "other")}
    dst_job = dst.jobs.create(name="nightly", tasks=TASKS).job_id
    only = ["cluster_policies", "clusters", "jobs"]
    reports = pair.sync(only=only)
    assert all(r.errors == 0 for r in reports.values()), reports
    assert _row(pair, "cluster_policies", policies["team"])[1:] == (dst_policy, "adopted")
    assert _row(pair, "clusters", clusters["shared"])[1] != dst_cluster  # dbsync's own copy, by its tag
    assert _row(pair, "clusters", clusters["shared"])[2] == "created"

    src.cluster_policies.delete(policies["team"])
    src.clusters.permanent_delete(clusters["shared"])
    src.jobs.delete(job_ids["nightly"])
    reports = pair.sync(only=only)

    assert reports["cluster_policies"].deleted == 0
    assert reports["clusters"].deleted == 1 and reports["jobs"].deleted == 1  # dbsync's own copies
    assert dst.cluster_policies.get(dst_policy).name == "team"
    assert dst.clusters.get(dst_cluster).cluster_id == dst_cluster
    assert dst.jobs.get(dst_job).job_id == dst_job
    assert "cluster_policies" in {e["kind"] for e in _events(pair, "kept")}
    assert _row(pair, "cluster_policies", policies["team"])[0] == "deleted"  # forgotten: not retried every cycle


def test_a_lost_store_recognises_dbsyncs_own_tag_and_still_deletes_with_the_source(pair: Pair, tmp_path) -> None:
    """kill -9 between a create and its record, or a lost store: the copy carrying dbsync's source-id tag is
    dbsync's, so it is adopted as created (no duplicate, and no leak when the source deletes it)."""
    src, dst = pair.src, pair.dst
    cluster = _cluster(src, "etl")
    job = src.jobs.create(name="etl", tasks=TASKS).job_id
    for name in ("keep", "also-keep"):  # most of each kind stays: no delete guard in play
        _cluster(src, name)
        src.jobs.create(name=name, tasks=TASKS)
    only = ["clusters", "jobs"]
    pair.sync(only=only)
    _wait_terminated(dst)  # a cluster is edited only when RUNNING or TERMINATED, as on the service
    pair.state_path = tmp_path / "new-store.db"  # the PVC was lost
    pair.sync(only=only)
    assert len(list(dst.jobs.list())) == 3 and len(list(dst.clusters.list())) == 3  # no duplicate
    assert [_row(pair, "clusters", cluster)[::2], _row(pair, "jobs", str(job))[::2]] == [("synced", "created")] * 2
    src.clusters.permanent_delete(cluster)
    src.jobs.delete(job)
    reports = pair.sync(only=only)
    assert reports["clusters"].deleted == 1 and reports["jobs"].deleted == 1


def test_store_of_schema_1_upgrades_and_keeps_what_it_cannot_tell_was_created(pair: Pair) -> None:
    store = Store(pair.state_path)
    store.db.execute("ALTER TABLE resources DROP COLUMN origin")
    store.db.execute("ALTER TABLE resources RENAME COLUMN target_version TO target_fingerprint")  # as schema 1 had it
    store.db.execute("DROP TABLE visits")  # schema 4 made it
    store.db.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    rows = [
        ("users", "made", '{"created_by_dbsync":true}'),
        ("users", "found", None),
        ("jobs", "1", None),
        ("sql_warehouses", "w", None),
    ]
    for kind, key, meta in rows:
        store.db.execute(
            "INSERT INTO resources (kind, source_key, source_meta_json, target_key, status, first_seen_at) "
            "VALUES (?, ?, ?, ?, 'synced', 0)",
            [kind, key, meta, key],
        )
    store.close()

    store = Store(pair.state_path)
    try:
        assert store.get_meta("schema_version") == "7"
        assert store.prior("users", "made").origin == "created"
        assert store.prior("users", "found").origin is None  # unknown: the replicator's rule decides
    finally:
        store.close()


def test_reverse_direction_never_deletes_the_old_primarys_own_objects(pair: Pair, tmp_path) -> None:
    forward = Store(pair.state_path)
    forward.bind_pair("src-ws", "dst-ws")
    forward.record_applied(Resource("jobs", "1", payload={"name": "nightly"}), Applied("9", adopted=False))
    try:
        seed_reverse_store(forward, tmp_path / "reverse.db", force=True)
    finally:
        forward.close()

    reverse = Store(tmp_path / "reverse.db")
    try:
        # Job 9 on the new primary maps to job 1 on the old primary, which its users made: adopted.
        assert reverse.prior("jobs", "9").origin == "adopted"
    finally:
        reverse.close()


# -- defect 3: no standby compute left running ------------------------------------------------------
def test_emulator_fails_exactly_one_request_to_one_path(pair: Pair) -> None:
    pair.target.set_faults(rate_500=1.0, path_prefix="/api/2.0/secrets/scopes/create", max_faults=1)
    failures = 0
    for name in ("a", "b", "c"):
        try:
            pair.dst.secrets.create_scope(name)
        except Exception as err:  # the injected 500, once
            failures += 1
            assert "injected" in str(err)
    pair.dst.secrets.put_secret("b", "k", string_value="v")  # other paths never fail
    assert failures == 1 and {s.name for s in pair.dst.secrets.list_scopes()} == {"b", "c"}


def _fail_once(pair: Pair, path: str) -> None:
    pair.target.set_faults(rate_500=1.0, path_prefix=path, max_faults=1)


def test_500_on_the_first_terminate_is_retried_until_the_cluster_is_terminated(pair: Pair) -> None:
    source_id = _cluster(pair.src, "etl")
    _fail_once(pair, "/api/2.1/clusters/delete")
    first = pair.sync(only=["clusters"])["clusters"]

    assert first.errors == 1  # not in sync: the stop is still to do
    status, target_id, origin = _row(pair, "clusters", source_id)
    assert status == "error" and target_id and origin == "created"  # recorded: a restart stops, not creates
    for _ in range(5):  # bounded: each cycle resumes the stop step
        pair.sync(only=["clusters"])
        if _row(pair, "clusters", source_id)[0] == "synced":
            break
    assert _row(pair, "clusters", source_id)[0] == "synced"
    assert [c.cluster_id for c in pair.dst.clusters.list()] == [target_id]  # never created twice
    deadline = time.monotonic() + 10
    while _state(pair.dst, target_id) != "TERMINATED" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _state(pair.dst, target_id) == "TERMINATED"


def test_cluster_whose_stop_failed_is_deleted_with_the_source(pair: Pair) -> None:
    _cluster(pair.src, "stays")
    pair.sync(only=["clusters"])
    source_id = _cluster(pair.src, "etl")
    _fail_once(pair, "/api/2.1/clusters/delete")
    pair.sync(only=["clusters"])
    target_id = _row(pair, "clusters", source_id)[1]

    pair.src.clusters.permanent_delete(source_id)
    report = pair.sync(only=["clusters"])["clusters"]

    assert report.errors == 0 and report.deleted == 1
    assert target_id not in {c.cluster_id for c in pair.dst.clusters.list()}


def test_warehouse_whose_stop_failed_is_stopped_on_the_next_cycle(pair: Pair) -> None:
    source_id = pair.src.warehouses.create(name="bi", cluster_size="2X-Small", max_num_clusters=1).response.id
    pair.target.set_faults(rate_500=1.0, path_prefix="/api/2.0/sql/warehouses/", max_faults=1)
    # The first request under that prefix after the create is the stop (create is POST .../warehouses).
    first = pair.sync(only=["sql_warehouses"])["sql_warehouses"]
    status, target_id, _ = _row(pair, "sql_warehouses", source_id)
    assert first.errors == 1 and status == "error" and target_id

    assert pair.sync(only=["sql_warehouses"])["sql_warehouses"].errors == 0
    assert pair.dst.warehouses.get(target_id).state.value in ("STOPPED", "STOPPING")
    assert [w.id for w in pair.dst.warehouses.list()] == [target_id]


def test_row_that_never_reached_the_target_is_forgotten_on_delete_without_an_api_call(pair: Pair) -> None:
    source_id = _cluster(pair.src, "etl")
    pair.target.set_faults(rate_500=1.0, path_prefix="/api/2.1/clusters/create", max_faults=1)
    pair.sync(only=["clusters"])
    assert _row(pair, "clusters", source_id)[:2] == ("error", None)

    _cluster(pair.src, "stays")  # the source still has clusters: no delete guard in play
    pair.src.clusters.permanent_delete(source_id)
    pair.target.stats.reset()
    report = pair.sync(only=["clusters"])["clusters"]

    assert report.errors == 0
    assert pair.target.stats.document()["endpoints"].get("POST /api/2.1/clusters/permanent-delete") is None
    assert _row(pair, "clusters", source_id)[0] == "deleted"
