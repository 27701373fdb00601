"""Directories, notebooks and files on the target: mkdirs, import with overwrite, delete or archive."""

from __future__ import annotations

import base64
import contextlib
import posixpath
import time

from databricks.sdk.errors import DatabricksError, NotFound, ResourceAlreadyExists
from databricks.sdk.service.workspace import ExportFormat, ImportFormat, Language

from dbsync.context import SyncContext
from dbsync.errors import Permanent
from dbsync.model import Applied, Change
from dbsync.replicators.base import Replicator
from dbsync.watchers.workspace_objects import ARCHIVE_ROOT, written_paths


class WorkspaceObjectReplicator(Replicator):
    def __init__(self, kind: str) -> None:
        self.kind = kind

    def apply(self, ctx: SyncContext, change: Change) -> Applied:
        resource = change.resource
        assert resource is not None and resource.payload is not None
        path = resource.payload["path"]
        if self.kind == "directories":
            ctx.target.client.workspace.mkdirs(path)
        else:
            self._import(ctx, path, resource.body or b"", resource.payload.get("language"))
        written_paths(ctx, self.kind).append(path)  # the drift baseline is read after this write
        return Applied(target_key=path)

    def _import(self, ctx: SyncContext, path: str, body: bytes, language: str | None) -> None:
        workspace = ctx.target.client.workspace
        fmt, lang = (ImportFormat.SOURCE, Language(language)) if language else (ImportFormat.RAW, None)
        # JSON import, not the SDK's multipart upload(): the SDK never retries a multipart request on 429.
        content = base64.b64encode(body).decode()

        def write(overwrite: bool = True) -> None:
            workspace.import_(path, content=content, format=fmt, language=lang, overwrite=overwrite)

        try:
            write()
        except NotFound:
            # The parent folder is not there (directories not replicated yet, or excluded).
            workspace.mkdirs(posixpath.dirname(path))
            write()
        except ResourceAlreadyExists:
            # A known service bug: an overwrite of a workspace file can fail; delete and import.
            workspace.delete(path)
            write(overwrite=False)
        except DatabricksError as err:
            if err.error_code in ("INVALID_PARAMETER_VALUE", "MAX_NOTEBOOK_SIZE_EXCEEDED"):
                raise Permanent(f"the target rejected {path}: {err}") from err
            raise

    def delete(self, ctx: SyncContext, change: Change) -> None:
        path = change.target_key or change.key
        if ctx.settings.deletes.mode == "archive":
            self._archive(ctx, path)
        with contextlib.suppress(NotFound):  # already gone: the delete has happened
            ctx.target.client.workspace.delete(path, recursive=True)

    def _archive(self, ctx: SyncContext, path: str) -> None:
        """Copy the object under /dbsync-archive/<date>/<path> before it is deleted."""
        workspace = ctx.target.client.workspace
        fmt = {"directories": ExportFormat.DBC, "notebooks": ExportFormat.SOURCE, "files": ExportFormat.RAW}[self.kind]
        try:
            status = workspace.get_status(path)
            body = workspace.download(path, format=fmt).read()
        except NotFound:
            return
        archived = f"{ARCHIVE_ROOT}/{time.strftime('%Y-%m-%d')}{path}"
        workspace.mkdirs(posixpath.dirname(archived))
        language = Language(status.language.value) if status.language else None
        import_format = ImportFormat(fmt.value)
        workspace.import_(
            archived,
            content=base64.b64encode(body).decode(),
            format=import_format,
            language=language,
            overwrite=True,
        )


def replicator_for(kind: str) -> Replicator:
    return WorkspaceObjectReplicator(kind)
