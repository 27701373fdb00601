"""DBFS, the Files API (volumes and workspace files) and the token APIs, driven by databricks-sdk.

Real behaviour relied on (databricks-sdk-py `service/files.py`, `service/settings.py` docstrings):
- DBFS: `add-block` and inline `put` contents are limited to 1 MB (MAX_BLOCK_SIZE_EXCEEDED); `read` is
  limited to 1 MB (MAX_READ_SIZE_EXCEEDED), reading a directory or a negative length is
  INVALID_PARAMETER_VALUE; `create` on an existing path without overwrite is RESOURCE_ALREADY_EXISTS; a
  handle idle for 10 minutes is gone; deleting a non-empty directory without `recursive` is IO_ERROR;
  `move` onto an existing path is RESOURCE_ALREADY_EXISTS. A missing path is RESOURCE_DOES_NOT_EXIST
  "No file or directory exists on path dbfs:/x." and deleting one answers success (databricks-cli issue
  #291: `dbfs rm` of a missing file prints "Delete finished successfully.").
- Files API: upload is a raw PUT that overwrites unless `overwrite=false`; download supports Range;
  HEAD answers metadata headers only; directories are `mkdir -p` and idempotent; listing pages hold at
  most 1000 entries and end when `next_page_token` is absent; only empty directories can be deleted.
- Tokens: create answers `token_value` once, lists never do; an unspecified lifetime is 2 years; delete
  of an unknown id is RESOURCE_DOES_NOT_EXIST; token-management lists every token (filter
  `created_by_username`) and creates on-behalf-of tokens for a service principal.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator

import pytest
import requests
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import (
    AlreadyExists,
    BadRequest,
    DatabricksError,
    NotFound,
    PermissionDenied,
    ResourceAlreadyExists,
    ResourceConflict,
)
from databricks.sdk.service.catalog import VolumeType
from freezegun import freeze_time
from freezegun.api import FrozenDateTimeFactory

from dbsync_emulator import EmulatorHandle
from tests.conftest import sdk_client

MB = 1024 * 1024


def _raw(emulator: EmulatorHandle, method: str, path: str, **kwargs: object) -> requests.Response:
    headers = {"Authorization": f"Bearer {emulator.token}", **kwargs.pop("headers", {})}  # type: ignore[dict-item]
    return requests.request(method, emulator.url + path, headers=headers, timeout=10, **kwargs)  # type: ignore[arg-type]


def _error_code(err: pytest.ExceptionInfo[DatabricksError]) -> str:
    return str(err.value.error_code)


@pytest.fixture
def clock() -> Iterator[FrozenDateTimeFactory]:
    with freeze_time("2026-03-04 05:06:07") as frozen:
        yield frozen


# -- DBFS -------------------------------------------------------------------------------------------
def test_dbfs_streamed_upload_of_an_init_script_reads_back(w: WorkspaceClient) -> None:
    script = b"#!/bin/bash\necho installing\n" * 60_000  # 1.7 MB: two add-block calls, two reads

    w.dbfs.upload("dbfs:/databricks/init/setup.sh", io.BytesIO(script), overwrite=True)

    assert w.dbfs.download("/databricks/init/setup.sh").read() == script
    status = w.dbfs.get_status("/databricks/init/setup.sh")
    assert (status.is_dir, status.file_size, status.path) == (False, len(script), "/databricks/init/setup.sh")
    assert [(f.path, f.is_dir) for f in w.dbfs.list("/databricks")] == [("/databricks/init", True)]
    assert w.dbfs.get_status("/FileStore").is_dir  # a new workspace has /FileStore


def test_dbfs_limits_and_errors(w: WorkspaceClient, emulator: EmulatorHandle) -> None:
    with pytest.raises(DatabricksError) as too_big:
        w.dbfs.put("/FileStore/big.bin", contents=base64.b64encode(b"x" * (MB + 1)).decode())
    assert _error_code(too_big) == "MAX_BLOCK_SIZE_EXCEEDED"
    handle = w.dbfs.create("/FileStore/stream.bin").handle
    with pytest.raises(DatabricksError) as block:
        w.dbfs.add_block(handle, base64.b64encode(b"x" * (MB + 1)).decode())  # type: ignore[arg-type]
    assert _error_code(block) == "MAX_BLOCK_SIZE_EXCEEDED"
    w.dbfs.put("/FileStore/small.txt", contents=base64.b64encode(b"abc").decode())
    with pytest.raises(DatabricksError) as read_big:
        w.dbfs.read("/FileStore/small.txt", length=MB + 1)
    assert _error_code(read_big) == "MAX_READ_SIZE_EXCEEDED"
    with pytest.raises(BadRequest):
        w.dbfs.read("/FileStore", length=10)
    assert w.dbfs.read("/FileStore/small.txt", offset=1, length=10).data == base64.b64encode(b"bc").decode()
    with pytest.raises(ResourceAlreadyExists):
        w.dbfs.create("/FileStore/small.txt")
    with pytest.raises(NotFound) as missing:
        w.dbfs.get_status("/nowhere/x")
    assert str(missing.value) == "No file or directory exists on path dbfs:/nowhere/x."
    not_empty = _raw(emulator, "POST", "/api/2.0/dbfs/delete", json={"path": "/FileStore"})  # the SDK mixin refuses
    assert (not_empty.status_code, not_empty.json()["error_code"]) == (400, "IO_ERROR")
    assert _raw(emulator, "POST", "/api/2.0/dbfs/delete", json={"path": "/nowhere/x"}).status_code == 200
    with pytest.raises(BadRequest):
        w.dbfs.mkdirs("relative/path")


def test_dbfs_move_put_multipart_and_recursive_delete(w: WorkspaceClient, emulator: EmulatorHandle) -> None:
    w.dbfs.mkdirs("/jars/v1")
    response = _raw(
        emulator,
        "POST",
        "/api/2.0/dbfs/put",
        files={"contents": ("lib.jar", b"PK\x03\x04jar")},
        data={"path": "/jars/v1/lib.jar", "overwrite": "true"},
    )
    assert response.status_code == 200, response.text
    cli_form = {"path": "/jars/v1/cli.jar", "overwrite": "false"}  # databricks-cli 0.18 posts the part as "file"
    response = _raw(emulator, "POST", "/api/2.0/dbfs/put", files={"file": ("cli.jar", b"x" * (MB + 5))}, data=cli_form)
    assert response.status_code == 200, response.text
    assert w.dbfs.get_status("/jars/v1/cli.jar").file_size == MB + 5  # streamed: not held to the 1 MB inline limit

    w.dbfs.move_("/jars/v1", "/jars/v2")

    assert w.dbfs.download("/jars/v2/lib.jar").read() == b"PK\x03\x04jar"
    assert not w.dbfs.exists("/jars/v1")
    w.dbfs.put("/jars/other.jar", contents=base64.b64encode(b"o").decode())
    with pytest.raises(ResourceAlreadyExists):
        w.dbfs.move_("/jars/other.jar", "/jars/v2/lib.jar")
    w.dbfs.delete("/jars", recursive=True)
    assert not w.dbfs.exists("/jars/v2/lib.jar")


def test_dbfs_write_handle_expires_after_ten_idle_minutes(w: WorkspaceClient, clock: FrozenDateTimeFactory) -> None:
    handle = w.dbfs.create("/FileStore/slow.bin", overwrite=True).handle
    w.dbfs.add_block(handle, base64.b64encode(b"part").decode())  # type: ignore[arg-type]
    clock.tick(9 * 60)
    w.dbfs.add_block(handle, base64.b64encode(b"-two").decode())  # type: ignore[arg-type]  # idle, not total
    clock.tick(10 * 60 + 1)

    with pytest.raises(NotFound):
        w.dbfs.close(handle)  # type: ignore[arg-type]
    assert not w.dbfs.exists("/FileStore/slow.bin")


# -- Files API ----------------------------------------------------------------------------------------
def test_files_api_on_a_volume(w: WorkspaceClient, emulator: EmulatorHandle) -> None:
    w.volumes.create("main", "default", "landing", VolumeType.MANAGED)
    path = "/Volumes/main/default/landing/in/2026/data.csv"

    w.files.upload(path, io.BytesIO(b"a,b\n1,2\n"))

    assert w.files.download(path).contents.read() == b"a,b\n1,2\n"  # type: ignore[union-attr]
    meta = w.files.get_metadata(path)
    assert meta.content_length == 8 and meta.last_modified
    entries = list(w.files.list_directory_contents("/Volumes/main/default/landing/in"))
    assert [(e.name, e.is_directory) for e in entries] == [("2026", True)]
    with pytest.raises((AlreadyExists, ResourceConflict)):
        w.files.upload(path, io.BytesIO(b"other"), overwrite=False)
    ranged = _raw(emulator, "GET", f"/api/2.0/fs/files{path}", headers={"Range": "bytes=2-4"})
    assert (ranged.status_code, ranged.content, ranged.headers["Content-Range"]) == (206, b"b\n1", "bytes 2-4/8")
    stale = _raw(
        emulator, "GET", f"/api/2.0/fs/files{path}", headers={"If-Unmodified-Since": "Mon, 01 Jan 2024 00:00:00 GMT"}
    )
    assert stale.status_code == 412
    fresh = _raw(emulator, "GET", f"/api/2.0/fs/files{path}", headers={"If-Unmodified-Since": meta.last_modified})
    assert fresh.content == b"a,b\n1,2\n"
    head = _raw(emulator, "HEAD", f"/api/2.0/fs/files{path}")
    assert (head.status_code, head.headers["Content-Length"], head.content) == (200, "8", b"")
    assert _raw(emulator, "HEAD", "/api/2.0/fs/files/Volumes/main/default/landing/none.csv").status_code == 404

    with pytest.raises(DatabricksError):
        w.files.delete_directory("/Volumes/main/default/landing/in/2026")  # not empty
    w.files.delete(path)
    w.files.delete_directory("/Volumes/main/default/landing/in/2026")
    with pytest.raises(NotFound):
        w.files.get_directory_metadata("/Volumes/main/default/landing/in/2026")
    with pytest.raises(NotFound):
        w.files.upload("/Volumes/main/default/missing/x.csv", io.BytesIO(b"x"))


def test_files_api_directory_listing_pages(w: WorkspaceClient, emulator: EmulatorHandle) -> None:
    w.volumes.create("main", "default", "many", VolumeType.MANAGED)
    w.files.create_directory("/Volumes/main/default/many/d")
    w.files.create_directory("/Volumes/main/default/many/d")  # idempotent
    for i in range(5):
        w.files.upload(f"/Volumes/main/default/many/d/f{i}", io.BytesIO(b"x"))

    first = _raw(emulator, "GET", "/api/2.0/fs/directories/Volumes/main/default/many/d", params={"page_size": 2})
    names = [e.name for e in w.files.list_directory_contents("/Volumes/main/default/many/d", page_size=2)]

    assert len(first.json()["contents"]) == 2 and first.json()["next_page_token"]
    assert names == ["f0", "f1", "f2", "f3", "f4"]


def test_files_api_on_workspace_files(w: WorkspaceClient) -> None:
    w.files.upload("/Workspace/Shared/conf/app.yaml", io.BytesIO(b"a: 1\n"))

    assert w.workspace.get_status("/Shared/conf/app.yaml").object_type.value == "FILE"  # type: ignore[union-attr]
    assert w.files.download("/Workspace/Shared/conf/app.yaml").contents.read() == b"a: 1\n"  # type: ignore[union-attr]
    assert [e.name for e in w.files.list_directory_contents("/Workspace/Shared/conf")] == ["app.yaml"]
    with pytest.raises(BadRequest):
        w.files.upload("/tmp/not-a-files-api-path", io.BytesIO(b"x"))


# -- tokens -------------------------------------------------------------------------------------------
def test_token_lifecycle_and_the_new_token_authenticates(w: WorkspaceClient, emulator: EmulatorHandle) -> None:
    created = w.tokens.create(comment="ci", lifetime_seconds=3600)
    info = created.token_info

    assert created.token_value and created.token_value.startswith("dapi")
    assert info and info.expiry_time - info.creation_time == 3600 * 1000  # type: ignore[operator]
    assert sdk_client(emulator, token=created.token_value).current_user.me().user_name == "admin@example.com"
    listed = list(w.tokens.list())
    assert [t.comment for t in listed] == ["ci"]
    assert "token_value" not in _raw(emulator, "GET", "/api/2.0/token/list").text
    forever = w.tokens.create(comment="default lifetime").token_info
    assert forever.expiry_time - forever.creation_time == 2 * 365 * 24 * 3600 * 1000  # type: ignore[union-attr, operator]

    w.tokens.delete(info.token_id)  # type: ignore[arg-type, union-attr]

    with pytest.raises(PermissionDenied):
        sdk_client(emulator, token=created.token_value, retry_timeout_seconds=1).current_user.me()
    with pytest.raises(NotFound):
        w.tokens.delete(info.token_id)  # type: ignore[arg-type, union-attr]


def test_token_quota_per_owner(w: WorkspaceClient, emulator: EmulatorHandle) -> None:
    """The documented limit of 600 tokens per user: the 601st is QUOTA_EXCEEDED."""
    for _ in range(600):  # through the API, not the store: 600 small requests
        w.tokens.create(comment="bulk", lifetime_seconds=60)

    with pytest.raises(DatabricksError) as refused:
        w.tokens.create(comment="one too many")
    assert _error_code(refused) == "QUOTA_EXCEEDED"


def test_token_expires(w: WorkspaceClient, emulator: EmulatorHandle, clock: FrozenDateTimeFactory) -> None:
    created = w.tokens.create(comment="short", lifetime_seconds=60)
    clock.tick(61)

    with pytest.raises(PermissionDenied):
        sdk_client(emulator, token=created.token_value, retry_timeout_seconds=1).current_user.me()


def test_token_management_lists_all_and_creates_on_behalf_of(w: WorkspaceClient) -> None:
    sp = w.service_principals.create(display_name="deployer")
    w.tokens.create(comment="mine")

    obo = w.token_management.create_obo_token(sp.application_id, comment="for deployer", lifetime_seconds=600)  # type: ignore[arg-type]

    assert obo.token_value and obo.token_info and obo.token_info.owner_id == int(sp.id)  # type: ignore[arg-type]
    assert sorted(t.comment for t in w.token_management.list()) == ["for deployer", "mine"]  # type: ignore[type-var]
    assert [t.comment for t in w.tokens.list()] == ["mine"]  # the Token API lists the caller's own only
    by_admin = list(w.token_management.list(created_by_username="admin@example.com"))
    assert len(by_admin) == 2 and all(t.created_by_username == "admin@example.com" for t in by_admin)
    assert w.token_management.get(obo.token_info.token_id).token_info.comment == "for deployer"  # type: ignore[arg-type, union-attr]
    w.token_management.delete(obo.token_info.token_id)  # type: ignore[arg-type]
    with pytest.raises(NotFound):
        w.token_management.get(obo.token_info.token_id)  # type: ignore[arg-type]
    with pytest.raises(NotFound):
        w.token_management.create_obo_token("00000000-0000-0000-0000-000000000000", lifetime_seconds=60)


def test_stats_count_requests_of_other_tokens_apart(w: WorkspaceClient, emulator: EmulatorHandle) -> None:
    """A benchmark's driver edits with a token it made: its requests are in `per_second_other_tokens` as well as
    `per_second`, so the client under test (the start-up token) is measured by the emulator's own counts."""
    made = w.tokens.create(comment="driver", lifetime_seconds=3600).token_value or ""
    driver = WorkspaceClient(host=emulator.url, token=made, auth_type="pat")
    emulator.stats.reset()
    for _ in range(3):
        driver.workspace.get_status("/")
    w.workspace.get_status("/")
    doc = emulator.stats.document()
    assert sum(doc["per_second"].values()) == 4
    assert sum(doc["per_second_other_tokens"].values()) == 3
