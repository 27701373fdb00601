"""The databricks-sdk client, built by need: each API the first time dbsync reads it (see sdkpackage.py).

`LazyWorkspaceClient` builds an API from the same class and on the same ApiClient as the SDK's
WorkspaceClient would (tests/test_rerun_cost.py checks each against the SDK), so a process imports the
service modules its kinds use, not all ~60.
"""

from __future__ import annotations

import importlib
import threading
from typing import Any

from databricks.sdk.core import ApiClient, Config

# WorkspaceClient property -> (module, class) it builds on the client's ApiClient; the SDK's own wiring.
APIS: dict[str, tuple[str, str]] = {
    "ai_gateway": ("databricks.sdk.service.catalog", "AiGatewayAPI"),
    "alerts": ("databricks.sdk.service.sql", "AlertsAPI"),
    "catalogs": ("databricks.sdk.service.catalog", "CatalogsAPI"),
    "cluster_policies": ("databricks.sdk.service.compute", "ClusterPoliciesAPI"),
    "clusters": ("databricks.sdk.mixins.compute", "ClustersExt"),
    "command_execution": ("databricks.sdk.service.compute", "CommandExecutionAPI"),
    "connections": ("databricks.sdk.service.catalog", "ConnectionsAPI"),
    "current_user": ("databricks.sdk.service.iam", "CurrentUserAPI"),
    "dashboards": ("databricks.sdk.service.sql", "DashboardsAPI"),
    "domains": ("databricks.sdk.service.domains", "DomainsAPI"),
    "environments": ("databricks.sdk.service.environments", "EnvironmentsAPI"),
    "experiments": ("databricks.sdk.service.ml", "ExperimentsAPI"),
    "external_locations": ("databricks.sdk.service.catalog", "ExternalLocationsAPI"),
    "files": ("databricks.sdk.mixins.files", "FilesExt"),
    "functions": ("databricks.sdk.service.catalog", "FunctionsAPI"),
    "global_init_scripts": ("databricks.sdk.service.compute", "GlobalInitScriptsAPI"),
    "grants": ("databricks.sdk.service.catalog", "GrantsAPI"),
    "groups": ("databricks.sdk.service.iam", "GroupsAPI"),
    "instance_pools": ("databricks.sdk.service.compute", "InstancePoolsAPI"),
    "instance_profiles": ("databricks.sdk.service.compute", "InstanceProfilesAPI"),
    "ip_access_lists": ("databricks.sdk.service.settings", "IpAccessListsAPI"),
    "jobs": ("databricks.sdk.mixins.jobs", "JobsExt"),
    "lakeview": ("databricks.sdk.service.dashboards", "LakeviewAPI"),
    "libraries": ("databricks.sdk.service.compute", "LibrariesAPI"),
    "model_registry": ("databricks.sdk.service.ml", "ModelRegistryAPI"),
    "notification_destinations": ("databricks.sdk.service.settings", "NotificationDestinationsAPI"),
    "permissions": ("databricks.sdk.service.iam", "PermissionsAPI"),
    "pipelines": ("databricks.sdk.service.pipelines", "PipelinesAPI"),
    "queries": ("databricks.sdk.service.sql", "QueriesAPI"),
    "registered_models": ("databricks.sdk.service.catalog", "RegisteredModelsAPI"),
    "repos": ("databricks.sdk.service.workspace", "ReposAPI"),
    "schemas": ("databricks.sdk.service.catalog", "SchemasAPI"),
    "secrets": ("databricks.sdk.service.workspace", "SecretsAPI"),
    "service_principals": ("databricks.sdk.service.iam", "ServicePrincipalsAPI"),
    "serving_endpoints": ("databricks.sdk.mixins.open_ai_client", "ServingEndpointsExt"),
    "settings": ("databricks.sdk.service.settings", "SettingsAPI"),
    "statement_execution": ("databricks.sdk.service.sql", "StatementExecutionAPI"),
    "storage_credentials": ("databricks.sdk.service.catalog", "StorageCredentialsAPI"),
    "tables": ("databricks.sdk.service.catalog", "TablesAPI"),
    "tokens": ("databricks.sdk.service.settings", "TokensAPI"),
    "users": ("databricks.sdk.service.iam", "UsersAPI"),
    "volumes": ("databricks.sdk.service.catalog", "VolumesAPI"),
    "warehouses": ("databricks.sdk.service.sql", "WarehousesAPI"),
    "workspace": ("databricks.sdk.mixins.workspace", "WorkspaceExt"),
    "workspace_conf": ("databricks.sdk.service.settings", "WorkspaceConfAPI"),
}
_WITH_CONFIG = {"files"}  # built from (ApiClient, Config), as the SDK's _make_files_client does


class LazyWorkspaceClient:
    """The WorkspaceClient surface dbsync uses; each API is built on first read, on one shared ApiClient."""

    def __init__(self, config: Config) -> None:
        self._config = config.copy()  # as WorkspaceClient does: later edits of `config` do not leak in
        self._api_client = ApiClient(self._config)
        self._apis: dict[str, Any] = {}
        self._lock = threading.Lock()

    @property
    def config(self) -> Config:
        return self._config

    @property
    def api_client(self) -> ApiClient:
        return self._api_client

    def __getattr__(self, name: str) -> Any:
        if name not in APIS:
            raise AttributeError(f"LazyWorkspaceClient has no API {name!r}: add it to dbsync/sdk.py APIS")
        with self._lock:
            api = self._apis.get(name)
            if api is None:
                module, cls = APIS[name]
                build = getattr(importlib.import_module(module), cls)
                args = (self._api_client, self._config) if name in _WITH_CONFIG else (self._api_client,)
                api = self._apis[name] = build(*args)
        return api

    def get_workspace_id(self) -> int:
        """The workspace id: from the config when it has one, else the SCIM Me header (as the SDK does)."""
        if self._config.workspace_id:
            return int(self._config.workspace_id)
        response = self._api_client.do("GET", "/api/2.0/preview/scim/v2/Me", response_headers=["X-Databricks-Org-Id"])
        return int(response["X-Databricks-Org-Id"])

    def __repr__(self) -> str:
        return f"LazyWorkspaceClient(host='{self._config.host}', auth_type='{self._config.auth_type}', ...)"


class Service:
    """An SDK service module imported on first use: `catalog = Service("catalog")`, then `catalog.CreateFunction`.

    Every kind's module is loaded by every run; a service module only the kinds of this run read (Unity Catalog,
    MLflow, dashboards: 50-100 ms each to import) is then paid by the runs that use it.
    """

    def __init__(self, name: str) -> None:
        self.module = f"databricks.sdk.service.{name}"

    def __getattr__(self, name: str) -> Any:
        return getattr(importlib.import_module(self.module), name)
