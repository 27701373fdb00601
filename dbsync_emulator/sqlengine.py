"""A small Databricks SQL engine: a JSON-able metastore plus an executor for the DDL, grant and
SHOW/DESCRIBE statements that workspace tooling runs through SQL warehouses and cluster contexts.

State lives in workspace tables, so snapshots carry it:
  sql_catalogs   catalog name -> catalog record
  sql_schemas    catalog name -> {schema name -> schema record}
  sql_relations  (catalog, schema) -> {table or view name -> relation record}   (indexed by schema)
  sql_grants     (kind, catalog, schema, name) -> [{"principal", "action_type"}]
Names are stored lower-case, as the metastore does; error messages quote them as written.
Tables hold metadata only, never rows: SELECT from a table answers its columns and no rows. A Delta
table has a version (each CREATE [OR REPLACE], ALTER TABLE ... SET/UNSET TBLPROPERTIES or ADD COLUMNS, and
CLONE is a commit); `DESCRIBE HISTORY` answers its latest commit only (older versions are not kept), and
`CREATE [OR REPLACE] TABLE t [DEEP] CLONE <table | delta.`path`>` copies the definition and version of a
Delta table, from this workspace or, for a cloud path (s3://, abfss://, gs://), from any emulated
workspace of the process (object storage is outside the workspaces: CLOUD_STORAGE); dbfs:/ is each
workspace's own. Not modelled: SHALLOW CLONE, time travel, CLONE with TBLPROPERTIES or LOCATION.

Parsing: CREATE TABLE and queries go through sqlglot (dialect "databricks"); everything sqlglot
cannot parse faithfully (SHOW, DESCRIBE, DENY, ALTER ... OWNER TO, CREATE SCHEMA clauses) is read
by a small tokenizer and cursor here.

Grants follow the legacy table ACL model in hive_metastore (SHOW GRANTS columns Principal, ActionType,
ObjectType, ObjectKey; owners as OWN rows; DENY as DENIED_<privilege>; inherited schema and catalog
rows included) and the Unity Catalog shape elsewhere (principal, actionType, objectType, objectKey;
no DENY). Not modelled: table data (INSERT/UPDATE/MERGE fail as unsupported), functions, temporary
views, GROUP BY and joins over rows, information_schema contents, principal existence checks.
"""

from __future__ import annotations

import copy
import datetime as dt
import math
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, NamedTuple

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError

from dbsync_emulator import audit
from dbsync_emulator.state import Workspace

HIVE_METASTORE = "hive_metastore"
UC_CATALOG = "main"
CATALOGS = "sql_catalogs"
SCHEMAS = "sql_schemas"
RELATIONS = "sql_relations"
GRANTS = "sql_grants"
_WAREHOUSE_ROOT = "dbfs:/user/hive/warehouse"
_UC_ROOT = "s3://dbsync-emulator-metastore"
_DIALECT = "databricks"


# -- errors and results ---------------------------------------------------------------------------------
class SqlError(Exception):
    """A statement failure as Databricks reports it: `[ERROR_CLASS] message SQLSTATE: xxxxx`."""

    def __init__(
        self,
        error_class: str,
        message: str,
        sql_state: str,
        error_code: str = "BAD_REQUEST",
        exception: str = "AnalysisException",
        suffix: str = "",
    ) -> None:
        self.error_class = error_class
        self.sql_state = sql_state
        # The statement API reports analysis errors as BAD_REQUEST; clients sniff the class in the text.
        self.error_code = error_code
        self.exception = exception
        self.text = f"[{error_class}] {message} SQLSTATE: {sql_state}{suffix}"
        super().__init__(self.text)


class Column(NamedTuple):
    name: str
    type_text: str  # Spark SQL type as DESCRIBE prints it: INT, BIGINT, STRING, DECIMAL(10,2), ...


class Result(NamedTuple):
    """What a statement returns; unpacks as `(columns, rows)`. Rows hold Python values."""

    columns: list[Column]
    rows: list[list[Any]]


_NO_RESULT = Result([], [])


@dataclass
class Session:
    """Per-connection state: the current catalog and schema (changed by USE) and the caller."""

    catalog: str = HIVE_METASTORE
    schema: str = "default"
    user: str = ""


def _string_columns(*names: str) -> list[Column]:
    return [Column(name, "STRING") for name in names]


def _not_found_table(written: str) -> SqlError:
    return SqlError(
        "TABLE_OR_VIEW_NOT_FOUND",
        f"The table or view {written} cannot be found. Verify the spelling and correctness of the schema "
        "and catalog.\nIf you did not qualify the name with a schema, verify the current_schema() output, "
        "or qualify the name with the correct schema and catalog.\nTo tolerate the error on drop use "
        "DROP VIEW IF EXISTS or DROP TABLE IF EXISTS.",
        "42P01",
    )


def _not_found_schema(written: str) -> SqlError:
    return SqlError(
        "SCHEMA_NOT_FOUND",
        f"The schema {written} cannot be found. Verify the spelling and correctness of the schema and "
        "catalog.\nIf you did not qualify the name with a catalog, verify the current_schema() output, or "
        "qualify the name with the correct catalog.\nTo tolerate the error on drop use DROP SCHEMA IF "
        "EXISTS.",
        "42704",
    )


def schema_not_found(written: str) -> SqlError:
    """The SCHEMA_NOT_FOUND error of a schema named `written` (also what a `schema_not_found` fault rule answers)."""
    return _not_found_schema(written)


def _not_found_catalog(name: str) -> SqlError:
    return SqlError(
        "NO_SUCH_CATALOG_EXCEPTION",
        f"The catalog '{name}' was not found. Verify the catalog name and then retry the query or command again.",
        "42704",
    )


def _already_exists(written: str) -> SqlError:
    return SqlError(
        "TABLE_OR_VIEW_ALREADY_EXISTS",
        f"Cannot create table or view {written} because it already exists.\nChoose a different name, drop or "
        "replace the existing object, or add the IF NOT EXISTS clause to tolerate pre-existing objects.",
        "42P07",
    )


def _unsupported(what: str) -> SqlError:
    return SqlError("UNSUPPORTED_FEATURE", f"The feature is not supported by the emulator: {what}.", "0A000")


# -- tokenizer --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Tok:
    kind: str  # word, ident (backticked), string, number, punct
    text: str  # as written
    value: str  # identifier without backticks, string literal unescaped; else the text
    start: int
    end: int  # exclusive


_TOKEN = re.compile(
    r"""
      (?P<space>\s+)
    | (?P<comment>--[^\n]*|/\*.*?\*/)
    | (?P<ident>`(?:[^`]|``)*`)
    | (?P<string>[rR]?'(?:[^'\\]|\\.)*'|[rR]?"(?:[^"\\]|\\.)*")
    | (?P<number>(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?(?:BD|bd|[LSYDFlsydf])?(?![A-Za-z0-9_]))
    | (?P<word>[A-Za-z0-9_]+)
    | (?P<punct><=>|<=|>=|<>|!=|==|\|\||::|=>|[.,();=<>*+\-/%\[\]{}|!~^&:?$])
    """,
    re.VERBOSE | re.DOTALL,
)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "0": "\0", "b": "\b"}


def _unquote_string(text: str) -> str:
    if text[0] in "rR":
        return text[2:-1]
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), text[1:-1], flags=re.DOTALL)


def _tokenize(sql: str) -> list[_Tok]:
    tokens: list[_Tok] = []
    pos = 0
    while pos < len(sql):
        m = _TOKEN.match(sql, pos)
        if m is None:
            raise _syntax_error(sql, _Tok("punct", sql[pos], sql[pos], pos, pos + 1))
        kind = m.lastgroup or ""
        text = m.group()
        pos = m.end()
        if kind in ("space", "comment"):
            continue
        value = text
        if kind == "ident":
            value = text[1:-1].replace("``", "`")
        elif kind == "string":
            value = _unquote_string(text)
        tokens.append(_Tok(kind, text, value, m.start(), m.end()))
    return tokens


def _syntax_error(sql: str, tok: _Tok | None) -> SqlError:
    """PARSE_SYNTAX_ERROR at a token (None = end of input), with Spark's `== SQL ==` pointer."""
    start = len(sql) if tok is None else tok.start
    near = "end of input" if tok is None else f"'{tok.text}'"
    line_no = sql.count("\n", 0, start) + 1
    col = start - (sql.rfind("\n", 0, start) + 1)
    lines = sql.split("\n")
    lines.insert(line_no, "-" * col + "^^^")
    pointer = "\n".join(lines)
    return SqlError(
        "PARSE_SYNTAX_ERROR",
        f"Syntax error at or near {near}.",
        "42601",
        exception="ParseException",
        suffix=f" (line {line_no}, pos {col})\n\n== SQL ==\n{pointer}\n",
    )


class _Cursor:
    """Reads one statement token by token; keywords match case-insensitively, never backticked names."""

    def __init__(self, sql: str) -> None:
        self.sql = sql
        self.toks = _tokenize(sql)
        while self.toks and self.toks[-1].text == ";":
            self.toks.pop()
        for tok in self.toks:
            if tok.text == ";":  # one statement per request, as the statement API accepts
                raise _syntax_error(sql, tok)
        self.i = 0

    def peek(self, k: int = 0) -> _Tok | None:
        idx = self.i + k
        return self.toks[idx] if idx < len(self.toks) else None

    def word_at(self, k: int = 0) -> str | None:
        tok = self.peek(k)
        return tok.value.upper() if tok is not None and tok.kind == "word" else None

    def is_words(self, *words: str) -> bool:
        return all(self.word_at(k) == word for k, word in enumerate(words))

    def accept(self, *words: str) -> bool:
        if not self.is_words(*words):
            return False
        self.i += len(words)
        return True

    def accept_one(self, *words: str) -> str | None:
        """Consume one keyword out of `words` if it comes next; returns it, or None."""
        word = self.word_at()
        if word is None or word not in words:
            return None
        self.i += 1
        return word

    def expect(self, *words: str) -> None:
        for word in words:
            if not self.accept(word):
                raise self.error()

    def is_punct(self, text: str, k: int = 0) -> bool:
        tok = self.peek(k)
        return tok is not None and tok.kind == "punct" and tok.text == text

    def accept_punct(self, text: str) -> bool:
        if not self.is_punct(text):
            return False
        self.i += 1
        return True

    def expect_punct(self, text: str) -> None:
        if not self.accept_punct(text):
            raise self.error()

    def advance(self) -> _Tok:
        tok = self.peek()
        if tok is None:
            raise self.error()
        self.i += 1
        return tok

    def at_end(self) -> bool:
        return self.i >= len(self.toks)

    def expect_end(self) -> None:
        if not self.at_end():
            raise self.error()

    def error(self) -> SqlError:
        return _syntax_error(self.sql, self.peek())

    def name(self) -> list[_Tok]:
        """A dotted name: `a`.b.`c` → its parts."""
        parts = [self._name_part()]
        while self.accept_punct("."):
            parts.append(self._name_part())
        return parts

    def _name_part(self) -> _Tok:
        tok = self.peek()
        if tok is None or tok.kind not in ("word", "ident"):
            raise self.error()
        self.i += 1
        return tok

    def string(self) -> str:
        """A string literal; adjacent literals concatenate as in Spark."""
        tok = self.peek()
        if tok is None or tok.kind != "string":
            raise self.error()
        value = ""
        while (tok := self.peek()) is not None and tok.kind == "string":
            value += tok.value
            self.i += 1
        return value

    def principal(self) -> str:
        tok = self.peek()
        if tok is None or tok.kind not in ("word", "ident", "string"):
            raise self.error()
        self.i += 1
        return tok.value

    def properties(self) -> dict[str, str]:
        """`('k' = 'v', a.b = 1, ...)` as TBLPROPERTIES, OPTIONS and DBPROPERTIES write it."""
        self.expect_punct("(")
        props: dict[str, str] = {}
        while True:
            tok = self.peek()
            if tok is not None and tok.kind == "string":
                key = self.string()
            else:
                key = ".".join(part.value for part in self.name())
            self.accept_punct("=")
            props[key] = self._literal_text()
            if not self.accept_punct(","):
                break
        self.expect_punct(")")
        return props

    def _literal_text(self) -> str:
        tok = self.peek()
        if tok is None or tok.kind not in ("string", "number", "word"):
            raise self.error()
        if tok.kind == "string":
            return self.string()
        self.i += 1
        return tok.value.lower() if tok.kind == "word" else tok.value

    def rest(self) -> str:
        """The text from the current token to the last one, verbatim (trailing comments excluded)."""
        tok = self.peek()
        return "" if tok is None else self.sql[tok.start : self.toks[-1].end]


def split_statements(sql: str) -> list[str]:
    """Split a script on top-level semicolons (for command contexts, which accept several)."""
    statements: list[str] = []
    start = 0
    for tok in _tokenize(sql):
        if tok.text == ";":
            statements.append(sql[start : tok.start])
            start = tok.end
    statements.append(sql[start:])
    return [s.strip() for s in statements if s.strip()]


# -- parameter markers ------------------------------------------------------------------------------
_INT_TYPES = {"INT": 32, "INTEGER": 32, "BIGINT": 64, "LONG": 64, "SMALLINT": 16, "SHORT": 16, "TINYINT": 8}
_INT_TYPES |= {"BYTE": 8}


def _quote_string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _cast_invalid(value: Any, target: str) -> SqlError:
    return SqlError(
        "CAST_INVALID_INPUT",
        f'The value {_quote_string(str(value))} of the type "STRING" cannot be cast to "{target}" because '
        "it is malformed. Correct the value as per the syntax, or change its target type.",
        "22018",
    )


def _param_literal(value: str | None, type_name: str | None) -> str:
    target = (type_name or "STRING").strip().upper()
    if value is None:
        return "NULL" if target == "STRING" else f"CAST(NULL AS {target})"
    if target == "STRING" or target.startswith(("VARCHAR", "CHAR")):
        return _quote_string(value)
    _convert(value, target)  # raises CAST_INVALID_INPUT for values the type cannot hold
    return f"CAST({_quote_string(value)} AS {target})"


def bind_parameters(sql: str, parameters: Iterable[dict]) -> str:
    """Replace named `:name` markers with typed literals, as the statement API binds `parameters`."""
    values = {p["name"]: p for p in parameters}
    toks = _tokenize(sql)
    pieces: list[str] = []
    cursor = 0
    for idx, tok in enumerate(toks):
        if tok.text != ":" or idx + 1 >= len(toks):
            continue
        name_tok = toks[idx + 1]
        if name_tok.start != tok.end or name_tok.kind not in ("word", "ident"):
            continue
        before = toks[idx - 1] if idx else None
        # `a:INT` in STRUCT types and `col:field` paths touch a word on the left; markers do not.
        if before is not None and before.end == tok.start and before.kind != "punct":
            continue
        if before is not None and before.text == ":":
            continue
        param = values.get(name_tok.value)
        if param is None:
            raise SqlError(
                "UNBOUND_SQL_PARAMETER",
                f"Found the unbound parameter: {name_tok.value}. Please, fix `args` and provide a mapping of "
                "the parameter to either a SQL literal or collection constructor functions such as `map()`, "
                "`array()`, `struct()`.",
                "42P02",
            )
        pieces.append(sql[cursor : tok.start])
        pieces.append(_param_literal(param.get("value"), param.get("type")))
        cursor = name_tok.end
    pieces.append(sql[cursor:])
    return "".join(pieces)


# -- values ---------------------------------------------------------------------------------------
def _convert(value: Any, target: str) -> Any:
    """Cast a Python value to a Spark type (ANSI rules, roughly); CAST_INVALID_INPUT when it cannot."""
    target = target.upper()
    if value is None:
        return None
    try:
        if target in _INT_TYPES:
            number = int(value) if isinstance(value, (int, float, Decimal)) else int(str(value).strip())
            limit = 1 << (_INT_TYPES[target] - 1)
            if not -limit <= number < limit:
                raise ValueError(value)
            return number
        if target in ("DOUBLE", "FLOAT", "REAL"):
            return float(value)
        if target.startswith(("DECIMAL", "NUMERIC", "DEC")):
            number = Decimal(str(value).strip())
            scale = re.search(r",\s*(\d+)\)", target)
            return number.quantize(Decimal(1).scaleb(-int(scale.group(1))), ROUND_HALF_UP) if scale else number
        if target == "BOOLEAN":
            return _to_bool(value)
        if target == "DATE":
            return dt.date.fromisoformat(str(value).strip()[:10]).isoformat()
        if target.startswith("TIMESTAMP"):
            text = str(value).strip().replace(" ", "T").replace("Z", "+00:00")
            return _iso_timestamp(dt.datetime.fromisoformat(text))
        if target == "STRING" or target.startswith(("VARCHAR", "CHAR")):
            return to_text(value)
    except (ValueError, InvalidOperation, TypeError):
        raise _cast_invalid(value, target) from None
    raise _unsupported(f"CAST to {target}")


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "t", "yes", "y", "1"):
        return True
    if text in ("false", "f", "no", "n", "0"):
        return False
    raise ValueError(value)


def _iso_timestamp(moment: dt.datetime) -> str:
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC).replace(tzinfo=None)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def to_text(value: Any) -> str | None:
    """A value as the statement API's JSON_ARRAY format carries it: a string, or None for NULL."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if not math.isfinite(value):
            return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
        return repr(value) if value != int(value) or abs(value) >= 1e16 else f"{value:.1f}"
    return str(value)


def to_json_value(value: Any) -> Any:
    """A value as a command context's table result carries it: native JSON types."""
    return float(value) if isinstance(value, Decimal) else value


# -- metastore records ------------------------------------------------------------------------------
def init_metastore(ws: Workspace) -> None:
    """Create what a new workspace's metastore has: hive_metastore.default, main.default (idempotent)."""
    catalogs = ws.table(CATALOGS)
    if HIVE_METASTORE not in catalogs:
        _put_catalog(ws, HIVE_METASTORE, "HIVE_METASTORE", owner=None)
        _put_schema(ws, HIVE_METASTORE, "default", owner=None, comment="Default Hive database")
    if UC_CATALOG not in catalogs:
        _put_catalog(ws, UC_CATALOG, "MANAGED_CATALOG", owner=ws.admin_user, comment="Main catalog")
        _put_schema(ws, UC_CATALOG, "default", owner=ws.admin_user, comment="Default schema (auto-created)")
        _put_schema(ws, UC_CATALOG, "information_schema", owner="System user", comment="Information schema")


def _is_hive(catalog: str) -> bool:
    return catalog == HIVE_METASTORE


def _put_catalog(ws: Workspace, name: str, kind: str, owner: str | None, comment: str | None = None) -> dict:
    record = {"name": name, "type": kind, "owner": owner, "comment": comment, "created_at": ws.now_ms()}
    ws.table(CATALOGS)[name] = record
    ws.table(SCHEMAS).setdefault(name, {})
    return record


def _schema_location(ws: Workspace, catalog: str, name: str) -> str | None:
    if not _is_hive(catalog):
        return None  # Unity Catalog schemas have no location unless given a managed location
    return _WAREHOUSE_ROOT if name == "default" else f"{_WAREHOUSE_ROOT}/{name}.db"


def _put_schema(
    ws: Workspace,
    catalog: str,
    name: str,
    owner: str | None,
    comment: str | None = None,
    location: str | None = None,
    properties: dict[str, str] | None = None,
) -> dict:
    record = {
        "catalog": catalog,
        "name": name,
        "owner": owner,
        "comment": comment,
        "location": location or _schema_location(ws, catalog, name),
        "properties": properties or {},
        "created_at": ws.now_ms(),
    }
    ws.table(SCHEMAS).setdefault(catalog, {})[name] = record
    return record


def _uuid(ws: Workspace) -> str:
    h = ws.random_hex(32)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _table_location(ws: Workspace, catalog: str, schema: dict, name: str) -> str:
    if _is_hive(catalog):
        return f"{schema['location'] or _schema_location(ws, catalog, schema['name'])}/{name}"
    return f"{_UC_ROOT}/{ws.workspace_id}/__unitystorage/tables/{_uuid(ws)}"


class _Name(NamedTuple):
    catalog: str
    schema: str
    name: str
    written: str  # as the statement wrote it, backticked: for error messages

    @property
    def key(self) -> tuple[str, str]:
        return (self.catalog, self.schema)


def _backticked(parts: Iterable[str]) -> str:
    return ".".join("`" + part.replace("`", "``") + "`" for part in parts)


def _too_many_parts(parts: list[str]) -> SqlError:
    return SqlError(
        "IDENTIFIER_TOO_MANY_NAME_PARTS",
        f"{_backticked(parts)} is not a valid identifier as it has more than 3 name parts.",
        "42601",
    )


@dataclass
class _Ctx:
    ws: Workspace
    session: Session
    depth: int = 0  # view expansion depth, to stop a view that (indirectly) selects from itself

    def relation_name(self, parts: list[str]) -> _Name:
        """Resolve a 1-, 2- or 3-part table name against the current catalog and schema."""
        lowered = [part.lower() for part in parts]
        if len(lowered) == 1:
            catalog, schema = self.session.catalog, self.session.schema
        elif len(lowered) == 2:
            catalog, schema = self.session.catalog, lowered[0]
        elif len(lowered) == 3:
            catalog, schema = lowered[0], lowered[1]
        else:
            raise _too_many_parts(parts)
        return _Name(catalog, schema, lowered[-1], _backticked(parts))

    def schema_name(self, parts: list[str]) -> tuple[str, str, str]:
        """(catalog, schema, as written) for a 1- or 2-part schema name."""
        lowered = [part.lower() for part in parts]
        if len(lowered) == 1:
            return self.session.catalog, lowered[0], _backticked([self.session.catalog, parts[0]])
        if len(lowered) == 2:
            return lowered[0], lowered[1], _backticked(parts)
        raise _too_many_parts(parts)

    def catalog(self, name: str) -> dict:
        record = self.ws.table(CATALOGS).get(name.lower())
        if record is None:
            raise _not_found_catalog(name)
        return record

    def schemas(self, catalog: str) -> dict[str, dict]:
        return self.ws.table(SCHEMAS).get(catalog, {})

    def schema(self, catalog: str, name: str, written: str) -> dict:
        self.catalog(catalog)
        record = self.schemas(catalog).get(name)
        if record is None:
            raise _not_found_schema(written)
        return record

    def relations(self, catalog: str, schema: str) -> dict[str, dict]:
        return self.ws.table(RELATIONS).get((catalog, schema), {})

    def find(self, name: _Name) -> dict | None:
        if (name.catalog, name.schema, name.name) == audit.NAME:
            return _AUDIT_TABLE if self.ws.audit_table else None
        return self.relations(name.catalog, name.schema).get(name.name)

    def relation(self, name: _Name) -> dict:
        record = self.find(name)
        if record is None:
            raise _not_found_table(name.written)
        return record


# system.access.audit: a read-only system table whose rows the emulator records (dbsync_emulator/audit.py).
_AUDIT_TABLE: dict = {
    "type": "SYSTEM_TABLE",
    "catalog": "system",
    "schema": "access",
    "name": "audit",
    "columns": [{"name": name, "type": type_text} for name, type_text in audit.COLUMNS],
}


def _names(parts: list[_Tok]) -> list[str]:
    return [part.value for part in parts]


def _quote_if_needed(part: str) -> str:
    if re.fullmatch(r"[A-Za-z0-9_]+", part) and not part.isdigit():
        return part
    return "`" + part.replace("`", "``") + "`"


def _full_name(record: dict) -> str:
    return ".".join(_quote_if_needed(p) for p in (record["catalog"], record["schema"], record["name"]))


def _like(pattern: str | None) -> Callable[[str], bool]:
    """Spark's SHOW ... LIKE: `*` matches anything, `|` separates alternatives, case-insensitive."""
    if pattern is None:
        return lambda name: True
    regexes = []
    for alternative in pattern.strip().split("|"):
        try:
            regexes.append(re.compile(alternative.strip().replace("*", ".*"), re.IGNORECASE))
        except re.error:
            continue
    return lambda name: any(r.fullmatch(name) for r in regexes)


# -- public entry points ----------------------------------------------------------------------------
def execute(ws: Workspace, sql: str, session: Session, parameters: Iterable[dict] | None = None) -> Result:
    """Run one statement; raises SqlError for what Databricks reports as a failed statement."""
    if HIVE_METASTORE not in ws.table(CATALOGS):
        init_metastore(ws)
    if not session.user:
        session.user = ws.admin_user
    text = bind_parameters(sql, parameters or ())
    cur = _Cursor(text)
    if cur.at_end():
        raise SqlError(
            "PARSE_EMPTY_STATEMENT",
            "Syntax error, unexpected empty statement.",
            "42617",
            exception="ParseException",
        )
    ctx = _Ctx(ws, session)
    verb = cur.word_at()
    handler = _STATEMENTS.get(verb or "")
    if handler is not None:
        return handler(ctx, cur)
    if verb in _QUERY_VERBS or cur.is_punct("("):
        return _run_query(ctx, _strip_semicolons(text))
    if verb in _UNSUPPORTED_VERBS:
        raise _unsupported(f"{verb} statements (tables hold no data)")
    raise cur.error()


def execute_sql(ws: Workspace, sql: str, catalog: str | None = None, schema: str | None = None) -> Result:
    """Run one statement as the workspace admin, e.g. to seed a workspace; returns (columns, rows)."""
    session = Session(catalog or HIVE_METASTORE, schema or "default", ws.admin_user)
    return execute(ws, sql, session)


def run_script(ws: Workspace, sql: str, session: Session) -> Result:
    """Run `;`-separated statements in order (a notebook cell); the result is the last statement's."""
    result = _NO_RESULT
    for statement in split_statements(sql):
        result = execute(ws, statement, session)
    return result


def _strip_semicolons(sql: str) -> str:
    return sql.strip().rstrip(";").strip()


# -- SHOW ---------------------------------------------------------------------------------------------
def _pattern(cur: _Cursor) -> str | None:
    if cur.accept("LIKE"):
        return cur.string()
    tok = cur.peek()
    return cur.string() if tok is not None and tok.kind == "string" else None


def _in_clause(cur: _Cursor) -> list[str] | None:
    if cur.accept_one("IN", "FROM"):
        return _names(cur.name())
    return None


def _show(ctx: _Ctx, cur: _Cursor) -> Result:
    cur.expect("SHOW")
    for words, handler in _SHOW_HANDLERS:
        if cur.accept(*words):
            return handler(ctx, cur)
    if cur.word_at() in ("USER", "SYSTEM", "ALL", "FUNCTIONS"):
        return _show_functions(ctx, cur)
    raise cur.error()


def _show_catalogs(ctx: _Ctx, cur: _Cursor) -> Result:
    matches = _like(_pattern(cur))
    cur.expect_end()
    names = sorted(name for name in ctx.ws.table(CATALOGS) if matches(name))
    return Result(_string_columns("catalog"), [[name] for name in names])


def _show_schemas(ctx: _Ctx, cur: _Cursor) -> Result:
    parts = _in_clause(cur)
    matches = _like(_pattern(cur))
    cur.expect_end()
    catalog = ctx.session.catalog
    if parts is not None:
        if len(parts) != 1:
            raise _too_many_parts(parts)
        catalog = parts[0].lower()
    ctx.catalog(catalog)
    names = sorted(name for name in ctx.schemas(catalog) if matches(name))
    return Result(_string_columns("databaseName"), [[name] for name in names])


def _listed_schema(ctx: _Ctx, cur: _Cursor) -> tuple[str, str, Callable[[str], bool]]:
    parts = _in_clause(cur)
    matches = _like(_pattern(cur))
    cur.expect_end()
    if parts is None:
        catalog, schema = ctx.session.catalog, ctx.session.schema
        written = _backticked([catalog, schema])
    else:
        catalog, schema, written = ctx.schema_name(parts)
    ctx.schema(catalog, schema, written)
    return catalog, schema, matches


def _show_tables(ctx: _Ctx, cur: _Cursor) -> Result:
    catalog, schema, matches = _listed_schema(ctx, cur)
    names = sorted(name for name in ctx.relations(catalog, schema) if matches(name))
    columns = [Column("database", "STRING"), Column("tableName", "STRING"), Column("isTemporary", "BOOLEAN")]
    return Result(columns, [[schema, name, False] for name in names])


def _show_views(ctx: _Ctx, cur: _Cursor) -> Result:
    catalog, schema, matches = _listed_schema(ctx, cur)
    relations = ctx.relations(catalog, schema)
    names = sorted(n for n, rec in relations.items() if rec["type"] == "VIEW" and matches(n))
    columns = [Column("namespace", "STRING"), Column("viewName", "STRING"), Column("isTemporary", "BOOLEAN")]
    return Result(columns, [[schema, name, False] for name in names])


def _show_functions(ctx: _Ctx, cur: _Cursor) -> Result:
    # No functions are modelled: user functions are empty, built-ins are not listed.
    cur.accept_one("USER", "SYSTEM", "ALL")
    cur.expect("FUNCTIONS")
    parts = _in_clause(cur)
    _pattern(cur)
    cur.expect_end()
    if parts is not None:
        catalog, schema, written = ctx.schema_name(parts)
        ctx.schema(catalog, schema, written)
    return Result(_string_columns("function"), [])


def _show_create_table(ctx: _Ctx, cur: _Cursor) -> Result:
    record = ctx.relation(ctx.relation_name(_names(cur.name())))
    cur.accept("AS", "SERDE")
    cur.expect_end()
    return Result(_string_columns("createtab_stmt"), [[render_create_statement(record)]])


def _show_tblproperties(ctx: _Ctx, cur: _Cursor) -> Result:
    record = ctx.relation(ctx.relation_name(_names(cur.name())))
    key = None
    if cur.accept_punct("("):
        tok = cur.peek()
        key = cur.string() if tok is not None and tok.kind == "string" else ".".join(_names(cur.name()))
        cur.expect_punct(")")
    cur.expect_end()
    props = record.get("properties") or {}
    if key is not None:
        value = props.get(key, f"Table {_full_name(record)} does not have property: {key}")
        return Result(_string_columns("key", "value"), [[key, value]])
    return Result(_string_columns("key", "value"), [[k, v] for k, v in sorted(props.items())])


def _show_columns(ctx: _Ctx, cur: _Cursor) -> Result:
    if not cur.accept_one("IN", "FROM"):
        raise cur.error()
    parts = _names(cur.name())
    schema_parts = _in_clause(cur)
    cur.expect_end()
    if schema_parts is not None:
        parts = [*schema_parts, parts[-1]]
    record = ctx.relation(ctx.relation_name(parts))
    return Result(_string_columns("col_name"), [[c["name"]] for c in record["columns"]])


# -- DESCRIBE -----------------------------------------------------------------------------------------
_DESCRIBE_TABLE_COLUMNS = _string_columns("col_name", "data_type", "comment")


def _describe(ctx: _Ctx, cur: _Cursor) -> Result:
    cur.advance()  # DESCRIBE or DESC
    if cur.accept_one("SCHEMA", "DATABASE", "NAMESPACE"):
        return _describe_schema(ctx, cur)
    if cur.accept("CATALOG"):
        return _describe_catalog(ctx, cur)
    if cur.word_at() == "HISTORY" and cur.peek(1) is not None:
        return _describe_history(ctx, cur)
    if cur.word_at() in ("DETAIL", "FUNCTION", "QUERY") and cur.peek(1) is not None:
        raise _unsupported(f"DESCRIBE {cur.word_at()}")
    cur.accept("TABLE")
    extended = cur.accept_one("EXTENDED", "FORMATTED") is not None
    record = ctx.relation(ctx.relation_name(_names(cur.name())))
    cur.expect_end()
    rows = [[c["name"], c["type"], c.get("comment")] for c in record["columns"]]
    partition_rows = _partition_rows(record)
    if partition_rows:
        rows += [["# Partition Information", "", ""], ["# col_name", "data_type", "comment"], *partition_rows]
    if extended:
        rows += [["", "", ""], ["# Detailed Table Information", "", ""]]
        rows += [[key, value, ""] for key, value in _detailed_table_information(record)]
    return Result(_DESCRIBE_TABLE_COLUMNS, rows)


def _partition_rows(record: dict) -> list[list[Any]]:
    by_name = {c["name"].lower(): c for c in record["columns"]}
    rows = []
    for name in record.get("partition_columns") or []:
        column = by_name.get(name.lower(), {"name": name, "type": "STRING", "comment": None})
        rows.append([column["name"], column["type"], column.get("comment")])
    return rows


def _java_date(ms: int) -> str:
    return time.strftime("%a %b %d %H:%M:%S UTC %Y", time.gmtime(ms / 1000))


def _detailed_table_information(record: dict) -> list[tuple[str, str]]:
    items = [
        ("Catalog", record["catalog"]),
        ("Database", record["schema"]),
        ("Table", record["name"]),
        ("Owner", record.get("owner") or ""),
        ("Created Time", _java_date(record["created_at"])),
        ("Last Access", "UNKNOWN"),
        ("Created By", "Spark 3.5.0"),
        ("Type", record["type"]),
    ]
    if record.get("comment"):
        items.append(("Comment", record["comment"]))
    if record["type"] == "VIEW":
        items += [
            ("View Text", record["view_text"]),
            ("View Original Text", record["view_text"]),
            ("View Catalog and Namespace", f"{record['view_catalog']}.{record['view_schema']}"),
            ("View Query Output Columns", "[" + ", ".join(f"`{c['name']}`" for c in record["columns"]) + "]"),
        ]
    else:
        items += [("Location", record["location"]), ("Provider", record["provider"])]
    props = record.get("properties") or {}
    if props:
        items.append(("Table Properties", "[" + ",".join(f"{k}={v}" for k, v in sorted(props.items())) + "]"))
    if record.get("partition_columns"):
        items.append(("Partition Provider", "Catalog"))
    return items


def _describe_schema(ctx: _Ctx, cur: _Cursor) -> Result:
    extended = cur.accept("EXTENDED")
    catalog, schema, written = ctx.schema_name(_names(cur.name()))
    cur.expect_end()
    record = ctx.schema(catalog, schema, written)
    rows = [
        ["Catalog Name", catalog],
        ["Namespace Name", schema],
        ["Comment", record.get("comment") or ""],
        ["Location", record.get("location") or ""],
        ["Owner", record.get("owner") or ""],
    ]
    if extended:
        props = ", ".join(f"({k},{v})" for k, v in sorted((record.get("properties") or {}).items()))
        rows.append(["Properties", f"({props})" if props else ""])
    return Result(_string_columns("database_description_item", "database_description_value"), rows)


def _describe_catalog(ctx: _Ctx, cur: _Cursor) -> Result:
    extended = cur.accept("EXTENDED")
    parts = _names(cur.name())
    cur.expect_end()
    if len(parts) != 1:
        raise _too_many_parts(parts)
    record = ctx.catalog(parts[0])
    rows = [["Catalog Name", record["name"]], ["Comment", record.get("comment") or ""]]
    rows.append(["Owner", record.get("owner") or ""])
    if extended:
        rows.append(["Catalog Type", "Hive Metastore" if _is_hive(record["name"]) else "Regular"])
    return Result(_string_columns("info_name", "info_value"), rows)


# -- USE and SET -------------------------------------------------------------------------------------
def _use(ctx: _Ctx, cur: _Cursor) -> Result:
    cur.expect("USE")
    if cur.accept("CATALOG"):
        parts = _names(cur.name())
        cur.expect_end()
        if len(parts) != 1:
            raise _too_many_parts(parts)
        ctx.catalog(parts[0])
        ctx.session.catalog, ctx.session.schema = parts[0].lower(), "default"
        return _NO_RESULT
    cur.accept_one("SCHEMA", "DATABASE", "NAMESPACE")
    catalog, schema, written = ctx.schema_name(_names(cur.name()))
    cur.expect_end()
    ctx.schema(catalog, schema, written)
    ctx.session.catalog, ctx.session.schema = catalog, schema
    return _NO_RESULT


def _set(ctx: _Ctx, cur: _Cursor) -> Result:
    cur.expect("SET")
    text = cur.rest()
    key, _, value = text.partition("=")
    return Result(_string_columns("key", "value"), [[key.strip(), value.strip() or "<undefined>"]])


# -- COMMENT ON -------------------------------------------------------------------------------------
def _comment(ctx: _Ctx, cur: _Cursor) -> Result:
    """COMMENT ON CATALOG c | { SCHEMA | DATABASE } s | TABLE t IS 'text' | NULL (a view is a TABLE here too)."""
    cur.expect("COMMENT", "ON")
    if cur.accept("CATALOG"):
        parts = _names(cur.name())
        if len(parts) != 1:
            raise _too_many_parts(parts)
        record = ctx.catalog(parts[0])
    elif cur.accept_one("SCHEMA", "DATABASE", "NAMESPACE"):
        record = ctx.schema(*ctx.schema_name(_names(cur.name())))
    elif cur.accept_one("TABLE", "VIEW"):
        record = ctx.relation(ctx.relation_name(_names(cur.name())))
    else:
        raise cur.error()
    cur.expect("IS")
    comment = None if cur.accept("NULL") else cur.string()
    cur.expect_end()
    record["comment"] = comment
    return _NO_RESULT


# -- CREATE ---------------------------------------------------------------------------------------
def _create(ctx: _Ctx, cur: _Cursor) -> Result:
    cur.expect("CREATE")
    replace = cur.accept("OR", "REPLACE")
    if cur.word_at() in ("TEMPORARY", "TEMP", "GLOBAL"):
        raise _unsupported("temporary views")
    if cur.word_at() in ("SCHEMA", "DATABASE") and not replace:
        return _create_schema(ctx, cur)
    if cur.word_at() == "CATALOG" and not replace:
        return _create_catalog(ctx, cur)
    if cur.word_at() == "VIEW":
        return _create_view(ctx, cur, replace)
    if cur.word_at() == "TABLE" and _CLONE.match(cur.sql):
        return _create_clone(ctx, cur, replace)
    if cur.word_at() == "TABLE" or cur.is_words("EXTERNAL", "TABLE"):
        return _create_table(ctx, cur.sql)
    if cur.word_at() in (
        "MATERIALIZED",
        "STREAMING",
        "FUNCTION",
        "VOLUME",
        "SHARE",
        "RECIPIENT",
        "CONNECTION",
    ):
        raise _unsupported(f"CREATE {cur.word_at()}")
    raise cur.error()


def _create_catalog(ctx: _Ctx, cur: _Cursor) -> Result:
    cur.expect("CATALOG")
    if_not_exists = cur.accept("IF", "NOT", "EXISTS")
    parts = _names(cur.name())
    comment = None
    while not cur.at_end():
        if cur.accept("COMMENT"):
            comment = cur.string()
        elif cur.accept("MANAGED", "LOCATION"):
            cur.string()
        else:
            raise cur.error()
    if len(parts) != 1:
        raise _too_many_parts(parts)
    name = parts[0].lower()
    if name in ctx.ws.table(CATALOGS):
        if if_not_exists:
            return _NO_RESULT
        raise SqlError("CATALOG_ALREADY_EXISTS", f"Catalog '{parts[0]}' already exists.", "42P04")
    _put_catalog(ctx.ws, name, "MANAGED_CATALOG", ctx.session.user, comment)
    _put_schema(ctx.ws, name, "default", ctx.session.user, "Default schema (auto-created)")
    _put_schema(ctx.ws, name, "information_schema", "System user", "Information schema")
    return _NO_RESULT


def _create_schema(ctx: _Ctx, cur: _Cursor) -> Result:
    cur.advance()  # SCHEMA or DATABASE
    if_not_exists = cur.accept("IF", "NOT", "EXISTS")
    catalog, schema, written = ctx.schema_name(_names(cur.name()))
    comment = location = None
    properties: dict[str, str] = {}
    while not cur.at_end():
        if cur.accept("COMMENT"):
            comment = cur.string()
        elif cur.accept("LOCATION") or cur.accept("MANAGED", "LOCATION"):
            location = cur.string()
        elif cur.accept("WITH", "DBPROPERTIES") or cur.accept("WITH", "PROPERTIES"):
            properties.update(cur.properties())
        else:
            raise cur.error()
    ctx.catalog(catalog)
    if schema in ctx.schemas(catalog):
        if if_not_exists:
            return _NO_RESULT
        raise SqlError(
            "SCHEMA_ALREADY_EXISTS",
            f"Cannot create schema {written} because it already exists.\nChoose a different name, drop the "
            "existing schema, or add the IF NOT EXISTS clause to tolerate pre-existing schema.",
            "42P06",
        )
    _put_schema(ctx.ws, catalog, schema, ctx.session.user, comment, location, properties)
    return _NO_RESULT


def _parse_sqlglot(sql: str) -> exp.Expression:
    try:
        tree = sqlglot.parse_one(sql, dialect=_DIALECT)
    except ParseError as err:
        raise _sqlglot_error(sql, err) from None
    if tree is None or isinstance(tree, exp.Command):
        raise _syntax_error(sql, _tokenize(sql)[0] if sql.strip() else None)
    return tree


def _sqlglot_error(sql: str, err: ParseError) -> SqlError:
    """Point at our token where sqlglot stopped (it reports a 1-based line and the column it reached)."""
    detail = err.errors[0] if err.errors else {}
    line, col = detail.get("line") or 1, detail.get("col") or 0
    offset = sum(len(text) + 1 for text in sql.split("\n")[: line - 1]) + col
    tokens = _tokenize(sql)
    for tok in tokens:
        if tok.start < offset <= tok.end:
            return _syntax_error(sql, tok)
    return _syntax_error(sql, None)


def _type_text(data_type: exp.Expression) -> str:
    text = data_type.sql(dialect=_DIALECT)
    return re.sub(r"DECIMAL\((\d+),\s*(\d+)\)", r"DECIMAL(\1,\2)", text)


def _column_def(node: exp.ColumnDef, sql: str) -> dict:
    kind = node.args.get("kind")
    if kind is None:
        raise _syntax_error(sql, None)
    column = {"name": node.name, "type": _type_text(kind), "nullable": True, "comment": None}
    for constraint in node.args.get("constraints") or []:
        item = constraint.args.get("kind") if isinstance(constraint, exp.ColumnConstraint) else constraint
        if isinstance(item, exp.NotNullColumnConstraint) and not item.args.get("allow_null"):
            column["nullable"] = False
        elif isinstance(item, exp.CommentColumnConstraint):
            column["comment"] = item.this.name
    return column


def _literal_value(node: exp.Expression | None) -> str:
    if node is None:
        return ""
    if isinstance(node, exp.Boolean):
        return "true" if node.this else "false"
    if isinstance(node, (exp.Literal, exp.Var, exp.Identifier)):
        return node.name
    return node.sql(dialect=_DIALECT)


def _table_clauses(tree: exp.Create, sql: str) -> dict:
    """USING, LOCATION, PARTITIONED BY, CLUSTER BY, COMMENT, OPTIONS and TBLPROPERTIES of a CREATE TABLE."""
    clauses: dict[str, Any] = {
        "provider": "delta",
        "external": False,
        "location": None,
        "comment": None,
        "partition_columns": [],
        "clustering_columns": [],
        "options": {},
        "properties": {},
        "extra_columns": [],
    }
    properties = tree.args.get("properties")
    for prop in properties.expressions if properties else []:
        if isinstance(prop, exp.FileFormatProperty):
            provider = _literal_value(prop.this).lower()
            clauses["provider"] = "text" if provider == "textfile" else provider
        elif isinstance(prop, exp.ExternalProperty):
            clauses["external"] = True
        elif isinstance(prop, exp.LocationProperty):
            clauses["location"] = _literal_value(prop.this)
        elif isinstance(prop, exp.SchemaCommentProperty):
            clauses["comment"] = _literal_value(prop.this)
        elif isinstance(prop, exp.PartitionedByProperty):
            for item in prop.this.expressions if isinstance(prop.this, exp.Schema) else [prop.this]:
                if isinstance(item, exp.ColumnDef):  # Hive style: partition columns are declared here
                    clauses["extra_columns"].append(_column_def(item, sql))
                clauses["partition_columns"].append(item.name)
        elif isinstance(prop, exp.ClusterProperty):
            clauses["clustering_columns"] = [item.name for item in prop.expressions]
        elif isinstance(prop, exp.OptionsProperty):
            clauses["options"].update({p.name: _literal_value(p.args.get("value")) for p in prop.expressions})
        elif isinstance(prop, exp.Property):
            clauses["properties"][prop.name] = _literal_value(prop.args.get("value"))
    return clauses


def _create_table(ctx: _Ctx, sql: str) -> Result:
    sql = _strip_semicolons(sql)
    tree = _parse_sqlglot(sql)
    if not isinstance(tree, exp.Create) or (tree.kind or "").upper() != "TABLE":
        raise _syntax_error(sql, _tokenize(sql)[0])
    target = tree.this.this if isinstance(tree.this, exp.Schema) else tree.this
    name = ctx.relation_name([part.name for part in target.parts])
    clauses = _table_clauses(tree, sql)
    columns = (
        [_column_def(c, sql) for c in tree.this.expressions if isinstance(c, exp.ColumnDef)]
        if isinstance(tree.this, exp.Schema)
        else []
    )
    if isinstance(tree.expression, exp.Query):  # CREATE TABLE ... AS SELECT: columns come from the query
        _check_relations(ctx, tree.expression)
        result = _eval_query(ctx, tree.expression, {}, rows_wanted=False)
        columns = [{"name": c.name, "type": c.type_text, "nullable": True, "comment": None} for c in result.columns]
    columns += clauses.pop("extra_columns")
    _check_columns(name, columns, clauses["partition_columns"])
    schema = ctx.schema(name.catalog, name.schema, _backticked([name.catalog, name.schema]))
    existing = ctx.find(name)
    if existing is not None:
        if tree.args.get("exists"):
            return _NO_RESULT
        if not tree.args.get("replace") or existing["type"] == "VIEW":
            raise _already_exists(_backticked([name.catalog, name.schema, name.name]))
    external = clauses.pop("external") or clauses["location"] is not None
    if clauses["provider"] == "delta":
        clauses["properties"] = {
            "delta.minReaderVersion": "1",
            "delta.minWriterVersion": "2",
            **clauses["properties"],
        }
    record = {
        "catalog": name.catalog,
        "schema": name.schema,
        "name": name.name,
        "type": "EXTERNAL" if external else "MANAGED",
        "columns": columns,
        **clauses,
        "owner": existing["owner"] if existing else ctx.session.user,
        "created_at": existing["created_at"] if existing else ctx.ws.now_ms(),
    }
    if record["location"] is None:
        record["location"] = _table_location(ctx.ws, name.catalog, schema, name.name)
    record["delta_version"] = existing.get("delta_version", 0) if existing else -1
    ctx.ws.table(RELATIONS).setdefault(name.key, {})[name.name] = record
    _commit(ctx, record, "CREATE OR REPLACE TABLE" if existing else "CREATE TABLE")
    return _NO_RESULT


def _check_columns(name: _Name, columns: list[dict], partition_columns: list[str]) -> None:
    seen: set[str] = set()
    for column in columns:
        lowered = column["name"].lower()
        if lowered in seen:
            raise SqlError("COLUMN_ALREADY_EXISTS", f"The column `{column['name']}` already exists.", "42711")
        seen.add(lowered)
    for partition in partition_columns:
        if columns and partition.lower() not in seen:
            defined = ", ".join(c["name"] for c in columns)
            raise SqlError(
                "COLUMN_NOT_DEFINED_IN_TABLE",
                f"partition column `{partition}` is not defined in table {name.written}, defined table "
                f"columns are: {defined}.",
                "42703",
            )


def _view_header(cur: _Cursor) -> tuple[list[tuple[str, str | None]], str | None, dict[str, str]]:
    """`[(col [COMMENT 'c'], ...)] [COMMENT 'c'] [TBLPROPERTIES (...)] [WITH SCHEMA ...] AS` of a view."""
    column_specs: list[tuple[str, str | None]] = []
    if cur.accept_punct("("):
        while True:
            column = cur.name()[0].value
            column_specs.append((column, cur.string() if cur.accept("COMMENT") else None))
            if not cur.accept_punct(","):
                break
        cur.expect_punct(")")
    comment, properties = None, {}
    while not cur.accept("AS"):
        if cur.accept("COMMENT"):
            comment = cur.string()
        elif cur.accept("TBLPROPERTIES"):
            properties = cur.properties()
        elif cur.accept("WITH", "SCHEMA"):
            while cur.word_at() in ("BINDING", "COMPENSATION", "TYPE", "EVOLUTION"):
                cur.advance()
        else:
            raise cur.error()
    return column_specs, comment, properties


def _create_view(ctx: _Ctx, cur: _Cursor, replace: bool) -> Result:
    cur.expect("VIEW")
    if_not_exists = cur.accept("IF", "NOT", "EXISTS")
    name = ctx.relation_name(_names(cur.name()))
    column_specs, comment, properties = _view_header(cur)
    text = cur.rest()
    if not text:
        raise cur.error()
    columns = _view_columns(ctx, text, column_specs, name)
    ctx.schema(name.catalog, name.schema, _backticked([name.catalog, name.schema]))
    existing = ctx.find(name)
    if existing is not None:
        if if_not_exists and not replace:
            return _NO_RESULT
        if not replace or existing["type"] != "VIEW":
            raise _already_exists(_backticked([name.catalog, name.schema, name.name]))
    record = {
        "catalog": name.catalog,
        "schema": name.schema,
        "name": name.name,
        "type": "VIEW",
        "columns": columns,
        "comment": comment,
        "properties": properties,
        "view_text": text,
        "view_catalog": ctx.session.catalog,
        "view_schema": ctx.session.schema,
        "owner": existing["owner"] if existing else ctx.session.user,
        "created_at": existing["created_at"] if existing else ctx.ws.now_ms(),
    }
    ctx.ws.table(RELATIONS).setdefault(name.key, {})[name.name] = record
    return _NO_RESULT


def _view_columns(ctx: _Ctx, text: str, specs: list[tuple[str, str | None]], name: _Name) -> list[dict]:
    """Analyse a view's query like the service does: referenced tables must exist; columns are derived."""
    query = _parse_sqlglot(text)
    if not isinstance(query, (exp.Query, exp.Values)):
        raise _syntax_error(text, _tokenize(text)[0])
    _check_relations(ctx, query)
    derived = _eval_query(ctx, query, {}, rows_wanted=False).columns
    if specs and len(specs) != len(derived):
        problem = "NOT_ENOUGH_DATA_COLUMNS" if len(specs) > len(derived) else "TOO_MANY_DATA_COLUMNS"
        raise SqlError(
            f"CREATE_VIEW_COLUMN_ARITY_MISMATCH.{problem}",
            f"Cannot create view {name.written}, the reason is not enough data columns:\nView columns: "
            f"{', '.join(f'`{s[0]}`' for s in specs)}.\nData columns: "
            f"{', '.join(f'`{c.name}`' for c in derived)}.",
            "21S01",
        )
    columns = [{"name": c.name, "type": c.type_text, "nullable": True, "comment": None} for c in derived]
    for column, (spec_name, spec_comment) in zip(columns, specs, strict=False):
        column["name"], column["comment"] = spec_name, spec_comment
    _check_columns(name, columns, [])
    return columns


# -- SHOW CREATE TABLE rendering ----------------------------------------------------------------------
def _sql_string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _properties_block(keyword: str, props: dict[str, str]) -> str:
    body = ",\n".join(f"  {_sql_string(k)} = {_sql_string(v)}" for k, v in sorted(props.items()))
    return f"{keyword} (\n{body})\n"


def render_create_statement(record: dict) -> str:
    """SHOW CREATE TABLE output in Databricks' layout: the stored definition, the view text verbatim."""
    if record["type"] == "VIEW":
        return _render_view(record)
    out = f"CREATE TABLE {_full_name(record)}"
    if record["columns"]:
        columns = []
        for column in record["columns"]:
            line = f"{_quote_if_needed(column['name'])} {column['type']}"
            if not column.get("nullable", True):
                line += " NOT NULL"
            if column.get("comment") is not None:
                line += f" COMMENT {_sql_string(column['comment'])}"
            columns.append(line)
        out += " (\n  " + ",\n  ".join(columns) + ")"
    out += f"\nUSING {record['provider']}\n"
    if record.get("options"):
        out += _properties_block("OPTIONS", record["options"])
    if record.get("partition_columns"):
        out += "PARTITIONED BY (" + ", ".join(map(_quote_if_needed, record["partition_columns"])) + ")\n"
    if record.get("clustering_columns"):
        out += "CLUSTER BY (" + ", ".join(map(_quote_if_needed, record["clustering_columns"])) + ")\n"
    if record.get("comment") is not None:
        out += f"COMMENT {_sql_string(record['comment'])}\n"
    if record["type"] == "EXTERNAL":
        out += f"LOCATION {_sql_string(record['location'])}\n"
    if record.get("properties"):
        out += _properties_block("TBLPROPERTIES", record["properties"])
    return out


def _render_view(record: dict) -> str:
    out = f"CREATE VIEW {_full_name(record)}"
    if record["columns"]:
        columns = []
        for column in record["columns"]:
            line = _quote_if_needed(column["name"])
            if column.get("comment") is not None:
                line += f" COMMENT {_sql_string(column['comment'])}"
            columns.append(line)
        out += " (\n  " + ",\n  ".join(columns) + ")"
    out += "\n"
    if record.get("comment") is not None:
        out += f"COMMENT {_sql_string(record['comment'])}\n"
    if record.get("properties"):
        out += _properties_block("TBLPROPERTIES", record["properties"])
    return out + f"AS {record['view_text']}\n"


# -- DROP ---------------------------------------------------------------------------------------------
def _drop(ctx: _Ctx, cur: _Cursor) -> Result:
    cur.expect("DROP")
    if cur.word_at() in ("TABLE", "VIEW"):
        kind = cur.advance().value.upper()
        if_exists = cur.accept("IF", "EXISTS")
        name = ctx.relation_name(_names(cur.name()))
        cur.accept("PURGE")
        cur.expect_end()
        return _drop_relation(ctx, kind, name, if_exists)
    if cur.word_at() in ("SCHEMA", "DATABASE", "NAMESPACE"):
        cur.advance()
        if_exists = cur.accept("IF", "EXISTS")
        catalog, schema, written = ctx.schema_name(_names(cur.name()))
        cascade = cur.accept_one("CASCADE", "RESTRICT") == "CASCADE"
        cur.expect_end()
        return _drop_schema(ctx, catalog, schema, written, if_exists, cascade)
    if cur.accept("CATALOG"):
        if_exists = cur.accept("IF", "EXISTS")
        parts = _names(cur.name())
        cascade = cur.accept_one("CASCADE", "RESTRICT") == "CASCADE"
        cur.expect_end()
        return _drop_catalog(ctx, parts, if_exists, cascade)
    raise cur.error()


def _drop_relation(ctx: _Ctx, kind: str, name: _Name, if_exists: bool) -> Result:
    record = ctx.find(name)
    if record is None:
        if if_exists:
            return _NO_RESULT
        raise _not_found_table(name.written)
    is_view = record["type"] == "VIEW"
    if (kind == "VIEW") != is_view:
        required, alternative = ("VIEW", "DROP TABLE") if kind == "VIEW" else ("EXTERNAL or MANAGED", "DROP VIEW")
        qualified = _backticked([name.catalog, name.schema, name.name])
        raise SqlError(
            "WRONG_COMMAND_FOR_OBJECT_TYPE",
            f"The operation DROP {kind} requires a {required}. But {qualified} is a {record['type']}. Use "
            f"{alternative} instead.",
            "42809",
        )
    del ctx.ws.table(RELATIONS)[name.key][name.name]
    ctx.ws.table(GRANTS).pop(("TABLE", name.catalog, name.schema, name.name), None)
    if record["type"] == "MANAGED":
        CLOUD_STORAGE.pop(record.get("location") or "", None)  # a managed table's files go with it
    return _NO_RESULT


def _drop_schema(ctx: _Ctx, catalog: str, schema: str, written: str, if_exists: bool, cascade: bool) -> Result:
    ctx.catalog(catalog)
    if schema not in ctx.schemas(catalog):
        if if_exists:
            return _NO_RESULT
        raise _not_found_schema(written)
    if (_is_hive(catalog) and schema == "default") or schema == "information_schema":
        raise SqlError("FORBIDDEN_OPERATION", f"The operation DROP is not allowed on the SCHEMA: {written}.", "42809")
    relations = ctx.relations(catalog, schema)
    if relations and not cascade:
        raise SqlError(
            "SCHEMA_NOT_EMPTY",
            f"Cannot drop a schema {written} because it contains objects.\nUse DROP SCHEMA ... CASCADE to "
            "drop the schema and all its objects.",
            "2BP01",
        )
    grants = ctx.ws.table(GRANTS)
    for table in relations:
        grants.pop(("TABLE", catalog, schema, table), None)
    grants.pop(("DATABASE", catalog, schema, None), None)
    ctx.ws.table(RELATIONS).pop((catalog, schema), None)
    del ctx.ws.table(SCHEMAS)[catalog][schema]
    return _NO_RESULT


def _drop_catalog(ctx: _Ctx, parts: list[str], if_exists: bool, cascade: bool) -> Result:
    if len(parts) != 1:
        raise _too_many_parts(parts)
    name = parts[0].lower()
    if name not in ctx.ws.table(CATALOGS):
        if if_exists:
            return _NO_RESULT
        raise _not_found_catalog(parts[0])
    if _is_hive(name):
        raise SqlError("FORBIDDEN_OPERATION", f"The operation DROP is not allowed on the CATALOG: `{name}`.", "42809")
    user_schemas = [s for s in ctx.schemas(name) if s not in ("default", "information_schema")]
    non_empty = user_schemas or ctx.relations(name, "default")
    if non_empty and not cascade:
        raise SqlError(
            "SCHEMA_NOT_EMPTY",
            f"Cannot drop catalog `{name}` because it contains objects.\nUse "
            "DROP CATALOG ... CASCADE to drop the catalog and all its objects.",
            "2BP01",
        )
    for schema in list(ctx.schemas(name)):
        ctx.ws.table(RELATIONS).pop((name, schema), None)
    grants = ctx.ws.table(GRANTS)
    for key in [k for k in grants if k[1] == name]:
        del grants[key]
    ctx.ws.table(SCHEMAS).pop(name, None)
    del ctx.ws.table(CATALOGS)[name]
    return _NO_RESULT


# -- ALTER ----------------------------------------------------------------------------------------
def _alter(ctx: _Ctx, cur: _Cursor) -> Result:
    cur.expect("ALTER")
    if cur.word_at() in ("TABLE", "VIEW"):
        kind = cur.advance().value.upper()
        name = ctx.relation_name(_names(cur.name()))
        return _alter_relation(ctx, cur, kind, name)
    if cur.word_at() in ("SCHEMA", "DATABASE", "NAMESPACE"):
        cur.advance()
        catalog, schema, written = ctx.schema_name(_names(cur.name()))
        return _alter_schema(ctx, cur, ctx.schema(catalog, schema, written))
    if cur.accept("CATALOG"):
        catalog = ctx.session.catalog
        if not (cur.is_words("OWNER") or cur.is_words("SET")):
            parts = _names(cur.name())
            if len(parts) != 1:
                raise _too_many_parts(parts)
            catalog = parts[0]
        record = ctx.catalog(catalog)
        record["owner"] = _owner_clause(cur)
        return _NO_RESULT
    raise cur.error()


def _owner_clause(cur: _Cursor) -> str:
    cur.accept("SET")
    cur.expect("OWNER", "TO")
    principal = cur.principal()
    cur.expect_end()
    return principal


def _alter_relation(ctx: _Ctx, cur: _Cursor, kind: str, name: _Name) -> Result:
    record = ctx.relation(name)
    is_view = record["type"] == "VIEW"
    if kind == "VIEW" and not is_view:
        raise SqlError(
            "EXPECT_VIEW_NOT_TABLE.USE_ALTER_TABLE",
            f"The table {name.written} does not support ALTER VIEW. Please use ALTER TABLE instead.",
            "42809",
        )
    if cur.is_words("OWNER") or cur.is_words("SET", "OWNER"):
        record["owner"] = _owner_clause(cur)
    elif cur.accept("SET", "TBLPROPERTIES"):
        record.setdefault("properties", {}).update(cur.properties())
        cur.expect_end()
        _commit(ctx, record, "SET TBLPROPERTIES")
    elif cur.accept("UNSET", "TBLPROPERTIES"):
        cur.accept("IF", "EXISTS")
        for key in _property_keys(cur):
            record.get("properties", {}).pop(key, None)
        cur.expect_end()
        _commit(ctx, record, "UNSET TBLPROPERTIES")
    elif cur.accept("RENAME", "TO"):
        _rename(ctx, name, record, ctx.relation_name(_names(cur.name())))
        cur.expect_end()
    elif cur.accept("ADD", "COLUMNS") or cur.accept("ADD", "COLUMN"):
        if is_view:
            raise cur.error()
        _add_columns(ctx, cur, name, record)
        _commit(ctx, record, "ADD COLUMNS")
    elif is_view and cur.accept("AS"):
        text = cur.rest()
        record["columns"] = _view_columns(ctx, text, [], name)
        record["view_text"] = text
        record["view_catalog"], record["view_schema"] = ctx.session.catalog, ctx.session.schema
    else:
        raise cur.error()
    return _NO_RESULT


def _property_keys(cur: _Cursor) -> list[str]:
    cur.expect_punct("(")
    keys = []
    while True:
        tok = cur.peek()
        keys.append(cur.string() if tok is not None and tok.kind == "string" else ".".join(_names(cur.name())))
        if not cur.accept_punct(","):
            break
    cur.expect_punct(")")
    return keys


def _rename(ctx: _Ctx, old: _Name, record: dict, new: _Name) -> None:
    ctx.schema(new.catalog, new.schema, _backticked([new.catalog, new.schema]))
    if ctx.find(new) is not None:
        raise _already_exists(_backticked([new.catalog, new.schema, new.name]))
    if new.catalog != old.catalog:
        raise _unsupported("renaming a table to another catalog")
    del ctx.ws.table(RELATIONS)[old.key][old.name]
    record.update(catalog=new.catalog, schema=new.schema, name=new.name)
    ctx.ws.table(RELATIONS).setdefault(new.key, {})[new.name] = record
    grants = ctx.ws.table(GRANTS).pop(("TABLE", old.catalog, old.schema, old.name), None)
    if grants:
        ctx.ws.table(GRANTS)[("TABLE", new.catalog, new.schema, new.name)] = grants


def _add_columns(ctx: _Ctx, cur: _Cursor, name: _Name, record: dict) -> None:
    text = cur.rest()
    inner = text[1:-1] if text.startswith("(") and text.endswith(")") else text
    tree = _parse_sqlglot(f"CREATE TABLE t ({inner})")
    added = [_column_def(c, text) for c in tree.this.expressions if isinstance(c, exp.ColumnDef)]
    columns = record["columns"] + added
    _check_columns(name, columns, [])
    record["columns"] = columns


def _alter_schema(ctx: _Ctx, cur: _Cursor, record: dict) -> Result:
    if cur.is_words("OWNER") or cur.is_words("SET", "OWNER"):
        record["owner"] = _owner_clause(cur)
    elif cur.accept("SET", "DBPROPERTIES") or cur.accept("SET", "PROPERTIES"):
        record["properties"].update(cur.properties())
        cur.expect_end()
    elif cur.accept("SET", "LOCATION"):
        record["location"] = cur.string()
        cur.expect_end()
    else:
        raise cur.error()
    return _NO_RESULT


# -- Delta: versions, DESCRIBE HISTORY, CLONE -------------------------------------------------------------
# Cloud object storage is outside any workspace: every emulated workspace of the process reads the same
# buckets, so a Delta table one writes at s3://, abfss:// or gs:// is a Delta table at that path for the
# others (dbfs:/ is each workspace's own). Location -> the table's last commit (definition and version).
CLOUD_STORAGE: dict[str, dict] = {}
_SNAPSHOT_FIELDS = (
    "columns",
    "comment",
    "partition_columns",
    "clustering_columns",
    "properties",
    "delta_version",
    "delta_commit",
)
_HISTORY_COLUMNS = [
    Column("version", "BIGINT"),
    Column("timestamp", "TIMESTAMP"),
    Column("userName", "STRING"),
    Column("operation", "STRING"),
    Column("operationParameters", "MAP<STRING,STRING>"),
]
_NAME_PART = r"(?:`(?:[^`]|``)+`|[A-Za-z0-9_$]+)"
# CREATE [OR REPLACE] TABLE [IF NOT EXISTS] <name> [SHALLOW | DEEP] CLONE: the clone form, not a column named clone.
_CLONE = re.compile(
    rf"\s*CREATE\s+(?:OR\s+REPLACE\s+)?TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?{_NAME_PART}(?:\s*\.\s*{_NAME_PART})*"
    r"\s+(?:(?:SHALLOW|DEEP)\s+)?CLONE\b",
    re.IGNORECASE,
)
_CLONE_COLUMNS = [
    Column(name, "BIGINT")
    for name in (
        "source_table_size",
        "source_num_of_files",
        "num_removed_files",
        "num_copied_files",
        "removed_files_size",
        "copied_files_size",
    )
]


def _cloud(location: str | None) -> bool:
    return bool(location) and re.match(r"(s3a?|abfss?|gs|wasbs?)://", location or "") is not None


def _is_delta(record: dict) -> bool:
    return record["type"] != "VIEW" and record.get("provider", "delta") == "delta"


def _commit(ctx: _Ctx, record: dict, operation: str, parameters: dict[str, str] | None = None) -> None:
    """A Delta commit on a table: its next version, visible at its location to every workspace for cloud paths."""
    if not _is_delta(record):
        return
    record["delta_version"] = record.get("delta_version", 0) + 1
    record["delta_commit"] = {
        "timestamp": ctx.ws.now_ms(),
        "userName": ctx.session.user,
        "operation": operation,
        "operationParameters": parameters or {},
    }
    if _cloud(record.get("location")):
        CLOUD_STORAGE[record["location"]] = copy.deepcopy({k: record.get(k) for k in _SNAPSHOT_FIELDS})


def _delta_table(ctx: _Ctx, parts: list[str], operation: str) -> dict:
    """The Delta table a statement reads: a table name, or `delta.`<path>`` (this workspace's, or cloud storage)."""
    if len(parts) == 2 and parts[0].lower() == "delta" and "/" in parts[1]:
        path = parts[1]
        for relations in ctx.ws.table(RELATIONS).values():
            for record in relations.values():
                if record.get("location") == path and _is_delta(record):
                    return record
        found = CLOUD_STORAGE.get(path) if _cloud(path) else None
        if found is None:
            raise SqlError("DELTA_MISSING_DELTA_TABLE", f"`{path}` is not a Delta table.", "42P01")
        return found
    name = ctx.relation_name(parts)
    record = ctx.relation(name)
    if not _is_delta(record):
        raise SqlError(
            "DELTA_TABLE_ONLY_OPERATION",
            f"{name.written} is not a Delta table. {operation} is only supported for Delta tables.",
            "0AKDD",
        )
    return record


def _describe_history(ctx: _Ctx, cur: _Cursor) -> Result:
    """`DESCRIBE HISTORY <table> [LIMIT n]`: the latest commit (the only one the emulator keeps)."""
    cur.expect("HISTORY")
    table = _delta_table(ctx, _names(cur.name()), "DESCRIBE HISTORY")
    limit = None
    if cur.accept("LIMIT"):
        tok = cur.advance()
        if tok.kind != "number" or not tok.text.isdigit():
            raise _syntax_error(cur.sql, tok)
        limit = int(tok.text)
    cur.expect_end()
    commit = table.get("delta_commit") or {}
    moment = dt.datetime.fromtimestamp(commit.get("timestamp", 0) / 1000, dt.UTC)
    row = [
        table.get("delta_version", 0),
        _iso_timestamp(moment),
        commit.get("userName"),
        commit.get("operation", "CREATE TABLE"),
        commit.get("operationParameters") or {},
    ]
    return Result(_HISTORY_COLUMNS, [row] if limit != 0 else [])


def _create_clone(ctx: _Ctx, cur: _Cursor, replace: bool) -> Result:
    """`CREATE [OR REPLACE] TABLE [IF NOT EXISTS] t [DEEP] CLONE source`: the source's definition and version."""
    cur.expect("TABLE")
    if_not_exists = cur.accept("IF", "NOT", "EXISTS")
    name = ctx.relation_name(_names(cur.name()))
    if cur.accept("SHALLOW"):
        raise _unsupported("SHALLOW CLONE")
    cur.accept("DEEP")
    cur.expect("CLONE")
    source_parts = _names(cur.name())
    if not cur.at_end():
        raise _unsupported("CLONE with a version, TBLPROPERTIES or LOCATION")
    source = _delta_table(ctx, source_parts, "CLONE")
    schema = ctx.schema(name.catalog, name.schema, _backticked([name.catalog, name.schema]))
    existing = ctx.find(name)
    if existing is not None:
        if if_not_exists:
            return _NO_RESULT
        if not replace or existing["type"] == "VIEW":
            raise _already_exists(_backticked([name.catalog, name.schema, name.name]))
    snapshot = copy.deepcopy({k: source.get(k) for k in _SNAPSHOT_FIELDS})
    record = {
        "catalog": name.catalog,
        "schema": name.schema,
        "name": name.name,
        "type": existing["type"] if existing else "MANAGED",
        "provider": "delta",
        "comment": snapshot["comment"],
        "options": {},
        "columns": snapshot["columns"] or [],
        "partition_columns": snapshot["partition_columns"] or [],
        "clustering_columns": snapshot["clustering_columns"] or [],
        "properties": snapshot["properties"] or {},
        "location": existing["location"] if existing else _table_location(ctx.ws, name.catalog, schema, name.name),
        "owner": existing["owner"] if existing else ctx.session.user,
        "created_at": existing["created_at"] if existing else ctx.ws.now_ms(),
        "delta_version": existing.get("delta_version", 0) if existing else -1,
        "cloned_from": {"source": ".".join(source_parts), "version": source.get("delta_version", 0)},
    }
    ctx.ws.table(RELATIONS).setdefault(name.key, {})[name.name] = record
    source_text = ".".join(source_parts)
    _commit(ctx, record, "CLONE", {"source": source_text, "sourceVersion": str(source.get("delta_version", 0))})
    return Result(_CLONE_COLUMNS, [[0, 0, 0, 0, 0, 0]])


# -- GRANT, REVOKE, DENY, SHOW GRANTS ----------------------------------------------------------------
# Legacy table ACL privileges (hive_metastore); Unity Catalog privileges are accepted as written.
_HIVE_PRIVILEGES = (
    "SELECT",
    "CREATE",
    "MODIFY",
    "USAGE",
    "READ_METADATA",
    "CREATE_NAMED_FUNCTION",
    "MODIFY_CLASSPATH",
    "ALL PRIVILEGES",
)


class _Securable(NamedTuple):
    kind: str  # CATALOG, DATABASE, TABLE, ANY_FILE, ANONYMOUS_FUNCTION
    catalog: str | None
    schema: str | None
    name: str | None
    record: dict | None  # the catalog, schema or relation record (owner lives there)

    @property
    def key(self) -> tuple[str, str | None, str | None, str | None]:
        return (self.kind, self.catalog, self.schema, self.name)

    @property
    def hive(self) -> bool:
        return self.catalog is None or _is_hive(self.catalog)


def _privileges(cur: _Cursor) -> list[str]:
    privileges = []
    while True:
        words = []
        while not (cur.is_words("ON") or cur.is_punct(",") or cur.at_end()):
            tok = cur.advance()
            if tok.kind not in ("word", "ident"):
                raise _syntax_error(cur.sql, tok)
            words.append(tok.value.upper())
        if not words:
            raise cur.error()
        privilege = " ".join(words)
        privileges.append("ALL PRIVILEGES" if privilege == "ALL" else privilege)
        if not cur.accept_punct(","):
            break
    cur.expect("ON")
    return privileges


def _securable(ctx: _Ctx, cur: _Cursor) -> _Securable:
    """The object after ON: CATALOG [c] | SCHEMA s | [TABLE|VIEW] t | ANY FILE | ANONYMOUS FUNCTION."""
    if cur.accept("ANY", "FILE"):
        return _Securable("ANY_FILE", None, None, None, None)
    if cur.accept("ANONYMOUS", "FUNCTION"):
        return _Securable("ANONYMOUS_FUNCTION", None, None, None, None)
    if cur.accept("CATALOG"):
        catalog = ctx.session.catalog
        if not (cur.at_end() or cur.word_at() in ("TO", "FROM")):
            parts = _names(cur.name())
            if len(parts) != 1:
                raise _too_many_parts(parts)
            catalog = parts[0]
        record = ctx.catalog(catalog)
        return _Securable("CATALOG", record["name"], None, None, record)
    if cur.word_at() in ("SCHEMA", "DATABASE", "NAMESPACE"):
        cur.advance()
        catalog, schema, written = ctx.schema_name(_names(cur.name()))
        return _Securable("DATABASE", catalog, schema, None, ctx.schema(catalog, schema, written))
    if cur.accept("FUNCTION"):
        parts = _names(cur.name())
        raise SqlError(
            "ROUTINE_NOT_FOUND",
            f"The routine {_backticked(parts)} cannot be found. Verify the "
            "spelling and correctness of the schema and catalog.",
            "42883",
        )
    cur.accept_one("TABLE", "VIEW")
    name = ctx.relation_name(_names(cur.name()))
    return _Securable("TABLE", name.catalog, name.schema, name.name, ctx.relation(name))


def _grant_statement(ctx: _Ctx, cur: _Cursor, preposition: str) -> tuple[list[str], _Securable, str]:
    cur.advance()  # GRANT, REVOKE or DENY
    privileges = _privileges(cur)
    securable = _securable(ctx, cur)
    cur.expect(preposition)
    principal = cur.principal()
    cur.expect_end()
    if securable.hive:
        for privilege in privileges:
            if privilege not in _HIVE_PRIVILEGES:
                raise SqlError(
                    "INVALID_PRIVILEGE",
                    f"Privilege {privilege} is not valid on {securable.kind.replace('_', ' ')} in hive_metastore.",
                    "42852",
                )
    return privileges, securable, principal


def _same(a: str, b: str) -> bool:
    return a.casefold() == b.casefold()


def _add_grants(ctx: _Ctx, securable: _Securable, principal: str, actions: list[str]) -> None:
    entries = ctx.ws.table(GRANTS).setdefault(securable.key, [])
    for action in actions:
        if not any(_same(e["principal"], principal) and e["action_type"] == action for e in entries):
            entries.append({"principal": principal, "action_type": action})


def _grant(ctx: _Ctx, cur: _Cursor) -> Result:
    privileges, securable, principal = _grant_statement(ctx, cur, "TO")
    _add_grants(ctx, securable, principal, privileges)
    return _NO_RESULT


def _deny(ctx: _Ctx, cur: _Cursor) -> Result:
    privileges, securable, principal = _grant_statement(ctx, cur, "TO")
    if not securable.hive:
        raise SqlError(
            "UC_COMMAND_NOT_SUPPORTED.WITHOUT_RECOMMENDATION",
            "The command(s): DENY are not supported in Unity Catalog.",
            "0AKUC",
        )
    _add_grants(ctx, securable, principal, [f"DENIED_{p}" for p in privileges])
    return _NO_RESULT


def _revoke(ctx: _Ctx, cur: _Cursor) -> Result:
    """REVOKE undoes grants and denials alike; ALL PRIVILEGES clears the principal's entries."""
    privileges, securable, principal = _grant_statement(ctx, cur, "FROM")
    grants = ctx.ws.table(GRANTS)
    entries = grants.get(securable.key, [])
    revoked = {p for privilege in privileges for p in (privilege, f"DENIED_{privilege}")}
    everything = "ALL PRIVILEGES" in privileges
    kept = [
        e for e in entries if not (_same(e["principal"], principal) and (everything or e["action_type"] in revoked))
    ]
    if kept:
        grants[securable.key] = kept
    else:
        grants.pop(securable.key, None)
    return _NO_RESULT


def _parents(ctx: _Ctx, securable: _Securable) -> list[_Securable]:
    """The securable, then what it inherits from: a table's schema and catalog, a schema's catalog."""
    chain = [securable]
    if securable.kind == "TABLE" and securable.catalog and securable.schema:
        schema = ctx.schemas(securable.catalog).get(securable.schema)
        chain.append(_Securable("DATABASE", securable.catalog, securable.schema, None, schema))
    if securable.kind in ("TABLE", "DATABASE") and securable.catalog:
        catalog = ctx.ws.table(CATALOGS).get(securable.catalog)
        chain.append(_Securable("CATALOG", securable.catalog, None, None, catalog))
    return chain


def _hive_object(securable: _Securable) -> tuple[str, str | None]:
    """ObjectType and ObjectKey as legacy table ACLs print them: CATALOG$ / DATABASE db / TABLE `db`.`t`."""
    if securable.kind == "CATALOG":
        return "CATALOG$", None
    if securable.kind == "DATABASE":
        return "DATABASE", securable.schema
    if securable.kind == "TABLE":
        return "TABLE", _backticked([securable.schema or "", securable.name or ""])
    return securable.kind, None


def _uc_object(securable: _Securable) -> tuple[str, str | None]:
    parts = [p for p in (securable.catalog, securable.schema, securable.name) if p]
    if securable.kind == "DATABASE":
        return "SCHEMA", ".".join(parts)
    if securable.kind == "TABLE":
        return ("VIEW" if (securable.record or {}).get("type") == "VIEW" else "TABLE"), ".".join(parts)
    return securable.kind, ".".join(parts) or None


def _show_grants(ctx: _Ctx, cur: _Cursor) -> Result:
    principal = None if cur.is_words("ON") else cur.principal()
    cur.expect("ON")
    securable = _securable(ctx, cur)
    cur.expect_end()
    grants = ctx.ws.table(GRANTS)
    rows: list[list[Any]] = []
    for item in _parents(ctx, securable):
        entries = [(e["principal"], e["action_type"]) for e in grants.get(item.key, [])]
        owner = (item.record or {}).get("owner")
        if securable.hive and owner:  # legacy ACLs list ownership as an OWN privilege
            entries.append((owner, "OWN"))
        object_type, object_key = _hive_object(item) if securable.hive else _uc_object(item)
        for who, action in sorted(entries, key=lambda e: (e[0].casefold(), e[1])):
            if principal is None or _same(who, principal):
                rows.append([who, action, object_type, object_key])
    names = (
        ("Principal", "ActionType", "ObjectType", "ObjectKey")
        if securable.hive
        else ("principal", "actionType", "objectType", "objectKey")
    )
    return Result(_string_columns(*names), rows)


# -- queries ------------------------------------------------------------------------------------------
# Tables hold no rows, so queries mostly answer column lists; literal SELECTs, range(), VALUES and
# views over them are evaluated for real, which is what connection checks and tests use.
_MAX_ROWS = 1_000_000
_MAX_VIEW_DEPTH = 32


class _Source(NamedTuple):
    key: str | None  # alias or table name, lower-case, for qualified column references
    columns: list[Column]
    rows: list[list[Any]]


def _run_query(ctx: _Ctx, sql: str) -> Result:
    query = _parse_sqlglot(sql)
    if not isinstance(query, (exp.Query, exp.Values)):
        raise _syntax_error(sql, _tokenize(sql)[0])
    _check_relations(ctx, query)
    return _eval_query(ctx, query, {})


def _check_relations(ctx: _Ctx, query: exp.Expression) -> None:
    """TABLE_OR_VIEW_NOT_FOUND for the first table the query names that does not exist."""
    ctes = {cte.alias_or_name.lower() for cte in query.find_all(exp.CTE)}
    for table in query.find_all(exp.Table):
        if not isinstance(table.this, exp.Identifier):
            continue  # table-valued functions such as range(10)
        parts = [part.name for part in table.parts]
        if len(parts) == 1 and parts[0].lower() in ctes:
            continue
        ctx.relation(ctx.relation_name(parts))


def _dedupe(rows: list[list[Any]]) -> list[list[Any]]:
    seen: set[tuple] = set()
    unique = []
    for row in rows:
        key = tuple(row)
        if key not in seen:
            seen.add(key)
            unique.append(row)
    return unique


def _limit(query: exp.Expression, rows: list[list[Any]], ctx: _Ctx) -> list[list[Any]]:
    limit = query.args.get("limit")
    if limit is None:
        return rows
    count = _eval(limit.expression, {}, ctx)
    return rows[: int(count)]


def _eval_query(ctx: _Ctx, query: exp.Expression, ctes: dict[str, exp.Expression], rows_wanted: bool = True) -> Result:
    with_clause = query.args.get("with_") or query.args.get("with")
    if with_clause is not None:
        ctes = {**ctes, **{cte.alias_or_name.lower(): cte.this for cte in with_clause.expressions}}
    if isinstance(query, exp.Subquery):
        return _eval_query(ctx, query.this, ctes, rows_wanted)
    if isinstance(query, exp.SetOperation):
        return _eval_set_operation(ctx, query, ctes, rows_wanted)
    if isinstance(query, exp.Values):
        return _eval_values(ctx, query, rows_wanted)
    if isinstance(query, exp.Select):
        return _eval_select(ctx, query, ctes, rows_wanted)
    raise _unsupported(f"the query {query.sql(dialect=_DIALECT)[:60]}")


def _eval_set_operation(ctx: _Ctx, query: exp.SetOperation, ctes: dict, rows_wanted: bool) -> Result:
    left = _eval_query(ctx, query.left, ctes, rows_wanted)
    right = _eval_query(ctx, query.right, ctes, rows_wanted)
    if len(left.columns) != len(right.columns):
        operation = type(query).__name__.upper()
        raise SqlError(
            "NUM_COLUMNS_MISMATCH",
            f"{operation} can only be performed on inputs with the same number of columns, but the first "
            f"input has {len(left.columns)} columns and the second input has {len(right.columns)} columns.",
            "42826",
        )
    if isinstance(query, exp.Intersect):
        rows = _dedupe([row for row in left.rows if row in right.rows])
    elif isinstance(query, exp.Except):
        rows = _dedupe([row for row in left.rows if row not in right.rows])
    else:
        rows = left.rows + right.rows
        rows = _dedupe(rows) if query.args.get("distinct") else rows
    return Result(left.columns, _limit(query, rows, ctx))


def _eval_values(ctx: _Ctx, query: exp.Values, rows_wanted: bool) -> Result:
    tuples = [t.expressions if isinstance(t, exp.Tuple) else [t] for t in query.expressions]
    if not tuples:
        return _NO_RESULT
    columns = [Column(f"col{i + 1}", _type_of(e, [])) for i, e in enumerate(tuples[0])]
    rows = [[_eval(e, {}, ctx) for e in values] for values in tuples] if rows_wanted else []
    return Result(columns, rows)


def _sources(ctx: _Ctx, select: exp.Select, ctes: dict, rows_wanted: bool) -> list[_Source]:
    nodes = []
    from_clause = select.args.get("from_") or select.args.get("from")
    if from_clause is not None:
        nodes.append(from_clause.this)
    nodes += [join.this for join in select.args.get("joins") or []]
    return [_source(ctx, node, ctes, rows_wanted) for node in nodes]


def _source(ctx: _Ctx, node: exp.Expression, ctes: dict, rows_wanted: bool) -> _Source:
    key = (node.alias or node.name or "").lower() or None
    if isinstance(node, exp.Subquery):
        result = _eval_query(ctx, node.this, ctes, rows_wanted)
    elif isinstance(node, exp.Table) and isinstance(node.this, exp.Anonymous) and node.this.name.lower() == "range":
        result = _range(ctx, node.this, rows_wanted)
        key = (node.alias or "range").lower()
    elif isinstance(node, exp.Table) and isinstance(node.this, exp.Identifier):
        parts = [part.name for part in node.parts]
        if len(parts) == 1 and parts[0].lower() in ctes:
            result = _eval_query(ctx, ctes[parts[0].lower()], ctes, rows_wanted)
        else:
            result = _relation_result(ctx, ctx.relation(ctx.relation_name(parts)), rows_wanted)
    else:
        raise _unsupported(f"the relation {node.sql(dialect=_DIALECT)[:60]}")
    return _Source(key, result.columns, result.rows)


def _relation_result(ctx: _Ctx, record: dict, rows_wanted: bool) -> Result:
    columns = [Column(c["name"], c["type"]) for c in record["columns"]]
    if record is _AUDIT_TABLE:  # a system table: its rows are the workspace's delivered audit events
        return Result(columns, audit.delivered_rows(ctx.ws) if rows_wanted else [])
    if record["type"] != "VIEW" or not rows_wanted:
        return Result(columns, [])
    if ctx.depth >= _MAX_VIEW_DEPTH:
        raise SqlError("RECURSIVE_VIEW", f"Recursive view {_full_name(record)} detected (cycle).", "42K0H")
    # A view's rows are its query's, resolved against the catalog and schema it was created in.
    session = Session(record["view_catalog"], record["view_schema"], ctx.session.user)
    view_ctx = _Ctx(ctx.ws, session, ctx.depth + 1)
    query = _parse_sqlglot(record["view_text"])
    _check_relations(view_ctx, query)
    return Result(columns, _eval_query(view_ctx, query, {}).rows)


def _range(ctx: _Ctx, call: exp.Anonymous, rows_wanted: bool) -> Result:
    args = [_eval(arg, {}, ctx) for arg in call.expressions]
    if not 1 <= len(args) <= 3 or not all(isinstance(a, int) and not isinstance(a, bool) for a in args):
        raise SqlError("WRONG_NUM_ARGS.WITHOUT_SUGGESTION", "The `range` requires [1, 2, 3] parameters.", "42605")
    start, end, step = (0, args[0], 1) if len(args) == 1 else (args[0], args[1], args[2] if len(args) == 3 else 1)
    if step == 0:
        raise SqlError(
            "FAILED_FUNCTION_CALL",
            "Failed preparing of the function `range` for call: step must not be 0.",
            "38000",
        )
    span = range(start, end, step)
    if len(span) > _MAX_ROWS:
        raise _unsupported(f"range() over more than {_MAX_ROWS} rows")
    return Result([Column("id", "BIGINT")], [[i] for i in span] if rows_wanted else [])


def _projections(select: exp.Select, sources: list[_Source]) -> list[tuple[str, str, exp.Expression]]:
    """(output name, type, expression) per output column, with `*` and `t.*` expanded."""
    out = []
    for item in select.expressions:
        star_of = item.table.lower() if isinstance(item, exp.Column) and isinstance(item.this, exp.Star) else None
        if isinstance(item, exp.Star) or star_of is not None:
            for source in sources:
                if star_of is not None and source.key != star_of:
                    continue
                for column in source.columns:
                    ref = exp.column(column.name, table=source.key, quoted=True)
                    out.append((column.name, column.type_text, ref))
            continue
        out.append((_output_name(item), _type_of(item, sources), item))
    return out


def _env(source: _Source, row: list[Any]) -> dict[str, Any]:
    env: dict[str, Any] = {}
    for column, value in zip(source.columns, row, strict=False):
        env.setdefault(column.name.lower(), value)
        if source.key:
            env[f"{source.key}.{column.name.lower()}"] = value
    return env


def _eval_select(ctx: _Ctx, select: exp.Select, ctes: dict, rows_wanted: bool) -> Result:
    sources = _sources(ctx, select, ctes, rows_wanted)
    projections = _projections(select, sources)
    columns = [Column(name, type_text) for name, type_text, _ in projections]
    if not rows_wanted:
        return Result(columns, [])
    if not sources:
        envs: list[dict[str, Any]] = [{}]
    elif len(sources) == 1:
        envs = [_env(sources[0], row) for row in sources[0].rows]
    elif any(source.rows for source in sources):
        raise _unsupported("joins over relations that have rows")
    else:
        envs = []
    where = select.args.get("where")
    if where is not None and envs:
        envs = [env for env in envs if _eval(where.this, env, ctx) is True]
    if select.args.get("group") is not None:
        if envs:
            raise _unsupported("GROUP BY over rows")
        return Result(columns, [])
    if any(expr.find(exp.AggFunc) for _, _, expr in projections):
        return Result(columns, [[_eval_aggregate(expr, envs, ctx) for _, _, expr in projections]])
    pairs = [(env, [_eval(expr, env, ctx) for _, _, expr in projections]) for env in envs]
    pairs = _order(select, pairs, [name for name, _, _ in projections], ctx)
    rows = [row for _, row in pairs]
    if select.args.get("distinct") is not None:
        rows = _dedupe(rows)
    return Result(columns, _limit(select, rows, ctx))


def _order(select: exp.Select, pairs: list, names: list[str], ctx: _Ctx) -> list:
    order = select.args.get("order")
    if order is None or not pairs:
        return pairs
    for ordered in reversed(order.expressions):

        def sort_key(pair: tuple, ordered: exp.Ordered = ordered) -> tuple:
            env = {**pair[0], **{n.lower(): v for n, v in zip(names, pair[1], strict=False)}}
            value = _eval(ordered.this, env, ctx)
            return (value is None, value)

        pairs = sorted(pairs, key=sort_key, reverse=bool(ordered.args.get("desc")))
    return pairs


def _eval_aggregate(expr: exp.Expression, envs: list[dict[str, Any]], ctx: _Ctx) -> Any:
    expr = expr.this if isinstance(expr, exp.Alias) else expr
    if not isinstance(expr, exp.AggFunc):
        return _eval(expr, envs[0], ctx) if envs else None
    if isinstance(expr, exp.Count):
        if isinstance(expr.this, exp.Star):
            return len(envs)
        return sum(1 for env in envs if _eval(expr.this, env, ctx) is not None)
    values = [v for env in envs if (v := _eval(expr.this, env, ctx)) is not None]
    if not values:
        return None
    if isinstance(expr, exp.Sum):
        return sum(values)
    if isinstance(expr, exp.Min):
        return min(values)
    if isinstance(expr, exp.Max):
        return max(values)
    if isinstance(expr, exp.Avg):
        return sum(values) / len(values)
    raise _unsupported(f"the aggregate {expr.sql(dialect=_DIALECT)}")


def _literal(node: exp.Literal) -> tuple[Any, str]:
    if node.is_string:
        return node.this, "STRING"
    text = node.this
    if re.fullmatch(r"\d+", text):
        number = int(text)
        if number < 1 << 31:
            return number, "INT"
        if number < 1 << 63:
            return number, "BIGINT"
        return Decimal(text), f"DECIMAL({len(text)},0)"
    if "e" in text.lower():
        return float(text), "DOUBLE"
    whole, _, fraction = text.partition(".")
    scale = len(fraction)
    precision = max(len(whole.lstrip("0")) + scale, 1)
    return Decimal(text), f"DECIMAL({precision},{scale})"


def _output_name(node: exp.Expression) -> str:
    if isinstance(node, exp.Alias):
        return node.alias
    if isinstance(node, exp.Column):
        return node.name
    if isinstance(node, exp.Literal):
        return node.this
    if isinstance(node, exp.Null):
        return "NULL"
    if isinstance(node, exp.Boolean):
        return "true" if node.this else "false"
    if isinstance(node, exp.Count) and isinstance(node.this, exp.Star):
        return "count(1)"
    if isinstance(node, exp.Cast):
        return f"CAST({_output_name(node.this)} AS {_type_text(node.to)})"
    # Spark names computed columns after the expression: lower-case functions, operators in parentheses.
    text = re.sub(r"\b([A-Z_][A-Z0-9_]*)\(", lambda m: m.group(1).lower() + "(", node.sql(dialect=_DIALECT))
    return f"({text})" if isinstance(node, exp.Binary) else text


_BOOLEAN_NODES = (
    exp.EQ,
    exp.NEQ,
    exp.GT,
    exp.GTE,
    exp.LT,
    exp.LTE,
    exp.And,
    exp.Or,
    exp.Not,
    exp.Is,
    exp.In,
    exp.Like,
    exp.ILike,
    exp.Between,
    exp.Exists,
)
_STRING_NODES = (
    exp.CurrentUser,
    exp.CurrentCatalog,
    exp.CurrentDatabase,
    exp.CurrentSchema,
    exp.Upper,
    exp.Lower,
    exp.Concat,
    exp.DPipe,
    exp.Trim,
)
_INTEGRAL = ("INT", "BIGINT", "SMALLINT", "TINYINT")


def _numeric_type(left: str, right: str) -> str:
    if "DOUBLE" in (left, right) or "FLOAT" in (left, right):
        return "DOUBLE"
    if left.startswith("DECIMAL") or right.startswith("DECIMAL"):
        return left if left.startswith("DECIMAL") else right
    if "BIGINT" in (left, right):
        return "BIGINT"
    return "INT" if left in _INTEGRAL and right in _INTEGRAL else "DOUBLE"


def _column_type(node: exp.Column, sources: list[_Source]) -> str:
    qualifier, name = node.table.lower(), node.name.lower()
    for source in sources:
        if qualifier and source.key != qualifier:
            continue
        for column in source.columns:
            if column.name.lower() == name:
                return column.type_text
    return "STRING"


def _type_of(node: exp.Expression, sources: list[_Source]) -> str:
    """The Spark type of an expression, as far as the emulator can tell (STRING when unsure)."""
    if isinstance(node, (exp.Alias, exp.Paren, exp.Neg)):
        return _type_of(node.this, sources)
    if isinstance(node, exp.Literal):
        return _literal(node)[1]
    if isinstance(node, (exp.Boolean, *_BOOLEAN_NODES)):
        return "BOOLEAN"
    if isinstance(node, exp.Null):
        return "VOID"
    if isinstance(node, exp.Column):
        return _column_type(node, sources)
    if isinstance(node, (exp.Cast, exp.TryCast)):
        return _type_text(node.to)
    if isinstance(node, (exp.Add, exp.Sub, exp.Mul, exp.Mod)):
        return _numeric_type(_type_of(node.left, sources), _type_of(node.right, sources))
    if isinstance(node, (exp.Div, exp.Avg)):
        return "DOUBLE"
    if isinstance(node, exp.Count):
        return "BIGINT"
    if isinstance(node, exp.Sum):
        inner = _type_of(node.this, sources)
        return "BIGINT" if inner in _INTEGRAL else inner
    if isinstance(node, (exp.Min, exp.Max, exp.Coalesce)):
        return _type_of(node.this, sources)
    if isinstance(node, exp.Length):
        return "INT"
    if isinstance(node, exp.CurrentTimestamp):
        return "TIMESTAMP"
    if isinstance(node, exp.CurrentDate):
        return "DATE"
    return "STRING"


def _unresolved_column(node: exp.Column) -> SqlError:
    parts = [part for part in (node.table, node.name) if part]
    return SqlError(
        "UNRESOLVED_COLUMN.WITHOUT_SUGGESTION",
        f"A column, variable, or function parameter with name {_backticked(parts)} cannot be resolved.",
        "42703",
    )


def _arithmetic(node: exp.Expression, left: Any, right: Any) -> Any:
    if left is None or right is None:
        return None
    if isinstance(left, float) or isinstance(right, float):
        left, right = float(left), float(right)
    if isinstance(node, exp.Add):
        return left + right
    if isinstance(node, exp.Sub):
        return left - right
    if isinstance(node, exp.Mul):
        return left * right
    if right == 0:
        raise SqlError(
            "DIVIDE_BY_ZERO",
            "Division by zero. Use `try_divide` to tolerate divisor being 0 and return NULL instead.",
            "22012",
        )
    if isinstance(node, exp.Mod):
        return left % right
    return float(left) / float(right)


_COMPARISONS: dict[type, Callable[[Any, Any], bool]] = {
    exp.EQ: lambda a, b: a == b,
    exp.NEQ: lambda a, b: a != b,
    exp.GT: lambda a, b: a > b,
    exp.GTE: lambda a, b: a >= b,
    exp.LT: lambda a, b: a < b,
    exp.LTE: lambda a, b: a <= b,
}


def _eval(node: exp.Expression, env: dict[str, Any], ctx: _Ctx) -> Any:
    """Evaluate a scalar expression against one row (`env`: lower-case column names → values)."""
    if isinstance(node, (exp.Alias, exp.Paren)):
        return _eval(node.this, env, ctx)
    if isinstance(node, exp.Literal):
        return _literal(node)[0]
    if isinstance(node, exp.Boolean):
        return bool(node.this)
    if isinstance(node, exp.Null):
        return None
    if isinstance(node, exp.Column):
        key = f"{node.table.lower()}.{node.name.lower()}" if node.table else node.name.lower()
        if key not in env:
            raise _unresolved_column(node)
        return env[key]
    if isinstance(node, exp.Neg):
        value = _eval(node.this, env, ctx)
        return None if value is None else -value
    if isinstance(node, (exp.Add, exp.Sub, exp.Mul, exp.Div, exp.Mod)):
        return _arithmetic(node, _eval(node.left, env, ctx), _eval(node.right, env, ctx))
    if type(node) in _COMPARISONS:
        left, right = _eval(node.left, env, ctx), _eval(node.right, env, ctx)
        return None if left is None or right is None else _COMPARISONS[type(node)](left, right)
    if isinstance(node, (exp.And, exp.Or, exp.Not, exp.Is, exp.In, exp.Like)):
        return _eval_logic(node, env, ctx)
    if isinstance(node, (exp.Cast, exp.TryCast)):
        return _convert(_eval(node.this, env, ctx), _type_text(node.to))
    return _eval_function(node, env, ctx)


def _eval_logic(node: exp.Expression, env: dict[str, Any], ctx: _Ctx) -> Any:
    if isinstance(node, exp.Not):
        value = _eval(node.this, env, ctx)
        return None if value is None else not value
    if isinstance(node, exp.Is):
        return _eval(node.this, env, ctx) is None
    if isinstance(node, exp.In):
        value = _eval(node.this, env, ctx)
        return None if value is None else value in [_eval(e, env, ctx) for e in node.expressions]
    if isinstance(node, exp.Like):
        value, pattern = _eval(node.this, env, ctx), _eval(node.expression, env, ctx)
        if value is None or pattern is None:
            return None
        regex = "".join(".*" if ch == "%" else "." if ch == "_" else re.escape(ch) for ch in str(pattern))
        return re.fullmatch(regex, str(value), re.DOTALL) is not None
    left, right = _eval(node.left, env, ctx), _eval(node.right, env, ctx)
    if isinstance(node, exp.And):
        return False if left is False or right is False else (None if None in (left, right) else True)
    return True if left is True or right is True else (None if None in (left, right) else False)


def _eval_function(node: exp.Expression, env: dict[str, Any], ctx: _Ctx) -> Any:
    if isinstance(node, exp.CurrentUser):
        return ctx.session.user
    if isinstance(node, exp.CurrentCatalog):
        return ctx.session.catalog
    if isinstance(node, (exp.CurrentDatabase, exp.CurrentSchema)):
        return ctx.session.schema
    if isinstance(node, exp.CurrentTimestamp):
        return _iso_timestamp(dt.datetime.fromtimestamp(ctx.ws.now_ms() / 1000, dt.UTC))
    if isinstance(node, exp.CurrentDate):
        return dt.datetime.fromtimestamp(ctx.ws.now_ms() / 1000, dt.UTC).date().isoformat()
    if isinstance(node, (exp.Concat, exp.DPipe)):
        parts = [
            _eval(e, env, ctx)
            for e in ([node.this, node.expression] if isinstance(node, exp.DPipe) else node.expressions)
        ]
        return None if any(p is None for p in parts) else "".join(to_text(p) or "" for p in parts)
    if isinstance(node, (exp.Upper, exp.Lower, exp.Length, exp.Trim)):
        value = _eval(node.this, env, ctx)
        if value is None:
            return None
        text = to_text(value) or ""
        if isinstance(node, exp.Length):
            return len(text)
        return (
            text.upper()
            if isinstance(node, exp.Upper)
            else text.lower()
            if isinstance(node, exp.Lower)
            else text.strip()
        )
    if isinstance(node, exp.Coalesce):
        for item in [node.this, *node.expressions]:
            if (value := _eval(item, env, ctx)) is not None:
                return value
        return None
    if isinstance(node, exp.Anonymous) and node.name.lower() == "version":
        return "3.5.0 dbsync-emulator"
    raise _unsupported(f"the expression {node.sql(dialect=_DIALECT)}")


# -- statement registry ------------------------------------------------------------------------------
_QUERY_VERBS = {"SELECT", "WITH", "VALUES", "FROM"}
_UNSUPPORTED_VERBS = {
    "INSERT",
    "UPDATE",
    "DELETE",
    "MERGE",
    "OPTIMIZE",
    "VACUUM",
    "ANALYZE",
    "REFRESH",
    "CACHE",
    "UNCACHE",
    "MSCK",
    "COPY",
    "TRUNCATE",
    "RESTORE",
    "REPAIR",
    "LIST",
    "PUT",
    "GET",
    "REMOVE",
    "CALL",
    "EXPLAIN",
    "RESET",
    "CLEAR",
    "FSCK",
    "SYNC",
    "ADD",
}
_STATEMENTS: dict[str, Callable[[_Ctx, _Cursor], Result]] = {
    "SHOW": _show,
    "DESCRIBE": _describe,
    "DESC": _describe,
    "CREATE": _create,
    "DROP": _drop,
    "ALTER": _alter,
    "GRANT": _grant,
    "REVOKE": _revoke,
    "DENY": _deny,
    "USE": _use,
    "SET": _set,
    "COMMENT": _comment,
}
_SHOW_HANDLERS: tuple[tuple[tuple[str, ...], Callable[[_Ctx, _Cursor], Result]], ...] = (
    (("CATALOGS",), _show_catalogs),
    (("SCHEMAS",), _show_schemas),
    (("DATABASES",), _show_schemas),
    (("NAMESPACES",), _show_schemas),
    (("TABLES",), _show_tables),
    (("VIEWS",), _show_views),
    (("CREATE", "TABLE"), _show_create_table),
    (("GRANTS",), _show_grants),
    (("GRANT",), _show_grants),
    (("TBLPROPERTIES",), _show_tblproperties),
    (("COLUMNS",), _show_columns),
)


def relation_count(ws: Workspace) -> int:
    """How many tables and views the metastore holds (all catalogs)."""
    return sum(len(relations) for relations in ws.table(RELATIONS).values())


__all__ = [
    "Column",
    "Result",
    "Session",
    "SqlError",
    "bind_parameters",
    "execute",
    "execute_sql",
    "init_metastore",
    "relation_count",
    "render_create_statement",
    "run_script",
    "split_statements",
    "to_json_value",
    "to_text",
]
