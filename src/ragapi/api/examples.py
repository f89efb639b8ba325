"""Examples for the OpenAPI document: one realistic body per component schema used as a request or a
response, and the schemas and examples of the responses FastAPI cannot describe (plain dicts, event
streams). `api.openapi` places them; tests/api/test_openapi.py validates every one against its schema."""

from __future__ import annotations

import json
from typing import Any

TENANT_ID = "2f1c7a52-2b0e-4c5e-9a57-3c1d8e0b6a41"
KB_ID = "7d3e9b10-5a4f-4f0e-8c21-9e6b2d4a7c13"
DOCUMENT_ID = "4b8f2c6e-1d3a-4e5b-9f70-8a2c6d1e3b57"
CHUNK_ID = "c5a1e9d3-7b2f-4c8e-a614-2f9d0b3e7a68"
QUERY_ID = "0e6d4c2b-8a1f-4d3e-b597-6c2a8e0f4d19"
JOB_ID = "9a7b5c3d-1e2f-4a6b-8c0d-2e4f6a8b0c1d"
USER_ID = "5e3c1a9b-7d5f-4b2e-8a04-6c8e0a2b4d67"
KEY_ID = "8f6e4d2c-0b9a-4c7e-a53f-1d2b3c4d5e6f"
CONVERSATION_ID = "3d5f7b9c-2e4a-4c6e-8b1d-0f2a4c6e8b3d"
WHEN = "2026-12-01T09:30:00Z"
API_KEY = "rag_1a2b3c4d_K9pX2vQ7mR4tY8wZ3nB6cF1hJ5"  # the shape of a key, not a key

CITATION = {
    "n": 1,
    "document_id": DOCUMENT_ID,
    "chunk_id": CHUNK_ID,
    "title": "Leave policy",
    "snippet": "Employees get 25 days of paid leave a year. Unused days carry over until March.",
    "score": 0.034426,
    "page": None,
}
TIMINGS = {"embed": 6.1, "retrieve": 11.4, "rerank": 0.0, "generate": 2.3, "total": 21.5}
USAGE = {"prompt_tokens": 0, "completion_tokens": 0, "embedding_tokens": 9, "estimated": True}
ANSWER = {
    "query_id": QUERY_ID,
    "answer": "Employees get 25 days of paid leave a year [1].",
    "mode": "extractive",
    "model": "extractive",
    "citations": [CITATION],
    "cached": False,
    "timings_ms": TIMINGS,
    "usage": USAGE,
}
PROGRESS = {"files_total": 2, "files_done": 2, "files_failed": 0, "files_cancelled": 0, "chunks_done": 7}
LINKS = {
    "self": f"/v1/ingest/jobs/{JOB_ID}",
    "events": f"/v1/ingest/jobs/{JOB_ID}/events",
    "cancel": f"/v1/ingest/jobs/{JOB_ID}/cancel",
}
JOB_SUMMARY = {
    "job_id": JOB_ID,
    "status": "queued",
    "created_at": WHEN,
    "started_at": None,
    "finished_at": None,
    "error": None,
    "progress": {**PROGRESS, "files_done": 0, "chunks_done": 0},
    "links": LINKS,
}
JOB_FILE = {
    "index": 0,
    "filename": "handbook.pdf",
    "status": "created",
    "document_id": DOCUMENT_ID,
    "chunks": 5,
    "error": None,
    "removed_characters": 0,
    "attempts": 1,
    "started_at": WHEN,
    "finished_at": "2026-12-01T09:30:02Z",
}
JOB = {
    **JOB_SUMMARY,
    "status": "succeeded",
    "started_at": WHEN,
    "finished_at": "2026-12-01T09:30:02Z",
    "progress": PROGRESS,
    "documents": [JOB_FILE, {**JOB_FILE, "index": 1, "filename": "faq.md", "chunks": 2}],
}
DOCUMENT = {
    "document_id": DOCUMENT_ID,
    "knowledge_base_id": KB_ID,
    "external_id": "hr-001",
    "title": "Leave policy",
    "source": "handbook.pdf",
    "content_type": "application/pdf",
    "content_hash": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "metadata": {"lang": "en", "department": "hr"},
    "chunks": 5,
    "size_bytes": 48213,
    "created_at": WHEN,
    "access": None,
}
USER = {
    "id": USER_ID,
    "tenant_id": TENANT_ID,
    "email": "ada@example.com",
    "role": "member",
    "is_active": True,
    "created_at": WHEN,
    "external_id": "crm-7781",
}
TOKENS = {
    "access_token": "eyJhbGciOiJIUzI1NiJ9.e30.signature",
    "refresh_token": "r1.7Qm2xV9pL4sT8wK3nB6cF1hJ5dG0aZ",
    "token_type": "bearer",
    "expires_in": 900,
}
KEY = {
    "id": KEY_ID,
    "name": "support bot",
    "prefix": "rag_1a2b3c4d",
    "scopes": ["query", "feedback"],
    "knowledge_base_ids": None,
    "rate_limit_per_minute": None,
    "created_at": WHEN,
    "expires_at": None,
    "revoked_at": None,
    "last_used_at": "2026-12-02T14:05:00Z",
}
GROUP_ID = "6a4c2e0b-9d7f-4b5a-8e3c-1f0d2b4a6c8e"
ACCESS = {"users": [USER_ID], "groups": [GROUP_ID], "api_keys": []}
GROUP = {"group_id": GROUP_ID, "name": "HR", "created_at": WHEN, "members": [USER_ID]}
PASSAGE = {**CITATION, "text": "Employees get 25 days of paid leave a year. Unused days carry over until March."}
IDENTITY_PROVIDER = {
    "tenant_id": TENANT_ID,
    "issuer": "https://login.example.com/realms/acme",
    "client_id": "ragapi",
    "client_secret_set": True,
    "allowed_domains": ["acme.example"],
    "groups_claim": "groups",
    "scopes": ["openid", "email", "profile"],
    "default_role": "member",
    "token_auth_method": None,
    "redirect_uri": f"https://rag.acme.example/v1/auth/oidc/{TENANT_ID}/callback",
    "created_at": WHEN,
    "updated_at": WHEN,
}
COMPLETION_ID = "chatcmpl-0e6d4c2b8a1f4d3eb5976c2a8e0f4d19"
MODEL = {
    "id": "handbook",
    "object": "model",
    "created": 1764581400,
    "owned_by": "ragapi",
    "knowledge_base_id": KB_ID,
    "description": "The employee handbook",
}
TENANT = {
    "id": TENANT_ID,
    "name": "Acme",
    "status": "active",
    "plan": "default",
    "rate_limit_per_minute": None,
    "monthly_query_quota": 100000,
    "monthly_ingest_bytes_quota": None,
    "max_document_bytes": None,
    "allow_registration": False,
    "registration_role": "member",
    "cache_enabled": True,
    "created_at": WHEN,
}
KNOWLEDGE_BASE = {
    "id": KB_ID,
    "name": "handbook",
    "description": "The employee handbook",
    "default": True,
    "status": "active",
    "settings": {"top_k": 5},
    "embedding_model": "all-MiniLM-L6-v2",
    "embedding_dim": 384,
    "vector_backend": "pgvector",
    "chunks": 212,
    "version": 14,
    "created_at": WHEN,
    "deletion": None,
}
CONVERSATION = {
    "id": CONVERSATION_ID,
    "title": "Leave",
    "knowledge_bases": ["handbook"],
    "message_count": 2,
    "created_at": WHEN,
    "updated_at": "2026-12-01T09:31:00Z",
}
RAG_INPUT = {"query": "How many days of leave do I get?", "knowledge_bases": ["handbook"], "top_k": 3}
RAG_ANSWER = {**ANSWER, "standalone_question": None}
RUN = {"run_id": "6b0d2f4a-8c1e-4a3b-9d5f-7e9a1c3b5d0f", "feedback_tokens": []}

# Component schema name -> example (requests, then responses).
COMPONENTS: dict[str, Any] = {
    "RegisterRequest": {"tenant_id": TENANT_ID, "email": "ada@example.com", "password": "correct horse battery staple"},
    "LoginForm": {"username": "ada@example.com", "password": "correct horse battery staple", "grant_type": "password"},
    "RefreshRequest": {"refresh_token": TOKENS["refresh_token"]},
    "PasswordChange": {"current_password": "correct horse battery staple", "new_password": "a longer passphrase now"},
    "ForgotPassword": {"email": "ada@example.com"},
    "PasswordReset": {"token": "pr1.Zx8vQ2mL5sT9wK3n", "new_password": "a longer passphrase now"},
    "TenantCreate": {"name": "Acme", "plan": "default", "monthly_query_quota": 100000},
    "TenantUpdate": {"status": "suspended"},
    "UserCreate": {"email": "ada@example.com", "password": "correct horse battery staple", "role": "member"},
    "UserUpdate": {"role": "admin"},
    "ApiKeyCreate": {"name": "support bot", "scopes": ["query", "feedback"], "knowledge_bases": ["handbook"]},
    "KnowledgeBaseCreate": {"name": "handbook", "description": "The employee handbook", "settings": {"top_k": 5}},
    "KnowledgeBasePatch": {"description": "The employee handbook, 2026 edition"},
    "IngestJson": {
        "documents": [
            {
                "title": "Leave policy",
                "text": "Employees get 25 days of paid leave a year. Unused days carry over until March.",
                "metadata": {"lang": "en", "department": "hr"},
                "external_id": "hr-001",
            },
            {"url": "https://intranet.example.com/travel.html", "metadata": {"lang": "en"}},
        ]
    },
    "DocumentAccessPut": {"access": {"users": [USER_ID], "groups": [GROUP_ID]}},
    "BulkAccessPut": {"document_ids": [DOCUMENT_ID], "access": {"groups": [GROUP_ID]}},
    "GroupCreate": {"name": "HR"},
    "GroupRename": {"name": "People team"},
    "GroupMembers": {"user_ids": [USER_ID]},
    "SearchRequest": {"query": "How many days of leave do I get?", "knowledge_bases": ["handbook"], "top_k": 3},
    "IdentityProviderIn": {
        "issuer": "https://login.example.com/realms/acme",
        "client_id": "ragapi",
        "client_secret": "s3cr3t-from-the-provider",
        "allowed_domains": ["acme.example"],
        "groups_claim": "groups",
        "scopes": ["openid", "email", "profile"],
        "default_role": "member",
    },
    "ChatCompletionRequest": {
        "model": "handbook",
        "messages": [
            {"role": "user", "content": "How many days of leave do I get?"},
        ],
        "stream": False,
    },
    "DocumentPatch": {"metadata": {"lang": "en", "department": "hr", "reviewed": True}},
    "QueryRequest": {"query": "How many days of leave do I get?", "knowledge_bases": ["handbook"], "top_k": 3},
    "ConversationCreate": {"title": "Leave", "knowledge_bases": ["handbook"]},
    "ConversationMessageIn": {"content": "And do unused days carry over?"},
    "FeedbackIn": {"query_id": QUERY_ID, "rating": 1, "comment": "Exactly what I needed", "chunk_ids": [CHUNK_ID]},
    "v1_ragInvokeRequest": {"input": RAG_INPUT},
    "v1_ragBatchRequest": {"inputs": [RAG_INPUT, {"query": "Do unused days carry over?"}]},
    "v1_ragStreamRequest": {"input": RAG_INPUT},
    "v1_ragStreamLogRequest": {"input": RAG_INPUT},
    "v1_ragStreamEventsRequest": {"input": RAG_INPUT},
    "UserOut": USER,
    "TokenResponse": TOKENS,
    "TenantOut": TENANT,
    "TenantCreated": {**TENANT, "api_key": API_KEY},
    "MyTenantOut": {
        "id": TENANT_ID,
        "name": "Acme",
        "limits": {
            "plan": "default",
            "rate_limit_per_minute": 600,
            "monthly_query_quota": 100000,
            "monthly_ingest_bytes_quota": None,
            "max_document_bytes": 52428800,
        },
        "usage": {"period": "2026-12-01", "queries": 1234, "ingest_bytes": 8812034},
    },
    "ApiKeyOut": KEY,
    "ApiKeyCreated": {**KEY, "last_used_at": None, "api_key": API_KEY},
    "KnowledgeBaseOut": KNOWLEDGE_BASE,
    "JobSummary": JOB_SUMMARY,
    "JobOut": JOB,
    "JobPage": {"items": [{**JOB_SUMMARY, "status": "running", "started_at": WHEN}], "next_cursor": None},
    "DocumentOut": DOCUMENT,
    "DocumentAccessOut": {"document_id": DOCUMENT_ID, "knowledge_base_id": KB_ID, "access": ACCESS},
    "DocumentAccessPage": {"items": [{**DOCUMENT, "access": ACCESS}]},
    "GroupOut": GROUP,
    "SearchResponse": {"query_id": QUERY_ID, "passages": [PASSAGE]},
    "IdentityProviderOut": IDENTITY_PROVIDER,
    "ModelCard": MODEL,
    "ModelList": {"object": "list", "data": [MODEL]},
    "ChatCompletion": {
        "id": COMPLETION_ID,
        "object": "chat.completion",
        "created": 1764581400,
        "model": "handbook",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "Employees get 25 days of paid leave a year [1].\n\nSources:\n[1] Leave policy",
                    "refusal": None,
                },
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": {
            "prompt_tokens": 9,
            "completion_tokens": 0,
            "total_tokens": 9,
            "embedding_tokens": 9,
            "estimated": True,
        },
        "system_fingerprint": None,
        "citations": [CITATION],
        "ragapi": {
            "query_id": QUERY_ID,
            "mode": "extractive",
            "model": "extractive",
            "cached": False,
            "standalone_question": "How many days of leave do I get?",
        },
    },
    "DocumentPage": {"items": [DOCUMENT], "next_cursor": "eyJpZCI6IjRiOGYyYzZlIn0"},
    "Answer": ANSWER,
    "ConversationOut": CONVERSATION,
    "ConversationPage": {"items": [CONVERSATION], "next_cursor": None},
    "ConversationDetail": {
        **CONVERSATION,
        "messages": [
            {
                "ord": 0,
                "role": "user",
                "content": "How many days of leave do I get?",
                "standalone_question": "How many days of leave do I get?",
                "rewrite": "none",
                "created_at": WHEN,
            },
            {
                "ord": 1,
                "role": "assistant",
                "content": ANSWER["answer"],
                "query_id": QUERY_ID,
                "citations": [CITATION],
                "withheld": False,
                "mode": "extractive",
                "model": "extractive",
                "usage": USAGE,
                "created_at": "2026-12-01T09:31:00Z",
            },
        ],
    },
    "ConversationAnswer": {
        **ANSWER,
        "conversation_id": CONVERSATION_ID,
        "standalone_question": "How many days of leave do I get? And do unused days carry over?",
    },
    "FeedbackOut": {"feedback_id": "1f3e5d7c-9b2a-4e6d-8c0f-2a4b6c8d0e1f", "query_id": QUERY_ID, "score": 1.0},
    "FeedbackExport": {
        "queries": [{"_id": QUERY_ID, "text": "How many days of leave do I get?"}],
        "qrels": [{"query-id": QUERY_ID, "corpus-id": DOCUMENT_ID, "score": 1}],
    },
    "v1_ragInvokeResponse": {"output": RAG_ANSWER, "metadata": RUN},
    "v1_ragBatchResponse": {
        "output": [RAG_ANSWER],
        "metadata": {"responses": [RUN], "run_ids": [RUN["run_id"]]},
    },
}


def _sse(*events: tuple[str, Any]) -> str:
    return "".join(f"event: {name}\ndata: {json.dumps(data)}\n\n" for name, data in events)


ANSWER_STREAM = _sse(
    ("sources", {"query_id": QUERY_ID, "citations": [CITATION], "mode": "extractive", "model": "extractive"}),
    ("token", {"text": "Employees get 25 days of paid leave a year [1]."}),
    ("done", ANSWER),
)
LATENCY = {"p50": 21.5, "p95": 48.0, "p99": 95.2}
ANALYTICS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "Analytics",
    "description": "The window's totals, a series per interval, the top and the poorly answered questions",
    "required": ["start", "end", "interval", "queries", "errors", "cache", "latency_ms", "tokens", "series"],
    "properties": {
        "start": {"type": "string", "format": "date-time"},
        "end": {"type": "string", "format": "date-time"},
        "interval": {"enum": ["hour", "day"]},
        "tenant_id": {"type": ["string", "null"], "format": "uuid"},
        "queries": {"type": "integer"},
        "errors": {"type": "integer"},
        "error_rate": {"type": "number"},
        "cache": {"type": "object", "description": "exact_hits, semantic_hits, hit_rate"},
        "latency_ms": {
            "type": "object",
            "description": "Per stage (embed, retrieve, rerank, generate, total): p50, p95, p99 in milliseconds",
            "additionalProperties": {"type": "object", "additionalProperties": {"type": ["number", "null"]}},
        },
        "tokens": {"type": "object", "description": "prompt, completion, embedding"},
        "cost_usd": {"type": "number"},
        "feedback": {"type": "object", "description": "total, positive, negative, positive_ratio"},
        "series": {"type": "array", "items": {"type": "object"}, "description": "One entry per hour or day"},
        "top_queries": {"type": "array", "items": {"type": "object"}},
        "poorly_answered": {"type": "array", "items": {"type": "object"}, "description": "No source, or a low one"},
        "ingest": {"type": "object", "description": "documents, bytes, chunks"},
        "groups": {"type": "array", "items": {"type": "object"}, "description": "With group_by: one per key or user"},
    },
}
ANALYTICS = {
    "start": "2026-11-24T09:30:00Z",
    "end": "2026-12-01T09:30:00Z",
    "interval": "day",
    "tenant_id": TENANT_ID,
    "queries": 412,
    "errors": 3,
    "error_rate": 0.00728,
    "cache": {"exact_hits": 51, "semantic_hits": 12, "hit_rate": 0.1529},
    "latency_ms": dict.fromkeys(("embed", "retrieve", "rerank", "generate", "total"), LATENCY),
    "tokens": {"prompt": 0, "completion": 0, "embedding": 3708},
    "cost_usd": 0.0,
    "feedback": {"total": 20, "positive": 17, "negative": 3, "positive_ratio": 0.85},
    "series": [
        {"bucket": "2026-11-30T00:00:00Z", "queries": 61, "errors": 0, "cache_hits": 9, "p95_ms": 47.1, "cost_usd": 0}
    ],
    "top_queries": [{"query": "How many days of leave do I get?", "count": 17}],
    "poorly_answered": [
        {
            "query_id": QUERY_ID,
            "query": "Is there a gym?",
            "created_at": WHEN,
            "sources": 0,
            "top_score": None,
            "negative_feedback": False,
        }
    ],
    "ingest": {"documents": 31, "bytes": 8812034, "chunks": 402},
    "groups": [],
}
HEALTH_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "Readiness",
    "required": ["status", "checks"],
    "properties": {
        "status": {"enum": ["ok", "degraded", "unavailable", "draining"]},
        "checks": {
            "type": "object",
            "description": "Per dependency: status (ok or error), latency_ms, and an error when it failed",
            "additionalProperties": {"type": "object"},
        },
    },
}
JSON_SCHEMA: dict[str, Any] = {"type": "object", "title": "JSON Schema", "additionalProperties": True}


def event_stream(*names: str) -> dict[str, Any]:
    """One event of a server-sent event stream: its name, and its data (JSON text)."""
    return {
        "type": "object",
        "title": "Server-sent event",
        "description": "Each event of the stream, in order: " + ", ".join(names),
        "required": ["data"],
        "properties": {
            "event": {"enum": list(names)},
            "data": {"type": "string", "description": "JSON"},
            "id": {"type": "string"},
            "retry": {"type": "integer"},
        },
    }


ANSWER_EVENTS = event_stream("sources", "token", "done", "error")
RUNNABLE_EVENTS = event_stream("metadata", "data", "end", "error")
_RAG_EVENTS = _sse(("metadata", {"run_id": RUN["run_id"]}), ("data", RAG_ANSWER), ("end", None))

# (method, path, status, media type) -> (schema, example), for responses without a component schema.
RESPONSES: dict[tuple[str, str, str, str], tuple[dict[str, Any], Any]] = {
    ("put", "/v1/documents/{document_id}/access", "200", "application/json"): (
        {
            "anyOf": [
                {"$ref": "#/components/schemas/DocumentOut"},
                {"$ref": "#/components/schemas/DocumentAccessOut"},
            ],
            "title": "The document as the caller reads it after the change: whole, or only its access",
        },
        {**DOCUMENT, "access": ACCESS},
    ),
    ("get", "/healthz", "200", "application/json"): (
        {"type": "object", "title": "Liveness", "properties": {"status": {"const": "ok"}}},
        {"status": "ok"},
    ),
    ("get", "/readyz", "200", "application/json"): (
        HEALTH_SCHEMA,
        {
            "status": "ok",
            "checks": {
                "database": {"status": "ok", "latency_ms": 1.2},
                "migrations": {"status": "ok", "latency_ms": 0.9},
                "model": {"status": "ok", "latency_ms": 4.6},
            },
        },
    ),
    ("get", "/v1/analytics", "200", "application/json"): (ANALYTICS_SCHEMA, ANALYTICS),
    ("get", "/v1/groups", "200", "application/json"): (
        {"type": "array", "items": {"$ref": "#/components/schemas/GroupOut"}},
        [GROUP],
    ),
    ("post", "/v1/chat/completions", "200", "text/event-stream"): (
        {
            "type": "object",
            "title": "Server-sent event",
            "description": "chat.completion.chunk objects as JSON, then the text [DONE]",
            "required": ["data"],
            "properties": {"data": {"type": "string", "description": "JSON, or [DONE]"}},
        },
        "".join(
            f"data: {json.dumps(chunk)}\n\n"
            for chunk in (
                {
                    "id": COMPLETION_ID,
                    "object": "chat.completion.chunk",
                    "created": 1764581400,
                    "model": "handbook",
                    "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Employees get 25 days"}}],
                },
            )
        )
        + "data: [DONE]\n\n",
    ),
    ("post", "/v1/query", "200", "text/event-stream"): (ANSWER_EVENTS, ANSWER_STREAM),
    ("post", "/v1/conversations/{conversation_id}/messages", "200", "text/event-stream"): (
        ANSWER_EVENTS,
        ANSWER_STREAM,
    ),
    ("get", "/v1/ingest/jobs/{job_id}/events", "200", "text/event-stream"): (
        event_stream("progress", "done", "error"),
        _sse(
            ("progress", {**JOB_SUMMARY, "status": "running", "started_at": WHEN}),
            ("done", {**JOB, "documents": []}),
        ),
    ),
    ("post", "/v1/rag/stream", "200", "text/event-stream"): (RUNNABLE_EVENTS, _RAG_EVENTS),
    ("post", "/v1/rag/stream_log", "200", "text/event-stream"): (
        RUNNABLE_EVENTS,
        _sse(("data", {"ops": [{"op": "replace", "path": "", "value": {"final_output": None}}]}), ("end", None)),
    ),
    ("post", "/v1/rag/stream_events", "200", "text/event-stream"): (
        RUNNABLE_EVENTS,
        _sse(
            ("data", {"event": "on_chain_stream", "name": "rag", "data": {"chunk": {"answer": "25 days"}}}),
            ("end", None),
        ),
    ),
    ("get", "/v1/rag/input_schema", "200", "application/json"): (
        JSON_SCHEMA,
        {"title": "RagInput", "type": "object", "required": ["query"], "properties": {"query": {"type": "string"}}},
    ),
    ("get", "/v1/rag/output_schema", "200", "application/json"): (
        JSON_SCHEMA,
        {"title": "RagAnswer", "type": "object", "properties": {"answer": {"type": "string"}}},
    ),
    ("get", "/v1/rag/config_schema", "200", "application/json"): (
        JSON_SCHEMA,
        {"title": "rag_config", "type": "object", "properties": {}},
    ),
}
