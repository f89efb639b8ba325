"""Structured JSON logs carry the request context and never a secret."""

from __future__ import annotations

import json
import logging

from ragapi.core import request_context
from ragapi.core.logs import JsonFormatter, dict_config, redact


def test_secrets_of_every_shape_are_redacted() -> None:
    key = "rag_1a2b3c4d_" + "Z" * 43
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NSJ9.c2lnbmF0dXJlLXBhcnQ"
    text = (
        f"key={key} auth=Bearer {jwt} Authorization: bearer opaque-token-123 "
        f'password=hunter2hunter2 {{"api_key": "{key}"}} token: abc.def sk-live-0123456789abcdef'
    )
    cleaned = redact(text)
    for secret in (key, jwt, "opaque-token-123", "hunter2hunter2", "abc.def", "sk-live-0123456789abcdef"):
        assert secret not in cleaned
    assert cleaned.count("[redacted]") >= 6 and "Bearer [redacted]" in cleaned


def test_json_lines_carry_request_context_and_extra_fields() -> None:
    record = logging.LogRecord("ragapi.test", logging.INFO, __file__, 1, "answered %s", ("ok",), None)
    record.status = 200
    token = request_context.request_id.set("req-12345678")
    tenant = request_context.tenant_id.set("t-1")
    try:
        line = json.loads(JsonFormatter().format(record))
    finally:
        request_context.request_id.reset(token)
        request_context.tenant_id.reset(tenant)
    assert line["msg"] == "answered ok" and line["status"] == 200 and line["level"] == "info"
    assert line["request_id"] == "req-12345678" and line["tenant_id"] == "t-1"


def test_serve_logging_config_is_valid() -> None:
    import logging.config

    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        for fmt in ("json", "text"):
            logging.config.dictConfig(dict_config("info", fmt))
            assert len(root.handlers) == 1 and root.level == logging.INFO
            formatter = root.handlers[0].formatter
            assert formatter is not None
            record = logging.LogRecord("x", logging.INFO, __file__, 1, "key rag_1a2b3c4d_" + "Q" * 43, None, None)
            assert "[redacted]" in formatter.format(record)
    finally:
        root.handlers, root.level = saved[0], saved[1]


def test_auto_format_is_text_on_a_terminal_and_json_elsewhere(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import io
    import os

    from ragapi.core.logs import resolved_format

    primary, secondary = os.openpty()
    with os.fdopen(secondary, "w") as terminal, (tmp_path / "log").open("w") as file:
        assert resolved_format("auto", terminal) == "text"
        assert resolved_format("auto", file) == "json"  # a file, a pipe, a container's stderr
        assert resolved_format("auto", io.StringIO()) == "json"
        assert resolved_format("json", terminal) == "json" and resolved_format("text", file) == "text"
    os.close(primary)
