"""Per-request log context: a request id and bound fields on every log line, text or JSON.

The request-id middleware starts a context for each request (`begin`); anything that runs for
that request, including threads it hands work to, may add fields with `bind(key=..., tenant=...)`.
A `ContextFilter` on each log handler copies them onto every record, and `JsonFormatter` writes
one JSON object per line. Fields name keys, tenants and ids the server made; never user text.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from contextvars import ContextVar
from typing import Any

REQUEST_ID_HEADER = "x-request-id"
_SANE_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")

# One mutable dict per request: a thread or task that copied the context still shares it, so a
# field bound there is on the request's later lines too (the access line included).
_fields: ContextVar[dict[str, str] | None] = ContextVar("pgenrm_log_fields", default=None)


def request_id(given: str | bytes | None) -> str:
    """The caller's id when it is sane (1-128 of A-Z a-z 0-9 . _ : -), else a new one; an id
    that is echoed and logged must not carry spaces, newlines or a megabyte."""
    if isinstance(given, bytes):
        given = given.decode("latin-1")
    if given is not None and _SANE_ID.fullmatch(given):
        return given
    return uuid.uuid4().hex


def begin(request_id: str) -> None:
    """Start this request's log context (in its own task: it ends with the task)."""
    _fields.set({"request_id": request_id})


def bind(**fields: str) -> None:
    """Add fields (e.g. `key`, `tenant`) to every later log line of the current request."""
    current = _fields.get()
    if current is None:
        _fields.set(dict(fields))
    else:
        current.update(fields)


def bound() -> dict[str, str]:
    """The current request's fields (a copy; empty outside a request)."""
    return dict(_fields.get() or {})


class ContextFilter(logging.Filter):
    """Puts the request's fields on each record: `request_fields`, and `request_context` for a
    text format (" request_id=... key=..."). Fields passed explicitly
    (`extra={"request_fields": ...}`) win: the HTTP layer, which logs outside the request's
    task, names the request that way."""

    def filter(self, record: logging.LogRecord) -> bool:
        explicit = getattr(record, "request_fields", None)
        fields = {**bound(), **(explicit if isinstance(explicit, dict) else {})}
        record.request_fields = fields
        record.request_context = "".join(f" {k}={v}" for k, v in fields.items())
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the request's fields, then any
    structured `extra={"data": {...}}` (the access line's method, route, status, duration)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": _utc(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for extra in (getattr(record, "request_fields", None), getattr(record, "data", None)):
            if isinstance(extra, dict):
                line.update({k: v for k, v in extra.items() if k not in line})
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def _utc(created: float) -> str:
    seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created))
    return f"{seconds}.{int(created % 1 * 1000):03d}Z"
