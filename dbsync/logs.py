"""Logs on stderr: one JSON object per line for machines, or one readable line per record on a terminal.

`log_format: auto` (the default) writes JSON unless stderr is a terminal, so a container's log collector
always gets JSON and a person at a shell gets lines that do not drown a command's own output (which goes
to stdout). Nothing secret is ever passed to a logger.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                document[key] = value
        if record.exc_info:
            document["exc"] = self.formatException(record.exc_info)
        return json.dumps(document, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """`12:00:01 warning message key=value ...` (the same fields as the JSON line, for a terminal)."""

    def __init__(self, terminal: bool = False) -> None:
        super().__init__()
        # On a terminal, a record first clears the line a progress display may have left without a newline.
        self.prefix = "\r\x1b[K" if terminal else ""

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
        extra = " ".join(
            f"{key}={value}" for key, value in vars(record).items() if key not in _STANDARD and not key.startswith("_")
        )
        line = f"{self.prefix}{stamp} {record.levelname.lower()} {record.getMessage()}"
        line += f"  {extra}" if extra else ""
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def formatter(log_format: str = "auto", stream: Any = None) -> logging.Formatter:
    """JSON, text, or (auto) text only when `stream` (stderr) is a terminal."""
    stream = stream if stream is not None else sys.stderr
    if log_format == "text" or (log_format == "auto" and _is_tty(stream)):
        return TextFormatter(terminal=_is_tty(stream))
    return JsonFormatter()


def progress_allowed() -> bool:
    """Whether a command may draw progress on stderr: a terminal that shows text logs, not JSON lines."""
    handlers = logging.getLogger().handlers
    return _is_tty(sys.stderr) and all(isinstance(h.formatter, TextFormatter) for h in handlers)


def _is_tty(stream: Any) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def setup(level: str = "INFO", log_format: str = "auto") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(log_format, sys.stderr))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # The SDK logs request bodies at DEBUG; keep it at WARNING so payloads never reach the log.
    logging.getLogger("databricks").setLevel(logging.WARNING)
    logging.getLogger("urllib3").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # the host preflight: a line per request says nothing
    logging.getLogger("apscheduler").setLevel(logging.WARNING)  # one line per job run is noise; ours say more
    logging.getLogger("apscheduler.scheduler").addFilter(_waiting_is_not_a_warning)


def _waiting_is_not_a_warning(record: logging.LogRecord) -> bool:
    """A worker runs its cycles one at a time: a group due while another runs waits for it (coalesced), by design.

    APScheduler says so as a WARNING per group per interval ("skipped: maximum number of running instances
    reached"), which at 100,000 objects was most of the daemon's log.
    """
    return "maximum number of running instances reached" not in record.getMessage()
