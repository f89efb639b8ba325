"""Domain errors shared by every package. No web imports: `api.problems` maps them to RFC 9457.

RagApiError
 ├── Unauthenticated          401  missing, unknown, expired or revoked credential
 ├── Forbidden                403  credential lacks the scope, or the tenant is suspended
 ├── NotFound                 404  absent, or owned by another tenant (indistinguishable on purpose)
 ├── Conflict                 409  the resource already exists (e.g. a user with that e-mail)
 ├── PayloadTooLarge          413  upload over MAX_UPLOAD_BYTES or a document over MAX_DOCUMENT_CHARS
 ├── UnsupportedMediaType     415  a file type no parser handles
 ├── InvalidInput             422  well-formed request with unusable content
 │    └── UnparseableDocument 422  empty, corrupt or text-less file
 ├── RateLimited              429  a rate limit is spent (carries Retry-After and RateLimit-* headers)
 │    └── QuotaExceeded       429  the tenant's monthly query or ingest budget is spent
 ├── UpstreamError            502  an LLM, embedding or reranking provider failed
 └── ServiceUnavailable       503  a service this request needs (e.g. the job broker) is unreachable
"""

from __future__ import annotations


class RagApiError(Exception):
    status: int = 500
    title: str = "Internal error"

    def __init__(self, detail: str, field: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        # The input the error is about, dotted (`settings.top_k`): a form can show it next to that field.
        self.field = field

    @property
    def headers(self) -> dict[str, str]:
        """Response headers the error implies (the web layer adds them to the problem response)."""
        return {}


class Unauthenticated(RagApiError):
    status = 401
    title = "Unauthenticated"


class Forbidden(RagApiError):
    status = 403
    title = "Forbidden"


class NotFound(RagApiError):
    status = 404
    title = "Not found"


class Conflict(RagApiError):
    status = 409
    title = "Conflict"


class PayloadTooLarge(RagApiError):
    status = 413
    title = "Payload too large"


class UnsupportedMediaType(RagApiError):
    status = 415
    title = "Unsupported media type"


class InvalidInput(RagApiError):
    status = 422
    title = "Invalid input"


class UnparseableDocument(InvalidInput):
    title = "Unparseable document"


class UpstreamError(RagApiError):
    status = 502
    title = "Upstream provider error"


class ServiceUnavailable(RagApiError):
    status = 503
    title = "Service unavailable"

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": "30"}


class RateLimited(RagApiError):
    status = 429
    title = "Too many requests"

    def __init__(self, detail: str, retry_after_s: int, limit_headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.retry_after_s = max(1, retry_after_s)
        self.limit_headers = limit_headers or {}

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_s), **self.limit_headers}


class QuotaExceeded(RateLimited):
    title = "Quota exceeded"
