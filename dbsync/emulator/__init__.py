"""A Databricks REST emulator: one workspace per port, real paths, payloads, errors and pagination."""

from dbsync.emulator.server import EmulatorHandle, Faults, start_emulator

__all__ = ["EmulatorHandle", "Faults", "start_emulator"]
