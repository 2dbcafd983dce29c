"""Structured logging: request ids, secret redaction, JSON lines and a buffer of recent errors."""

from __future__ import annotations

import json
import logging
import os
import re
from collections import deque
from contextvars import ContextVar
from datetime import UTC, datetime
from threading import Lock
from typing import Any

request_id_var: ContextVar[str] = ContextVar("request_id", default="-")

# Environment variables whose values must never reach a log line.
SECRET_ENVIRONMENT_NAMES = (
    "SECRET_KEY",
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "GEMINI_API_KEY",
    "BINANCE_API_KEY",
    "BINANCE_SECRET_KEY",
    "ALPHA_VANTAGE_API_KEY",
    "COINGECKO_API_KEY",
    "FIELD_ENCRYPTION_KEY",
)
_SECRET_PAIR = re.compile(
    r"(?i)\b(api[_-]?key|secret|password|token|authorization)(\s*[=:]\s*|\"\s*:\s*\")([^\s\"',;&]+)"
)
_MIN_SECRET_LENGTH = 8


def _known_secrets() -> list[str]:
    values = (os.environ.get(name, "") for name in SECRET_ENVIRONMENT_NAMES)
    return [value for value in values if len(value) >= _MIN_SECRET_LENGTH]


def redact(text: str) -> str:
    """Mask configured secret values and ``key=value`` pairs that look like credentials."""
    for secret in _known_secrets():
        text = text.replace(secret, "[REDACTED]")
    return _SECRET_PAIR.sub(lambda m: f"{m.group(1)}{m.group(2)}[REDACTED]", text)


class RequestIdFilter(logging.Filter):
    """Attach the current request id (or '-') to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


class RedactSecretsFilter(logging.Filter):
    """Rewrite the formatted message so no secret value is ever emitted."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, None
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, request id, exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
        }
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, default=str)


class RecentErrorsHandler(logging.Handler):
    """Keep the last ERROR records of this process for the health document."""

    capacity = 20
    _records: deque[dict[str, Any]] = deque(maxlen=capacity)
    _lock = Lock()

    def emit(self, record: logging.LogRecord) -> None:
        entry = {
            "timestamp": datetime.fromtimestamp(record.created, tz=UTC).isoformat(),
            "logger": record.name,
            "level": record.levelname,
            "message": redact(record.getMessage())[:500],
            "request_id": getattr(record, "request_id", "-"),
        }
        with self._lock:
            self._records.append(entry)

    @classmethod
    def recent(cls) -> list[dict[str, Any]]:
        """Newest first."""
        with cls._lock:
            return list(reversed(cls._records))

    @classmethod
    def clear(cls) -> None:
        with cls._lock:
            cls._records.clear()
