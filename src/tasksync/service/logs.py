"""Service logs: one line per event, plain or JSON, with secrets redacted.

Events are logged as ``log.info(event, extra={"fields": {...}})``; the formatters print the
event name and its fields. Every known secret value (tokens, keys, webhook secrets) and any
``key=``/``token=``/``secret=`` query parameter is replaced by ``***`` before a line is written.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import IO, Any

from tasksync.connectors.transport import redact

__all__ = ["LOGGER_NAME", "configure_logging", "event", "redactor"]

LOGGER_NAME = "tasksync.service"

log = logging.getLogger(LOGGER_NAME)


def redactor(secrets: Iterable[str]) -> Any:
    """A function that removes every secret in ``secrets`` (and secret-looking parameters) from a text."""
    known = tuple(secrets)

    def clean(text: str) -> str:
        return redact(text, known)

    return clean


class _Redact(logging.Filter):
    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.redact = redactor(secrets)

    def _clean(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, Mapping):
            return {k: self._clean(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self._clean(v) for v in value]
        return value

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.redact(record.getMessage())
        record.args = None
        fields = getattr(record, "fields", None)
        if fields:
            record.fields = self._clean(fields)
        if record.exc_info:
            record.exc_text = self.redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


def _ts(record: logging.LogRecord) -> str:
    return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {"ts": _ts(record), "level": record.levelname.lower(), "event": record.getMessage()}
        out.update(getattr(record, "fields", None) or {})
        if record.exc_text:
            out["traceback"] = record.exc_text
        return json.dumps(out, ensure_ascii=False, default=str)


class PlainFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = getattr(record, "fields", None) or {}
        parts = [_ts(record), record.levelname.lower(), record.getMessage()]
        parts += [f"{k}={json.dumps(v, ensure_ascii=False, default=str)}" for k, v in fields.items()]
        line = " ".join(parts)
        if record.exc_text:
            line += "\n" + record.exc_text
        return line


def configure_logging(*, json_lines: bool, secrets: Iterable[str] = (), stream: IO[str] | None = None) -> None:
    """Send the service's events to ``stream`` (stderr) as plain or JSON lines, redacted."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if json_lines else PlainFormatter())
    handler.addFilter(_Redact(secrets))
    for h in list(log.handlers):
        log.removeHandler(h)
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False


def event(name: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log one event with its fields."""
    if log.isEnabledFor(level):
        log.log(level, name, extra={"fields": fields})
