"""Upsert / Delete: a write always carries what it needs, and a replicator reports through `Applied`."""

from __future__ import annotations

import copy

import pytest
from conftest import Pair

from dbsync.model import Delete, Prior, Resource, Upsert
from dbsync.replicators.identities import CREATED, replicator_for


def test_an_upsert_of_an_unfetched_resource_is_refused_at_once() -> None:
    """A listing stub (no payload) never reaches a replicator: the mistake names the object."""
    with pytest.raises(ValueError, match="users ana: an upsert needs the fetched payload"):
        Upsert(Resource("users", "ana"), None)


def test_create_or_update_follows_the_recorded_target_key() -> None:
    """No recorded target copy: create; one recorded: update; a delete is keyed by its prior."""
    resource = Resource("jobs", "1", payload={"name": "nightly"})
    prior = Prior("jobs", "1", None, "fp", "9", None, "synced", 0)
    assert Upsert(resource, None).action == "create"
    assert Upsert(resource, Prior("jobs", "1", None, None, None, None, "error", 1)).action == "create"
    assert Upsert(resource, prior).action == "update"
    assert (Delete(prior).action, Delete(prior).key, Delete(prior).target_key) == ("delete", "1", "9")


def test_a_replicator_reports_the_creation_without_editing_the_watchers_resource(pair: Pair) -> None:
    """The identity created on the target is recorded as dbsync's (so failback can delete it), yet the
    resource the watcher listed is left as it was: a retry or a plan sees the source, not the last write."""
    ctx = pair.context(identities={"create_users": True})
    try:
        resource = Resource("users", "ana@example.com", "ana@example.com", "hint-from-listing")
        resource.payload = {"userName": "ana@example.com", "displayName": "Ana"}
        before = copy.deepcopy(resource)
        applied = replicator_for("users").apply(ctx, Upsert(resource, None))
        assert resource == before
        assert applied.adopted is False and applied.meta.get(CREATED) is True
        assert applied.version_hint is not None and applied.version_hint != "hint-from-listing"
        ctx.store.record_applied(resource, applied)
        prior = ctx.store.prior("users", "ana@example.com")
        assert prior.source_meta.get(CREATED) is True and prior.origin == "created"
        assert prior.version_hint == applied.version_hint
    finally:
        ctx.store.close()
