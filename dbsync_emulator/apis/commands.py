"""Command Execution API 1.2: execution contexts on a cluster and commands run in them (camelCase).

Contexts live in table "command_contexts" and commands in "commands", keyed by their ids. A context
needs a RUNNING cluster (read through `clusters.cluster_state`); it keeps its own current catalog and
schema, so `USE` carries over between commands as in a notebook. SQL commands (language "sql", a
`%sql` cell, or Python `spark.sql("...")` / `display(spark.sql("..."))`) run on the emulator's SQL
engine and finish at once; Python runs in the interpreted subset of dbsync_emulator/dbutils.py (mounts,
secret values, redacted in output as on a cluster); other code finishes with an error result saying the
emulator cannot run it. Errors use the 1.2 body `{"error": "..."}`, which the SDK reads as the message
(with no error_code); `commands/execute` checks `contextId` before anything else, as the service does.
"""

from __future__ import annotations

import json
import re
from typing import Any

from dbsync_emulator import dbutils, sqlengine
from dbsync_emulator.errors import ApiError
from dbsync_emulator.router import Request, Routes
from dbsync_emulator.state import Workspace

routes = Routes()

CONTEXTS = "command_contexts"
COMMANDS = "commands"
LANGUAGES = ("python", "scala", "sql", "r")
MAX_CONTEXTS_PER_CLUSTER = 145
_RUNNING_STATES = ("RUNNING", "RESIZING")
_STARTING_STATES = ("PENDING", "RESTARTING")
# Spark's JSON type names, as 1.2 table results carry them in `schema[].type`.
_SPARK_JSON_TYPES = {
    "INT": "integer",
    "BIGINT": "long",
    "SMALLINT": "short",
    "TINYINT": "byte",
    "STRING": "string",
    "BOOLEAN": "boolean",
    "DOUBLE": "double",
    "FLOAT": "float",
    "DATE": "date",
    "TIMESTAMP": "timestamp",
    "BINARY": "binary",
    "VOID": "void",
}
_PYTHON_SQL = re.compile(
    r"""^\s*(?:display\(\s*)?spark\.sql\(\s*(?:[rRfF])?(\"\"\"|'''|"|')(?P<sql>.*?)\1\s*\)"""
    r"""(?:\s*\))?(?:\.(?:show|collect|display)\(\s*\))?\s*$""",
    re.DOTALL,
)


class CommandApiError(ApiError):
    """A 1.2 error: `{"error": message}` rather than `{"error_code", "message"}`."""

    def body(self) -> dict:
        return {"error": self.message}


def _error(message: str, status: int = 400) -> CommandApiError:
    return CommandApiError(status, "INVALID_PARAMETER_VALUE" if status == 400 else "RESOURCE_DOES_NOT_EXIST", message)


# -- clusters ---------------------------------------------------------------------------------------
def _cluster_state(ws: Workspace, cluster_id: str) -> str | None:
    """The cluster's state as the clusters API reports it (advanced lazily), None when unknown."""
    from dbsync_emulator.apis import clusters

    reader = getattr(clusters, "cluster_state", None)
    if reader is not None:
        return reader(ws, cluster_id)
    record = ws.table("clusters").get(cluster_id)
    return record.get("state") if isinstance(record, dict) else None


def _require_running(ws: Workspace, cluster_id: Any) -> str:
    if not cluster_id or not isinstance(cluster_id, str):
        raise _error("Missing required field: clusterId")
    state = _cluster_state(ws, cluster_id)
    if state is None:
        raise _error(f"Cluster {cluster_id} does not exist")
    if state in _STARTING_STATES:
        # The SDK retries this message until the cluster is up, as it does against the service.
        raise _error(f"ClusterNotReadyException: Cluster {cluster_id} is {state}; wait until it is running.")
    if state not in _RUNNING_STATES:
        raise _error(f"Cluster {cluster_id} is not running (state: {state}). Start the cluster first.")
    return cluster_id


# -- contexts -----------------------------------------------------------------------------------------
def _language(value: Any) -> str:
    language = (value or "").lower() if isinstance(value, str) else ""
    if language not in LANGUAGES:
        raise _error(f"Invalid language: {value!r}. Supported languages: {', '.join(LANGUAGES)}")
    return language


def create_context(ws: Workspace, cluster_id: str, language: str) -> str:
    """Open an execution context on a running cluster; returns its id."""
    _require_running(ws, cluster_id)
    language = _language(language)
    contexts = ws.table(CONTEXTS)
    if sum(1 for c in contexts.values() if c["cluster_id"] == cluster_id) >= MAX_CONTEXTS_PER_CLUSTER:
        raise _error(
            f"Too many execution contexts are open right now.(Limit set currently to {MAX_CONTEXTS_PER_CLUSTER})"
        )
    context_id = str(ws.next_id("command_context", start=1_794_512_733_016_204_000))
    contexts[context_id] = {
        "id": context_id,
        "cluster_id": cluster_id,
        "language": language,
        "catalog": sqlengine.HIVE_METASTORE,
        "schema": "default",
        "created_ms": ws.now_ms(),
    }
    return context_id


def _context(ws: Workspace, cluster_id: Any, context_id: Any) -> dict:
    if not context_id:
        raise _error("Missing required field: contextId")
    context = ws.table(CONTEXTS).get(str(context_id))
    if context is None or context["cluster_id"] != cluster_id:
        raise _error(f"Context {context_id} does not exist on cluster {cluster_id}", status=404)
    return context


def _context_status(ws: Workspace, context: dict) -> str:
    # A context dies with its cluster: once the cluster stops running it reports Error.
    return "Running" if _cluster_state(ws, context["cluster_id"]) in _RUNNING_STATES else "Error"


@routes.post("/api/1.2/contexts/create")
def contexts_create(ws: Workspace, req: Request) -> dict:
    body = req.json
    return {"id": create_context(ws, body.get("clusterId"), body.get("language"))}


@routes.get("/api/1.2/contexts/status")
def contexts_status(ws: Workspace, req: Request) -> dict:
    cluster_id = req.arg("clusterId")
    if _cluster_state(ws, cluster_id or "") is None:
        raise _error(f"Cluster {cluster_id} does not exist")
    context = _context(ws, cluster_id, req.arg("contextId"))
    return {"id": context["id"], "status": _context_status(ws, context)}


@routes.post("/api/1.2/contexts/destroy")
def contexts_destroy(ws: Workspace, req: Request) -> dict:
    body = req.json
    context = _context(ws, body.get("clusterId"), body.get("contextId"))
    del ws.table(CONTEXTS)[context["id"]]
    return {}


# -- commands -------------------------------------------------------------------------------------------
def _sql_of(language: str, command: str) -> str | None:
    """The SQL a command runs: a sql command, a `%sql` cell, or a Python `spark.sql("...")` call."""
    if language == "sql":
        return command
    stripped = command.lstrip()
    if stripped.startswith("%sql"):
        return stripped[len("%sql") :]
    if language == "python":
        match = _PYTHON_SQL.match(command)
        if match:
            return match.group("sql")
    return None


def _table_result(result: sqlengine.Result) -> dict:
    schema = [{"name": c.name, "type": json.dumps(_spark_type(c.type_text)), "metadata": "{}"} for c in result.columns]
    data = [[sqlengine.to_json_value(value) for value in row] for row in result.rows]
    return {"resultType": "table", "data": data, "schema": schema, "truncated": False, "isJsonSchema": True}


def _spark_type(type_text: str) -> str:
    decimal = re.fullmatch(r"DECIMAL\((\d+),(\d+)\)", type_text)
    if decimal:
        return f"decimal({decimal.group(1)},{decimal.group(2)})"
    return _SPARK_JSON_TYPES.get(type_text, type_text.lower())


def _error_result(exception: str, message: str) -> dict:
    return {"resultType": "error", "summary": f"{exception}: {message}", "cause": f"{exception}: {message}"}


def run_command(ws: Workspace, context: dict, language: str, command: str) -> dict:
    """Run a command in a context; returns its `results` object (table, or error with summary/cause)."""
    sql = _sql_of(language, command)
    if sql is None and language == "python":
        # dbutils.fs mounts and a small, safe subset of Python (see dbsync_emulator/dbutils.py).
        variables = ws.cache("python_variables").setdefault(context["id"], {})
        secrets_read = ws.cache("secrets_read").setdefault(context["id"], set())
        result = dbutils.run_python(ws, variables, command, secrets_read)
        if result is not None:
            return result
    if sql is None:
        return _error_result(
            "NotImplementedError", f"the emulator runs only SQL and dbutils.fs mounts ({language} code is not executed)"
        )
    session = sqlengine.Session(context["catalog"], context["schema"], ws.admin_user)
    try:
        result = sqlengine.run_script(ws, sql, session)
    except sqlengine.SqlError as err:
        return _error_result(f"org.apache.spark.sql.{err.exception}", err.text)
    finally:
        context["catalog"], context["schema"] = session.catalog, session.schema
    return _table_result(result)


@routes.post("/api/1.2/commands/execute")
def commands_execute(ws: Workspace, req: Request) -> dict:
    body = req.json
    if not body.get("contextId"):
        # Checked first, with this message (databricks-sdk-py tests/integration/test_commands.py).
        raise _error("requirement failed: missing contextId")
    cluster_id = _require_running(ws, body.get("clusterId"))
    context = _context(ws, cluster_id, body.get("contextId"))
    language = _language(body.get("language") or context["language"])
    command = body.get("command")
    if not isinstance(command, str):
        raise _error("Missing required field: command")
    command_id = ws.random_hex(32)
    ws.table(COMMANDS)[command_id] = {
        "id": command_id,
        "cluster_id": cluster_id,
        "context_id": context["id"],
        "status": "Finished",
        "results": run_command(ws, context, language, command),
    }
    return {"id": command_id}


def _command(ws: Workspace, cluster_id: Any, context_id: Any, command_id: Any) -> dict:
    context = _context(ws, cluster_id, context_id)
    record = ws.table(COMMANDS).get(str(command_id or ""))
    if record is None or record["context_id"] != context["id"]:
        raise _error(f"Command {command_id} does not exist in context {context_id}", status=404)
    return record


@routes.get("/api/1.2/commands/status")
def commands_status(ws: Workspace, req: Request) -> dict:
    record = _command(ws, req.arg("clusterId"), req.arg("contextId"), req.arg("commandId"))
    return {"id": record["id"], "status": record["status"], "results": record["results"]}


@routes.post("/api/1.2/commands/cancel")
def commands_cancel(ws: Workspace, req: Request) -> dict:
    """Commands finish as they are submitted, so there is never anything left to cancel."""
    body = req.json
    _command(ws, body.get("clusterId"), body.get("contextId"), body.get("commandId"))
    return {}
