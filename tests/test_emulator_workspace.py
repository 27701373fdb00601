"""Workspace API 2.0 (mkdirs, import, export, list, get-status, delete), driven by databricks-sdk."""

from __future__ import annotations

import base64
import io
import json
import zipfile

import pytest
import requests
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import (
    BadRequest,
    DatabricksError,
    InvalidParameterValue,
    NotFound,
    ResourceAlreadyExists,
    ResourceDoesNotExist,
)
from databricks.sdk.service.workspace import ExportFormat, ImportFormat, Language, ObjectType

from dbsync_emulator import EmulatorHandle

HEADERS = {
    Language.PYTHON: "# Databricks notebook source",
    Language.SQL: "-- Databricks notebook source",
    Language.SCALA: "// Databricks notebook source",
    Language.R: "# Databricks notebook source",
}
BODIES = {
    Language.PYTHON: "print(1)",
    Language.SQL: "SELECT 1",
    Language.SCALA: 'println("hi")',
    Language.R: "print('hi')",
}
TWO_CELLS = b"# Databricks notebook source\nx = 1\n\n# COMMAND ----------\n\nprint(x)"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _source(w: WorkspaceClient, path: str) -> bytes:
    return w.workspace.download(path).read()


def _notebook(w: WorkspaceClient, path: str, source: bytes = TWO_CELLS) -> None:
    w.workspace.import_(path, content=_b64(source), format=ImportFormat.SOURCE, language=Language.PYTHON)


# -- mkdirs -----------------------------------------------------------------------------------------
def test_mkdirs_creates_parents_and_is_idempotent(w: WorkspaceClient) -> None:
    w.workspace.mkdirs("/Shared/a/b/c")
    first = w.workspace.get_status("/Shared/a/b/c")
    w.workspace.mkdirs("/Shared/a/b/c")

    assert w.workspace.get_status("/Shared/a").object_type == ObjectType.DIRECTORY
    assert w.workspace.get_status("/Shared/a/b/c").object_id == first.object_id
    assert first.object_type == ObjectType.DIRECTORY


def test_mkdirs_through_a_notebook_is_a_conflict(w: WorkspaceClient) -> None:
    w.workspace.mkdirs("/Shared/a")
    _notebook(w, "/Shared/a/nb")

    with pytest.raises(ResourceAlreadyExists, match="not a folder"):
        w.workspace.mkdirs("/Shared/a/nb/child")
    with pytest.raises(ResourceAlreadyExists):
        w.workspace.mkdirs("/Shared/a/nb")


# -- import -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("language", list(HEADERS))
def test_import_source_json_adds_the_language_header(w: WorkspaceClient, language: Language) -> None:
    path = f"/Shared/nb_{language.value.lower()}"
    w.workspace.import_(path, content=_b64(BODIES[language].encode()), format=ImportFormat.SOURCE, language=language)

    status = w.workspace.get_status(path)
    exported = w.workspace.export(path, format=ExportFormat.SOURCE)

    assert status.object_type == ObjectType.NOTEBOOK
    assert status.language == language
    assert base64.b64decode(exported.content or "").decode() == f"{HEADERS[language]}\n{BODIES[language]}"
    assert exported.file_type == {"PYTHON": "py", "SQL": "sql", "SCALA": "scala", "R": "r"}[language.value]


def test_upload_multipart_infers_language_and_keeps_the_extension_for_source(w: WorkspaceClient) -> None:
    for suffix, language in (
        (".py", Language.PYTHON),
        (".sql", Language.SQL),
        (".scala", Language.SCALA),
        (".R", Language.R),
    ):
        w.workspace.upload(f"/Shared/nb{suffix}", io.BytesIO(BODIES[language].encode()))

        status = w.workspace.get_status(f"/Shared/nb{suffix}")
        assert (status.object_type, status.language) == (ObjectType.NOTEBOOK, language)
        assert _source(w, f"/Shared/nb{suffix}") == f"{HEADERS[language]}\n{BODIES[language]}".encode()


def test_upload_source_without_language_hints_at_auto(w: WorkspaceClient) -> None:
    with pytest.raises(DatabricksError, match=r"Perhaps you forgot to specify the `format=ImportFormat\.AUTO`") as err:
        w.workspace.upload("/Shared/no_extension", b"print(1)")

    assert err.value.error_code == "INVALID_PARAMETER_VALUE"


def test_auto_import_strips_the_extension_only_of_notebooks(w: WorkspaceClient) -> None:
    w.workspace.upload("/Shared/with_header.py", b"# Databricks notebook source\nprint(1)", format=ImportFormat.AUTO)
    w.workspace.upload("/Shared/plain.py", b"print(1)", format=ImportFormat.AUTO)
    w.workspace.upload("/Shared/notes.txt", b"hello", format=ImportFormat.AUTO)
    w.workspace.upload("/Shared/query.sql", b"-- Databricks notebook source\nSELECT 1", format=ImportFormat.AUTO)

    listing = {o.path: o.object_type for o in w.workspace.list("/Shared")}

    assert listing == {
        "/Shared/with_header": ObjectType.NOTEBOOK,
        "/Shared/plain.py": ObjectType.FILE,
        "/Shared/notes.txt": ObjectType.FILE,
        "/Shared/query": ObjectType.NOTEBOOK,
    }
    assert w.workspace.get_status("/Shared/query").language == Language.SQL
    assert _source(w, "/Shared/plain.py") == b"print(1)"
    assert w.workspace.get_status("/Shared/notes.txt").size == 5


@pytest.mark.parametrize(
    ("fmt", "suffix"),
    [(ExportFormat.JUPYTER, ".ipynb"), (ExportFormat.HTML, ".html"), (ExportFormat.DBC, "")],
)
def test_notebook_formats_round_trip(w: WorkspaceClient, fmt: ExportFormat, suffix: str) -> None:
    _notebook(w, "/Shared/original")
    exported = w.workspace.export("/Shared/original", format=fmt)

    w.workspace.import_(f"/Shared/copy{suffix}", content=exported.content, format=ImportFormat(fmt.value))

    assert w.workspace.get_status("/Shared/copy").language == Language.PYTHON
    assert _source(w, "/Shared/copy") == TWO_CELLS


def test_jupyter_export_is_an_ipynb_document(w: WorkspaceClient) -> None:
    _notebook(w, "/Shared/nb")

    exported = w.workspace.export("/Shared/nb", format=ExportFormat.JUPYTER)
    document = json.loads(base64.b64decode(exported.content or ""))

    assert exported.file_type == "ipynb"
    assert document["nbformat"] == 4
    assert ["".join(c["source"]) for c in document["cells"]] == ["x = 1", "print(x)"]


def test_html_export_embeds_the_notebook_model(w: WorkspaceClient) -> None:
    _notebook(w, "/Shared/nb")

    exported = w.workspace.export("/Shared/nb", format=ExportFormat.HTML)

    assert exported.file_type == "html"
    assert base64.b64decode(exported.content or "").startswith(b"<!DOCTYPE html>")


def test_overwrite_keeps_the_object_id_and_moves_modified_at(w: WorkspaceClient) -> None:
    _notebook(w, "/Shared/nb")
    before = w.workspace.get_status("/Shared/nb")

    w.workspace.import_(
        "/Shared/nb",
        content=_b64(b"print(2)"),
        format=ImportFormat.SOURCE,
        language=Language.PYTHON,
        overwrite=True,
    )
    after = w.workspace.get_status("/Shared/nb")

    assert after.object_id == before.object_id
    assert (after.modified_at or 0) > (before.modified_at or 0)
    assert after.created_at == before.created_at
    assert _source(w, "/Shared/nb") == b"# Databricks notebook source\nprint(2)"


def test_import_onto_an_existing_path_without_overwrite_is_a_conflict(
    w: WorkspaceClient, emulator: EmulatorHandle
) -> None:
    _notebook(w, "/Shared/nb")

    with pytest.raises(ResourceAlreadyExists, match="already exists"):
        _notebook(w, "/Shared/nb")
    answer = requests.post(
        f"{emulator.url}/api/2.0/workspace/import",
        timeout=10,
        headers={"Authorization": f"Bearer {emulator.token}"},
        json={"path": "/Shared/nb", "content": _b64(b"x"), "language": "PYTHON"},
    )
    # The legacy service answers 400 with RESOURCE_ALREADY_EXISTS; the SDK maps it by error_code.
    assert answer.status_code == 400
    assert answer.json()["error_code"] == "RESOURCE_ALREADY_EXISTS"


def test_import_under_a_missing_parent_is_not_found(w: WorkspaceClient) -> None:
    with pytest.raises(ResourceDoesNotExist, match=r"parent folder \(/Shared/missing\) does not exist"):
        _notebook(w, "/Shared/missing/nb")


def test_import_over_10_mb_is_rejected(w: WorkspaceClient) -> None:
    with pytest.raises(BadRequest) as err:
        w.workspace.upload("/Shared/big.txt", b"x" * (10 * 1024 * 1024 + 1), format=ImportFormat.AUTO)

    assert err.value.error_code == "MAX_NOTEBOOK_SIZE_EXCEEDED"
    with pytest.raises(NotFound):
        w.workspace.get_status("/Shared/big.txt")


def test_import_with_an_unknown_format_is_invalid(w: WorkspaceClient) -> None:
    with pytest.raises(InvalidParameterValue, match="format"):
        w.api_client.do(
            "POST", "/api/2.0/workspace/import", body={"path": "/Shared/x", "content": "", "format": "source"}
        )


# -- export -----------------------------------------------------------------------------------------
def test_download_returns_the_raw_source(w: WorkspaceClient, emulator: EmulatorHandle) -> None:
    _notebook(w, "/Shared/nb")

    raw = requests.get(
        f"{emulator.url}/api/2.0/workspace/export",
        timeout=10,
        params={"path": "/Shared/nb", "direct_download": "true"},
        headers={"Authorization": f"Bearer {emulator.token}"},
    )

    assert _source(w, "/Shared/nb") == TWO_CELLS
    assert raw.content == TWO_CELLS
    assert not raw.headers["Content-Type"].startswith("application/json")


def test_directory_dbc_export_imports_as_a_tree(w: WorkspaceClient) -> None:
    w.workspace.mkdirs("/Shared/project/sub")
    _notebook(w, "/Shared/project/main")
    w.workspace.import_(
        "/Shared/project/sub/q", content=_b64(b"SELECT 1"), format=ImportFormat.SOURCE, language=Language.SQL
    )
    w.workspace.upload("/Shared/project/data.txt", b"not a notebook", format=ImportFormat.AUTO)

    archive = w.workspace.export("/Shared/project", format=ExportFormat.DBC)
    w.workspace.import_("/Shared/restored", content=archive.content, format=ImportFormat.DBC)

    assert archive.file_type == "dbc"
    assert zipfile.is_zipfile(io.BytesIO(base64.b64decode(archive.content or "")))
    restored = {o.path for o in w.workspace.list("/Shared/restored", recursive=True)}
    assert restored == {"/Shared/restored/main", "/Shared/restored/sub/q"}  # DBC carries notebooks only
    assert _source(w, "/Shared/restored/sub/q") == b"-- Databricks notebook source\nSELECT 1"
    with pytest.raises(ResourceAlreadyExists, match=r"Path \(/Shared/restored\) already exists"):
        w.workspace.import_("/Shared/restored", content=archive.content, format=ImportFormat.DBC)


def test_directory_export_in_html_is_invalid(w: WorkspaceClient) -> None:
    w.workspace.mkdirs("/Shared/project")

    with pytest.raises(InvalidParameterValue):
        w.workspace.export("/Shared/project", format=ExportFormat.HTML)


# -- list, get-status -------------------------------------------------------------------------------
def test_empty_directory_lists_as_an_empty_object(w: WorkspaceClient) -> None:
    w.workspace.mkdirs("/Shared/empty")

    assert w.api_client.do("GET", "/api/2.0/workspace/list", query={"path": "/Shared/empty"}) == {}
    assert list(w.workspace.list("/Shared/empty")) == []


def test_list_filters_notebooks_by_modification_time(w: WorkspaceClient) -> None:
    w.workspace.mkdirs("/Shared/d/sub")
    _notebook(w, "/Shared/d/old")
    cutoff = w.workspace.get_status("/Shared/d/old").modified_at
    _notebook(w, "/Shared/d/new")

    names = {o.path for o in w.workspace.list("/Shared/d", notebooks_modified_after=cutoff)}

    assert names == {"/Shared/d/new", "/Shared/d/sub"}  # directories are never filtered


def test_recursive_listing_yields_notebooks_and_files_only(w: WorkspaceClient) -> None:
    w.workspace.mkdirs("/Shared/r/a/b")
    _notebook(w, "/Shared/r/top")
    _notebook(w, "/Shared/r/a/b/deep")
    w.workspace.upload("/Shared/r/a/f.txt", b"data", format=ImportFormat.AUTO)

    paths = sorted(o.path or "" for o in w.workspace.list("/Shared/r", recursive=True))

    assert paths == ["/Shared/r/a/b/deep", "/Shared/r/a/f.txt", "/Shared/r/top"]


def test_get_status_accepts_the_workspace_prefix(w: WorkspaceClient) -> None:
    _notebook(w, "/Shared/nb")

    plain = w.workspace.get_status("/Shared/nb")
    prefixed = w.workspace.get_status("/Workspace/Shared/nb")

    assert prefixed == plain
    assert plain.path == "/Shared/nb"
    assert plain.resource_id == str(plain.object_id)
    assert w.workspace.get_status("/").object_id == 0


def test_missing_path_is_a_404_with_the_service_message(w: WorkspaceClient, emulator: EmulatorHandle) -> None:
    with pytest.raises(ResourceDoesNotExist, match=r"Path \(/Shared/nope\) doesn't exist\."):
        w.workspace.get_status("/Shared/nope")
    with pytest.raises(ResourceDoesNotExist):
        list(w.workspace.list("/Shared/nope"))
    with pytest.raises(ResourceDoesNotExist):
        w.workspace.export("/Shared/nope")
    answer = requests.get(
        f"{emulator.url}/api/2.0/workspace/get-status",
        params={"path": "/Shared/nope"},
        headers={"Authorization": f"Bearer {emulator.token}"},
        timeout=10,
    )
    assert answer.status_code == 404
    assert answer.json() == {
        "error_code": "RESOURCE_DOES_NOT_EXIST",
        "message": "Path (/Shared/nope) doesn't exist.",
    }


def test_relative_path_is_invalid(w: WorkspaceClient) -> None:
    with pytest.raises(InvalidParameterValue):
        w.workspace.get_status("Shared/nb")


# -- delete -----------------------------------------------------------------------------------------
def test_delete_of_a_non_empty_directory_needs_recursive(w: WorkspaceClient) -> None:
    w.workspace.mkdirs("/Shared/d/sub")
    _notebook(w, "/Shared/d/sub/nb")

    with pytest.raises(BadRequest) as err:
        w.workspace.delete("/Shared/d")
    assert err.value.error_code == "DIRECTORY_NOT_EMPTY"

    w.workspace.delete("/Shared/d", recursive=True)
    for path in ("/Shared/d", "/Shared/d/sub", "/Shared/d/sub/nb"):
        with pytest.raises(NotFound):
            w.workspace.get_status(path)
    with pytest.raises(ResourceDoesNotExist):
        w.workspace.delete("/Shared/d")


def test_delete_of_an_empty_directory_and_a_notebook(w: WorkspaceClient) -> None:
    w.workspace.mkdirs("/Shared/empty")
    _notebook(w, "/Shared/nb")

    w.workspace.delete("/Shared/empty")
    w.workspace.delete("/Shared/nb")

    assert {o.path for o in w.workspace.list("/Shared")} == set()
