"""What the Unity Catalog replicators share: adopt-or-create by name, the owner PATCH, guarded deletes.

Every UC securable is found on the target by its name (unique per metastore): one there already is adopted
(updated in place, never deleted), so a lost store or a crash between a create and its record never makes a
second one. A target in the same metastore as the source holds the very same objects: writing to them would
rewrite production, so that is refused with the reason. The owner is set by a PATCH of the securable, only when
it differs; an owner the target lacks is skipped and recorded (`partial`), and set once the target has it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from databricks.sdk.errors import DatabricksError

from dbsync.apierrors import is_gone
from dbsync.context import SyncContext
from dbsync.errors import Blocked, Kept, Permanent
from dbsync.mapping import ANY, waiting_ref
from dbsync.model import Applied, Delete, Upsert
from dbsync.watchers.uc_common import BLOCKED

PRINCIPAL_MISSING = "PRINCIPAL_DOES_NOT_EXIST"


def check_blocked(change: Upsert, adopting: bool = False) -> None:
    """Raise Blocked with the payload's reason (an unmapped URL, a write-only secret) unless adopting allows it."""
    reason = change.payload.get(BLOCKED)
    if reason and not adopting:
        raise Blocked(reason)


def existing(get: Callable[[], Any]) -> dict[str, Any] | None:
    """The target securable as a dict, or None when it is not there."""
    try:
        return get().as_dict()
    except DatabricksError as err:
        if is_gone(err):
            return None
        raise


def check_metastore(change: Upsert, found: dict[str, Any] | None, what: str) -> None:
    """Refuse to adopt a securable of the source's own metastore (source and target share it)."""
    source_metastore = change.resource.source_meta.get("metastore_id")
    if found and source_metastore and found.get("metastore_id") == source_metastore:
        raise Permanent(
            f"{what} on the target is the source's own object (both workspaces use metastore {source_metastore}): "
            "there is nothing to replicate; turn the Unity Catalog kinds off (kinds.<kind>.enabled: false) for a "
            "standby that shares the primary's metastore"
        )


def set_owner(
    ctx: SyncContext, update: Callable[[str], object], what: str, wanted: str | None, current: str | None
) -> tuple[list[str], str | None]:
    """PATCH the owner when it differs: ([], None), or ([waiting ref], note) when the target lacks the owner."""
    if not wanted or wanted.casefold() == (current or "").casefold():
        return [], None
    try:
        update(wanted)
    except DatabricksError as err:
        if err.error_code != PRINCIPAL_MISSING:
            raise
        if ctx.settings.principals_missing == "fail":
            raise Permanent(f"owner {wanted} of {what} does not exist on the target") from None
        return [waiting_ref(ANY, wanted)], f"owner {wanted} does not exist on the target; owner kept as {current}"
    return [], None


def applied(
    key: str, adopted: bool | None, owner: tuple[list[str], str | None], notes: list[str] | None = None
) -> Applied:
    """The Applied of a UC write: partial while an owner the target lacks is waited for."""
    waiting, note = owner
    text = "; ".join([*(notes or []), *([note] if note else [])]) or None
    return Applied(key, note=text, adopted=adopted, waiting_on=waiting)


def delete_created(change: Delete, what: str, delete: Callable[[], object]) -> None:
    """Delete a securable dbsync created; one the service refuses to delete (still in use) is kept."""
    try:
        delete()
    except DatabricksError as err:
        if is_gone(err):
            return
        if err.error_code in ("INVALID_STATE", "FAILED_PRECONDITION", "INVALID_PARAMETER_VALUE", "BAD_REQUEST"):
            raise Kept(f"{what} {change.key} is still in use on the target, kept: {str(err).splitlines()[0]}") from None
        raise


def differs(found: dict[str, Any], body: dict[str, Any]) -> bool:
    """Whether the target securable differs from the body in a field the body sets (unset, "" and False alike)."""
    for key, wanted in body.items():
        current = found.get(key)
        if isinstance(wanted, dict):
            if not isinstance(current, dict) or differs(current, wanted):
                return True
        elif (current or None) != (wanted or None):
            return True
    return False


def immutable(what: str, field: str, wanted: Any, current: Any) -> None:
    """A field the service cannot change in place differs: an error naming the fix, the target left as it is."""
    if wanted is not None and current is not None and wanted != current:
        raise Permanent(
            f"{what}: {field} is {current!r} on the target but {wanted!r} on the source, and it cannot be changed "
            f"in place: drop the target's {what} (dbsync creates it again) or change {field} back on the source"
        )
