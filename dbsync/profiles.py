"""Where a side's workspace is: its `host` and token, or a ~/.databrickscfg profile that supplies them."""

from __future__ import annotations

import configparser
import os
from pathlib import Path
from typing import TYPE_CHECKING

from dbsync.errors import ConfigError

if TYPE_CHECKING:
    from dbsync.config import WorkspaceSettings

__all__ = ["check_workspace", "profile_host", "workspace_host"]


def check_workspace(side: str, ws: WorkspaceSettings) -> None:
    """A side needs host+token, or a profile that supplies them."""
    if ws.profile:
        profile_host(side, ws)
        return
    if not ws.host:
        raise ConfigError(
            f"setting {side}.host is missing: set DBSYNC_{side.upper()}__HOST or {side}.host in dbsync.yaml "
            f"(or {side}.profile to use ~/.databrickscfg)"
        )
    if not ws.host.startswith(("http://", "https://")) and "." not in ws.host:
        raise ConfigError(
            f"setting {side}.host: {ws.host!r} is not a workspace URL (https://<name>.cloud.databricks.com)"
        )
    if not ws.token or not ws.token.get_secret_value():
        raise ConfigError(
            f"setting {side}.token is missing: set DBSYNC_{side.upper()}__TOKEN (a personal access token) "
            f"or {side}.profile"
        )


def workspace_host(side: str, ws: WorkspaceSettings) -> str:
    """The host a side connects to: its profile's (~/.databrickscfg) when it names one, else its `host`."""
    return profile_host(side, ws) if ws.profile else ws.host or ""


def profile_host(side: str, ws: WorkspaceSettings) -> str:
    """The host of a ~/.databrickscfg profile; a missing file or profile is a ConfigError."""
    path = ws.config_file or Path(os.environ.get("DATABRICKS_CONFIG_FILE", "~/.databrickscfg")).expanduser()
    parser = configparser.ConfigParser()
    if not parser.read(path):
        raise ConfigError(f"setting {side}.profile: {path} does not exist (create it with `databricks configure`)")
    if ws.profile not in parser:
        names = ", ".join(parser.sections()) or "none"
        raise ConfigError(f"setting {side}.profile: no profile [{ws.profile}] in {path} (profiles: {names})")
    host = parser[ws.profile].get("host")
    if not host:
        raise ConfigError(f"setting {side}.profile: profile [{ws.profile}] in {path} has no host")
    return host
