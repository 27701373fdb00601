"""Workspace API 2.0: list, get-status, export, import, mkdirs, delete.

Objects live in table "objects" (path → record); "children" (directory path → {child path: True})
keeps listings O(children); "object_ids" maps str(object_id) → path for the permissions API.
"""

from __future__ import annotations

import base64
import json
import posixpath
from typing import Any

from dbsync_emulator import notebooks as nb
from dbsync_emulator.apis import permissions
from dbsync_emulator.errors import ApiError, already_exists, invalid, not_found
from dbsync_emulator.router import Request, Response, Routes
from dbsync_emulator.state import Workspace

routes = Routes()

MAX_IMPORT_BYTES = 10 * 1024 * 1024
IMPORT_FORMATS = ("SOURCE", "HTML", "JUPYTER", "DBC", "R_MARKDOWN", "AUTO", "RAW")
EXPORT_FORMATS = IMPORT_FORMATS
OBJECT_TYPES = ("NOTEBOOK", "DIRECTORY", "LIBRARY", "FILE", "REPO", "DASHBOARD")
_PERMISSION_TYPE = {"NOTEBOOK": "notebooks", "DIRECTORY": "directories", "FILE": "files", "REPO": "repos"}


# -- internal API (used by handlers, SCIM home directories, repos and the seeder) ------------------
# Direct ACLs of the built-in folders: every user can manage /Shared; the others are admin-only.
_BUILT_IN_ACLS = {
    "/Users": [],
    "/Shared": [{"principal_type": "group_name", "principal": "users", "level": "CAN_MANAGE"}],
    "/Repos": [],
}


def init(ws: Workspace) -> None:
    """A new workspace has /, /Users, /Shared and /Repos."""
    ws.table("objects")
    if "/" not in ws.table("objects"):
        _insert(ws, "/", "DIRECTORY", object_id=0)
    for path, acl in _BUILT_IN_ACLS.items():
        if get_object(ws, path) is None:
            record = mkdirs(ws, path)
            ws.table("acls")[("directories", str(record["object_id"]))] = [dict(e) for e in acl]


def normalize_path(path: Any) -> str:
    """An absolute path without the `/Workspace` prefix or a trailing slash."""
    if not isinstance(path, str) or not path:
        raise invalid("Path must be a non-empty string")
    if not path.startswith("/"):
        raise invalid(f"Path ({path}) must be absolute")
    if path == "/Workspace" or path.startswith("/Workspace/"):
        path = path[len("/Workspace") :] or "/"
    path = posixpath.normpath(path)
    return "/" if path in ("/", "//") else path


def get_object(ws: Workspace, path: str) -> dict | None:
    return ws.table("objects").get(path)


def _require(ws: Workspace, path: str) -> dict:
    obj = get_object(ws, path)
    if obj is None:
        raise not_found(f"Path ({path}) doesn't exist.")
    return obj


def _new_object_id(ws: Workspace) -> int:
    # Distinct id ranges per workspace, as in the service: ids must never be copied across workspaces.
    return ws.next_id("object_id", start=(ws.workspace_id % 9000 + 1000) * 10**12 + 1)


def _insert(ws: Workspace, path: str, object_type: str, object_id: int | None = None, **fields: Any) -> dict:
    if object_id is None:
        object_id = _new_object_id(ws)
    now = ws.now_ms()
    record = {
        "object_type": object_type,
        "object_id": object_id,
        "path": path,
        "created_at": now,
        "modified_at": now,
        **fields,
    }
    ws.table("objects")[path] = record
    ws.table("object_ids")[str(object_id)] = path
    if path != "/":
        ws.table("children").setdefault(posixpath.dirname(path), {})[path] = True
    if object_type == "DIRECTORY":
        ws.table("children").setdefault(path, {})
    if object_type in _PERMISSION_TYPE and path != "/":
        permissions.grant_creator(ws, _PERMISSION_TYPE[object_type], str(object_id))
    return record


def mkdirs(ws: Workspace, path: str) -> dict:
    """Create a directory and its parents (idempotent); a non-directory on the way is an error."""
    path = normalize_path(path)
    obj = get_object(ws, path)
    if obj is not None:
        if obj["object_type"] not in ("DIRECTORY", "REPO"):
            raise already_exists(f"{path} already exists and it is not a folder")
        return obj
    mkdirs(ws, posixpath.dirname(path))
    return _insert(ws, path, "DIRECTORY")


def _parent_dir(ws: Workspace, path: str) -> dict:
    parent = get_object(ws, posixpath.dirname(path))
    if parent is None:
        raise not_found(f"The parent folder ({posixpath.dirname(path)}) does not exist.")
    if parent["object_type"] not in ("DIRECTORY", "REPO"):
        raise invalid(f"The parent ({posixpath.dirname(path)}) is not a folder.")
    return parent


def create_object(ws: Workspace, path: str, object_type: str, **fields: Any) -> dict:
    """Create an object at `path` under an existing parent (repos use this for REPO objects)."""
    path = normalize_path(path)
    _parent_dir(ws, path)
    if get_object(ws, path) is not None:
        raise already_exists(f"Node named '{posixpath.basename(path)}' already exists")
    return _insert(ws, path, object_type, **fields)


def put_notebook(ws: Workspace, path: str, language: str, source: bytes, overwrite: bool = True) -> dict:
    """Create or overwrite a notebook (SOURCE text); an overwrite keeps the object id and ACL."""
    return _write(ws, normalize_path(path), "NOTEBOOK", nb.normalize_source(source, language), language, overwrite)


def put_file(ws: Workspace, path: str, content: bytes, overwrite: bool = True) -> dict:
    return _write(ws, normalize_path(path), "FILE", content, None, overwrite)


def _write(ws: Workspace, path: str, object_type: str, content: bytes, language: str | None, overwrite: bool) -> dict:
    if len(content) > MAX_IMPORT_BYTES:
        raise ApiError(
            400,
            "MAX_NOTEBOOK_SIZE_EXCEEDED",
            f"File size imported is ({len(content)} bytes), exceeded max size ({MAX_IMPORT_BYTES} bytes)",
        )
    _parent_dir(ws, path)
    existing = get_object(ws, path)
    if existing is not None:
        if not overwrite or existing["object_type"] in ("DIRECTORY", "REPO"):
            raise already_exists(f"Node named '{posixpath.basename(path)}' already exists")
        if existing["object_type"] != object_type:
            delete_object(ws, path)
            existing = None
    fields: dict[str, Any] = {"content": content, "size": len(content)}
    if language:
        fields["language"] = language
    if existing is None:
        return _insert(ws, path, object_type, **fields)
    # modified_at moves on every import, strictly, so (object_id, modified_at) always reveals a write.
    existing.update(fields, modified_at=max(ws.now_ms(), existing["modified_at"] + 1))
    return existing


def delete_object(ws: Workspace, path: str, recursive: bool = True) -> None:
    """Remove an object (and its subtree when recursive)."""
    obj = _require(ws, path)
    children = ws.table("children").get(path, {})
    if children and not recursive:
        raise ApiError(400, "DIRECTORY_NOT_EMPTY", f"Folder ({path}) is not empty")
    for child in list(children):
        delete_object(ws, child, recursive=True)
    ws.table("children").pop(path, None)
    ws.table("objects").pop(path, None)
    ws.cache("object_info_json").pop(path, None)
    ws.table("object_ids").pop(str(obj["object_id"]), None)
    ws.table("children").get(posixpath.dirname(path), {}).pop(path, None)
    if obj["object_type"] in _PERMISSION_TYPE:
        permissions.forget(ws, _PERMISSION_TYPE[obj["object_type"]], str(obj["object_id"]))


def object_info(obj: dict) -> dict:
    """ObjectInfo as list and get-status answer it."""
    info = {
        "object_type": obj["object_type"],
        "path": obj["path"],
        "object_id": obj["object_id"],
        # A DASHBOARD's resource_id is its Lakeview dashboard id; other objects answer their object id.
        "resource_id": obj.get("resource_id") or str(obj["object_id"]),
    }
    if obj["object_type"] in ("NOTEBOOK", "FILE"):
        info["created_at"] = obj["created_at"]
        info["modified_at"] = obj["modified_at"]
    if obj["object_type"] == "FILE":  # the service reports a size for workspace files only
        info["size"] = obj.get("size", 0)
    if obj.get("language"):
        info["language"] = obj["language"]
    if obj["object_type"] == "DIRECTORY":
        info["directory_info"] = {"is_git_folder": False}
    return info


def walk(ws: Workspace, path: str) -> list[dict]:
    """Every object under a directory, depth first (the directory itself excluded)."""
    out = []
    for child in ws.table("children").get(path, {}):
        obj = ws.table("objects")[child]
        out.append(obj)
        if obj["object_type"] == "DIRECTORY":
            out.extend(walk(ws, child))
    return out


# -- permissions registration -----------------------------------------------------------------------
def _exists_as(object_type: str) -> Any:
    def exists(ws: Workspace, object_id: str) -> bool:
        path = ws.table("object_ids").get(object_id)
        return path is not None and ws.table("objects")[path]["object_type"] == object_type

    return exists


def _ancestors(ws: Workspace, object_id: str) -> list[tuple[str, str]]:
    """The directories a workspace object inherits permissions from, nearest first."""
    path = ws.table("object_ids").get(object_id, "/")
    out = []
    while path != "/":
        path = posixpath.dirname(path)
        parent = get_object(ws, path)
        if parent is None:
            continue
        if parent["object_type"] == "DIRECTORY":
            out.append(("directories", str(parent["object_id"])))
        elif parent["object_type"] == "REPO" and "repos" in permissions.TYPES:
            out.append(("repos", str(parent["object_id"])))
    return out


_LEVELS = ("CAN_READ", "CAN_RUN", "CAN_EDIT", "CAN_MANAGE")
# The admins group's CAN_MANAGE comes from the root of the tree, shown as "/directories/".
for _type, _name, _kind in (
    ("notebooks", "notebook", "NOTEBOOK"),
    ("directories", "directory", "DIRECTORY"),
    ("files", "file", "FILE"),
):
    permissions.register(_type, _name, _LEVELS, _exists_as(_kind), "/directories/", parents=_ancestors)


# -- handlers ---------------------------------------------------------------------------------------
@routes.get("/api/2.0/workspace/list")
def list_objects(ws: Workspace, req: Request) -> dict | Response:
    path = normalize_path(req.require("path"))
    obj = _require(ws, path)
    modified_after = req.int_arg("notebooks_modified_after")
    if obj["object_type"] not in ("DIRECTORY", "REPO"):
        return {"objects": [object_info(obj)]}
    objects = ws.table("objects")
    infos = []
    for child in ws.table("children").get(path, {}):
        item = objects[child]
        if modified_after is not None and item["object_type"] == "NOTEBOOK" and item["modified_at"] <= modified_after:
            continue
        infos.append(_info_json(ws, item))
    if not infos:
        return {}
    # Listings are the hottest read: each child's ObjectInfo is encoded once per version, then joined.
    return Response(200, b'{"objects":[' + b",".join(infos) + b"]}")


_INFO_ENCODER = json.JSONEncoder(separators=(",", ":"))


def _info_json(ws: Workspace, obj: dict) -> bytes:
    """ObjectInfo of `obj` as JSON, cached until the record is replaced or rewritten (modified_at moves)."""
    cache = ws.cache("object_info_json")
    hit = cache.get(obj["path"])
    if hit is not None and hit[0] is obj and hit[1] == obj["modified_at"]:
        return hit[2]
    encoded = _INFO_ENCODER.encode(object_info(obj)).encode()
    cache[obj["path"]] = (obj, obj["modified_at"], encoded)
    return encoded


@routes.get("/api/2.0/workspace/get-status")
def get_status(ws: Workspace, req: Request) -> dict:
    return object_info(_require(ws, normalize_path(req.require("path"))))


@routes.post("/api/2.0/workspace/mkdirs")
def mkdirs_handler(ws: Workspace, req: Request) -> dict:
    mkdirs(ws, req.require("path"))
    return {}


@routes.post("/api/2.0/workspace/delete")
def delete_handler(ws: Workspace, req: Request) -> dict:
    path = normalize_path(req.require("path"))
    if path == "/":
        raise invalid("Cannot delete the root folder")
    recursive = req.json.get("recursive") in (True, "true")
    delete_object(ws, path, recursive=recursive)
    return {}


def _import_content(req: Request) -> bytes:
    content = req.json.get("content")
    if content is None:
        return b""
    if req.form is not None:  # multipart upload: the raw bytes
        return content if isinstance(content, bytes) else str(content).encode()
    try:
        # MIME base64 (line breaks every 76 characters, Python's base64.encodebytes) is accepted as the service does.
        return base64.b64decode(_without_line_breaks(content), validate=True)
    except (ValueError, TypeError):
        raise invalid("content must be base64-encoded") from None


def _without_line_breaks(content: Any) -> Any:
    return content.replace("\n", "").replace("\r", "") if isinstance(content, str) else content


@routes.post("/api/2.0/workspace/import")
def import_handler(ws: Workspace, req: Request) -> dict:
    body = req.json
    path = normalize_path(req.require("path"))
    fmt = body.get("format") or "SOURCE"
    if fmt not in IMPORT_FORMATS:
        raise invalid(f"Invalid format: {fmt}. Supported formats: {', '.join(IMPORT_FORMATS)}")
    language = body.get("language") or None
    if language is not None and (not isinstance(language, str) or language not in nb.LANGUAGES):
        raise invalid(f"Invalid language: {language}")
    overwrite = body.get("overwrite") in (True, "true", "True")
    content = _import_content(req)
    if len(content) > MAX_IMPORT_BYTES:
        raise ApiError(
            400,
            "MAX_NOTEBOOK_SIZE_EXCEEDED",
            f"File size imported is ({len(content)} bytes), exceeded max size ({MAX_IMPORT_BYTES} bytes)",
        )
    _import(ws, path, fmt, language, content, overwrite)
    return {}


def _import(ws: Workspace, path: str, fmt: str, language: str | None, content: bytes, overwrite: bool) -> None:
    if fmt == "DBC":
        _import_archive(ws, path, [(p, src, lang) for p, src, lang in nb.read_dbc(content)], overwrite)
    elif fmt == "SOURCE" and language is None:
        if not content.startswith(b"PK"):
            raise invalid("The language parameter is required when importing a notebook in SOURCE format")
        _import_archive(ws, path, nb.read_source_zip(content), overwrite)
    elif fmt in ("SOURCE", "R_MARKDOWN"):
        if fmt == "R_MARKDOWN" and language not in (None, "R"):
            raise invalid("R_MARKDOWN format is only supported for R notebooks")
        put_notebook(ws, path, language or "R", content, overwrite)
    elif fmt == "JUPYTER":
        source, lang = nb.from_jupyter(content)
        put_notebook(ws, _strip_extension(path, ".ipynb"), lang, source, overwrite)
    elif fmt == "HTML":
        source, lang = nb.from_html(content)
        put_notebook(ws, _strip_extension(path, ".html"), lang, source, overwrite)
    elif fmt == "RAW":
        put_file(ws, path, content, overwrite)
    else:  # AUTO: a notebook when the extension and the header say so (the extension is stripped)
        inferred = nb.language_for_extension(path)
        if path.endswith(".ipynb"):
            source, lang = nb.from_jupyter(content)
            put_notebook(ws, path[: -len(".ipynb")], lang, source, overwrite)
        elif inferred and nb.has_header(content):
            put_notebook(ws, path.rpartition(".")[0], inferred, content, overwrite)
        else:
            put_file(ws, path, content, overwrite)


def _strip_extension(path: str, ext: str) -> str:
    return path[: -len(ext)] if path.endswith(ext) else path


def _import_archive(ws: Workspace, path: str, entries: list[tuple[str, bytes, str | None]], overwrite: bool) -> None:
    """A directory archive lands at `path`; a single-notebook archive becomes the notebook `path`."""
    if len(entries) == 1 and "/" not in entries[0][0]:
        _, data, language = entries[0]
        if language:
            put_notebook(ws, path, language, data, overwrite)
        else:
            put_file(ws, path, data, overwrite)
        return
    if get_object(ws, path) is not None and not overwrite:
        raise already_exists(f"Path ({path}) already exists.")
    _parent_dir(ws, path)
    roots = {rel.split("/", 1)[0] for rel, _, _ in entries}
    strip_root = len(roots) == 1 and all("/" in rel for rel, _, _ in entries)
    for rel, data, language in entries:
        rel = rel.split("/", 1)[1] if strip_root else rel
        target = posixpath.join(path, rel)
        mkdirs(ws, posixpath.dirname(target))
        if language:
            put_notebook(ws, target, language, data, overwrite=True)
        else:
            put_file(ws, target, data, overwrite=True)
    mkdirs(ws, path)


@routes.get("/api/2.0/workspace/export")
def export_handler(ws: Workspace, req: Request) -> dict | Response:
    path = normalize_path(req.require("path"))
    obj = _require(ws, path)
    fmt = req.arg("format") or "SOURCE"
    if fmt not in EXPORT_FORMATS:
        raise invalid(f"Invalid format: {fmt}")
    content, file_type = _export(ws, obj, fmt)
    if req.bool_arg("direct_download"):
        return Response(200, content, content_type="application/octet-stream")
    if len(content) > MAX_IMPORT_BYTES:
        raise ApiError(400, "MAX_NOTEBOOK_SIZE_EXCEEDED", "Exported content is too large, use direct_download")
    return {"content": base64.b64encode(content).decode(), "file_type": file_type}


def _export(ws: Workspace, obj: dict, fmt: str) -> tuple[bytes, str]:
    kind = obj["object_type"]
    name = posixpath.basename(obj["path"])
    if kind == "LIBRARY":
        raise invalid("Export of a library is not supported")
    if kind in ("DIRECTORY", "REPO"):
        return _export_directory(ws, obj, fmt)
    if kind == "FILE":
        if fmt in ("DBC", "HTML", "JUPYTER", "R_MARKDOWN"):
            raise invalid(f"Export format {fmt} is not supported for files")
        return obj["content"], posixpath.splitext(name)[1].lstrip(".")
    language = obj["language"]
    source = obj["content"]
    if fmt in ("SOURCE", "AUTO", "RAW"):
        return _exported_source(source), nb.LANGUAGES[language].extension
    if fmt == "R_MARKDOWN":
        if language != "R":
            raise invalid("R_MARKDOWN export is only supported for R notebooks")
        return source, "Rmd"
    if fmt == "JUPYTER":
        return nb.to_jupyter(source, language, name), "ipynb"
    if fmt == "HTML":
        return nb.to_html(source, language, name), "html"
    entry = f"{name}.{nb.LANGUAGES[language].dbc_extension}"
    return nb.build_zip([(entry, nb.dbc_entry(source, language, name, obj["object_id"]))]), "dbc"


def _exported_source(source: bytes) -> bytes:
    """SOURCE as the service writes it from the cells: the notebook's final newline is not part of them."""
    return source[:-1] if source.endswith(b"\n") else source


def _export_directory(ws: Workspace, obj: dict, fmt: str) -> tuple[bytes, str]:
    if fmt not in ("DBC", "SOURCE", "AUTO"):
        raise invalid(f"Export format {fmt} is not supported for directories")
    root = obj["path"]
    top = posixpath.basename(root) or "root"
    entries = []
    for item in walk(ws, root):
        rel = posixpath.join(top, posixpath.relpath(item["path"], root))
        if item["object_type"] == "NOTEBOOK":
            lang = nb.LANGUAGES[item["language"]]
            if fmt == "DBC":
                data = nb.dbc_entry(
                    item["content"], item["language"], posixpath.basename(item["path"]), item["object_id"]
                )
                entries.append((f"{rel}.{lang.dbc_extension}", data))
            else:
                entries.append((f"{rel}.{lang.extension}", _exported_source(item["content"])))
        elif item["object_type"] == "FILE" and fmt == "AUTO":
            entries.append((rel, item["content"]))
    return nb.build_zip(entries), "dbc" if fmt == "DBC" else "zip"
