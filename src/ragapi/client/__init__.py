"""A typed Python client of the Enterprise RAG API, sync (`Client`) and async (`AsyncClient`), over httpx.

    from ragapi.client import Client

    with Client("http://127.0.0.1:8000", api_key="rag_...") as rag:
        rag.ingest_folder("handbook/", on_progress=print)
        print(rag.query("How many vacation days do I get?").answer)

Requests and responses are the server's own models (`ragapi.schemas`, `ragapi.answering.answer`); a
refusal is an `ApiError` subclass carrying the problem details; 429s and transient failures of idempotent
requests are retried as `RetryPolicy` says; lists are iterators that fetch page after page.
"""

from ragapi.answering.answer import Answer, AnswerEvent, Citation, Finished, Sources, Token
from ragapi.client._async import AsyncClient
from ragapi.client._base import IngestProgress, IngestResult, RetryPolicy
from ragapi.client._errors import (
    ApiError,
    BadRequest,
    ClientError,
    Conflict,
    ConnectionFailed,
    Forbidden,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    ServerError,
    StreamEnded,
    Unauthenticated,
    UnsupportedMediaType,
)
from ragapi.client._sync import Client

__all__ = [
    "Answer",
    "AnswerEvent",
    "ApiError",
    "AsyncClient",
    "BadRequest",
    "Citation",
    "Client",
    "ClientError",
    "Conflict",
    "ConnectionFailed",
    "Finished",
    "Forbidden",
    "IngestProgress",
    "IngestResult",
    "InvalidInput",
    "NotFound",
    "PayloadTooLarge",
    "RateLimited",
    "RetryPolicy",
    "ServerError",
    "Sources",
    "StreamEnded",
    "Token",
    "Unauthenticated",
    "UnsupportedMediaType",
]
