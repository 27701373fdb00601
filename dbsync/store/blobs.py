"""Content-addressed blobs: zlib-compressed bytes named by the sha256 of what they hold.

`Blobs` is the small interface the version history writes through; `DirectoryBlobs` keeps them in a directory
beside the state store. An object-storage backend (S3, ADLS) implements the same four methods.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import zlib
from pathlib import Path
from typing import Protocol


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
        packed = zlib.compress(data, 6)
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
