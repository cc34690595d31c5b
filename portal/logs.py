"""Logging: one JSON object per line in production, readable text in development."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import orjson

from portal.settings import Settings

# Attributes every LogRecord has; anything else was passed with `extra=`
# (uvicorn adds a terminal-coloured copy of its message, which is noise here).
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "color_message",
}


def _extras(record: logging.LogRecord) -> dict[str, object]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(_extras(record))
        if record.exc_info and record.exc_info[0] is not None:
            entry["exception"] = record.exc_info[0].__name__
        return orjson.dumps(entry, default=str).decode()


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        extras = " ".join(f"{k}={v}" for k, v in _extras(record).items() if v not in (None, []))
        line = f"{record.levelname} {record.name}: {record.getMessage()}"
        return f"{line} {extras}" if extras else line


def configure_logging(settings: Settings) -> None:
    # What no line of ours shows, and what a line per request would pay for:
    # the caller's file and line (a walk up the stack), thread and process.
    # (The logging HOWTO's "Optimization" section names these switches.)
    logging._srcfile = None  # type: ignore[attr-defined]
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if settings.is_production else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    # Tortoise logs every SQL statement with its values at DEBUG: never enable it.
    logging.getLogger("tortoise").setLevel(logging.WARNING)
    # uvicorn's access log prints paths with query strings; ours replaces it.
    logging.getLogger("uvicorn.access").disabled = True
