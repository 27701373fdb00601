"""Settings: a YAML file, then `DBSYNC_*` environment variables ("__" nests), then CLI flags.

Every problem is raised as one `ConfigError` line naming the setting and how to set it.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from dbsync.declaration import CATALOGUE, Declaration
from dbsync.errors import ConfigError, yaml_error_position
from dbsync.profiles import check_workspace

DEFAULT_CONFIG = Path("dbsync.yaml")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FamilyBudgets(_Strict):
    """Requests per second per API family (None: only the workspace budget applies)."""

    workspace: float | None = Field(default=None, gt=0)  # workspace list / export / import / mkdirs
    permissions: float | None = Field(default=None, gt=0)  # object ACL reads and writes
    scim: float | None = Field(default=None, gt=0)  # users, groups, service principals
    jobs: float | None = Field(default=None, gt=0)  # jobs list / get / create / reset
    sql_statements: float | None = Field(default=None, gt=0)  # SQL statement execution (metastore kinds)


class WorkspaceSettings(_Strict):
    """One side of the pair: a host and a PAT, or a profile from ~/.databrickscfg."""

    host: str | None = None
    token: SecretStr | None = None
    profile: str | None = None
    config_file: Path | None = None  # defaults to ~/.databrickscfg, like the databricks CLI
    # Client-side pacing (dbsync/pacing.py): every request to this workspace, of every kind, draws from one
    # budget. Unset: unpaced (the service documents no workspace-wide limit; see README "Request budget").
    max_requests_per_second: float | None = Field(default=None, gt=0)
    # Extra budgets for the API families the service limits separately (a request draws from both).
    family_requests_per_second: FamilyBudgets = Field(default_factory=FamilyBudgets)


class KindSettings(_Strict):
    # Frozen: a kind nobody configured shares one instance (`Settings.kind` is asked several times per object).
    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    interval: float | None = Field(default=None, gt=0)
    # Seconds an unchanged object of a kind read by need may go unread (default: the kind's freshness; 0: every cycle).
    max_staleness: float | None = Field(default=None, ge=0)
    # The shortest revisit interval of a kind read by need (default: its interval): a busy object is due two thirds
    # of it after each read. A kind run often (due and hinted objects read soon) need not re-read it every cycle.
    min_revisit: float | None = Field(default=None, gt=0)
    include: list[str] = Field(default_factory=list)  # globs on the source key (path, name)
    exclude: list[str] = Field(default_factory=list)


_UNCONFIGURED = KindSettings()


class AuditHintSettings(_Strict):
    """Change hints from the source's audit log (system.access.audit), read on `metastore.source_warehouse_id`."""

    enabled: bool = True
    # Seconds between two reads of the audit table (one SQL statement each).
    interval: float = Field(default=60, gt=0)


class DeleteSettings(_Strict):
    mode: Literal["propagate", "archive", "off"] = "propagate"
    max_ratio: float = Field(default=0.2, ge=0, le=1)
    # Drops smaller than this trip the guard only when they are most of the kind (planner.plan_deletes).
    min_count: int = Field(default=10, ge=1)


class UpdateSettings(_Strict):
    """The edit-storm guard (planner.plan_updates): a kind's updates are held when a cycle changes too much at once."""

    guard: bool = True
    # More than this share of a kind's replicated objects updated in one cycle (and at least min_count) holds them.
    max_ratio: float = Field(default=0.3, ge=0, le=1)
    min_count: int = Field(default=10, ge=1)
    # A body cut to this share of its size or less counts as blanked; min_count blanked bodies hold the updates.
    shrink_ratio: float = Field(default=0.1, ge=0, le=1)


class HistorySettings(_Strict):
    """Every replicated version, kept in `<state_path>.versions/` (dbsync/versions.py): `dbsync history` / `restore`."""

    enabled: bool = True
    # Versions older than this are pruned, except the one each object had at the cutoff (restore needs it).
    keep_days: float = Field(default=30, gt=0)
    # Past this many compressed bytes the oldest superseded versions go first; an object's latest never goes.
    max_bytes: int = Field(default=2 * 1024**3, ge=0)


class MappingSettings(_Strict):
    emails: dict[str, str] = Field(default_factory=dict)  # exact "a@old.com": "a@new.com" or "@old.com": "@new.com"
    principals: dict[str, str] = Field(default_factory=dict)  # group / service principal renames
    aws_account_id: str | None = None  # rewrites arn:aws:iam::<acct>:... in instance profiles
    # direction: reverse rewrites ARNs back to the old primary's account (`dbsync reverse` prints it).
    reverse_aws_account_id: str | None = None
    # Unity Catalog: storage URL prefixes source → target ("s3://prod-bucket": "s3://dr-bucket"), for external
    # locations, catalog storage roots and external volumes. A URL with no entry is never copied (blocked).
    storage_urls: dict[str, str] = Field(default_factory=dict)
    # Unity Catalog: cloud identities of storage credentials source → target (IAM role ARNs, access connector
    # ids), exact or by prefix; an identity with no entry is kept as it is.
    cloud_identities: dict[str, str] = Field(default_factory=dict)


class SecretsSettings(_Strict):
    """Where secret values come from (see dbsync/secret_values.py): the service refuses secrets/get from outside
    a cluster, so values are read on a source cluster, or supplied as env variables or a file. Unset (`none`),
    scopes and ACLs replicate and every secret is reported blocked until a source is chosen."""

    values_from: Literal["none", "cluster", "env", "file", "api"] = "none"
    # A YAML/JSON {scope: {key: value}} file, or a directory of <scope>/<key> files.
    values_file: Path | None = Field(default=None, validate_default=True)
    # values_from: cluster: the source cluster the values are read on (started when it is terminated).
    cluster_id: str | None = Field(default=None, validate_default=True)
    # How long to wait for the execution context and each command on that cluster.
    timeout_seconds: float = Field(default=300, gt=0)

    # The HMAC key of the value hashes the store keeps, outside the store (default: <state_path>.hmac-key).
    hmac_key_file: Path | None = None

    @field_validator("values_file")
    @classmethod
    def _file_needs_a_path(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        if value is None and info.data.get("values_from") == "file":
            raise ValueError("required when secrets.values_from is file")
        return value

    @field_validator("cluster_id")
    @classmethod
    def _cluster_needs_an_id(cls, value: str | None, info: ValidationInfo) -> str | None:
        if not value and info.data.get("values_from") == "cluster":
            raise ValueError(
                "required when secrets.values_from is cluster: the id of a source cluster dbsync may start and run "
                "Python on"
            )
        return value


class IdentitySettings(_Strict):
    """What the identity kinds may do on the target (users, groups, service principals, memberships)."""

    # Off by default: most DR targets get their users from the account / IdP, and dbsync only maps them.
    create_users: bool = False
    create_groups: bool = True
    create_service_principals: bool = True
    # The admins group exists on both sides; a DR admin set is usually different, so its members are not copied.
    sync_admins: bool = False


class InstanceProfileSettings(_Strict):
    # Register profiles without the service's AWS dry run (the role must still exist in the target account).
    skip_validation: bool = False


class MetastoreSettings(_Strict):
    """The SQL warehouses the metastore kinds run their statements on (one per workspace), and what they copy."""

    source_warehouse_id: str | None = None
    target_warehouse_id: str | None = None
    # hive_metastore always exists; a Unity Catalog catalog itself is the `catalogs` kind's (REST, storage root mapped).
    catalogs: list[str] = Field(default_factory=lambda: ["hive_metastore"], min_length=1)

    @field_validator("catalogs")
    @classmethod
    def _lower_case(cls, catalogs: list[str]) -> list[str]:
        return [c.strip().lower() for c in catalogs if c.strip()]

    @property
    def has_warehouse(self) -> bool:
        return bool(self.source_warehouse_id or self.target_warehouse_id)


class TableSettings(_Strict):
    # A table whose definition changed on the source: `report` (an error, the target left as it is) or
    # `recreate_if_external` (drop and create an external table again; its data stays where it is).
    # A managed table is never dropped: that would delete its data.
    on_change: Literal["report", "recreate_if_external"] = "report"
    # A managed table's data: `none` (its definition only; listed under "needs manual action") or `deep_clone`
    # (the target's warehouse runs CREATE OR REPLACE TABLE … DEEP CLONE delta.`<source location>` whenever the
    # source's Delta version changes; the target's warehouse must be able to read the source's storage).
    data: Literal["none", "deep_clone"] = "none"


class CutoverSettings(_Strict):
    """`dbsync cutover` pacing: its per-job writes stay under the service's request limit instead of meeting 429s."""

    # The documented Jobs API write limits are about 20 requests/s per workspace (create, run-now).
    max_writes_per_second: float = Field(default=20, gt=0)


class MlflowSettings(_Strict):
    """What the MLflow kinds copy besides experiments and registered models (never artifacts)."""

    # Copy runs (params, latest metrics, tags, status; no artifacts) of the experiments whose name
    # matches one of runs_paths. Off: runs are usually many and rebuildable, and artifacts stay behind.
    runs: bool = False
    runs_paths: list[str] = Field(default_factory=list)  # globs on experiment names, e.g. "/Shared/prod/*"

    @model_validator(mode="after")
    def _paths_with_runs(self) -> MlflowSettings:
        if self.runs and not self.runs_paths:
            raise ValueError('mlflow.runs_paths must name the experiments whose runs to copy (e.g. ["/Shared/*"])')
        return self


# Workspace settings copied by default: the token policy and data-export switches. enableIpAccessLists is
# left out on purpose: turning enforcement on at a standby whose allowed addresses differ locks its users out.
DEFAULT_CONF_KEYS = (
    "enableTokensConfig",
    "maxTokenLifetimeDays",
    "enableExportNotebook",
    "enableResultsDownloading",
    "enableNotebookTableClipboard",
    "enableUploadDataUis",
    "enableDbfsFileBrowser",
    "enableWebTerminal",
)


class WorkspaceConfSettings(_Strict):
    # The workspace-conf keys the workspace_conf kind copies (an allow-list: nothing else is read or written).
    keys: list[str] = Field(default_factory=lambda: list(DEFAULT_CONF_KEYS))


class MountSettings(_Strict):
    """How the mounts kind reads `dbutils.fs.mounts()` (mounts have no REST API; see README "DBFS mounts")."""

    # The source cluster the listing command runs on; unset: any running interactive cluster. dbsync
    # never starts a cluster for this: with none running, the last inventory is kept and reported.
    cluster_id: str | None = None
    # How long to wait for the execution context and the command on that cluster.
    timeout_seconds: float = Field(default=120, gt=0)


class ServerSettings(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=9108, ge=0, le=65535)
    auth_token: SecretStr | None = None


ENV_PREFIX = "DBSYNC_"
# Not settings: secret values supplied to `secrets.values_from: env` (see dbsync/secret_values.py).
NOT_SETTINGS_PREFIXES = ("DBSYNC_SECRET__",)


class _EnvSource(EnvSettingsSource):
    """DBSYNC_* variables; a list setting also takes comma-separated text (`/Users/*,/Repos/*`), not only JSON."""

    def decode_complex_value(self, field_name: str, field: FieldInfo | None, value: Any) -> Any:
        try:
            return super().decode_complex_value(field_name, field, value)
        except ValueError:
            if field is not None and get_origin(field.annotation) is list:
                return [item.strip() for item in str(value).split(",") if item.strip()]
            raise


class Settings(BaseSettings):
    """Everything dbsync reads. See the README's configuration reference."""

    model_config = SettingsConfigDict(
        env_prefix="DBSYNC_", env_nested_delimiter="__", extra="forbid", case_sensitive=False
    )

    source: WorkspaceSettings = Field(default_factory=WorkspaceSettings)
    target: WorkspaceSettings = Field(default_factory=WorkspaceSettings)
    state_path: Path = Path("dbsync.db")
    kinds: dict[str, KindSettings] = Field(default_factory=dict)
    deletes: DeleteSettings = Field(default_factory=DeleteSettings)
    updates: UpdateSettings = Field(default_factory=UpdateSettings)
    history: HistorySettings = Field(default_factory=HistorySettings)
    drift: Literal["report", "heal"] = "report"
    mapping: MappingSettings = Field(default_factory=MappingSettings)
    principals_missing: Literal["skip", "fail"] = "skip"
    identities: IdentitySettings = Field(default_factory=IdentitySettings)
    instance_profiles: InstanceProfileSettings = Field(default_factory=InstanceProfileSettings)
    secrets: SecretsSettings = Field(default_factory=SecretsSettings)
    metastore: MetastoreSettings = Field(default_factory=MetastoreSettings)
    audit_hints: AuditHintSettings = Field(default_factory=AuditHintSettings)
    tables: TableSettings = Field(default_factory=TableSettings)
    mlflow: MlflowSettings = Field(default_factory=MlflowSettings)
    workspace_conf: WorkspaceConfSettings = Field(default_factory=WorkspaceConfSettings)
    mounts: MountSettings = Field(default_factory=MountSettings)
    concurrency: int = Field(default=8, ge=1, le=64)
    # Kinds whose listings do not depend on what earlier kinds wrote are listed this many at a time (writes
    # stay in dependency order); 1 lists one kind after another.
    listing_concurrency: int = Field(default=4, ge=1, le=16)
    server: ServerSettings = Field(default_factory=ServerSettings)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # auto: JSON lines unless stderr is a terminal (then one readable line per record); json / text to force.
    log_format: Literal["auto", "json", "text"] = "auto"
    # How long the SDK keeps retrying one request on 429 / 503 / connection errors before giving up.
    retry_timeout_seconds: int = Field(default=120, ge=1)
    shutdown_timeout: float = Field(default=30, gt=0)
    # `dbsync serve`: a cycle of a kind read by need (permissions, dashboards ...) reads its due objects for at
    # most this long, then leaves the rest due and runs again after the kinds waiting for the worker.
    time_slice_seconds: float = Field(default=60, gt=0)
    cutover: CutoverSettings = Field(default_factory=CutoverSettings)
    # reverse: after a cutover, replicate the new primary (target) back into the old one (source); see
    # `dbsync reverse`. The sides and the mapping are swapped once, by load_settings.
    direction: Literal["forward", "reverse"] = "forward"

    @field_validator("kinds")
    @classmethod
    def _known_kinds(cls, kinds: dict[str, KindSettings]) -> dict[str, KindSettings]:
        if not kinds:
            return kinds
        known = CATALOGUE.names()
        unknown = sorted(set(kinds) - set(known))
        if unknown:
            raise ValueError(f"unknown kind {unknown[0]!r}; known kinds: {', '.join(known)}")
        return kinds

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, _EnvSource(settings_cls))

    def kind(self, name: str) -> KindSettings:
        configured = self.kinds.get(name) or _UNCONFIGURED
        if (
            "enabled" not in configured.model_fields_set
            and not self.metastore.has_warehouse
            and _declaration(name).needs_warehouse
        ):
            return configured.model_copy(update={"enabled": False})  # nothing to run their SQL on
        return configured

    def interval(self, name: str) -> float:
        return self.kind(name).interval or _declaration(name).interval

    def min_revisit(self, name: str) -> float:
        """The shortest revisit interval of a kind read by need (freshness's cycle): `min_revisit` or the interval."""
        return self.kind(name).min_revisit or self.interval(name)

    def max_staleness(self, name: str) -> float:
        """Seconds an unchanged object of the kind may go unread; 0 when every cycle reads every object."""
        configured = self.kind(name).max_staleness
        if configured is not None:
            return configured
        freshness = _declaration(name).freshness
        return freshness.max_staleness if freshness else 0.0


def _declaration(name: str) -> Declaration:
    """What the kind `name` declares (its default interval, its warehouse): the defaults for an unknown name."""
    return CATALOGUE.declaration(name)


def _env_name(loc: tuple[Any, ...]) -> tuple[str, str]:
    dotted = ".".join(str(p) for p in loc)
    env = "DBSYNC_" + "__".join(str(p).upper() for p in loc)
    return dotted, env


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        document = yaml.safe_load(path.read_text()) or {}
    except OSError as err:
        raise ConfigError(f"cannot read config file {path}: {err.strerror}") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"config file {path} is not valid YAML{yaml_error_position(err)}") from None
    if not isinstance(document, dict):
        raise ConfigError(f"config file {path} must hold a mapping of settings, not {type(document).__name__}")
    return document


def _with_file(document: dict[str, Any]) -> type[Settings]:
    """Settings whose lowest-priority source is the parsed YAML document."""

    class FileSource(PydanticBaseSettingsSource):
        def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
            return document.get(field_name), field_name, False

        def __call__(self) -> dict[str, Any]:
            return document

    class FileSettings(Settings):
        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls,
            init_settings,
            env_settings,
            dotenv_settings,  # type: ignore[override]
            file_secret_settings,
        ):
            # CLI flags (init kwargs) win over DBSYNC_* variables, which win over the file.
            return (init_settings, _EnvSource(settings_cls), FileSource(settings_cls))

    return FileSettings


def load_settings(
    config_path: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    require_workspaces: bool = True,
) -> Settings:
    """Read the file (explicit path, or ./dbsync.yaml when present), the environment and CLI overrides."""
    if config_path and not Path(config_path).exists():
        raise ConfigError(f"config file {config_path} does not exist: pass --config with an existing file")
    path = Path(config_path) if config_path else (DEFAULT_CONFIG if DEFAULT_CONFIG.exists() else None)
    document = _read_yaml(path) if path else {}
    check_environment(os.environ)
    try:
        settings: Settings = _with_file(document)(**(overrides or {}))
    except SettingsError as err:
        raise ConfigError(_env_parse_error(err)) from None
    except ValidationError as err:
        first = err.errors()[0]
        dotted, env = _env_name(first["loc"])
        where = str(path) if path else "dbsync.yaml"
        if first["type"] == "extra_forbidden":
            raise ConfigError(_unknown_key(dotted, env, where)) from None
        raise ConfigError(f"setting {dotted}: {first['msg']} (set {env} or {dotted} in {where})") from None
    if require_workspaces:
        for side in ("source", "target"):
            check_workspace(side, getattr(settings, side))
    if settings.direction == "reverse":
        settings = reversed_settings(settings)
    return settings


def reversed_settings(settings: Settings) -> Settings:
    """The settings of the other direction: sides swapped, principal mappings inverted.

    Called once by load_settings for `direction: reverse`; calling it again swaps back.
    """
    mapping = settings.mapping
    if mapping.aws_account_id and not mapping.reverse_aws_account_id:
        raise ConfigError(
            "setting mapping.reverse_aws_account_id is missing: with direction: reverse, instance-profile ARNs "
            "must be rewritten back to the old primary's AWS account (`dbsync reverse` prints it); set "
            "DBSYNC_MAPPING__REVERSE_AWS_ACCOUNT_ID"
        )
    inverted = MappingSettings(
        emails=_invert("mapping.emails", mapping.emails, fold_case=True),
        principals=_invert("mapping.principals", mapping.principals, fold_case=False),
        aws_account_id=mapping.reverse_aws_account_id,
        reverse_aws_account_id=mapping.aws_account_id,
        storage_urls=_invert("mapping.storage_urls", mapping.storage_urls, fold_case=False),
        cloud_identities=_invert("mapping.cloud_identities", mapping.cloud_identities, fold_case=False),
    )
    update: dict[str, object] = {"source": settings.target, "target": settings.source, "mapping": inverted}
    metastore = getattr(settings, "metastore", None)
    if metastore is not None and hasattr(metastore, "source_warehouse_id"):
        update["metastore"] = metastore.model_copy(
            update={
                "source_warehouse_id": metastore.target_warehouse_id,
                "target_warehouse_id": metastore.source_warehouse_id,
            }
        )
    return settings.model_copy(update=update)


def _invert(setting: str, renames: dict[str, str], fold_case: bool) -> dict[str, str]:
    out: dict[str, str] = {}
    for old, new in renames.items():
        key = new.lower() if fold_case else new  # emails match case-insensitively (PrincipalMap)
        if key in out:
            raise ConfigError(
                f"setting {setting}: both {out[key]!r} and {old!r} map to {new!r}, so direction: reverse cannot "
                "tell which to map it back to; give each its own target name"
            )
        out[key] = old
    return out


def check_environment(environ: Mapping[str, str]) -> None:
    """Refuse a DBSYNC_* variable that names no setting (a typo would be silently ignored otherwise)."""
    known: list[str] | None = None
    for name in environ:
        upper = name.upper()
        if not upper.startswith(ENV_PREFIX) or upper.startswith(NOT_SETTINGS_PREFIXES):
            continue
        if _names_a_setting(upper[len(ENV_PREFIX) :].lower().split("__")):
            continue
        known = known or sorted(setting_env_names())
        close = difflib.get_close_matches(upper, known, n=1, cutoff=0.6)
        hint = f"did you mean {close[0]}? " if close else ""
        raise ConfigError(
            f"unknown setting {name}: {hint}dbsync reads no such variable; rename or unset it "
            "(the settings are listed in README.md, Configuration)"
        )


def _unknown_key(dotted: str, env: str, where: str) -> str:
    """A key of the file that names no setting, with the closest real one."""
    close = difflib.get_close_matches(env, sorted(setting_env_names()), n=1, cutoff=0.6)
    hint = ""
    if close:
        parts = close[0][len(ENV_PREFIX) :].lower().split("__")
        hint = f"did you mean {'.'.join(parts)}? "
    return f"unknown setting {dotted} in {where}: {hint}dbsync reads no such key; rename or remove it"


def _names_a_setting(parts: list[str]) -> bool:
    """Whether the path of a DBSYNC_A__B__C variable (["a", "b", "c"]) leads to a setting."""
    annotation: Any = Settings
    for part in parts:
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            field = annotation.model_fields.get(part)
            if field is None:
                return False
            annotation = _unwrap(field.annotation)
        elif get_origin(annotation) is dict:
            is_kinds = annotation is _unwrap(Settings.model_fields["kinds"].annotation)
            if is_kinds and part not in CATALOGUE.names():
                return False
            annotation = _unwrap(get_args(annotation)[1])
        else:
            return False  # a plain value has nothing below it
    return True


def _unwrap(annotation: Any) -> Any:
    """`X | None` → X (the settings tree's optional fields)."""
    args = [a for a in get_args(annotation) if a is not type(None)]
    if get_origin(annotation) not in (None, list, dict) and len(args) == 1:
        return args[0]
    return annotation


def setting_env_names() -> Iterator[str]:
    """Every DBSYNC_* variable that names a setting (a kind's settings once per kind)."""

    def walk(model: type[BaseModel], prefix: str) -> Iterator[str]:
        for name, field in model.model_fields.items():
            annotation = _unwrap(field.annotation)
            env = f"{prefix}{name.upper()}"
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                yield from walk(annotation, env + "__")
            elif name == "kinds" and model is Settings:
                for kind in CATALOGUE.names():
                    yield from walk(KindSettings, f"{env}__{kind.upper()}__")
            else:
                yield env

    return walk(Settings, ENV_PREFIX)


def _env_parse_error(err: SettingsError) -> str:
    """One line for a DBSYNC_* value pydantic-settings could not decode (a mapping given as plain text)."""
    field = str(err).split('"')[1] if '"' in str(err) else "a setting"
    return (
        f"setting {field}: a DBSYNC_{field.upper()}__* variable is not valid JSON; a mapping is a JSON object "
        f'(e.g. DBSYNC_MAPPING__EMAILS=\'{{"@old.com": "@new.com"}}\'), a list is JSON or comma-separated text'
    )
