"""Exceptions with a meaning for the engine: what to retry, what to report, what to refuse."""

from __future__ import annotations

import re

# The SDK ends its messages with the client's whole config ("Config: host=..., token=***, ...") and sometimes
# the variables it read ("Env: DATABRICKS_HOST, ..."): a paragraph per error that says nothing to act on.
_SDK_CONFIG_DUMP = re.compile(r"\.? (?:Config|Env): \w+(?:=[^,\s]*)?(?:, \w+(?:=[^,\s]*)?)*")


def without_sdk_config(message: str) -> str:
    """`message` without the SDK's appended client config dump."""
    return _SDK_CONFIG_DUMP.sub("", message)


def one_line(err: BaseException, limit: int = 500) -> str:
    """The first line of an error's message, without the SDK's client config, cut to `limit` characters."""
    text = str(err).strip().splitlines()
    message = text[0] if text else type(err).__name__
    # SDK messages end with the client config (token masked); keep the part a person needs.
    return message.split(" Config: ")[0][:limit]


def yaml_error_position(err: BaseException) -> str:
    """Where a YAML document failed to parse (" (line 3, column 10)"), never the text around it: PyYAML's message
    quotes the offending lines, and in a config or values file those hold tokens and secret values."""
    mark = getattr(err, "problem_mark", None)  # its `problem` can quote a character of the value too
    return f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""


class DbsyncError(Exception):
    """Base class: a message a user can act on."""

    def __str__(self) -> str:
        return without_sdk_config(super().__str__())


class ConfigError(DbsyncError):
    """A bad or missing setting; the message names the setting and how to set it (exit 2)."""


class StoreError(DbsyncError):
    """The state store cannot be used (corrupt, locked, read-only, another workspace pair)."""


class ListingError(DbsyncError):
    """Listing a kind failed: the kind's cycle stops and nothing is deleted (never an empty listing)."""


class RetryLater(DbsyncError):
    """A temporary failure of one change: recorded, retried next cycle after `delay` seconds."""

    def __init__(self, message: str, delay: float = 0.0):
        super().__init__(message)
        self.delay = delay


class Permanent(DbsyncError):
    """A change that cannot succeed as it is (bad payload, rejected by the target): recorded as error."""


class Blocked(DbsyncError):
    """A change waiting on something else (an unmapped reference): status `blocked`, retried next cycle."""


class Kept(DbsyncError):
    """A delete refused because the target object holds what dbsync did not put there: kept, not retried."""
