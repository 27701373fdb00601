"""Content-addressed blobs: zlib-compressed bytes named by the sha256 of what they hold.

`Blobs` is the small interface the version history writes through. `SQLiteBlobs` keeps them as rows of the
history's index database (the default); `DirectoryBlobs` is the older layout, one file per blob, still read
(and pruned) where an older dbsync wrote it. An object-storage backend (S3, ADLS) implements the same four methods.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

# zlib's default: on notebook-sized text levels 1 and 6 measured the same CPU (~0.1 ms a blob), 6 is smaller.
LEVEL = 6


def digest(data: bytes) -> str:
    """The name of a blob: sha256 of its uncompressed bytes."""
    return hashlib.sha256(data).hexdigest()


class Blobs(Protocol):
    """Where compressed version bodies live, by digest; identical content is stored once."""

    def put(self, name: str, data: bytes) -> int:
        """Store `data` under `name` unless it is there; the compressed size it takes."""
        ...

    def get(self, name: str) -> bytes:
        """The uncompressed bytes stored under `name` (KeyError when there are none)."""
        ...

    def delete(self, name: str) -> None:
        """Remove `name` (nothing when it is not there)."""
        ...

    def names(self) -> list[str]:
        """Every stored name (for checks and tests)."""
        ...


class DirectoryBlobs:
    """Blobs as files `<root>/<first two hex>/<digest>.z`, written to a temporary name and renamed (atomic)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, name: str) -> Path:
        return self.root / name[:2] / f"{name}.z"

    def put(self, name: str, data: bytes) -> int:
        path = self._path(name)
        if path.exists():
            return path.stat().st_size
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        packed = zlib.compress(data, LEVEL)
        temporary = path.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_bytes(packed)
        os.chmod(temporary, 0o600)  # a notebook's source is as private as the store
        temporary.replace(path)
        return len(packed)

    def get(self, name: str) -> bytes:
        try:
            return zlib.decompress(self._path(name).read_bytes())
        except FileNotFoundError:
            raise KeyError(
                f"version blob {name} is missing from {self.root}: pruned, or the directory was moved"
            ) from None

    def delete(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._path(name).unlink()

    def names(self) -> list[str]:
        if not self.root.exists():
            return []
        return sorted(p.name[: -len(".z")] for p in self.root.glob("??/*.z"))


class SQLiteBlobs:
    """Blobs as rows of `blob_data` in the history's index database, written in the index's own transaction.

    Why rows and not a file per blob (or an append-only pack file): an initial sync keeps ~2 blobs per object,
    and a file each (temporary name, rename, chmod) was most of the CPU the history cost; rows commit with the
    index a window at a time (a crash leaves no blob without its row nor a row without its blob), and a pack
    file would need its own offsets index and compaction for retention, where SQLite reuses and (incremental
    vacuum) returns the pages of deleted rows. `legacy` (the older file-per-blob layout) is read and pruned.
    `connect` gives the open connection; the caller holds its lock and transaction around put and delete.
    """

    def __init__(self, connect: Callable[[], sqlite3.Connection], legacy: Blobs | None = None) -> None:
        self._connect = connect
        self.legacy = legacy

    def put(self, name: str, data: bytes) -> int:
        packed = zlib.compress(data, LEVEL)
        self._connect().execute("INSERT OR IGNORE INTO blob_data (name, data) VALUES (?, ?)", [_key(name), packed])
        return len(packed)

    def put_many(self, blobs: dict[str, bytes]) -> dict[str, int]:
        """`put` for many blobs in one statement (a window of versions): the compressed size of each."""
        packed = {name: zlib.compress(data, LEVEL) for name, data in blobs.items()}
        if packed:
            values = ", ".join(["(?, ?)"] * len(packed))
            rows = [v for name, data in packed.items() for v in (_key(name), data)]
            self._connect().execute(f"INSERT OR IGNORE INTO blob_data (name, data) VALUES {values}", rows)
        return {name: len(data) for name, data in packed.items()}

    def get(self, name: str) -> bytes:
        row = self._connect().execute("SELECT data FROM blob_data WHERE name = ?", [_key(name)]).fetchone()
        if row is not None:
            return zlib.decompress(row[0])
        if self.legacy is not None:
            return self.legacy.get(name)
        raise KeyError(f"version blob {name} is missing from the history's index: pruned, or the index was replaced")

    def delete(self, name: str) -> None:
        self._connect().execute("DELETE FROM blob_data WHERE name = ?", [_key(name)])
        if self.legacy is not None:
            self.legacy.delete(name)

    def names(self) -> list[str]:
        rows = self._connect().execute("SELECT name FROM blob_data").fetchall()
        older = self.legacy.names() if self.legacy is not None else []
        return sorted({r[0].hex() for r in rows} | set(older))


def _key(name: str) -> bytes:
    """The row key of a blob: its digest's 32 bytes, not its 64 hex characters."""
    return bytes.fromhex(name)
