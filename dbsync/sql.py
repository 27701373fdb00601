"""SQL on a workspace's SQL warehouse through the Statement Execution API: the metastore kinds' only way in.

`SqlRunner.query()` sends one statement (`wait_timeout="30s"`), polls `get_statement` while it is
PENDING or RUNNING (the warehouse may be starting), pages through the result chunks and returns the
rows as dicts keyed by column name. A FAILED statement (HTTP 200 with state FAILED) becomes a
`SqlError` carrying the error class Databricks put in brackets (`[TABLE_OR_VIEW_NOT_FOUND] ...`).
Every statement is counted per side and verb (`statement_counts()`), for the benchmark and the tests.
"""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from databricks.sdk.errors import NotFound

from dbsync.errors import DbsyncError, RetryLater
from dbsync.runcache import CacheKey

# The SDK's sql service module (~110 ms to import) is imported where a statement is run, here and in the SQL kinds'
# modules: a process whose kinds run no statement (no metastore kinds, no audit hints, no SQL objects) never pays it.
if TYPE_CHECKING:
    from databricks.sdk.service.sql import StatementResponse

    from dbsync.context import SyncContext
    from dbsync.workspace import Workspace

WAIT_TIMEOUT = "30s"  # the longest the API holds a request open is 50 s; the rest is polling
STATEMENT_TIMEOUT_SECONDS = 600.0  # a statement still running after this is cancelled and retried next cycle
_ERROR_CLASS = re.compile(r"^\s*\[([A-Z0-9_.]+)\]")

Row = dict[str, str | None]


class SqlError(DbsyncError):
    """A statement the warehouse ran and failed: `error_class` is e.g. TABLE_OR_VIEW_NOT_FOUND ("" if none)."""

    def __init__(self, message: str, error_class: str = "", sql_state: str | None = None) -> None:
        super().__init__(message)
        self.error_class = error_class
        self.sql_state = sql_state

    def is_class(self, *prefixes: str) -> bool:
        """Whether the error class is one of `prefixes` (or a sub-class of one: `A.B` matches `A`)."""
        return any(self.error_class == p or self.error_class.startswith(p + ".") for p in prefixes)


class WarehouseMissing(DbsyncError):
    """No warehouse id configured for a side, or the configured one does not exist."""


# -- statement counts --------------------------------------------------------------------------------
_counts: Counter[tuple[str, str]] = Counter()
_counts_lock = threading.Lock()


def verb(statement: str) -> str:
    """`SHOW GRANTS`, `SHOW CREATE`, `CREATE`, `GRANT`, ...: what a statement does, for counting."""
    words = statement.split(None, 2)
    if not words:
        return ""
    first = words[0].upper()
    return f"{first} {words[1].upper()}" if first == "SHOW" and len(words) > 1 else first


def statement_counts(side: str | None = None) -> dict[str, int]:
    """Statements sent since the last reset, by verb (all sides, or one: "source" / "target")."""
    with _counts_lock:
        out: Counter[str] = Counter()
        for (counted_side, counted_verb), n in _counts.items():
            if side is None or counted_side == side:
                out[counted_verb] += n
        return dict(out)


def reset_statement_counts() -> None:
    with _counts_lock:
        _counts.clear()


def _count(side: str, statement: str) -> None:
    with _counts_lock:
        _counts[(side, verb(statement))] += 1


# -- quoting ------------------------------------------------------------------------------------------
def quote(name: str) -> str:
    """A backticked identifier (or principal): `a``b` for a name holding a backtick."""
    return "`" + name.replace("`", "``") + "`"


def qualified(parts: Iterable[str]) -> str:
    return ".".join(quote(p) for p in parts)


def literal(text: str) -> str:
    """A SQL string literal (Spark escapes with backslashes)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


# -- the runner ---------------------------------------------------------------------------------------
class SqlRunner:
    """Runs statements on one warehouse of one workspace. Thread-safe (the SDK client is)."""

    def __init__(
        self,
        ws: Workspace,
        warehouse_id: str,
        setting: str,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        timeout: float = STATEMENT_TIMEOUT_SECONDS,
    ) -> None:
        self.ws = ws
        self.warehouse_id = warehouse_id
        self.setting = setting  # the setting that named the warehouse, for error messages
        self.sleep = sleep
        self.clock = clock
        self.timeout = timeout

    def query(self, statement: str, catalog: str | None = None, schema: str | None = None) -> list[Row]:
        """Run a statement; its rows as {column: value} (values are strings or None, as the API sends them)."""
        response = self._finished(self._submit(statement, catalog, schema), statement)
        return _rows(self.ws, response)

    def execute(self, statement: str, catalog: str | None = None, schema: str | None = None) -> None:
        """Run a statement whose result does not matter (DDL, GRANT)."""
        self._finished(self._submit(statement, catalog, schema), statement)

    def _submit(self, statement: str, catalog: str | None, schema: str | None) -> StatementResponse:
        from databricks.sdk.service.sql import Disposition, ExecuteStatementRequestOnWaitTimeout, Format

        _count(self.ws.side, statement)
        try:
            return self.ws.client.statement_execution.execute_statement(
                statement=statement,
                warehouse_id=self.warehouse_id,
                catalog=catalog,
                schema=schema,
                wait_timeout=WAIT_TIMEOUT,
                on_wait_timeout=ExecuteStatementRequestOnWaitTimeout.CONTINUE,
                disposition=Disposition.INLINE,
                format=Format.JSON_ARRAY,
            )
        except NotFound as err:
            raise WarehouseMissing(
                f"the {self.ws.side} SQL warehouse {self.warehouse_id} ({self.setting}) does not exist: "
                f"set {self.setting} to a warehouse of the {self.ws.side} workspace ({err})"
            ) from None

    def _finished(self, response: StatementResponse, statement: str) -> StatementResponse:
        """Poll until the statement is done (the warehouse may be starting); raise for FAILED and CANCELED."""
        from databricks.sdk.service.sql import StatementState

        running = (StatementState.PENDING, StatementState.RUNNING)
        deadline = self.clock() + self.timeout
        delay = 0.5
        while response.status is not None and response.status.state in running:
            if self.clock() >= deadline:
                self.ws.client.statement_execution.cancel_execution(response.statement_id or "")
                raise RetryLater(f"statement still running after {self.timeout:.0f} s, cancelled: {verb(statement)}")
            self.sleep(delay)
            delay = min(delay * 2, 5.0)
            response = self.ws.client.statement_execution.get_statement(response.statement_id or "")
        status = response.status
        state = status.state if status is not None else None
        if state == StatementState.SUCCEEDED:
            return response
        if state == StatementState.FAILED and status is not None:
            message = (status.error.message if status.error else None) or "statement failed"
            match = _ERROR_CLASS.match(message)
            raise SqlError(message.strip(), match.group(1) if match else "", status.sql_state)
        raise RetryLater(f"statement {state.value if state else 'without a state'}: {verb(statement)}")


def _rows(ws: Workspace, response: StatementResponse) -> list[Row]:
    manifest = response.manifest
    columns = [c.name or "" for c in (manifest.schema.columns or [])] if manifest and manifest.schema else []
    rows: list[Row] = []
    chunk = response.result
    while chunk is not None:
        rows.extend(dict(zip(columns, values, strict=False)) for values in chunk.data_array or [])
        if chunk.next_chunk_index is None:
            break
        chunk = ws.client.statement_execution.get_statement_result_chunk_n(
            response.statement_id or "", chunk.next_chunk_index
        )
    return rows


def column(row: Row, name: str, position: int) -> str | None:
    """A row's value by column name, case-insensitively (legacy and Unity Catalog layouts differ), else by position."""
    for key, value in row.items():
        if key.lower() == name.lower():
            return value
    values = list(row.values())
    return values[position] if position < len(values) else None


def warehouse_setting(side: str) -> str:
    return f"metastore.{side}_warehouse_id"


SQL_RUNNER: CacheKey[SqlRunner] = CacheKey("sql-runner")  # one statement runner per side


def runner(ctx: SyncContext, ws: Workspace) -> SqlRunner:
    """The runner for one side, from `metastore.<side>_warehouse_id`; WarehouseMissing names the setting."""
    setting = warehouse_setting(ws.side)
    warehouse_id = getattr(ctx.settings.metastore, f"{ws.side}_warehouse_id", None)
    if not warehouse_id:
        raise WarehouseMissing(
            f"setting {setting} is missing: the metastore kinds (schemas, tables, views, table_acls) run SQL on a "
            f"warehouse of each workspace; set DBSYNC_METASTORE__{ws.side.upper()}_WAREHOUSE_ID or {setting} "
            "in dbsync.yaml (or disable these kinds)"
        )
    return ctx.cached(SQL_RUNNER.part(ws.side), lambda: SqlRunner(ws, warehouse_id, setting))
