"""Where secret values come from, and the keyed hash that is all the store ever keeps of them.

A real workspace refuses `secrets/get` to a caller outside a notebook or job (400 BAD_REQUEST), so dbsync
reads values from the source `secrets.values_from` names:

- `none` (the default): no values are read; every secret is reported `blocked` with the setting to make
  (scopes and their ACLs still replicate, as the `secret_scopes` kind).
- `cluster`: on the source cluster `secrets.cluster_id` (started when terminated: the secrets wait, as
  retried errors, until it runs), through Command Execution 1.2 as databrickslabs/migrate does: one
  Python context per process, one command per value running `dbutils.secrets.getBytes`. A cluster prints
  every secret value its context read as `[REDACTED]`, so the command prints the bytes in two encodings
  over disjoint alphabets (hex `0-9a-f` and the same nibbles as `g-v`) and their length; a value is
  taken from an encoding that came back whole (both must agree when both did). One value cannot be
  redacted from both, but values read earlier in the context can be: such a value is read again in a
  context of its own.
- `env`: the variable `DBSYNC_SECRET__<SCOPE>__<KEY>` of dbsync's environment, where scope and key
  are upper-cased and `.` and `-` become `_` (scope `ml.prod`, key `db-password` →
  `DBSYNC_SECRET__ML_PROD__DB_PASSWORD`). Two keys of one scope that map to the same variable are
  refused rather than given the same value.
- `file`: `secrets.values_file`, either a YAML or JSON file `{scope: {key: value}}` (a value is a
  string, or `{base64: ...}` for bytes), or a directory holding one file per value at
  `<dir>/<scope>/<key>` (the exact bytes: a trailing newline is part of the value), which is what a
  mounted Kubernetes Secret looks like.
- `api`: `secrets/get` on the source workspace, where the service allows it (the emulator with
  `--allow-secrets-get`); a refusal is an error that tells the operator to switch.

A value lives in memory from its read to its `secrets/put` only. It never reaches the store, a log
line, an event, a metric or an exception message: the store keeps `value_hmac`, an HMAC-SHA256 of
scope, key and value under a random key generated per store and kept OUTSIDE the store (the 0600 file
`secrets.hmac_key_file`, default `<state_path>.hmac-key`), so an unchanged value is not written again, a
changed one is, and a copy of the store alone gives nothing to test guessed values against.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import json
import os
import re
import secrets
import threading
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from databricks.sdk.errors import DatabricksError, NotFound
from databricks.sdk.service.compute import Language, ResultType

from dbsync.errors import Blocked, Permanent, RetryLater, yaml_error_position
from dbsync.runcache import CacheKey

if TYPE_CHECKING:
    from dbsync.context import SyncContext

HMAC_KEY_META = "secret_hmac_key"
ENV_PREFIX = "DBSYNC_SECRET__"
_ENV_UNSAFE = re.compile(r"[^A-Z0-9_]")
SWITCH_HINT = (
    "set secrets.values_from to cluster (with secrets.cluster_id, a source cluster to read them on), "
    "env (variables DBSYNC_SECRET__<SCOPE>__<KEY>) or file (secrets.values_file)"
)
HEX_DIGITS, NIBBLE_LETTERS = "0123456789abcdef", "ghijklmnopqrstuv"
_LETTERS_TO_HEX = str.maketrans(NIBBLE_LETTERS, HEX_DIGITS)
_CLUSTER_RUNNING = ("RUNNING", "RESIZING")
_CLUSTER_RETRY_SECONDS = 60.0


HMAC_KEY: CacheKey[bytes] = CacheKey("secret-values:hmac-key")
GET_PROBE: CacheKey[_Probe] = CacheKey("secret-values:get-probe")
CLUSTER_CHECK: CacheKey[_Refusal | None] = CacheKey("secret-values:cluster-check")
VALUES_FILE: CacheKey[dict[str, Any]] = CacheKey("secret-values:file")


class SecretValue(bytes):
    """A secret's bytes that never print: repr/str show a placeholder, so a stray log or traceback leaks nothing."""

    def __repr__(self) -> str:
        return "<secret value redacted>"

    __str__ = __repr__

    def text(self, scope: str, key: str) -> str:
        """The value as text, for a field that takes a string (a connection's password, a webhook URL).

        A values file's `{base64: ...}` may give any bytes: decoded as they were, a byte that is not UTF-8 raised a
        UnicodeDecodeError whose message quotes it and its position, into the log and the store's event, each cycle.
        """
        try:
            return self.decode()
        except UnicodeDecodeError:
            raise SecretValueError(
                f"secret value {scope}/{key} is not UTF-8 text, and this field takes text: give it as a string"
            ) from None


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

    return ctx.cached(HMAC_KEY, load)


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
        probe = ctx.cached(GET_PROBE, _Probe)
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


class NoValues(ValueSource):
    name = "none"

    def read(self, ctx: SyncContext, scope: str, key: str) -> SecretValue:
        raise Blocked(f"the value of secret {scope}/{key} is not copied until you {SWITCH_HINT}")


class ClusterValues(ValueSource):
    name = "cluster"

    def read(self, ctx: SyncContext, scope: str, key: str) -> SecretValue:
        cluster_id = ctx.settings.secrets.cluster_id or ""
        refusal = ctx.cached(CLUSTER_CHECK, lambda: _check_cluster(ctx, cluster_id))
        if refusal is not None:
            raise refusal.error()
        session = _session(ctx, cluster_id)
        value = session.read(scope, key, fresh_context=False)
        return value if value is not None else _read_alone(session, scope, key)


def _read_alone(session: _ClusterSession, scope: str, key: str) -> SecretValue:
    """Read again in a new context, where no other value is redacted (one value never hides both encodings)."""
    value = session.read(scope, key, fresh_context=True)
    if value is None:
        raise SecretValueError(
            f"the source cluster {session.cluster_id} redacted every encoding of secret {scope}/{key}: "
            "supply this value with secrets.values_from env or file"
        )
    return value


class _Refusal:
    """Why this run reads no value on the cluster: made once per run, raised for every secret."""

    def __init__(self, message: str, retry: bool) -> None:
        self.message = message
        self.retry = retry

    def error(self) -> Exception:
        return RetryLater(self.message, _CLUSTER_RETRY_SECONDS) if self.retry else SecretValueError(self.message)


def _check_cluster(ctx: SyncContext, cluster_id: str) -> _Refusal | None:
    """None when the cluster runs; else why not, after starting it when it was terminated (once per run)."""
    clusters = ctx.source.client.clusters
    try:
        state = clusters.get(cluster_id).state
    except NotFound:
        return _Refusal(
            f"secrets.cluster_id {cluster_id} does not exist on the source: set it to a source cluster", retry=False
        )
    except DatabricksError as err:
        return _Refusal(f"cannot read source cluster {cluster_id} (secrets.cluster_id): {err}", True)
    name = state.value if state is not None else "UNKNOWN"
    if name in _CLUSTER_RUNNING:
        return None
    if name != "TERMINATED":
        return _Refusal(f"source cluster {cluster_id} is {name}: secret values are read once it runs", True)
    try:
        clusters.start(cluster_id)
    except DatabricksError as err:
        return _Refusal(f"source cluster {cluster_id} is terminated and could not be started: {err}", True)
    return _Refusal(
        f"source cluster {cluster_id} was terminated: dbsync started it to read secret values, "
        "which are read once it runs",
        True,
    )


def _read_command(scope: str, key: str) -> str:
    """Python printing the value's hex, the same nibbles as g-v, and its length: never the value itself."""
    letters = "".join(f".replace({d!r}, {c!r})" for d, c in zip(HEX_DIGITS, NIBBLE_LETTERS, strict=True))
    return (
        f"_dbsync_value = dbutils.secrets.getBytes(scope={scope!r}, key={key!r})\n"
        "print(_dbsync_value.hex())\n"
        f"print(_dbsync_value.hex(){letters})\n"
        "print(len(_dbsync_value))\n"
        "_dbsync_value = None"
    )


def _decode_output(data: str) -> bytes | None:
    """The value from the command's output, None when the cluster redacted both encodings."""
    lines = data.rstrip("\n").split("\n")
    if len(lines) != 3:
        raise SecretValueError(f"unexpected output of the secret-reading command ({len(lines)} lines, 3 expected)")
    hex_line, letter_line, length = (line.strip() for line in lines)
    candidates = []
    if re.fullmatch(r"(?:[0-9a-f]{2})*", hex_line):
        candidates.append(bytes.fromhex(hex_line))
    if re.fullmatch(r"(?:[g-v]{2})*", letter_line):
        candidates.append(bytes.fromhex(letter_line.translate(_LETTERS_TO_HEX)))
    if len(candidates) == 2 and candidates[0] != candidates[1]:
        raise SecretValueError("the two encodings of a secret value printed by the source cluster disagree")
    if candidates and length.isdigit() and int(length) != len(candidates[0]):
        raise SecretValueError("the secret value printed by the source cluster has the wrong length")
    return candidates[0] if candidates else None


class _ClusterSession:
    """One Python execution context on the source cluster, kept for the process and used by one read at a time."""

    def __init__(self, ctx: SyncContext, cluster_id: str) -> None:
        self.commands = ctx.source.client.command_execution
        self.cluster_id = cluster_id
        self.timeout = timedelta(seconds=ctx.settings.secrets.timeout_seconds)
        self.lock = threading.Lock()
        self.context_id: str | None = None

    def read(self, scope: str, key: str, fresh_context: bool) -> SecretValue | None:
        """The value, or None when it came back redacted in both encodings."""
        command = _read_command(scope, key)
        with self.lock:
            if fresh_context:
                context_id = self._create()
                try:
                    results = self._execute(context_id, command)
                finally:
                    self._destroy(context_id)
            else:
                results = self._in_shared_context(command)
        if results.result_type != ResultType.TEXT or not isinstance(results.data, str):
            raise self._failure(scope, key, results.summary or results.cause or "no output")
        value = _decode_output(results.data)
        return SecretValue(value) if value is not None else None

    def _in_shared_context(self, command: str) -> Any:
        if self.context_id is not None:
            try:
                return self._execute(self.context_id, command)
            except DatabricksError:
                self.context_id = None  # the context died with a cluster restart: open a new one
        self.context_id = self._create()
        return self._execute(self.context_id, command)

    def _create(self) -> str:
        try:
            context = self.commands.create_and_wait(
                cluster_id=self.cluster_id, language=Language.PYTHON, timeout=self.timeout
            )
        except (DatabricksError, TimeoutError) as err:
            raise RetryLater(f"cannot open a Python context on source cluster {self.cluster_id}: {err}") from None
        return context.id or ""

    def _execute(self, context_id: str, command: str) -> Any:
        try:
            status = self.commands.execute_and_wait(
                cluster_id=self.cluster_id,
                context_id=context_id,
                language=Language.PYTHON,
                command=command,
                timeout=self.timeout,
            )
        except TimeoutError as err:
            raise RetryLater(f"reading a secret value on source cluster {self.cluster_id} timed out: {err}") from None
        if status.results is None:
            raise RetryLater(f"reading a secret value on source cluster {self.cluster_id} gave no result")
        return status.results

    def _destroy(self, context_id: str) -> None:
        with contextlib.suppress(DatabricksError):  # the cluster frees it when it stops
            self.commands.destroy(cluster_id=self.cluster_id, context_id=context_id)

    def _failure(self, scope: str, key: str, summary: str) -> Exception:
        first_line = summary.strip().splitlines()[0][:300] if summary.strip() else "no output"
        if "does not exist" in first_line:
            return RetryLater(f"secret {scope}/{key} disappeared from the source while it was read")
        return SecretValueError(
            f"reading secret {scope}/{key} on source cluster {self.cluster_id} failed: {first_line}. "
            "secrets.cluster_id must be a cluster where dbsync may run Python and read the scope"
        )


_SESSIONS: dict[tuple[str, str], _ClusterSession] = {}
_SESSIONS_LOCK = threading.Lock()


def _session(ctx: SyncContext, cluster_id: str) -> _ClusterSession:
    """The process's session on (source host, cluster): its context outlives a run, so a cycle opens none."""
    with _SESSIONS_LOCK:
        key = (ctx.source.host, cluster_id)
        session = _SESSIONS.setdefault(key, _ClusterSession(ctx, cluster_id))
        session.commands = ctx.source.client.command_execution  # this run's client (its token, its retries)
        return session


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
        document = ctx.cached(VALUES_FILE, lambda: _load_document(path))
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
        raise SecretValueError(f"secrets.values_file {path} is not valid YAML{yaml_error_position(err)}") from None
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


_SOURCES: dict[str, type[ValueSource]] = {
    "none": NoValues,
    "cluster": ClusterValues,
    "api": ApiValues,
    "env": EnvValues,
    "file": FileValues,
}


def value_source(ctx: SyncContext) -> ValueSource:
    """The source `secrets.values_from` selects."""
    return _SOURCES[ctx.settings.secrets.values_from]()
