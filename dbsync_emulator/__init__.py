"""A Databricks REST emulator: one workspace per port, real paths, payloads, errors and pagination.

Its own package, beside `dbsync`: the product reaches it only through `dbsync.cli.emulated` (the `demo` and
`emulator` commands), so the container image ships without it.
"""

from dbsync_emulator.apis.clusters import create_cluster
from dbsync_emulator.apis.sql import create_warehouse
from dbsync_emulator.server import EmulatorHandle, Faults, start_emulator

__all__ = ["EmulatorHandle", "Faults", "create_cluster", "create_warehouse", "start_emulator"]
