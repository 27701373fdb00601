"""In-memory state of one emulated workspace.

Every API module keeps its records in named tables (`ws.table("jobs")`): plain dicts of JSON-able
records, so the whole workspace snapshots to JSON and loads back. One re-entrant lock serialises
handlers: the emulator is about fidelity, and the GIL would serialise them anyway.
"""

from __future__ import annotations

import base64
import json
import random
import threading
import time
from pathlib import Path
from typing import Any

from dbsync_emulator.timing import Timing

ADMIN_USER = "admin@example.com"


def _encode(value: Any) -> Any:
    if isinstance(value, bytes):
        return {"__bytes__": base64.b64encode(value).decode()}
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _decode(obj: dict) -> Any:
    if set(obj) == {"__bytes__"}:
        return base64.b64decode(obj["__bytes__"])
    return obj


class Workspace:
    """State and settings of one emulated workspace."""

    def __init__(
        self,
        workspace_id: int = 1000000000000001,
        admin_user: str = ADMIN_USER,
        cluster_start_seconds: float = 2.0,
        seed: int = 0,
        timing: Timing | None = None,
    ) -> None:
        self.workspace_id = workspace_id
        self.admin_user = admin_user
        self.cluster_start_seconds = cluster_start_seconds
        # system.access.audit: present, and how long after an event its row becomes readable (see audit.py).
        self.audit_table = True
        self.audit_delay_seconds = 0.0
        # SCIM: a service principal's applicationId is the workspace's own choice, whatever a POST asks for
        # (AWS and GCP workspaces; Azure takes the Entra ID application's).
        self.scim_assigns_application_ids = False
        self.timing = timing or Timing(seed=seed)
        self.lock = threading.RLock()
        self.random = random.Random(seed)
        self.tables: dict[str, dict[Any, Any]] = {}
        self.counters: dict[str, int] = {}
        # Hooks API modules register so others can react (e.g. SCIM user created → home directory).
        self.on_init: list[Any] = []
        # Caches of values derived from the tables (e.g. encoded listings): never snapshotted,
        # dropped on reset and restore.
        self.caches: dict[str, dict[Any, Any]] = {}

    # -- time and ids ---------------------------------------------------------------------------
    @staticmethod
    def now_ms() -> int:
        """Epoch milliseconds; reads time.time() so freezegun moves the emulator's clock too."""
        return int(time.time() * 1000)

    def next_id(self, sequence: str, start: int = 1) -> int:
        """Monotonic ids per sequence (job ids, object ids, ...), never reused after a delete."""
        value = self.counters.get(sequence, start - 1) + 1
        self.counters[sequence] = value
        return value

    def draw(self, kind: str) -> int:
        """The ordinal of the next timing draw of `kind` (durations are seeded by it, so they replay)."""
        return self.next_id(f"timing:{kind}")

    def random_hex(self, n: int) -> str:
        return "".join(self.random.choice("0123456789abcdef") for _ in range(n))

    # -- tables ---------------------------------------------------------------------------------
    def table(self, name: str) -> dict[Any, Any]:
        """The named table, created empty on first use."""
        table = self.tables.get(name)
        if table is None:
            table = self.tables[name] = {}
        return table

    def cache(self, name: str) -> dict[Any, Any]:
        """A named cache of derived values (not part of the state: never snapshotted)."""
        cache = self.caches.get(name)
        if cache is None:
            cache = self.caches[name] = {}
        return cache

    def reset(self) -> None:
        """Back to a new, empty workspace (built-ins such as admins/users and / are recreated)."""
        with self.lock:
            self.tables.clear()
            self.counters.clear()
            self.caches.clear()
            for init in self.on_init:
                init(self)

    # -- snapshot -------------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """The whole state as a JSON-able document (bytes as {"__bytes__": base64})."""
        with self.lock:
            tables = {name: [[k, v] for k, v in table.items()] for name, table in self.tables.items()}
            text = json.dumps({"tables": tables, "counters": self.counters}, default=_encode)
        return json.loads(text)

    def restore(self, document: dict[str, Any]) -> None:
        """Replace the state with a snapshot produced by `snapshot()`."""
        document = json.loads(json.dumps(document), object_hook=_decode)
        with self.lock:
            self.tables = {name: {_key(k): v for k, v in rows} for name, rows in document.get("tables", {}).items()}
            self.counters = dict(document.get("counters", {}))
            self.caches.clear()

    def save(self, path: Path) -> None:
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(self.snapshot()))
        tmp.replace(path)

    def load(self, path: Path) -> None:
        self.restore(json.loads(path.read_text()))


def _key(k: Any) -> Any:
    # JSON has no tuples: composite keys come back as lists.
    return tuple(k) if isinstance(k, list) else k
