"""DBFS mounts and the small part of Python a 1.2 command may run to read or change them.

Mounts are not a REST resource: a real workspace exposes them only to code on a cluster through
`dbutils.fs.mounts()` (migration tools such as databrickslabs/migrate run it through the Command
Execution API 1.2; UCX runs it in a job). The emulator keeps user mounts in table "dbfs_mounts" keyed by
mount point, next to the built-in mounts every workspace has, and `run_python` interprets a safe subset
of Python over the command's AST (never `exec`): assignments, `for`/`if`/`raise`, literals, arithmetic,
comprehensions, f-strings and `%` formatting, `*args`/`**kwargs`, `import json`/`base64`, `print`,
`display`, a few builtins, `json.dumps`/`json.loads`, `base64.b64encode`/`b64decode`,
`dbutils.fs.mounts()/mount()/unmount()/refreshMounts()`, `dbutils.secrets.get()/getBytes()` and
`dbutils.notebook.exit()`: enough for the exact texts the SDK's dbutils proxy and databrickslabs/migrate
send. Code is dedented first (the SDK sends it indented, and IPython accepts that). Variables persist per
execution context, as in a notebook. As on a cluster, output has no trailing newline, an error names
the language's exception (`ZeroDivisionError: division by zero`), and every secret value the context
read is printed as `[REDACTED]`. Anything else is answered with the error result the 1.2 API gives for
code the emulator cannot run.

Not modelled: reading files through a mount, `dbutils.fs.updateMount`, credential checks on mount
(any source with a URI scheme mounts), secret ACLs (the caller may read every scope).
"""

from __future__ import annotations

import ast
import base64
import binascii
import json
import textwrap
from collections import namedtuple
from collections.abc import Callable
from typing import Any

from dbsync_emulator.state import Workspace

MOUNTS = "dbfs_mounts"
MountInfo = namedtuple("MountInfo", ["mountPoint", "source", "encryptionType"])
# What dbutils.fs.mounts() lists in a new workspace; none of them can be unmounted.
BUILT_IN_MOUNTS = (
    MountInfo("/databricks-datasets", "databricks-datasets", ""),
    MountInfo("/Volumes", "UnityCatalogVolumes", ""),
    MountInfo("/databricks/mlflow-tracking", "databricks/mlflow-tracking", ""),
    MountInfo("/databricks-results", "databricks-results", ""),
    MountInfo("/databricks/mlflow-registry", "databricks/mlflow-registry", ""),
    MountInfo("/Volume", "DbfsReserved", ""),
    MountInfo("/volumes", "DbfsReserved", ""),
    MountInfo("/", "DatabricksRoot", ""),
    MountInfo("/volume", "DbfsReserved", ""),
)
_SCHEMES = ("s3://", "s3a://", "s3n://", "abfss://", "abfs://", "wasbs://", "wasb://", "adl://", "gs://")
# Methods of plain values the code may call: none of them reaches outside the value.
_SAFE_METHODS: dict[type, tuple[str, ...]] = {
    str: ("startswith", "endswith", "strip", "lstrip", "rstrip", "lower", "upper", "split", "replace", "join"),
    dict: ("get", "items", "keys", "values"),
    list: ("append", "index", "count"),
}
_SAFE_METHODS[bytes] = ("decode", "hex")
_SAFE_METHODS[str] = (*_SAFE_METHODS[str], "encode")
# Exceptions the code may raise by name (`raise KeyError("foo")`), as Python reports them.
_EXCEPTIONS = {e.__name__: e for e in (Exception, ValueError, KeyError, TypeError, RuntimeError, IndexError)}
REDACTED = "[REDACTED]"
_MAX_STEPS = 100_000  # statements and loop iterations per command: a runaway loop is an error, not a hang
_MAX_VALUE_LENGTH = 1_000_000  # a string or list the code builds: doubling in a loop is an error, not an OOM


class DbutilsError(Exception):
    """An exception raised by the command's code: (Java/Python exception class, message)."""

    def __init__(self, exception: str, message: str) -> None:
        super().__init__(message)
        self.exception = exception
        self.message = message


class Unsupported(Exception):
    """Code outside the subset the emulator interprets."""


class _Exit(Exception):
    """dbutils.notebook.exit(value): the command stops and its output is the value."""

    def __init__(self, value: str) -> None:
        super().__init__(value)
        self.value = value


# -- mounts ---------------------------------------------------------------------------------------------
def mounts(ws: Workspace) -> list[MountInfo]:
    """What dbutils.fs.mounts() returns: user mounts in the order they were made, then the built-ins."""
    user = [MountInfo(m["mountPoint"], m["source"], m["encryptionType"]) for m in ws.table(MOUNTS).values()]
    return user + list(BUILT_IN_MOUNTS)


def add_mount(ws: Workspace, source: str, mount_point: str, encryption_type: str = "") -> None:
    """dbutils.fs.mount: the credentials (extra_configs) are used by the cluster, never listed afterwards."""
    if not isinstance(source, str) or not source.startswith(_SCHEMES):
        raise DbutilsError("java.lang.IllegalArgumentException", f"Unsupported source for a mount: {source!r}")
    if not isinstance(mount_point, str) or not mount_point.startswith("/mnt/") or mount_point.rstrip("/") == "/mnt":
        raise DbutilsError(
            "java.lang.IllegalArgumentException",
            f"requirement failed: mount point must start with /mnt/: {mount_point}",
        )
    mount_point = mount_point.rstrip("/")
    if mount_point in ws.table(MOUNTS):
        raise DbutilsError("java.rmi.RemoteException", f"Directory already mounted: {mount_point}")
    ws.table(MOUNTS)[mount_point] = {"mountPoint": mount_point, "source": source, "encryptionType": encryption_type}


def remove_mount(ws: Workspace, mount_point: str) -> None:
    """dbutils.fs.unmount."""
    if not isinstance(mount_point, str) or ws.table(MOUNTS).pop(mount_point.rstrip("/"), None) is None:
        raise DbutilsError("java.rmi.RemoteException", f"Directory not mounted: {mount_point}")


# -- the Python subset ----------------------------------------------------------------------------------
class _Namespace:
    """An object whose attributes are a fixed table (dbutils, dbutils.fs, the json module)."""

    def __init__(self, name: str, members: dict[str, Any]) -> None:
        self._name = name
        self._members = members

    def get(self, attr: str) -> Any:
        if attr not in self._members:
            raise DbutilsError("AttributeError", f"'{self._name}' has no attribute '{attr}'")
        return self._members[attr]


class _Run:
    """One command: its output, its display() result and the context's variables."""

    def __init__(self, ws: Workspace, variables: dict[str, Any], secrets_read: set[str]) -> None:
        self.ws = ws
        self.variables = variables
        self.secrets_read = secrets_read
        self.output: list[str] = []
        self.table: dict | None = None
        self.steps = 0
        fs = _Namespace(
            "dbutils.fs",
            {
                "mounts": lambda: mounts(ws),
                "mount": self._mount,
                "unmount": self._unmount,
                "refreshMounts": lambda: True,
            },
        )
        secrets = _Namespace("dbutils.secrets", {"get": self._secret, "getBytes": self._secret_bytes})
        notebook = _Namespace("dbutils.notebook", {"exit": self._exit})
        self.modules = {
            "json": _Namespace("json", {"dumps": self._dumps, "loads": json.loads}),
            "base64": _Namespace("base64", {"b64encode": self._b64encode, "b64decode": self._b64decode}),
        }
        self.builtins: dict[str, Any] = {
            "print": self._print,
            "display": self._display,
            "len": len,
            "str": str,
            "repr": repr,
            "list": list,
            "sorted": sorted,
            "int": int,
            "bool": bool,
            "dict": dict,
            "tuple": tuple,
            "min": min,
            "max": max,
            "sum": sum,
            "enumerate": enumerate,
            "range": self._range,
            **_EXCEPTIONS,
            "dbutils": _Namespace("dbutils", {"fs": fs, "secrets": secrets, "notebook": notebook}),
            "True": True,
            "False": False,
            "None": None,
        }

    # builtins the code may call
    def _print(self, *values: Any, sep: str = " ", end: str = "\n") -> None:
        self.output.append(_bounded(sep.join(str(v) for v in values) + end))
        if sum(len(line) for line in self.output) > _MAX_VALUE_LENGTH:
            raise DbutilsError("MemoryError", "the command printed more than the emulator keeps")

    def _display(self, value: Any) -> None:
        rows = list(value) if isinstance(value, (list, tuple)) else [value]
        if not rows or not all(isinstance(r, MountInfo) for r in rows):
            raise Unsupported("display() of something other than dbutils.fs.mounts()")
        schema = [{"name": f, "type": '"string"', "metadata": "{}"} for f in MountInfo._fields]
        self.table = {
            "resultType": "table",
            "data": [list(r) for r in rows],
            "schema": schema,
            "truncated": False,
            "isJsonSchema": True,
        }

    @staticmethod
    def _dumps(value: Any, **kwargs: Any) -> str:
        return json.dumps(value, **{k: v for k, v in kwargs.items() if k in ("indent", "sort_keys")})

    def _mount(
        self, source: str, mount_point: str, encryption_type: str = "", owner: Any = None, extra_configs: Any = None
    ) -> bool:
        add_mount(self.ws, source, mount_point, encryption_type)
        return True

    def _unmount(self, mount_point: str) -> bool:
        remove_mount(self.ws, mount_point)
        self.output.append(f"{mount_point} has been unmounted.\n")
        return True

    def _secret_bytes(self, scope: str, key: str) -> bytes:
        value = self.ws.table("secrets").get(scope, {}).get(key)
        if value is None:
            raise DbutilsError("IllegalArgumentException", f"Secret does not exist with scope: {scope} and key: {key}")
        raw = value["value"] if isinstance(value["value"], bytes) else str(value["value"]).encode()
        text = raw.decode("utf-8", "replace")
        if text:
            self.secrets_read.add(text)  # the cluster redacts it from every later output of this context
        return raw

    def _secret(self, scope: str, key: str) -> str:
        return self._secret_bytes(scope, key).decode("utf-8", "replace")

    @staticmethod
    def _exit(value: Any) -> None:
        raise _Exit(str(value))

    @staticmethod
    def _b64encode(value: bytes) -> bytes:
        if not isinstance(value, bytes):
            raise DbutilsError("TypeError", f"a bytes-like object is required, not '{type(value).__name__}'")
        return base64.b64encode(value)

    @staticmethod
    def _b64decode(value: str | bytes) -> bytes:
        try:
            return base64.b64decode(value)
        except (binascii.Error, ValueError) as err:
            raise DbutilsError("binascii.Error", str(err)) from None

    @staticmethod
    def _range(*bounds: int) -> range:
        steps = range(*bounds)
        if len(steps) > _MAX_VALUE_LENGTH:
            raise DbutilsError("MemoryError", "the command built a value too large for the emulator")
        return steps

    # statements
    def block(self, statements: list[ast.stmt]) -> None:
        for statement in statements:
            self.steps += 1
            if self.steps > _MAX_STEPS:
                raise DbutilsError("TimeoutError", "the command ran too many steps")
            self.statement(statement)

    def statement(self, node: ast.stmt) -> None:
        if isinstance(node, ast.Import):
            if any(alias.name not in self.modules for alias in node.names):
                raise Unsupported("import of a module other than json and base64")
            for alias in node.names:
                self.variables[alias.asname or alias.name] = self.modules[alias.name]
        elif isinstance(node, ast.Raise):
            self._raise(node)
        elif isinstance(node, ast.Assign):
            value = self.expr(node.value)
            for target in node.targets:
                self.assign(target, value)
        elif isinstance(node, ast.Expr):
            self.expr(node.value)
        elif isinstance(node, ast.For):
            for item in self.expr(node.iter):
                self.steps += 1
                self.assign(node.target, item)
                self.block(node.body)
        elif isinstance(node, ast.If):
            self.block(node.body if self.expr(node.test) else node.orelse)
        elif not isinstance(node, ast.Pass):
            raise Unsupported(type(node).__name__)

    def _raise(self, node: ast.Raise) -> None:
        error = self.expr(node.exc) if node.exc is not None else None
        if isinstance(error, type) and issubclass(error, Exception):
            error = error()
        if not isinstance(error, Exception):
            raise DbutilsError("TypeError", "exceptions must derive from BaseException")
        raise DbutilsError(type(error).__name__, str(error))

    def assign(self, target: ast.expr, value: Any) -> None:
        if isinstance(target, ast.Name):
            self.variables[target.id] = value
        elif isinstance(target, (ast.Tuple, ast.List)):
            values = list(value)
            if len(values) != len(target.elts):
                raise DbutilsError("ValueError", f"expected {len(target.elts)} values to unpack, got {len(values)}")
            for element, item in zip(target.elts, values, strict=True):
                self.assign(element, item)
        else:
            raise Unsupported("assignment target")

    # expressions
    def expr(self, node: ast.expr) -> Any:
        handler: Callable[[Any], Any] | None = getattr(self, f"_{type(node).__name__}", None)
        if handler is None:
            raise Unsupported(type(node).__name__)
        return handler(node)

    def _Constant(self, node: ast.Constant) -> Any:
        return node.value

    def _Name(self, node: ast.Name) -> Any:
        if node.id in self.variables:
            return self.variables[node.id]
        if node.id in self.builtins:
            return self.builtins[node.id]
        raise DbutilsError("NameError", f"name '{node.id}' is not defined")

    def _Attribute(self, node: ast.Attribute) -> Any:
        owner = self.expr(node.value)
        if isinstance(owner, _Namespace):
            return owner.get(node.attr)
        if isinstance(owner, MountInfo) and node.attr in MountInfo._fields:
            return getattr(owner, node.attr)
        if node.attr in _SAFE_METHODS.get(type(owner), ()):
            return getattr(owner, node.attr)
        raise Unsupported(f"attribute {node.attr}")

    def _Call(self, node: ast.Call) -> Any:
        function = self.expr(node.func)
        if not callable(function) or isinstance(function, _Namespace):
            raise DbutilsError("TypeError", "object is not callable")
        args: list[Any] = []
        for a in node.args:
            args.extend(self.expr(a.value) if isinstance(a, ast.Starred) else [self.expr(a)])
        kwargs: dict[str, Any] = {}
        for k in node.keywords:
            kwargs.update(self.expr(k.value) if k.arg is None else {k.arg: self.expr(k.value)})
        return _bounded(function(*args, **kwargs))

    def _List(self, node: ast.List) -> list:
        return [self.expr(e) for e in node.elts]

    def _Tuple(self, node: ast.Tuple) -> tuple:
        return tuple(self.expr(e) for e in node.elts)

    def _Dict(self, node: ast.Dict) -> dict:
        return {self.expr(k): self.expr(v) for k, v in zip(node.keys, node.values, strict=True) if k is not None}

    def _comprehension(self, node: ast.ListComp | ast.GeneratorExp) -> list:
        if len(node.generators) != 1:
            raise Unsupported("nested comprehension")
        generator = node.generators[0]
        out = []
        for item in self.expr(generator.iter):
            self.steps += 1
            self.assign(generator.target, item)
            if all(self.expr(condition) for condition in generator.ifs):
                out.append(self.expr(node.elt))
        return out

    _ListComp = _comprehension
    _GeneratorExp = _comprehension

    def _Subscript(self, node: ast.Subscript) -> Any:
        value = self.expr(node.value)
        index = node.slice
        try:
            if isinstance(index, ast.Slice):
                bounds = [self.expr(b) if b is not None else None for b in (index.lower, index.upper, index.step)]
                return value[slice(*bounds)]
            return value[self.expr(index)]
        except (IndexError, KeyError, TypeError) as err:
            raise DbutilsError(type(err).__name__, str(err)) from None

    def _Compare(self, node: ast.Compare) -> bool:
        left = self.expr(node.left)
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            right = self.expr(comparator)
            ok = {
                ast.Eq: lambda a, b: a == b,
                ast.NotEq: lambda a, b: a != b,
                ast.In: lambda a, b: a in b,
                ast.NotIn: lambda a, b: a not in b,
                ast.Is: lambda a, b: a is b,
                ast.IsNot: lambda a, b: a is not b,
            }.get(type(op))
            if ok is None:
                raise Unsupported(type(op).__name__)
            if not ok(left, right):
                return False
            left = right
        return True

    def _BoolOp(self, node: ast.BoolOp) -> Any:
        result: Any = isinstance(node.op, ast.And)
        for value in node.values:
            result = self.expr(value)
            if isinstance(node.op, ast.And) != bool(result):
                return result
        return result

    def _UnaryOp(self, node: ast.UnaryOp) -> Any:
        operand = self.expr(node.operand)
        if isinstance(node.op, ast.Not):
            return not operand
        if isinstance(node.op, (ast.USub, ast.UAdd)) and _is_number(operand):
            return -operand if isinstance(node.op, ast.USub) else operand
        raise Unsupported(type(node.op).__name__)

    def _BinOp(self, node: ast.BinOp) -> Any:
        left, right = self.expr(node.left), self.expr(node.right)
        if isinstance(node.op, ast.Add) and type(left) is type(right) and isinstance(left, (str, list, bytes)):
            return _bounded(left + right)
        if isinstance(node.op, ast.Mod) and isinstance(left, str):
            return _bounded(left % right)
        operator = _ARITHMETIC.get(type(node.op))
        if operator is None or not (_is_number(left) and _is_number(right)):
            raise Unsupported(type(node.op).__name__)
        grows = isinstance(left, int) and isinstance(right, int) and right > 0
        if isinstance(node.op, ast.Pow) and grows and max(left.bit_length(), 1) * right > 100_000:
            raise DbutilsError("MemoryError", "the command built a number too large for the emulator")
        result = operator(left, right)
        if _too_big(result):
            raise DbutilsError("MemoryError", "the command built a number too large for the emulator")
        return result

    def _JoinedStr(self, node: ast.JoinedStr) -> str:
        return "".join(str(self.expr(v)) for v in node.values)

    def _FormattedValue(self, node: ast.FormattedValue) -> str:
        return str(self.expr(node.value))


def run_python(
    ws: Workspace, variables: dict[str, Any], command: str, secrets_read: set[str] | None = None
) -> dict | None:
    """The 1.2 `results` of a Python command, or None when the command is outside the subset.

    A bare last expression is echoed like a notebook cell's output; display() gives a table result.
    `secrets_read` holds the secret values the context has read: they are redacted from the output.
    """
    secrets_read = set() if secrets_read is None else secrets_read
    results = _results(ws, variables, textwrap.dedent(command), secrets_read)
    return None if results is None else _redact(results, secrets_read)


def _results(ws: Workspace, variables: dict[str, Any], command: str, secrets_read: set[str]) -> dict | None:
    try:
        # compile() only checks the code (`return` outside a function, ...); it is never executed.
        tree = ast.parse(command)
        compile(tree, "<command>", "exec", dont_inherit=True)
    except SyntaxError as err:
        return _error("SyntaxError", str(err.msg))
    except ValueError as err:  # a null byte in the source
        return _error("SyntaxError", str(err))
    run = _Run(ws, variables, secrets_read)
    try:
        body = list(tree.body)
        last = body.pop() if body and isinstance(body[-1], ast.Expr) else None
        run.block(body)
        if last is not None:
            value = run.expr(last.value)
            if value is not None:
                run.output.append(repr(value))
    except Unsupported:
        return None
    except _Exit as exit_:
        return {"resultType": "text", "data": exit_.value}
    except DbutilsError as err:
        return _error(err.exception, err.message)
    except (TypeError, ValueError, KeyError, IndexError, AttributeError, ZeroDivisionError, OverflowError) as err:
        return _error(type(err).__name__, str(err))
    if run.table is not None:
        return run.table
    # A cluster returns printed text without the final newline.
    return {"resultType": "text", "data": "".join(run.output).removesuffix("\n")}


def _redact(results: dict, secrets_read: set[str]) -> dict:
    """Every secret value the context read shows as [REDACTED] in text, errors and table cells."""
    if not secrets_read:
        return results

    def scrub(value: Any) -> Any:
        if isinstance(value, str):
            for secret in sorted(secrets_read, key=len, reverse=True):
                value = value.replace(secret, REDACTED)
            return value
        if isinstance(value, list):
            return [scrub(v) for v in value]
        return value

    return {k: scrub(v) if k in ("data", "summary", "cause") else v for k, v in results.items()}


def _too_big(value: Any) -> bool:
    """An integer a loop of multiplications could grow until the emulator hangs."""
    return isinstance(value, int) and value.bit_length() > 100_000


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


_ARITHMETIC: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
    ast.FloorDiv: lambda a, b: a // b,
    ast.Mod: lambda a, b: a % b,
    ast.Pow: lambda a, b: a**b,
}


def _bounded(value: Any) -> Any:
    if isinstance(value, (str, list)) and len(value) > _MAX_VALUE_LENGTH:
        raise DbutilsError("MemoryError", "the command built a value too large for the emulator")
    return value


def _error(exception: str, message: str) -> dict:
    """An error result: `summary` is the exception line, `cause` a traceback ending with it, as on a cluster."""
    text = f"{exception}: {message}"
    cause = f"{'-' * 75}\n{exception:<42}Traceback (most recent call last)\nFile <command>\n\n{text}"
    return {"resultType": "error", "summary": text, "cause": cause}
