"""What the client raises. Every refusal of the API is an `ApiError` carrying its RFC 9457 problem details.

ClientError
 ├── ConnectionFailed          the service could not be reached (after the retries the policy allows)
 ├── StreamEnded               a stream ended before its `done` event
 └── ApiError                  the API answered with a problem: status, type, title, detail, request_id, errors
      ├── BadRequest           400
      ├── Unauthenticated      401  missing, unknown, expired or revoked credential
      ├── Forbidden            403  the credential lacks the scope, or the tenant is suspended
      ├── NotFound             404  absent, or another tenant's (the API does not tell them apart)
      ├── Conflict             409
      ├── PayloadTooLarge      413
      ├── UnsupportedMediaType 415
      ├── InvalidInput         422  `errors` lists each field's problem when the body did not validate
      ├── RateLimited          429  `retry_after_s`: when the service will take the request
      └── ServerError          5xx
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import httpx


class ClientError(Exception):
    """Anything the client raises."""


class ConnectionFailed(ClientError):
    pass


class StreamEnded(ClientError):
    pass


class ApiError(ClientError):
    status: int = 0

    def __init__(self, problem: Mapping[str, Any], headers: Mapping[str, str] | None = None) -> None:
        self.problem = dict(problem)
        self.status = int(problem.get("status") or self.status)
        self.type: str = str(problem.get("type", "about:blank"))
        self.title: str = str(problem.get("title", ""))
        self.detail: str = str(problem.get("detail", ""))
        self.instance: str | None = problem.get("instance")
        self.request_id: str | None = problem.get("request_id") or (headers or {}).get("x-request-id")
        self.errors: list[dict[str, Any]] = list(problem.get("errors") or [])
        self.headers = dict(headers or {})
        where = f" (request {self.request_id})" if self.request_id else ""
        super().__init__(f"{self.status} {self.title}: {self.detail}{where}")


class BadRequest(ApiError):
    status = 400


class Unauthenticated(ApiError):
    status = 401


class Forbidden(ApiError):
    status = 403


class NotFound(ApiError):
    status = 404


class Conflict(ApiError):
    status = 409


class PayloadTooLarge(ApiError):
    status = 413


class UnsupportedMediaType(ApiError):
    status = 415


class InvalidInput(ApiError):
    status = 422


class RateLimited(ApiError):
    status = 429

    @property
    def retry_after_s(self) -> float | None:
        return retry_after(self.headers)


class ServerError(ApiError):
    status = 500


_BY_STATUS: dict[int, type[ApiError]] = {
    cls.status: cls
    for cls in (
        BadRequest,
        Unauthenticated,
        Forbidden,
        NotFound,
        Conflict,
        PayloadTooLarge,
        UnsupportedMediaType,
        InvalidInput,
        RateLimited,
    )
}


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Retry-After in seconds (the API sends delta-seconds; an HTTP date is read too), None if absent."""
    value = {k.lower(): v for k, v in headers.items()}.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        from datetime import UTC, datetime
        from email.utils import parsedate_to_datetime

        try:
            return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
        except (TypeError, ValueError):
            return None


def error_for(status: int, problem: Mapping[str, Any], headers: Mapping[str, str] | None = None) -> ApiError:
    cls = _BY_STATUS.get(status) or (ServerError if status >= 500 else ApiError)
    return cls({**problem, "status": problem.get("status") or status}, headers)


def error_from_response(response: httpx.Response) -> ApiError:
    """The response's problem details as an exception (a body that is not one still gives status and text)."""
    try:
        body = json.loads(response.content)
    except ValueError:
        body = None
    if not isinstance(body, dict):
        body = {"title": response.reason_phrase, "detail": response.text[:500]}
    return error_for(response.status_code, body, dict(response.headers))
