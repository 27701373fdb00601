"""The kinds dbsync replicates, in dependency order.

Adding a kind: its watcher (with its `declaration`), its replicator, and one line in `_ORDER` here. Nothing
else names a kind: the engine, scheduler, report, reverse seed, config and page read the declarations.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import import_module
from typing import TYPE_CHECKING

from dbsync.declaration import CATALOGUE, Declaration
from dbsync.replicators.base import Replicator
from dbsync.watchers.base import Watcher

if TYPE_CHECKING:
    from dbsync.config import Settings

# (kind, module name under watchers/ and replicators/) in the order a cycle applies them.
_ORDER: tuple[tuple[str, str], ...] = (
    # Instance profiles first: a SCIM role names a profile the target must already have registered.
    ("instance_profiles", "instance_profiles"),
    # Every principal before any membership names it (members may be users, SPs or other groups).
    ("groups", "identities"),
    ("service_principals", "identities"),
    ("users", "identities"),
    ("group_members", "identities"),
    # Destinations before the jobs (webhook_notifications) and alerts that notify them.
    ("notification_destinations", "notification_destinations"),
    ("cluster_policies", "cluster_policies"),
    ("instance_pools", "instance_pools"),
    # Global init scripts run on every cluster start: in place before any cluster could start.
    ("global_init_scripts", "global_init_scripts"),
    ("clusters", "clusters"),
    # A cluster's libraries are part of its desired state: right after the cluster exists on the target.
    ("cluster_libraries", "cluster_libraries"),
    # Warehouses before the jobs, queries and dashboards that run on them.
    ("sql_warehouses", "sql_warehouses"),
    # Report-only: listed on the source, never written (a mount needs the target's own credentials).
    ("mounts", "mounts"),
    ("directories", "workspace_objects"),
    ("notebooks", "workspace_objects"),
    ("files", "workspace_objects"),
    ("repos", "repos"),
    # Pipelines after the notebooks, policies and pools they name; before the jobs whose pipeline_task runs them.
    ("pipelines", "pipelines"),
    ("jobs", "jobs"),
    ("secret_scopes", "secrets"),
    ("secrets", "secrets"),
    # SQL objects after the warehouses they run on; an alert after the query it watches.
    ("sql_queries", "sql_objects"),
    ("sql_alerts", "sql_objects"),
    ("dashboards", "dashboards"),
    # A schedule lives on its dashboard's copy and names its warehouse, destinations and users: after all of them.
    ("dashboard_schedules", "dashboard_schedules"),
    ("mlflow_experiments", "mlflow_objects"),
    ("registered_models", "mlflow_objects"),
    # Endpoints after the registered models (and secret scopes) they serve and read.
    ("serving_endpoints", "serving_endpoints"),
    ("workspace_conf", "workspace_settings"),
    ("ip_access_lists", "workspace_settings"),
    ("permissions", "permissions"),
    # Unity Catalog securables over REST: a location needs its credential, a catalog its location (storage root)
    # or connection (foreign catalog); all before the schemas SQL creates in those catalogs.
    ("storage_credentials", "uc_storage"),
    ("external_locations", "uc_storage"),
    ("connections", "uc_catalogs"),
    ("catalogs", "uc_catalogs"),
    # Metastore DDL through a SQL warehouse: a table needs its schema, a view the tables it reads.
    ("schemas", "metastore"),
    ("tables", "metastore"),
    # A managed table's data (tables.data: deep_clone) is cloned into the table `tables` created.
    ("table_data", "table_data"),
    ("views", "metastore"),
    # Grants after the objects they are on (and after the principals they name).
    ("table_acls", "table_acls"),
    # Unity Catalog volumes and functions live in schemas (made by the schemas kind); grants after every securable.
    ("volumes", "uc_catalogs"),
    ("functions", "uc_catalogs"),
    ("uc_grants", "uc_grants"),
)

KIND_NAMES: tuple[str, ...] = tuple(name for name, _ in _ORDER)


@dataclass(frozen=True)
class Kind:
    name: str
    watcher: Watcher
    replicator: Replicator

    @property
    def declaration(self) -> Declaration:
        """What the kind declares about itself (next to its watcher)."""
        return self.watcher.declaration


# Kinds added at run time by `register` (a test's toy kind, a plugin): (kind, the kind it follows).
_registered: list[tuple[Kind, str | None]] = []


@cache
def kinds() -> tuple[Kind, ...]:
    """Every kind, dependency ordered (each module exposes `watcher_for(kind)` / `replicator_for(kind)`)."""
    out = []
    for name, module in _ORDER:
        watchers = import_module(f"dbsync.watchers.{module}")
        replicators = import_module(f"dbsync.replicators.{module}")
        out.append(Kind(name, watchers.watcher_for(name), replicators.replicator_for(name)))
    for extra, after in _registered:
        names = [k.name for k in out]
        out.insert(names.index(after) + 1 if after in names else len(out), extra)
    return tuple(out)


def register(watcher: Watcher, replicator: Replicator, after: str | None = None) -> Kind:
    """Add a kind defined outside dbsync's modules, right after `after` (last by default): the line in `_ORDER`."""
    if watcher.kind != replicator.kind:
        raise ValueError(f"watcher and replicator name different kinds: {watcher.kind!r}, {replicator.kind!r}")
    if watcher.kind in kind_names():
        raise ValueError(f"kind {watcher.kind!r} is already registered: pick another name")
    added = Kind(watcher.kind, watcher, replicator)
    _registered.append((added, after))
    _changed()
    return added


def unregister(name: str) -> None:
    """Remove a kind added with `register` (a test's cleanup)."""
    _registered[:] = [(k, after) for k, after in _registered if k.name != name]
    _changed()


def kind_names() -> tuple[str, ...]:
    """Every kind's name, in dependency order (the registered ones included)."""
    return KIND_NAMES


def disabled_kinds(settings: Settings) -> tuple[str, ...]:
    """The kinds these settings turn off (kinds.<kind>.enabled: false, or a metastore kind without a warehouse).

    The daemon never runs them and `validate` and /report leave them out; `status` and /metrics do too, so a kind
    turned off after its listing failed is not `unknown` (and paged on, DbsyncKindUnknown) for ever."""
    return tuple(name for name in KIND_NAMES if not settings.kind(name).enabled)


def disabled_by(settings: Settings, name: str) -> str | None:
    """The setting that turns a disabled kind on again, as `status` names it; None for an enabled kind.

    A metastore kind is off by default while no SQL warehouse is set: `status` said `kinds.tables.enabled`, a
    setting nobody had set to false, and which, set to true without a warehouse, only makes every listing fail."""
    if settings.kind(name).enabled:
        return None
    configured = settings.kinds.get(name)
    if configured is not None and "enabled" in configured.model_fields_set:
        return f"kinds.{name}.enabled"
    return "no SQL warehouse set: metastore.source_warehouse_id and metastore.target_warehouse_id"


def _changed() -> None:
    global KIND_NAMES
    kinds.cache_clear()
    _by_name.cache_clear()
    acl_watchers.cache_clear()
    _declarations.cache_clear()
    KIND_NAMES = tuple(k.name for k in kinds())


def kind(name: str) -> Kind:
    return _by_name()[name]


def declaration(name: str) -> Declaration:
    """What the kind `name` declares; the defaults for a name no kind has (read per object: a dict lookup)."""
    return _declarations().get(name) or _DEFAULTS


_DEFAULTS = Declaration()


@cache
def _by_name() -> dict[str, Kind]:
    return {k.name: k for k in kinds()}


@cache
def acl_watchers() -> dict[str, Watcher]:
    """The watchers of the kinds whose objects have ACLs, by kind name (read on every ACL read and write)."""
    return {k.name: k.watcher for k in kinds() if k.watcher.acl_type}


@cache
def _declarations() -> dict[str, Declaration]:
    return {k.name: k.declaration for k in kinds()}


# The layers below the kinds (config, metrics) read the names and declarations from the catalogue.
CATALOGUE.publish(_declarations)
