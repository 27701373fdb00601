"""Where secret values come from, and the keyed hash that is all the store ever keeps of them.

A real workspace refuses `secrets/get` to a caller outside a notebook or job, so dbsync reads values
from one of three sources (`secrets.values_from`):

- `api`: `secrets/get` on the source workspace (works against the emulator and wherever the service
  allows it; a refusal is an error that tells the operator to switch to `env` or `file`).
- `env`: the variable `DBSYNC_SECRET__<SCOPE>__<KEY>` of dbsync's environment, where scope and key
  are upper-cased and `.` and `-` become `_` (scope `ml.prod`, key `db-password` →
  `DBSYNC_SECRET__ML_PROD__DB_PASSWORD`). Two keys of one scope that map to the same variable are
  refused rather than given the same value.
- `file`: `secrets.values_file`, either a YAML or JSON file `{scope: {key: value}}` (a value is a
  string, or `{base64: ...}` for bytes), or a directory holding one file per value at
  `<dir>/<scope>/<key>` (the exact bytes: a trailing newline is part of the value), which is what a
  mounted Kubernetes Secret looks like.

A value lives in memory from its read to its `secrets/put` only. It never reaches the store, a log
line, an event, a metric or an exception message: the store keeps `value_hmac`, an HMAC-SHA256 of
scope, key and value under a random key generated per store and kept OUTSIDE the store (the 0600 file
`secrets.hmac_key_file`, default `<state_path>.hmac-key`), so an unchanged value is not written again, a
changed one is, and a copy of the store alone gives nothing to test guessed values against.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import re
import secrets
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from databricks.sdk.errors import DatabricksError

from dbsync.errors import Permanent, RetryLater

if TYPE_CHECKING:
    from dbsync.context import SyncContext

HMAC_KEY_META = "secret_hmac_key"
ENV_PREFIX = "DBSYNC_SECRET__"
_ENV_UNSAFE = re.compile(r"[^A-Z0-9_]")
SWITCH_HINT = (
    "set secrets.values_from to env (variables DBSYNC_SECRET__<SCOPE>__<KEY>) or file (secrets.values_file) "
    "and supply the values there"
)


class SecretValue(bytes):
    """A secret's bytes that never print: repr/str show a placeholder, so a stray log or traceback leaks nothing."""

    def __repr__(self) -> str:
        return "<secret value redacted>"

    __str__ = __repr__


class SecretValueError(Permanent):
    """A value that cannot be read; the message names where it was looked for, never what it is."""


# -- the keyed hash -----------------------------------------------------------------------------
def hmac_key_path(ctx: SyncContext) -> Path:
    """`secrets.hmac_key_file`, or `<state_path>.hmac-key` beside the store."""
    configured = ctx.settings.secrets.hmac_key_file
    return configured if configured is not None else Path(f"{ctx.settings.state_path}.hmac-key")


def hmac_key(ctx: SyncContext) -> bytes:
    """The random HMAC key, created on first use in its own 0600 file, never in the store.

    A store alone then gives nothing to test guesses against. The key of a store made by an older
    dbsync (meta `secret_hmac_key`) is moved out to the file, so its hashes stay valid. A dry run
    creates nothing.
    """

    def load() -> bytes:
        path = hmac_key_path(ctx)
        if path.exists():
            return _read_key(path)
        stored = ctx.store.get_meta(HMAC_KEY_META)
        key = bytes.fromhex(stored) if stored else secrets.token_bytes(32)
        if ctx.dry_run:
            return key
        try:
            _write_key(path, key)
        except FileExistsError:
            return _read_key(path)
        if stored:
            ctx.store.delete_meta(HMAC_KEY_META)
        return key

    return ctx.cached("secret-hmac-key", load)


def _read_key(path: Path) -> bytes:
    try:
        key = bytes.fromhex(path.read_text().strip())
    except (OSError, ValueError) as err:
        raise SecretValueError(
            f"cannot read the secret HMAC key {path}: {getattr(err, 'strerror', None) or 'not hex'}; restore it, or "
            "delete it to start over (every secret is written once more)"
        ) from None
    if len(key) < 16:
        raise SecretValueError(f"the secret HMAC key {path} is shorter than 16 bytes: delete it to make a new one")
    return key


def _write_key(path: Path, key: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(key.hex() + "\n")


def value_hmac(key: bytes, scope: str, secret_key: str, value: bytes) -> str:
    """HMAC-SHA256 over scope, key and value: equal values under two keys do not show as equal."""
    message = scope.encode() + b"\0" + secret_key.encode() + b"\0" + value
    return hmac.new(key, message, hashlib.sha256).hexdigest()


# -- sources ------------------------------------------------------------------------------------
class ValueSource:
    """Reads the value of one secret of the source workspace."""

    name = ""
    # True when a read costs no API call: the value's hash can then join the version hint, so a value
    # changed in the environment or the file is noticed even though the source's timestamp did not move.
    local = False

    def read(self, ctx: SyncContext, scope: str, key: str) -> SecretValue:
        raise NotImplementedError


class ApiValues(ValueSource):
    name = "api"

    def read(self, ctx: SyncContext, scope: str, key: str) -> SecretValue:
        probe = ctx.cached("secrets-get-probe", _Probe)
        if not probe.answered:
            # The first read of a run goes alone: if the source refuses, the other keys are not asked at all.
            with probe.lock:
                if not probe.answered:
                    try:
                        return self._get(ctx, probe, scope, key)
                    finally:
                        probe.answered = True
        return self._get(ctx, probe, scope, key)

    @staticmethod
    def _get(ctx: SyncContext, probe: _Probe, scope: str, key: str) -> SecretValue:
        if probe.refusal:
            raise SecretValueError(probe.refusal)
        try:
            encoded = ctx.source.client.secrets.get_secret(scope, key).value or ""
        except DatabricksError as err:
            if err.error_code == "RESOURCE_DOES_NOT_EXIST":
                raise RetryLater(f"secret {scope}/{key} disappeared from the source while it was read") from None
            if err.error_code in ("BAD_REQUEST", "PERMISSION_DENIED", "FEATURE_DISABLED"):
                probe.refusal = (
                    f"the source workspace refuses to return secret values over the REST API "
                    f"({err.error_code}: secrets/get works only inside a notebook or job); {SWITCH_HINT}"
                )
                raise SecretValueError(probe.refusal) from None
            raise
        try:
            return SecretValue(base64.b64decode(encoded, validate=True))
        except (binascii.Error, ValueError):
            raise SecretValueError(f"secrets/get returned a value for {scope}/{key} that is not base64") from None


class EnvValues(ValueSource):
    name = "env"
    local = True

    def read(self, ctx: SyncContext, scope: str, key: str) -> SecretValue:
        variable = env_name(scope, key)
        value = os.environ.get(variable)
        if value is None:
            raise SecretValueError(
                f"no value for secret {scope}/{key}: environment variable {variable} is not set "
                "(secrets.values_from is env)"
            )
        return SecretValue(value.encode())


class FileValues(ValueSource):
    name = "file"
    local = True

    def read(self, ctx: SyncContext, scope: str, key: str) -> SecretValue:
        path = ctx.settings.secrets.values_file
        if path is None:
            raise SecretValueError("secrets.values_from is file but secrets.values_file is not set")
        if path.is_dir():
            return self._read_file(path, scope, key)
        document = ctx.cached("secret-values-file", lambda: _load_document(path))
        values = document.get(scope)
        value = values.get(key) if isinstance(values, dict) else None
        if value is None:
            raise SecretValueError(f"no value for secret {scope}/{key} in {path}: add it as {scope}: {{{key}: ...}}")
        return _decode(value, path, scope, key)

    @staticmethod
    def _read_file(root: Path, scope: str, key: str) -> SecretValue:
        if scope in (".", "..") or key in (".", ".."):
            raise SecretValueError(f"secret {scope}/{key} cannot be read from a directory: the name is a path step")
        path = root / scope / key
        try:
            return SecretValue(path.read_bytes())
        except FileNotFoundError:
            raise SecretValueError(f"no value for secret {scope}/{key}: {path} does not exist") from None
        except OSError as err:
            raise SecretValueError(f"cannot read {path}: {err.strerror}") from None


class _Probe:
    """Per run: has the source answered a secrets/get yet, and did it refuse (the reason then)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.answered = False
        self.refusal: str | None = None


def env_name(scope: str, key: str) -> str:
    """DBSYNC_SECRET__<SCOPE>__<KEY>: upper case, `.` and `-` (and anything else unsafe) become `_`."""
    return f"{ENV_PREFIX}{_ENV_UNSAFE.sub('_', scope.upper())}__{_ENV_UNSAFE.sub('_', key.upper())}"


def _load_document(path: Path) -> dict[str, Any]:
    """The values file as {scope: {key: value}}; errors name the file and line, never its content."""
    try:
        text = path.read_text()
    except OSError as err:
        raise SecretValueError(f"cannot read secrets.values_file {path}: {err.strerror}") from None
    try:
        document = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except json.JSONDecodeError as err:
        raise SecretValueError(f"secrets.values_file {path} is not valid JSON (line {err.lineno})") from None
    except yaml.YAMLError as err:
        # A YAML error quotes the offending line, which may hold a value: keep only its position.
        mark = getattr(err, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise SecretValueError(f"secrets.values_file {path} is not valid YAML{where}") from None
    if not isinstance(document, dict):
        raise SecretValueError(f"secrets.values_file {path} must map scopes to {{key: value}} mappings")
    return document


def _decode(value: Any, path: Path, scope: str, key: str) -> SecretValue:
    if isinstance(value, str):
        return SecretValue(value.encode())
    if isinstance(value, dict) and isinstance(value.get("base64"), str):
        try:
            return SecretValue(base64.b64decode(value["base64"], validate=True))
        except (binascii.Error, ValueError):
            pass
    raise SecretValueError(
        f"the value of {scope}/{key} in {path} must be a string (quote numbers and booleans) "
        "or {base64: <base64 bytes>}"
    )


_SOURCES: dict[str, type[ValueSource]] = {"api": ApiValues, "env": EnvValues, "file": FileValues}


def value_source(ctx: SyncContext) -> ValueSource:
    """The source `secrets.values_from` selects."""
    return _SOURCES[ctx.settings.secrets.values_from]()
