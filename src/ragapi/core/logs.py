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
from datetime import UTC, datetime
from typing import Any

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


def dict_config(level: str, fmt: str) -> dict[str, Any]:
    """logging.dictConfig for `ragapi serve`; uvicorn applies it in every worker process. Our access log
    replaces uvicorn's (which would print query strings)."""
    formatter = (
        {"()": "ragapi.core.logs.JsonFormatter"}
        if fmt == "json"
        else {"()": "ragapi.core.logs.RedactingTextFormatter", "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s"}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": formatter},
        "handlers": {
            "default": {"class": "logging.StreamHandler", "formatter": "default", "stream": "ext://sys.stderr"}
        },
        "root": {"handlers": ["default"], "level": level.upper()},
        "loggers": {
            "uvicorn": {"handlers": [], "propagate": True},
            "uvicorn.error": {"handlers": [], "propagate": True},
            "uvicorn.access": {"handlers": [], "propagate": False},
        },
    }
