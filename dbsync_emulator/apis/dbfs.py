"""The DBFS API (`/api/2.0/dbfs/*`): where cluster init scripts, libraries and FileStore uploads live.

Shapes and limits follow databricks-sdk `service/files.py` (`DbfsAPI`): FileInfo `{path, is_dir, file_size,
modification_time}`; `put` takes base64 `contents` up to 1 MB inline (MAX_BLOCK_SIZE_EXCEEDED above) or a
multipart file part; `add-block` takes base64 blocks up to 1 MB; `read` answers `{bytes_read, data}` with a
default length of 0.5 MB and refuses more than 1 MB (MAX_READ_SIZE_EXCEEDED); a write handle expires after
10 idle minutes; `delete` of a non-empty directory without `recursive` is IO_ERROR. Paths are absolute,
with or without the `dbfs:` scheme.

State: table "dbfs" (path → {is_dir, content, modification_time}), "dbfs_children" (directory → {child
path: True}) and "dbfs_handles" (handle → {path, blocks, touched}). `read_file()` and `exists()` let
other modules (clusters' init scripts, libraries) check what is on DBFS.

Not modelled: mounts (`/mnt/...` is an ordinary directory here), the 503 "re-invoke delete" increments of
very large deletes, `/Volumes` through DBFS (use the Files API).
"""

from __future__ import annotations

import base64
import binascii
import posixpath
from typing import Any

from dbsync_emulator.errors import ApiError, already_exists, invalid, not_found
from dbsync_emulator.router import Request, Routes
from dbsync_emulator.state import Workspace

routes = Routes()

PREFIX = "/api/2.0/dbfs"
FILES, CHILDREN, HANDLES = "dbfs", "dbfs_children", "dbfs_handles"
MAX_BLOCK_BYTES = 1024 * 1024  # add-block and inline put
MAX_READ_BYTES = 1024 * 1024
DEFAULT_READ_BYTES = 512 * 1024
HANDLE_IDLE_MS = 10 * 60 * 1000


def init(ws: Workspace) -> None:
    """A new workspace's DBFS has the root and /FileStore."""
    if "/" not in ws.table(FILES):
        ws.table(FILES)["/"] = {"is_dir": True, "modification_time": ws.now_ms()}
        ws.table(CHILDREN)["/"] = {}
    mkdirs(ws, "/FileStore")


def normalize(path: Any) -> str:
    """An absolute DBFS path without the `dbfs:` scheme or a trailing slash; anything else is a 400."""
    if not isinstance(path, str) or not path:
        raise invalid("Path must be a non-empty string")
    if path.startswith("dbfs:"):
        path = path[len("dbfs:") :]
    if not path.startswith("/"):
        raise invalid(f"Path must be absolute: {path}")
    normalized = posixpath.normpath(path)
    return "/" if normalized in ("/", "//") else normalized


def _missing(path: str) -> ApiError:
    return not_found(f"No file or directory exists on path dbfs:{path}.")


def _require(ws: Workspace, path: str) -> dict:
    record = ws.table(FILES).get(path)
    if record is None:
        raise _missing(path)
    return record


def exists(ws: Workspace, path: str) -> bool:
    """Whether a file or directory exists at a DBFS path (`dbfs:/...` or `/...`)."""
    return normalize(path) in ws.table(FILES)


def read_file(ws: Workspace, path: str) -> bytes | None:
    """The content of a DBFS file, None when there is no file there."""
    record = ws.table(FILES).get(normalize(path))
    return None if record is None or record["is_dir"] else bytes(record.get("content", b""))


def mkdirs(ws: Workspace, path: str) -> None:
    """Create a directory and its parents; a file on the way is RESOURCE_ALREADY_EXISTS."""
    path = normalize(path)
    record = ws.table(FILES).get(path)
    if record is not None:
        if not record["is_dir"]:
            raise already_exists(f"A file or directory already exists at the input path dbfs:{path}.")
        return
    mkdirs(ws, posixpath.dirname(path))
    _insert(ws, path, {"is_dir": True, "modification_time": ws.now_ms()})


def _insert(ws: Workspace, path: str, record: dict) -> None:
    ws.table(FILES)[path] = record
    ws.table(CHILDREN).setdefault(posixpath.dirname(path), {})[path] = True
    if record["is_dir"]:
        ws.table(CHILDREN).setdefault(path, {})


def write_file(ws: Workspace, path: str, content: bytes, overwrite: bool) -> None:
    """Create or replace a file (parents are created); a directory or, without overwrite, a file is refused."""
    path = normalize(path)
    existing = ws.table(FILES).get(path)
    if existing is not None and (existing["is_dir"] or not overwrite):
        raise already_exists(f"A file or directory already exists at the input path dbfs:{path}.")
    mkdirs(ws, posixpath.dirname(path))
    _insert(ws, path, {"is_dir": False, "content": content, "modification_time": ws.now_ms()})


def _remove(ws: Workspace, path: str) -> None:
    for child in list(ws.table(CHILDREN).get(path, {})):
        _remove(ws, child)
    ws.table(CHILDREN).pop(path, None)
    ws.table(FILES).pop(path, None)
    ws.table(CHILDREN).get(posixpath.dirname(path), {}).pop(path, None)


def file_info(path: str, record: dict) -> dict:
    """FileInfo as get-status and list answer it."""
    size = 0 if record["is_dir"] else len(record.get("content", b""))
    return {
        "path": path,
        "is_dir": record["is_dir"],
        "file_size": size,
        "modification_time": record["modification_time"],
    }


def _decode(data: Any, name: str) -> bytes:
    if isinstance(data, bytes):  # a multipart file part
        return data
    if not isinstance(data, str):
        raise invalid(f"Missing or invalid {name}: base64-encoded data is required")
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise invalid(f"Invalid {name}: the data is not valid base64") from None


def _check_block(data: bytes) -> None:
    if len(data) > MAX_BLOCK_BYTES:
        raise ApiError(
            400,
            "MAX_BLOCK_SIZE_EXCEEDED",
            f"The block of {len(data)} bytes exceeds the limit of {MAX_BLOCK_BYTES} bytes; "
            "use create, add-block and close for larger files",
        )


def _flag(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


# -- handlers ---------------------------------------------------------------------------------------
@routes.get(f"{PREFIX}/get-status")
def get_status(ws: Workspace, req: Request) -> dict:
    """FileInfo of a file or directory."""
    path = normalize(req.require("path"))
    return file_info(path, _require(ws, path))


@routes.get(f"{PREFIX}/list")
def list_files(ws: Workspace, req: Request) -> dict:
    """The entries of a directory, or the file itself; `{}` for an empty directory."""
    path = normalize(req.require("path"))
    record = _require(ws, path)
    if not record["is_dir"]:
        return {"files": [file_info(path, record)]}
    files = ws.table(FILES)
    entries = [file_info(child, files[child]) for child in sorted(ws.table(CHILDREN).get(path, {}))]
    return {"files": entries} if entries else {}


@routes.post(f"{PREFIX}/mkdirs")
def mkdirs_handler(ws: Workspace, req: Request) -> dict:
    """Create a directory and its parents (idempotent)."""
    mkdirs(ws, req.require("path"))
    return {}


@routes.post(f"{PREFIX}/put")
def put(ws: Workspace, req: Request) -> dict:
    """Write a whole file from base64 `contents` (≤ 1 MB) or a multipart file part."""
    path = req.require("path")
    contents = req.param("contents")
    if contents is None and req.form is not None:  # a posted file under any field name ("file" for the CLI)
        contents = next((v for v in req.form.values() if isinstance(v, bytes)), None)
    data = _decode(contents if contents is not None else "", "contents")
    if not isinstance(contents, bytes):
        _check_block(data)
    write_file(ws, path, data, _flag(req.param("overwrite")))
    return {}


@routes.post(f"{PREFIX}/create")
def create(ws: Workspace, req: Request) -> dict:
    """Open a write stream: `{"handle"}`; the file appears on close."""
    path = normalize(req.require("path"))
    overwrite = _flag(req.param("overwrite"))
    existing = ws.table(FILES).get(path)
    if existing is not None and (existing["is_dir"] or not overwrite):
        raise already_exists(f"A file or directory already exists at the input path dbfs:{path}.")
    handle = ws.next_id("dbfs_handle", start=1)
    ws.table(HANDLES)[handle] = {"path": path, "blocks": [], "overwrite": overwrite, "touched": ws.now_ms()}
    return {"handle": handle}


def _handle(ws: Workspace, req: Request) -> tuple[int, dict]:
    raw = req.require("handle")
    try:
        handle = int(raw)
    except (TypeError, ValueError):
        raise invalid(f"Invalid handle: {raw!r}") from None
    stream = ws.table(HANDLES).get(handle)
    if stream is None or ws.now_ms() - stream["touched"] > HANDLE_IDLE_MS:
        ws.table(HANDLES).pop(handle, None)
        raise not_found(f"The handle {handle} does not exist or has expired (10 minutes idle).")
    stream["touched"] = ws.now_ms()
    return handle, stream


@routes.post(f"{PREFIX}/add-block")
def add_block(ws: Workspace, req: Request) -> dict:
    """Append a base64 block (≤ 1 MB) to an open stream."""
    _, stream = _handle(ws, req)
    data = _decode(req.require("data"), "data")
    _check_block(data)
    stream["blocks"].append(data)
    return {}


@routes.post(f"{PREFIX}/close")
def close(ws: Workspace, req: Request) -> dict:
    """Close a stream: the file now holds every block added."""
    handle, stream = _handle(ws, req)
    del ws.table(HANDLES)[handle]
    write_file(ws, stream["path"], b"".join(stream["blocks"]), overwrite=True)
    return {}


@routes.get(f"{PREFIX}/read")
def read(ws: Workspace, req: Request) -> dict:
    """`{bytes_read, data}` from `offset`, at most `length` (default 0.5 MB, limit 1 MB) bytes."""
    path = normalize(req.require("path"))
    record = _require(ws, path)
    offset = req.int_arg("offset", 0) or 0
    length = req.int_arg("length", DEFAULT_READ_BYTES)
    length = DEFAULT_READ_BYTES if length is None else length
    if record["is_dir"]:
        raise invalid(f"Cannot read a directory: {path}")
    if offset < 0 or length < 0:
        raise invalid(f"offset ({offset}) and length ({length}) must not be negative")
    if length > MAX_READ_BYTES:
        message = f"Cannot read more than {MAX_READ_BYTES} bytes at once (length {length}); read in parts"
        raise ApiError(400, "MAX_READ_SIZE_EXCEEDED", message)
    chunk = bytes(record.get("content", b""))[offset : offset + length]
    return {"bytes_read": len(chunk), "data": base64.b64encode(chunk).decode()}


@routes.post(f"{PREFIX}/delete")
def delete(ws: Workspace, req: Request) -> dict:
    """Delete a file or directory; a non-empty directory needs `recursive`. A missing path is not an error."""
    path = normalize(req.require("path"))
    record = ws.table(FILES).get(path)
    if record is None:
        return {}  # the service answers 200 for a path that is already gone
    if path == "/":
        raise invalid("Cannot delete the root directory")
    if record["is_dir"] and ws.table(CHILDREN).get(path) and not _flag(req.param("recursive")):
        raise ApiError(400, "IO_ERROR", f"Directory {path} is not empty; set recursive to delete it")
    _remove(ws, path)
    return {}


@routes.post(f"{PREFIX}/move")
def move(ws: Workspace, req: Request) -> dict:
    """Move a file or directory (recursively); the destination must not exist."""
    source = normalize(req.require("source_path"))
    destination = normalize(req.require("destination_path"))
    _require(ws, source)
    if destination in ws.table(FILES):
        raise already_exists(f"A file or directory already exists at the input path dbfs:{destination}.")
    if destination.startswith(source + "/"):
        raise invalid(f"Cannot move {source} into itself ({destination})")
    mkdirs(ws, posixpath.dirname(destination))
    files = ws.table(FILES)
    moved = [(p, files[p]) for p in _subtree(ws, source)]
    _remove(ws, source)
    for old_path, record in moved:
        _insert(ws, destination + old_path[len(source) :], record)
    return {}


def _subtree(ws: Workspace, path: str) -> list[str]:
    """A path and everything under it, parents before children."""
    out = [path]
    for child in sorted(ws.table(CHILDREN).get(path, {})):
        out.extend(_subtree(ws, child))
    return out
