"""Directories, notebooks and files on the target: mkdirs, import, delete or archive what dbsync put there.

A notebook or file first imported without overwrite: one already at that path (the DR team's) is adopted,
overwritten with the source's, and never deleted. So is a folder the target had before dbsync's mkdirs (its ACL
entries stay the DR team's: replicators/permissions.py). A folder dbsync made is deleted only when it holds
nothing dbsync did not put there (a DR runbook added to a replicated folder keeps the folder); the delete is never
a blind recursive one.
"""

from __future__ import annotations

import base64
import contextlib
import posixpath
import time
from collections.abc import Callable

from databricks.sdk.errors import DatabricksError, NotFound, ResourceAlreadyExists
from databricks.sdk.mixins.workspace import WorkspaceExt
from databricks.sdk.service.workspace import ExportFormat, ImportFormat, Language, ObjectInfo, ObjectType

from dbsync.context import SyncContext
from dbsync.errors import Kept, ListingError, Permanent, RetryLater
from dbsync.mapping import SourceForm
from dbsync.model import Applied, Delete, Prior, Resource, SourceWrite, Upsert
from dbsync.replicators.base import Replicator
from dbsync.watchers.workspace_objects import (
    ARCHIVE_ROOT,
    folder_was_on_target,
    folder_written,
    make_folder,
    written_paths,
)


class WorkspaceObjectReplicator(Replicator):
    def __init__(self, kind: str) -> None:
        self.kind = kind
        # A folder is also judged by what it holds when deleted: a row from before folders recorded their origin
        # keeps being taken for dbsync's own (what it was then).
        self.unrecorded_origin = "created" if kind == "directories" else "adopted"

    def apply(self, ctx: SyncContext, change: Upsert) -> Applied:
        resource = change.resource
        path = resource.payload["path"]
        if self.kind == "directories":
            found = None
            moved_from = _moved_from(change)
            new_folder = change.target_key is None or moved_from is not None  # judged as a new one at this path
            if new_folder:  # mkdirs cannot tell: the target's tree before this run's mkdirs does
                try:
                    found = folder_was_on_target(ctx, path)
                except (ListingError, DatabricksError) as err:
                    raise RetryLater(f"cannot tell whether {path} is already on the target: {err}") from err
            ctx.target.client.workspace.mkdirs(path)
            if new_folder:
                folder_written(ctx, path)  # the parents this mkdirs made are dbsync's, even if their own write fails
            written_paths(ctx).append(path)  # the drift baseline is read after this write
            note, deleted = self._leave_old_folder(ctx, change, moved_from) if moved_from else (None, None)
            return Applied(target_key=path, adopted=found, note=note, deleted=deleted)
        creating = change.target_key is None
        found = self._import(ctx, path, resource.body or b"", resource.payload.get("language"), creating)
        written_paths(ctx).append(path)  # the drift baseline is read after this write
        return Applied(target_key=path, adopted=found if creating else None)

    def _import(self, ctx: SyncContext, path: str, body: bytes, language: str | None, creating: bool) -> bool:
        """Write the object; True when a first write found one already there (adopted and overwritten)."""
        workspace = ctx.target.client.workspace
        fmt, lang = (ImportFormat.SOURCE, Language(language)) if language else (ImportFormat.RAW, None)
        # JSON import, not the SDK's multipart upload(): the SDK never retries a multipart request on 429.
        content = base64.b64encode(body).decode()

        def write(overwrite: bool = True) -> None:
            workspace.import_(path, content=content, format=fmt, language=lang, overwrite=overwrite)

        try:
            return _write(workspace, path, write, creating)
        except NotFound:
            # The parent folder is not there (directories not replicated yet, or excluded): nor is the object. The
            # folders made are recorded as dbsync's: the directories kind would find them there and adopt them.
            make_folder(ctx, posixpath.dirname(path))
            write()
            return False
        except DatabricksError as err:
            if err.error_code in ("INVALID_PARAMETER_VALUE", "MAX_NOTEBOOK_SIZE_EXCEEDED"):
                raise Permanent(f"the target rejected {path}: {err}") from err
            raise

    def _leave_old_folder(self, ctx: SyncContext, change: Upsert, old: str) -> tuple[str | None, str | None]:
        """The folder's row moved to a new target path: (a note when the copy at the old one stays, the old path when
        it was deleted). It is deleted as a source delete would be (only a folder dbsync made, only when it holds
        nothing but dbsync's empty folders, archived first with `deletes.mode: archive`), counted as a delete
        (outcomes.count_applied) with an event; otherwise it stays, and the note says where and why.

        Before /Repos/<email> followed `mapping.emails`, the directories kind made /Repos/<source email> on the
        standby, empty (the repos sit under the mapped folder): it would have stayed there for good. The delete was
        made whatever the delete settings said (`deletes.mode: off` too), and counted nowhere: the summary said
        `deleted 0`, the plan showed an update, no event named it.
        """
        prior, new = change.prior, change.payload["path"]
        why = _old_folder_stays(ctx, prior, old)
        if why or prior is None:
            return f"now at {new}; {why}", None
        try:
            self.delete(ctx, Delete(prior))
        except (Kept, RetryLater) as err:
            return f"now at {new}; the folder dbsync made at {old} stays: {err}", None
        done = "archived and deleted" if ctx.settings.deletes.mode == "archive" else "deleted"
        ctx.event(
            self.kind,
            change.key,
            "delete",
            "deleted",
            f"{self.kind} {change.key}: now at {new}; the folder dbsync made at {old} was {done}",
        )
        return None, old

    def also_deletes(self, ctx: SyncContext, change: Upsert) -> str | None:
        """`plan`: the copy a folder moved by a `mapping.emails` entry leaves at its old path, when it is deleted."""
        old = _moved_from(change) if self.kind == "directories" else None
        if old is None or _old_folder_stays(ctx, change.prior, old):
            return None
        return (
            f"the folder dbsync made at {old}, now at {change.payload['path']} "
            "(kept if it holds anything but dbsync's own empty folders)"
        )

    restores_source = True

    def write_source(self, ctx: SyncContext, resource: Resource, prior: Prior | None, form: SourceForm) -> SourceWrite:
        """The kept body back at the source path (the key; the payload's path is the target's), overwritten."""
        path = resource.key
        workspace = ctx.source.client.workspace
        if self.kind == "directories":
            workspace.mkdirs(path)
            return SourceWrite(path)
        language = resource.payload.get("language")
        fmt, lang = (ImportFormat.SOURCE, Language(language)) if language else (ImportFormat.RAW, None)
        content = base64.b64encode(resource.body or b"").decode()
        try:
            workspace.import_(path, content=content, format=fmt, language=lang, overwrite=True)
        except NotFound:  # its folder was deleted too: made again, as it was
            workspace.mkdirs(posixpath.dirname(path))
            workspace.import_(path, content=content, format=fmt, language=lang, overwrite=True)
        return SourceWrite(path)

    def delete(self, ctx: SyncContext, change: Delete) -> None:
        path = change.target_key or change.key
        workspace = ctx.target.client.workspace
        inside: list[str] = []
        if self.kind == "directories":
            try:
                inside = self._inside(ctx, path)
            except NotFound:
                return  # already gone: the delete has happened
        if ctx.settings.deletes.mode == "archive":
            self._archive(ctx, path)
        with contextlib.suppress(NotFound):  # already gone: the delete has happened
            # Recursive only over dbsync's own empty folders (checked above), never over unknown content.
            workspace.delete(path, recursive=bool(inside))

    @staticmethod
    def _inside(ctx: SyncContext, path: str) -> list[str]:
        """What a folder holds; Kept when any of it is not dbsync's, RetryLater while dbsync's own files remain."""
        objects = _walk(ctx.target.client.workspace, path)
        if not objects:
            return []
        paths = [o.path or "" for o in objects]
        owned = ctx.history.owned_target_keys(paths)
        foreign = [p for p in paths if p not in owned]
        if foreign:
            raise Kept(f"folder {path} holds {len(foreign)} objects dbsync did not put there (e.g. {foreign[0]})")
        files = [o.path for o in objects if o.object_type != ObjectType.DIRECTORY]
        if files:
            raise RetryLater(f"folder {path} still holds {len(files)} replicated objects; deleted once they are", 60)
        return paths

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


def _write(workspace: WorkspaceExt, path: str, write: Callable[[bool], None], creating: bool) -> bool:
    """Import; True when a first write found an object already at the path (adopted, then overwritten)."""
    found = False
    if creating:
        try:
            write(False)
            return False
        except ResourceAlreadyExists:
            found = True
    try:
        write(True)
    except ResourceAlreadyExists:
        # A known service bug: an overwrite of a workspace file can fail; delete and import.
        workspace.delete(path)
        write(False)
    return found


def _moved_from(change: Upsert) -> str | None:
    """The target path a folder's row recorded, when it is not the one written now: a move (a `mapping.emails` entry
    added for /Users/<email> or /Repos/<email>). A row with none recorded (a first write, or one whose first mkdirs
    failed) is no move: taken for one, it failed after its mkdirs every cycle, the folder in `error` for good."""
    recorded = change.target_key
    return recorded if recorded is not None and recorded != change.payload["path"] else None


def _old_folder_stays(ctx: SyncContext, prior: Prior | None, old: str) -> str | None:
    """Why the copy a moved folder leaves at its old path is not deleted, or None when it is to be: only a folder
    dbsync made, and only as the operator's delete settings allow (`deletes.mode: off` deletes nothing)."""
    if prior is None or prior.origin != "created":
        return f"the folder at {old} is not dbsync's and stays"
    if ctx.settings.deletes.mode == "off":
        return f"the folder dbsync made at {old} stays: deletes.mode is off"
    return None


def replicator_for(kind: str) -> Replicator:
    return WorkspaceObjectReplicator(kind)


def _walk(workspace: WorkspaceExt, path: str) -> list[ObjectInfo]:
    """Everything below a folder, one listing per folder; NotFound only when the folder itself is gone.

    The SDK's recursive listing raised NotFound when a subfolder went while it walked (dbsync deletes its own
    empty subfolder at the same time, on another thread), and that read as "the folder is gone": the folder and
    the DR team's notebook in it stayed, recorded as deleted, with no word that it was kept.
    """
    found: list[ObjectInfo] = []
    folders = [path]
    while folders:
        folder = folders.pop()
        try:
            listed = list(workspace.list(folder))
        except NotFound:
            if folder == path:
                raise
            continue  # a subfolder deleted meanwhile holds nothing to keep
        found.extend(listed)
        folders.extend(o.path or "" for o in listed if o.object_type == ObjectType.DIRECTORY)
    return found
