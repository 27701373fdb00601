"""Instance pools on the target: adopt by dbsync_source_id tag, create, edit, delete."""

from __future__ import annotations

from typing import Any

from dbsync.model import Resource
from dbsync.replicators.base import Replicator
from dbsync.replicators.common import TargetIndex
from dbsync.replicators.in_place import EditedInPlace
from dbsync.tags import SOURCE_ID_TAG

BY_TAG = TargetIndex(
    "instance_pools",
    lambda ctx: (
        ((p.custom_tags or {}).get(SOURCE_ID_TAG, ""), p.instance_pool_id or "")
        for p in ctx.target.client.instance_pools.list()
        if (p.custom_tags or {}).get(SOURCE_ID_TAG)
    ),
)


class InstancePoolReplicator(EditedInPlace):
    kind = "instance_pools"
    service, id_field, noun, index = "instance_pools", "instance_pool_id", "pool", BY_TAG
    index_finds_own = True  # found by dbsync's own tag: it made it
    unrecorded_origin = "created"  # before ownership was recorded, only dbsync's own tag was ever adopted

    def target_payload(self, resource: Resource) -> dict[str, Any]:
        payload = dict(resource.payload or {})
        payload["custom_tags"] = {**payload.get("custom_tags", {}), SOURCE_ID_TAG: resource.key}
        return payload

    def name(self, payload: dict[str, Any]) -> str:
        return str(payload.get("instance_pool_name", ""))


def replicator_for(kind: str) -> Replicator:
    return InstancePoolReplicator()
