"""Domain errors shared by every package. No web imports: `api.problems` maps them to RFC 9457.

RagApiError
 ├── Unauthenticated          401  missing, unknown, expired or revoked credential
 ├── Forbidden                403  credential lacks the scope, or the tenant is suspended
 ├── NotFound                 404  absent, or owned by another tenant (indistinguishable on purpose)
 ├── PayloadTooLarge          413  upload over MAX_UPLOAD_BYTES or a document over MAX_DOCUMENT_CHARS
 ├── UnsupportedMediaType     415  a file type no parser handles
 ├── InvalidInput             422  well-formed request with unusable content
 │    └── UnparseableDocument 422  empty, corrupt or text-less file
 └── UpstreamError            502  an LLM, embedding or reranking provider failed
"""

from __future__ import annotations


class RagApiError(Exception):
    status: int = 500
    title: str = "Internal error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class Unauthenticated(RagApiError):
    status = 401
    title = "Unauthenticated"


class Forbidden(RagApiError):
    status = 403
    title = "Forbidden"


class NotFound(RagApiError):
    status = 404
    title = "Not found"


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
