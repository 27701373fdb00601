"""dbsync's tags on the target objects it writes: replicators set them, watchers drop them, the report reads them.

The tags of more than one kind live here; a tag of one kind only is defined by that kind's watcher.
"""

from __future__ import annotations

# On a cluster, instance pool or SQL warehouse dbsync created: the source object's id (found again after a crash).
SOURCE_ID_TAG = "dbsync_source_id"


def without_dbsync_tags(tags: dict[str, str] | None) -> dict[str, str]:
    """The tags without dbsync's own (a target object's tags compare equal to its source's)."""
    return {k: v for k, v in (tags or {}).items() if not k.startswith("dbsync_")}
