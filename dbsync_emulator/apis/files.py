"""The Files API (`/api/2.0/fs/files{path}`, `/api/2.0/fs/directories{path}`): raw bytes over HTTP.

Paths are `/Volumes/<catalog>/<schema>/<volume>/...` (the volume must exist, see `volumes`) or
`/Workspace/...` (workspace files and folders, the same objects as the Workspace API). Behaviour follows
databricks-sdk `service/files.py` (`FilesAPI`): upload is a PUT of the raw body, overwriting unless
`overwrite=false` (then 409 ALREADY_EXISTS) and creating missing parent directories; download answers the
bytes with Content-Length, Content-Type and Last-Modified and honours `Range`; HEAD answers the same
headers without a body; directories are created like `mkdir -p`, listed 1000 entries a page at most
(`next_page_token`), and only an empty one can be deleted.

State for volumes: table "volume_files" (path → {is_dir, content, modified}) and "volume_children".
`If-Unmodified-Since` older than the file's last change is a 412.

Not modelled: the 5 GiB upload limit, multipart / presigned-URL uploads
(`/api/2.0/fs/create-upload-part-urls` and friends answer 404, so the SDK falls back to a single PUT).
"""

from __future__ import annotations

import posixpath
import re
from email.utils import formatdate, parsedate_to_datetime
from typing import Any

from dbsync_emulator.apis import _paging, volumes
from dbsync_emulator.apis import workspace as ws_api
from dbsync_emulator.errors import ApiError, invalid
from dbsync_emulator.router import Request, Response, Routes
from dbsync_emulator.state import Workspace

routes = Routes()

FILES, CHILDREN = "volume_files", "volume_children"
MAX_PAGE = 1000
_VOLUME_PATH = re.compile(r"^/Volumes/([^/]+)/([^/]+)/([^/]+)(/.*)?$")


def _not_found(path: str) -> ApiError:
    return ApiError(404, "NOT_FOUND", f"The file or directory {path} does not exist.")


def _normalize(path: str) -> str:
    if not path.startswith("/"):
        raise invalid(f"The path {path} must be absolute.")
    normalized = posixpath.normpath(path)
    if normalized != path.rstrip("/") and path != "/":
        raise invalid(f"The path {path} is not normalized ('.', '..' and '//' are not allowed).")
    return normalized


# -- volumes backend ---------------------------------------------------------------------------------
def _volume_root(ws: Workspace, path: str) -> str | None:
    """The volume root of a `/Volumes/...` path (created on first use), None for other paths."""
    m = _VOLUME_PATH.match(path)
    if m is None:
        if path.startswith("/Volumes"):
            raise invalid(f"The path {path} does not name a volume: /Volumes/<catalog>/<schema>/<volume>/...")
        return None
    record = volumes.find(ws, m.group(1), m.group(2), m.group(3))
    if record is None:
        raise ApiError(404, "NOT_FOUND", f"The volume {m.group(1)}.{m.group(2)}.{m.group(3)} does not exist.")
    root = f"/Volumes/{m.group(1)}/{m.group(2)}/{m.group(3)}"
    if root not in ws.table(FILES):
        ws.table(FILES)[root] = {"is_dir": True, "modified": record["created_at"]}
        ws.table(CHILDREN)[root] = {}
    return root


def _volume_mkdirs(ws: Workspace, root: str, path: str) -> None:
    record = ws.table(FILES).get(path)
    if record is not None:
        if not record["is_dir"]:
            raise ApiError(409, "ALREADY_EXISTS", f"A file already exists at {path}.")
        return
    _volume_mkdirs(ws, root, posixpath.dirname(path))
    ws.table(FILES)[path] = {"is_dir": True, "modified": ws.now_ms()}
    ws.table(CHILDREN)[path] = {}
    ws.table(CHILDREN)[posixpath.dirname(path)][path] = True


def drop_volume(ws: Workspace, volume: dict) -> None:
    """Forget every file of a deleted volume."""
    root = f"/Volumes/{volume['catalog_name']}/{volume['schema_name']}/{volume['name']}"
    for path in [p for p in ws.table(FILES) if p == root or p.startswith(root + "/")]:
        ws.table(FILES).pop(path, None)
        ws.table(CHILDREN).pop(path, None)


# -- one view over both backends ---------------------------------------------------------------------
def _entry(ws: Workspace, path: str) -> dict | None:
    """{is_dir, content?, modified} for a path of either backend, None when nothing is there."""
    if _volume_root(ws, path) is not None:
        return ws.table(FILES).get(path)
    obj = ws_api.get_object(ws, ws_api.normalize_path(_workspace_path(path)))
    if obj is None:
        return None
    is_dir = obj["object_type"] in ("DIRECTORY", "REPO")
    if not is_dir and obj["object_type"] != "FILE":
        return {"is_dir": False, "unsupported": obj["object_type"], "modified": obj.get("modified_at", 0)}
    return {"is_dir": is_dir, "content": obj.get("content", b""), "modified": obj.get("modified_at", 0)}


def _workspace_path(path: str) -> str:
    if path != "/Workspace" and not path.startswith("/Workspace/"):
        raise invalid(f"The Files API takes /Volumes/... and /Workspace/... paths, not {path}.")
    return path


def _children(ws: Workspace, path: str) -> list[str]:
    """Child paths of a directory, as the caller spells them (`/Workspace/...` or `/Volumes/...`)."""
    if _volume_root(ws, path) is not None:
        return sorted(ws.table(CHILDREN).get(path, {}))
    inner = ws_api.normalize_path(path)
    return sorted("/Workspace" + child for child in ws.table("children").get(inner, {}))


def _write(ws: Workspace, path: str, content: bytes) -> None:
    root = _volume_root(ws, path)
    if root is None:
        inner = ws_api.normalize_path(_workspace_path(path))
        ws_api.mkdirs(ws, posixpath.dirname(inner))
        ws_api.put_file(ws, inner, content, overwrite=True)
        return
    _volume_mkdirs(ws, root, posixpath.dirname(path))
    ws.table(FILES)[path] = {"is_dir": False, "content": content, "modified": ws.now_ms()}
    ws.table(CHILDREN)[posixpath.dirname(path)][path] = True


def _remove(ws: Workspace, path: str) -> None:
    root = _volume_root(ws, path)
    if root is None:
        ws_api.delete_object(ws, ws_api.normalize_path(path), recursive=False)
        return
    if path == root:
        raise invalid(f"The root of a volume cannot be deleted through the Files API: {path}.")
    ws.table(FILES).pop(path, None)
    ws.table(CHILDREN).pop(path, None)
    ws.table(CHILDREN).get(posixpath.dirname(path), {}).pop(path, None)


def _mkdirs(ws: Workspace, path: str) -> None:
    root = _volume_root(ws, path)
    if root is None:
        inner = ws_api.normalize_path(_workspace_path(path))
        obj = ws_api.get_object(ws, inner)
        if obj is not None and obj["object_type"] not in ("DIRECTORY", "REPO"):
            raise ApiError(409, "ALREADY_EXISTS", f"A file already exists at {path}.")
        ws_api.mkdirs(ws, inner)
        return
    _volume_mkdirs(ws, root, path)


# -- handlers ---------------------------------------------------------------------------------------
def _file(ws: Workspace, path: str) -> dict:
    entry = _entry(ws, path)
    if entry is None or entry["is_dir"]:
        raise _not_found(path)
    if "unsupported" in entry:
        raise invalid(f"{path} is a {entry['unsupported'].lower()}, not a file; use the Workspace API to export it.")
    return entry


def _file_headers(entry: dict, length: int) -> dict[str, str]:
    return {
        "Content-Length": str(length),
        "Last-Modified": formatdate(entry["modified"] / 1000, usegmt=True),
    }


@routes.put("/api/2.0/fs/files{path:path}")
def upload(ws: Workspace, req: Request) -> Response:
    """Write the raw body to a file; `overwrite=false` refuses an existing file with 409."""
    path = _normalize(req.path_params["path"])
    existing = _entry(ws, path)
    if existing is not None and existing["is_dir"]:
        raise ApiError(409, "ALREADY_EXISTS", f"A directory already exists at {path}.")
    if existing is not None and not req.bool_arg("overwrite", default=True):
        raise ApiError(409, "ALREADY_EXISTS", f"The file {path} already exists and overwrite is false.")
    _write(ws, path, req.raw_body)
    return Response(204, None)


@routes.get("/api/2.0/fs/files{path:path}")
def download(ws: Workspace, req: Request) -> Response:
    """The file's bytes; a `Range: bytes=a-b` request answers 206 with that slice."""
    path = _normalize(req.path_params["path"])
    entry = _file(ws, path)
    _check_unmodified_since(entry, req.headers.get("if-unmodified-since"), path)
    content = bytes(entry.get("content", b""))
    sliced = _range(req.headers.get("range"), len(content))
    if sliced is None:
        return Response(200, content, "application/octet-stream", _file_headers(entry, len(content)))
    start, end = sliced
    headers = {**_file_headers(entry, end - start), "Content-Range": f"bytes {start}-{end - 1}/{len(content)}"}
    return Response(206, content[start:end], "application/octet-stream", headers)


def _check_unmodified_since(entry: dict, header: str | None, path: str) -> None:
    """`If-Unmodified-Since`: a file changed after that date is a 412 (a ranged download must not mix versions)."""
    if not header:
        return
    try:
        since = parsedate_to_datetime(header).timestamp()
    except (TypeError, ValueError):
        return  # an unparsable date is ignored, as HTTP requires
    if int(entry["modified"] / 1000) > since:
        raise ApiError(412, "FAILED_PRECONDITION", f"The file {path} was modified after {header}.")


def _range(header: str | None, size: int) -> tuple[int, int] | None:
    """(start, end exclusive) of a single `bytes=` range, None without one; an unsatisfiable one is a 416."""
    if not header:
        return None
    m = re.fullmatch(r"\s*bytes=(\d*)-(\d*)\s*", header)
    if m is None or (m.group(1) == "" and m.group(2) == ""):
        return None  # a range form the service ignores: the whole file
    if m.group(1) == "":  # the last N bytes
        return max(0, size - int(m.group(2))), size
    start = int(m.group(1))
    end = min(size, int(m.group(2)) + 1) if m.group(2) else size
    if start >= size or end <= start:
        raise ApiError(416, "INVALID_PARAMETER_VALUE", f"The range {header} is not satisfiable for {size} bytes.")
    return start, end


def file_metadata(ws: Workspace, req: Request) -> Response:
    """HEAD of a file: its headers, no body."""
    path = _normalize(req.path_params["path"])
    entry = _file(ws, path)
    size = len(entry.get("content", b""))
    return Response(200, None, "application/octet-stream", _file_headers(entry, size))


@routes.delete("/api/2.0/fs/files{path:path}")
def delete_file(ws: Workspace, req: Request) -> Response:
    """Delete a file (not a directory)."""
    path = _normalize(req.path_params["path"])
    _file(ws, path)
    _remove(ws, path)
    return Response(204, None)


@routes.put("/api/2.0/fs/directories{path:path}")
def create_directory(ws: Workspace, req: Request) -> Response:
    """Create a directory and its parents (idempotent)."""
    _mkdirs(ws, _normalize(req.path_params["path"]))
    return Response(204, None)


def _directory(ws: Workspace, path: str) -> dict:
    entry = _entry(ws, path)
    if entry is None or not entry["is_dir"]:
        raise ApiError(404, "NOT_FOUND", f"The directory {path} does not exist.")
    return entry


@routes.get("/api/2.0/fs/directories{path:path}")
def list_directory(ws: Workspace, req: Request) -> dict:
    """One page of DirectoryEntry (at most 1000; `next_page_token` while more remain)."""
    path = _normalize(req.path_params["path"])
    _directory(ws, path)
    size = _paging.page_size(req.int_arg("page_size"), MAX_PAGE, MAX_PAGE)
    chunk, token = _paging.page(_children(ws, path), size, req.arg("page_token"))
    contents = [_directory_entry(ws, child) for child in chunk]
    body: dict[str, Any] = {"contents": contents} if contents else {}
    if token:
        body["next_page_token"] = token
    return body


def _directory_entry(ws: Workspace, path: str) -> dict:
    entry = _entry(ws, path) or {"is_dir": False, "modified": 0}
    out: dict[str, Any] = {
        "path": path + ("/" if entry["is_dir"] else ""),
        "name": posixpath.basename(path),
        "is_directory": entry["is_dir"],
        "last_modified": entry["modified"],
    }
    if not entry["is_dir"]:
        out["file_size"] = len(entry.get("content", b""))
    return out


def directory_metadata(ws: Workspace, req: Request) -> Response:
    """HEAD of a directory: 200 when it exists."""
    _directory(ws, _normalize(req.path_params["path"]))
    return Response(200, None)


@routes.delete("/api/2.0/fs/directories{path:path}")
def delete_directory(ws: Workspace, req: Request) -> Response:
    """Delete an empty directory; a non-empty one is refused."""
    path = _normalize(req.path_params["path"])
    _directory(ws, path)
    if _children(ws, path):
        raise ApiError(409, "DIRECTORY_NOT_EMPTY", f"The directory {path} is not empty; delete its contents first.")
    _remove(ws, path)
    return Response(204, None)


routes.add("HEAD", ("/api/2.0/fs/files{path:path}",), file_metadata)
routes.add("HEAD", ("/api/2.0/fs/directories{path:path}",), directory_metadata)
