"""Error reports to Sentry when SENTRY_DSN is set (FastAPI and Celery integrations).

Nothing secret leaves: no request bodies, cookies or credential headers, no local variables, and every
remaining string goes through the same redaction as the logs. Each event carries the request id and
tenant of the request that raised it, so a report leads to its log lines and its trace.
"""

from __future__ import annotations

from typing import Any

from ragapi.core import request_context
from ragapi.core.logs import REDACTED, redact
from ragapi.core.settings import Settings

_SECRET_HEADERS = {"authorization", "x-api-key", "cookie", "set-cookie", "proxy-authorization"}


def scrub(event: Any, hint: Any = None) -> Any:  # noqa: ARG001 - Sentry's before_send signature
    request = event.get("request")
    if isinstance(request, dict):
        request.pop("data", None)
        request.pop("cookies", None)
        headers = request.get("headers")
        if isinstance(headers, dict):
            request["headers"] = {k: REDACTED if k.lower() in _SECRET_HEADERS else v for k, v in headers.items()}
    tags = event.setdefault("tags", {})
    if request_context.request_id.get():
        tags["request_id"] = request_context.request_id.get()
    if request_context.tenant_id.get():
        tags["tenant_id"] = request_context.tenant_id.get()
    return _redact_all(event)


def _redact_all(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: _redact_all(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact_all(v) for v in value]
    return value


def setup(settings: Settings, celery: bool = False) -> bool:
    if settings.sentry_dsn is None:
        return False
    import sentry_sdk
    from sentry_sdk.integrations.fastapi import FastApiIntegration
    from sentry_sdk.integrations.starlette import StarletteIntegration

    integrations: list[Any] = [StarletteIntegration(), FastApiIntegration()]
    if celery:
        from sentry_sdk.integrations.celery import CeleryIntegration

        integrations.append(CeleryIntegration())
    sentry_sdk.init(
        dsn=settings.sentry_dsn.get_secret_value(),
        environment=settings.sentry_environment,
        traces_sample_rate=settings.sentry_traces_sample_rate,
        send_default_pii=False,
        max_request_body_size="never",
        include_local_variables=False,
        before_send=scrub,
        before_send_transaction=scrub,
        integrations=integrations,
    )
    return True


def capture(exc: BaseException) -> None:
    """Report an error our handlers turned into a 500 (Sentry de-duplicates one it saw itself)."""
    import sentry_sdk

    if sentry_sdk.get_client().is_active():
        sentry_sdk.capture_exception(exc)
