"""Opaque page tokens and timestamps shared by the SQL objects, Lakeview and MLflow emulators.

Not an API module (it has no routes): the services it helps encode an offset in an opaque, URL-safe
token and answer `next_page_token` only while more items remain.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any

from dbsync_emulator.errors import invalid


def decode_token(token: str | None) -> int:
    """The offset a page token stands for (0 without a token); a forged token is a 400."""
    if not token:
        return 0
    try:
        offset = int(json.loads(base64.urlsafe_b64decode(token.encode()).decode())["o"])
    except (ValueError, KeyError, TypeError):
        raise invalid(f"Invalid page token: {token}") from None
    if offset < 0:
        raise invalid(f"Invalid page token: {token}")
    return offset


def encode_token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"o": offset}).encode()).decode()


def page(items: list[Any], size: int, token: str | None) -> tuple[list[Any], str | None]:
    """(this page's items, the next page's token or None)."""
    offset = decode_token(token)
    chunk = items[offset : offset + size]
    more = offset + size < len(items)
    return chunk, encode_token(offset + size) if more else None


def page_size(value: int | None, default: int, maximum: int, name: str = "page_size", clamp: bool = True) -> int:
    """A requested page size: the default when absent, clamped (or refused) above the maximum."""
    if value is None or value == 0:
        return default
    if value < 0:
        raise invalid(f"{name} must be positive")
    if value > maximum:
        if not clamp:
            raise invalid(f"Invalid value {value} for parameter '{name}' supplied. It must be at most {maximum}.")
        return maximum
    return value


def iso(ms: int) -> str:
    """RFC 3339 UTC with milliseconds, as the newer REST services format timestamps."""
    seconds, millis = divmod(int(ms), 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


def new_uuid(ws: Any) -> uuid.UUID:
    """A reproducible UUID (from the workspace's seeded random) that differs between workspaces.

    Two emulators with the same seed must not hand out the same ids: a client that copied an id across
    workspaces would then look right.
    """
    salt = (ws.workspace_id * 0x9E3779B97F4A7C15) % (1 << 128)
    return uuid.UUID(int=ws.random.getrandbits(128) ^ salt, version=4)
