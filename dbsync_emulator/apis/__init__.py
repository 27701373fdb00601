"""The emulated REST APIs, one module per service area.

Each module exposes `routes` (a `Routes`) and may expose `init(ws)`, which creates the built-ins a new
workspace has (the root directory, the `admins` and `users` groups, ...). `init` also runs on reset.
"""

from __future__ import annotations

from types import ModuleType

from dbsync_emulator.apis import (
    clusters,
    commands,
    dbfs,
    files,
    global_init_scripts,
    groups_legacy,
    instance_profiles,
    jobs,
    lakeview,
    lakeview_schedules,
    libraries,
    mlflow,
    mlflow_webhooks,
    notification_destinations,
    permissions,
    pipelines,
    policies,
    pools,
    repos,
    scim,
    secrets,
    serving_endpoints,
    settings,
    sql,
    sql_history,
    sql_objects,
    tokens,
    unity_catalog,
    volumes,
    workspace,
)
from dbsync_emulator.router import Routes
from dbsync_emulator.state import Workspace

# Order matters for init(): the root directory exists before SCIM creates home directories.
MODULES: tuple[ModuleType, ...] = (
    workspace,
    dbfs,
    scim,
    groups_legacy,
    repos,
    jobs,
    clusters,
    pools,
    policies,
    permissions,
    secrets,
    instance_profiles,
    sql,
    sql_history,
    commands,
    libraries,
    global_init_scripts,
    sql_objects,
    lakeview,
    mlflow,
    mlflow_webhooks,
    settings,
    tokens,
    volumes,
    files,
    pipelines,
    serving_endpoints,
    notification_destinations,
    lakeview_schedules,
    unity_catalog,
)


def all_routes() -> Routes:
    routes = Routes()
    for module in MODULES:
        routes.merge(module.routes)
    return routes


def install(ws: Workspace) -> None:
    """Register every module's built-ins on `ws` and create them."""
    for module in MODULES:
        init = getattr(module, "init", None)
        if init is not None:
            ws.on_init.append(init)
            init(ws)
