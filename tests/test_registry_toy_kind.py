"""A kind is its watcher, its replicator and one registry line: a toy kind defined here runs end to end.

The toy kind replicates instance profiles (the emulator's /api/2.0/instance-profiles, the same list/add
calls the SDK makes) under its own name, with its own declaration. Nothing outside this file and
`registry.register` (the programmatic form of the registry line) knows it: the config's defaults, a
sync cycle, validation, the scheduler's groups and the report page read its declaration.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from conftest import Pair

from dbsync import registry
from dbsync.config import Settings
from dbsync.context import SyncContext
from dbsync.declaration import Declaration
from dbsync.model import Applied, Change, Resource, fingerprint
from dbsync.replicators.base import Replicator
from dbsync.report import validate
from dbsync.report_html import render
from dbsync.scheduler import kind_groups
from dbsync.watchers.base import Watcher
from dbsync.workspace import Workspace

TOY = "toy_profiles"
ARN = "arn:aws:iam::123456789012:instance-profile/toy"
STRAY = "arn:aws:iam::123456789012:instance-profile/made-by-hand"
BUILTIN = "arn:aws:iam::123456789012:instance-profile/every-workspace-has-it"


class ToyWatcher(Watcher):
    kind = TOY
    declaration = Declaration(interval=42, link="{host}/#toy/{key}", builtin_target_keys=frozenset({BUILTIN}))

    def list(self, ctx: SyncContext, ws: Workspace) -> Iterator[Resource]:
        for profile in ws.client.instance_profiles.list():
            payload = {"instance_profile_arn": profile.instance_profile_arn}
            yield Resource(TOY, profile.instance_profile_arn or "", "toy", fingerprint(payload), payload)

    def fetch(self, ctx: SyncContext, ws: Workspace, stub: Resource) -> Resource:
        return stub  # the listing is the payload


class ToyReplicator(Replicator):
    kind = TOY

    def apply(self, ctx: SyncContext, change: Change) -> Applied:
        assert change.resource is not None and change.resource.payload is not None
        arn = change.resource.payload["instance_profile_arn"]
        ctx.target.client.instance_profiles.add(arn, skip_validation=True)
        return Applied(arn, adopted=False)

    def delete(self, ctx: SyncContext, change: Change) -> None:
        ctx.target.client.instance_profiles.remove(change.target_key or change.key)


class WarehouseToyWatcher(ToyWatcher):
    kind = "toy_tables"
    declaration = Declaration(needs_warehouse=True)


class WarehouseToyReplicator(ToyReplicator):
    kind = "toy_tables"


@pytest.fixture
def toy() -> Iterator[None]:
    registry.register(ToyWatcher(), ToyReplicator(), after="instance_profiles")
    registry.register(WarehouseToyWatcher(), WarehouseToyReplicator())
    try:
        yield
    finally:
        registry.unregister(TOY)
        registry.unregister("toy_tables")


def _settings(**document: Any) -> Settings:
    sides = {"host": "https://x.cloud.databricks.com", "token": "dapi-x"}
    return Settings(source=sides, target={**sides, "host": "https://y.cloud.databricks.com"}, **document)


def test_a_registered_kind_gets_its_declared_config_defaults(toy: None) -> None:
    """Its interval and warehouse need come from its declaration; `kinds:` accepts it and overrides it."""
    assert registry.kind_names().index(TOY) == registry.kind_names().index("instance_profiles") + 1
    settings = _settings()
    assert settings.interval(TOY) == 42
    assert settings.kind(TOY).enabled
    assert not settings.kind("toy_tables").enabled  # declared needs_warehouse, and none is set
    assert _settings(metastore={"source_warehouse_id": "w1"}).kind("toy_tables").enabled
    assert _settings(kinds={TOY: {"interval": 7}}).interval(TOY) == 7
    assert (TOY,) in kind_groups(settings)


def test_a_registered_kind_is_unknown_once_removed() -> None:
    """Without the registry line the kind does not exist: the config refuses it by name."""
    with pytest.raises(ValueError, match="unknown kind 'toy_profiles'"):
        _settings(kinds={TOY: {"interval": 7}})


def test_a_registered_kind_syncs_validates_and_links(toy: None, pair: Pair) -> None:
    """A cycle copies the toy objects, a second writes nothing, validation finds it in sync with a UI link."""
    pair.src.instance_profiles.add(ARN, skip_validation=True)
    pair.dst.instance_profiles.add(BUILTIN, skip_validation=True)  # declared built in: never "extra"

    first = pair.sync(only=[TOY])
    assert (first[TOY].outcome, first[TOY].created) == ("ok", 1)
    assert {p.instance_profile_arn for p in pair.dst.instance_profiles.list()} == {ARN, BUILTIN}

    pair.reset_stats()
    second = pair.sync(only=[TOY])
    assert (second[TOY].created, second[TOY].updated, pair.target_writes()) == (0, 0, 0)

    ctx = pair.context()
    report = validate(ctx, [TOY])
    (result,) = report.kinds
    assert (result.source_count, result.in_sync, result.extra_count) == (1, 1, 0)
    pair.dst.instance_profiles.add(STRAY, skip_validation=True)
    report = validate(ctx, [TOY])
    assert report.kinds[0].extra == [STRAY]  # made on the target by hand: reported, with the declared UI link
    assert f'href="{pair.target.url}/#toy/{quote(STRAY, safe="/")}"' in render(report, target_host=pair.target.url)
    ctx.store.close()
