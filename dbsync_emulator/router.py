"""Route table for the emulator: API modules register handlers with `@routes.get(...)` and friends.

A handler is `handler(ws: Workspace, req: Request) -> dict | Response`. Static paths are matched by
dict lookup (the hot path); paths with `{param}` segments by regex. `{name:path}` captures slashes.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from dbsync_emulator.errors import invalid, malformed


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    raw_body: bytes
    path_params: dict[str, str] = field(default_factory=dict)
    _json: Any = None
    form: dict[str, Any] | None = None  # multipart/form-data fields (file parts as bytes)
    fault: str | None = None  # a fault rule's action the handler itself plays (`schema_not_found`)

    def arg(self, name: str, default: str | None = None) -> str | None:
        """One query-string value (the first), or `default`."""
        values = self.query.get(name)
        return values[0] if values else default

    def args(self, name: str) -> list[str]:
        return self.query.get(name, [])

    def bool_arg(self, name: str, default: bool = False) -> bool:
        value = self.arg(name)
        if value is None:
            return default
        return value.lower() in ("true", "1")

    def int_arg(self, name: str, default: int | None = None) -> int | None:
        value = self.arg(name)
        if value is None or value == "":
            return default
        try:
            return int(value)
        except ValueError:
            raise invalid(f"Invalid value for parameter {name}: {value!r} is not an integer") from None

    @property
    def json(self) -> dict:
        """The JSON body as a dict (`{}` when empty); multipart form fields when the body is a form."""
        if self.form is not None:
            return self.form
        if self._json is None:
            if not self.raw_body.strip():
                self._json = {}
            else:
                import json

                try:
                    self._json = json.loads(self.raw_body)
                except ValueError:
                    raise malformed("Malformed JSON request body") from None
                if not isinstance(self._json, dict):
                    raise malformed("Request body must be a JSON object")
        return self._json

    def param(self, name: str, default: Any = None) -> Any:
        """A parameter from the JSON body for writes, from the query string for GET/DELETE."""
        if self.method in ("GET", "DELETE", "HEAD"):
            return self.arg(name, default)
        return self.json.get(name, default)

    def require(self, name: str) -> Any:
        value = self.param(name)
        if value is None or value == "":
            raise invalid(f"Missing required field: {name}")
        return value


@dataclass
class Response:
    """A non-JSON or non-200 answer: raw bytes, custom status or headers."""

    status: int = 200
    body: bytes | dict | list | None = None
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[..., Any]


@dataclass
class Route:
    method: str
    template: str
    handler: Handler
    regex: re.Pattern[str] | None


_PARAM = re.compile(r"\{(\w+)(?::(path))?\}")


def _compile(template: str) -> re.Pattern[str] | None:
    if "{" not in template:
        return None
    pattern = ""
    pos = 0
    for m in _PARAM.finditer(template):
        pattern += re.escape(template[pos : m.start()])
        pattern += f"(?P<{m.group(1)}>.+)" if m.group(2) else f"(?P<{m.group(1)}>[^/]+)"
        pos = m.end()
    pattern += re.escape(template[pos:])
    return re.compile(f"^{pattern}$")


class Routes:
    """A collection of routes; each API module owns one and the server merges them."""

    def __init__(self) -> None:
        self.static: dict[tuple[str, str], Route] = {}
        self.dynamic: list[Route] = []

    def add(self, method: str, templates: tuple[str, ...], handler: Handler) -> None:
        for template in templates:
            route = Route(method, template, handler, _compile(template))
            if route.regex is None:
                self.static[(method, template)] = route
            else:
                self.dynamic.append(route)

    def _decorator(self, method: str, templates: tuple[str, ...]) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.add(method, templates, handler)
            return handler

        return register

    def get(self, *templates: str) -> Callable[[Handler], Handler]:
        return self._decorator("GET", templates)

    def post(self, *templates: str) -> Callable[[Handler], Handler]:
        return self._decorator("POST", templates)

    def put(self, *templates: str) -> Callable[[Handler], Handler]:
        return self._decorator("PUT", templates)

    def patch(self, *templates: str) -> Callable[[Handler], Handler]:
        return self._decorator("PATCH", templates)

    def delete(self, *templates: str) -> Callable[[Handler], Handler]:
        return self._decorator("DELETE", templates)

    def merge(self, other: Routes) -> None:
        self.static.update(other.static)
        self.dynamic.extend(other.dynamic)

    def match(self, method: str, path: str) -> tuple[Route | None, dict[str, str], bool]:
        """(route, path params, path_known). path_known is True when another method would match."""
        route = self.static.get((method, path))
        if route is not None:
            return route, {}, True
        path_known = False
        for route in self.dynamic:
            m = route.regex.match(path) if route.regex else None
            if m is None:
                continue
            if route.method == method:
                return route, m.groupdict(), True
            path_known = True
        if not path_known:
            path_known = any(p == path for (_, p) in self.static)
        return None, {}, path_known


def parse_query(query_string: str) -> dict[str, list[str]]:
    return parse_qs(query_string, keep_blank_values=True) if query_string else {}
