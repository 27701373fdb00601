"""`databricks.sdk` registered without running its `__init__` until a name it defines is read.

`import databricks.sdk.<anything>` runs the package's `__init__`, which imports every service module (~60,
2,300 dataclasses: over a second of CPU) to define WorkspaceClient, and a `sync --once` from cron paid that
on every run. Deferred, submodules (`databricks.sdk.core`, `.errors`, `.service.jobs`) import as usual, and
the first read of a name the `__init__` defines (`from databricks.sdk import WorkspaceClient`) runs it then.
This module imports nothing of the SDK: dbsync/__init__.py calls `defer_package()` before anything does.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
from types import ModuleType
from typing import Any

PACKAGE = "databricks.sdk"


def defer_package() -> None:
    """Register `databricks.sdk` with its `__init__` not run yet (a no-op once anything imported the package)."""
    if PACKAGE in sys.modules:
        return
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or spec.loader is None:
        return  # not installed: the first real import says so
    package = importlib.util.module_from_spec(spec)
    package.__getattr__ = _Completion(package)  # type: ignore[method-assign]
    sys.modules[PACKAGE] = package
    sys.modules["databricks"].sdk = package  # what the import system does for a submodule it loads


class _Completion:
    """The deferred package's `__getattr__`: a name its `__init__` defines runs the `__init__` first, once."""

    def __init__(self, package: ModuleType) -> None:
        self.package = package
        self.lock = threading.RLock()
        self.state = "deferred"  # deferred | running | done

    def __call__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)  # the `__init__` defines no dunder: probes (inspect, pickle) never load it
        if importlib.util.find_spec(f"{PACKAGE}.{name}") is not None:
            raise AttributeError(name)  # `from . import useragent`: the import system then imports the submodule
        with self.lock:
            if self.state == "deferred":
                self.state = "running"
                spec = self.package.__spec__
                assert spec is not None and spec.loader is not None
                try:
                    spec.loader.exec_module(self.package)
                except BaseException:
                    self.state = "deferred"  # the next read tries again and raises the same error
                    raise
                self.state = "done"
        try:
            return self.package.__dict__[name]
        except KeyError:
            raise AttributeError(f"module {PACKAGE!r} has no attribute {name!r}") from None
