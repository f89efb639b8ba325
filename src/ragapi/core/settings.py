"""Typed settings for the whole service, read from the environment, `.env` and `SECRETS_DIR`.

Every limit the API enforces lives here so that operators can see and change it in one place. The
settings are grouped by concern, one class per group, and `Settings` inherits every group:

    Settings(BaseSettings)
     ├── ServiceSettings            the process: bind address, keep-alive, shutdown, migrations, data dir
     ├── DatabaseSettings           PostgreSQL: embedded or DATABASE_URL, application role, pool
     ├── EmbeddingSettings          the embedding provider and model, threads, int8 products
     ├── QueryEmbeddingSettings     where and at what priority the API embeds questions
     ├── ChunkingSettings           chunk size and overlap
     ├── RetrievalSettings          top k, candidates, fusion, BM25, HNSW
     ├── VectorBackendSettings      pgvector or Pinecone for new knowledge bases
     ├── RerankingSettings          none, Cohere or a fastembed cross-encoder
     ├── GenerationSettings         OpenAI-compatible LLM, or extractive answers
     ├── AnswerCacheSettings        exact and semantic answer cache
     ├── ConversationSettings       multi-turn conversations: size, history the rewrite sees, retention
     ├── RedisSettings              shared state of the replicas (exact cache, rate-limit buckets)
     ├── AuthenticationSettings     JWTs, token lifetimes, passwords
 ├── SingleSignOnSettings       OpenID Connect sign-in: issuers, caches, clock skew, groups claim
     ├── RateLimitSettings          rate limits, monthly quotas, trusted proxies
     ├── QueryLogSettings           query log, analytics, prices
     ├── ObservabilitySettings      logs, metrics, readiness, Sentry
     ├── IngestionSettings          job broker, upload store, workers, leases, retries
     ├── UrlDocumentSettings        documents the server fetches by URL (SSRF rules)
     └── LimitsSettings             sizes and counts a request may carry

Each variable is the field's name in upper case (`max_query_chars` ← `MAX_QUERY_CHARS`); attribute access
is flat (`settings.max_query_chars`) whatever the group. `GROUPS` lists the groups in reading order: the
documentation's configuration reference is generated from it (docs/hooks/config_reference.py), so every
field carries a description. Settings are built lazily through `get_settings()` (never at import time) so
tests can override them.
"""

from __future__ import annotations

import ipaddress
import os
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Fusion(StrEnum):
    RRF = "rrf"
    CONVEX = "convex"


class VectorBackend(StrEnum):
    PGVECTOR = "pgvector"
    PINECONE = "pinecone"


class Reranker(StrEnum):
    AUTO = "auto"  # Cohere when COHERE_API_KEY is set, fastembed when RERANKER_MODEL is set, else none
    NONE = "none"
    COHERE = "cohere"
    FASTEMBED = "fastembed"


class JwtAlgorithm(StrEnum):
    HS256 = "HS256"
    HS384 = "HS384"
    HS512 = "HS512"


class LogFormat(StrEnum):
    AUTO = "auto"
    JSON = "json"
    TEXT = "text"


class EmbeddingProvider(StrEnum):
    ONNX = "onnx"
    FASTEMBED = "fastembed"
    OPENAI = "openai"
    COHERE = "cohere"


# List prices (USD per 1M tokens) as published by the providers in 2025; override with MODEL_PRICES.
DEFAULT_PRICES: dict[str, dict[str, float]] = {
    "gpt-4o": {"prompt": 2.50, "completion": 10.00},
    "gpt-4o-mini": {"prompt": 0.15, "completion": 0.60},
    "gpt-4.1": {"prompt": 2.00, "completion": 8.00},
    "gpt-4.1-mini": {"prompt": 0.40, "completion": 1.60},
    "text-embedding-3-small": {"embedding": 0.02},
    "text-embedding-3-large": {"embedding": 0.13},
    "embed-english-v3.0": {"embedding": 0.10},
}


def _check_networks(networks: list[str]) -> list[str]:
    for network in networks:
        ipaddress.ip_network(network, strict=False)  # raises ValueError on garbage
    return networks


class ServiceSettings(BaseModel):
    """The `ragapi serve` process: where it listens, how it keeps connections and shuts down, whether it
    migrates the database at start-up, and where it keeps local state."""

    model_config = ConfigDict(title="Service")

    host: str = Field(default="127.0.0.1", description="Bind address of `ragapi serve`")
    port: int = Field(default=8000, description="Port of `ragapi serve` (`--workers N` for N processes: one per core)")
    public_url: str | None = Field(
        default=None,
        description="The address clients reach the service at behind a proxy or load balancer (e.g. "
        "`https://rag.example.com`, a path prefix allowed): problem `type` links and the single sign-on "
        "redirect URI are built from it; unset: from the scheme and `Host` of each request",
    )
    keepalive_timeout_s: int = Field(
        default=75,
        ge=1,
        le=3600,
        description="Idle keep-alive, seconds; keep it above the load balancer's idle timeout, or clients race "
        "the server's close",
    )
    shutdown_timeout_s: float = Field(
        default=30.0,
        ge=0,
        le=3600,
        description="On SIGTERM the listening socket closes and in-flight requests and SSE streams get this long; "
        "a stream still open then ends with a terminal `error` event (503, `retry: 1000`); job-progress streams "
        "end at once. Keep it below the orchestrator's grace period",
    )
    migrate_on_start: bool = Field(
        default=True,
        description="Apply migrations at start-up; `false` where a migration job does it (start-up then fails, "
        "naming the revision it needs, while the schema is behind)",
    )
    data_dir: Path = Field(
        default=Path(".ragapi"),
        description="Local state: the embedded PostgreSQL (`DATA_DIR/pgdata`, kept across restarts), the "
        "generated JWT secret, uploads unless `UPLOAD_DIR` is set",
    )

    @property
    def pgdata_dir(self) -> Path:
        return self.data_dir / "pgdata"

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
            raise ValueError("must be an http:// or https:// URL without query or fragment")
        return value.rstrip("/")


class DatabaseSettings(BaseModel):
    """PostgreSQL: the embedded server by default, or an external one; the role tenant queries run as, and
    the connection pool."""

    model_config = ConfigDict(title="Database")

    database_url: SecretStr | None = Field(
        default=None,
        description="Owner connection (`postgresql://…`) of an external server with pgvector ≥ 0.8, used for "
        "migrations and the credential lookup; unset: embedded PostgreSQL under `DATA_DIR/pgdata`",
    )
    db_app_role: str = Field(
        default="ragapi_app",
        pattern=r"^[a-z_][a-z0-9_]{0,62}$",
        description="The role every tenant query runs as, under row-level security (created by the migration "
        "if missing)",
    )
    db_pool_size: int = Field(default=10, ge=1, le=200, description="Connections kept in the pool per process")
    db_max_overflow: int = Field(default=10, ge=0, le=200, description="Connections opened beyond the pool size")
    # A round-trip ping before every checkout costs three round trips with asyncpg (BEGIN, ping,
    # ROLLBACK); by default a checkout only checks locally that the server has not closed the socket.
    db_pool_pre_ping: bool = Field(
        default=False,
        description="`true`: a round-trip ping before every checkout (three round trips with asyncpg). By default "
        "a checkout only checks that the server has not closed the connection, which catches restarts, "
        "failovers and terminated backends without a round trip",
    )

    # The embedded server's memory (ragapi.core.pg_tuning); unset: derived from the machine's memory.
    pg_shared_buffers_mb: int | None = Field(
        default=None, ge=16, description="Embedded PostgreSQL `shared_buffers`; unset: a quarter of memory, ≤ 8 GiB"
    )
    pg_effective_cache_size_mb: int | None = Field(
        default=None, ge=16, description="Embedded PostgreSQL `effective_cache_size`; unset: half of memory"
    )
    pg_work_mem_mb: int | None = Field(
        default=None, ge=1, description="Embedded PostgreSQL `work_mem`; unset: memory / 512, 4 to 64 MiB"
    )
    pg_maintenance_work_mem_mb: int | None = Field(
        default=None,
        ge=16,
        description="Embedded PostgreSQL `maintenance_work_mem` (index builds, vacuum); unset: memory / 16, ≤ 2 GiB",
    )

    @field_validator("database_url")
    @classmethod
    def _postgres_only(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None and v.get_secret_value().split("://", 1)[0].split("+", 1)[0] not in ("postgresql", "postgres"):
            raise ValueError("DATABASE_URL must be a postgresql:// URL")
        return v


class EmbeddingSettings(BaseModel):
    """The embedding model for chunks and questions: provider, model, and how the bundled ONNX model runs.
    A knowledge base records the model it was indexed with; changing it needs `ragapi reembed`."""

    model_config = ConfigDict(title="Embeddings")

    embedding_provider: EmbeddingProvider = Field(
        default=EmbeddingProvider.ONNX,
        description="`onnx` (the bundled all-MiniLM-L6-v2 int8, offline), `fastembed` (the optional extra), "
        "`openai`, `cohere`",
    )
    embedding_model: str = Field(
        default="",
        description="Model name; empty picks the provider's default (all-MiniLM-L6-v2-int8 for onnx), e.g. "
        "`BAAI/bge-small-en-v1.5` (fastembed), `text-embedding-3-small` (openai), `embed-english-v3.0` (cohere)",
    )
    embedding_model_path: Path | None = Field(
        default=None, description="Local model folder for fastembed (air-gapped installs)"
    )
    embedding_threads: int = Field(
        default=0,
        ge=0,
        le=64,
        description="ONNX intra-op threads per process; 0: all cores. With one `ragapi serve` worker per core use 1",
    )
    embedding_batch_size: int = Field(
        default=32,
        ge=1,
        le=512,
        description="With float32 products: texts per inference batch (length-sorted, at most 2,048 padded "
        "tokens); with int8 products every text runs alone; fastembed's batch size",
    )
    embedding_int8_matmul: bool = Field(
        default=True,
        description="The bundled model multiplies its int8 weights in int8 (a fraction of the CPU per query, a "
        "little retrieval quality: docs/benchmarks.md); `false`: exact float32 products. Both kinds of vector share an "
        "index, no re-embedding",
    )


class QueryEmbeddingSettings(BaseModel):
    """Where the API embeds questions with the bundled model (on the event loop or on query threads) and
    at what CPU priority, so that queries win contested cores over ingestion."""

    model_config = ConfigDict(title="Query embedding")

    query_embedding_inline_ms: float = Field(
        default=3.0,
        ge=0,
        le=50,
        description="Questions the bundled int8 model embeds within this many milliseconds on this host (timed "
        "per worker at warm-up; the metric `rag_query_embedding_inline_tokens` shows the length) are embedded "
        "on the event loop, which costs less than a trip to a thread under load; longer ones, and all with "
        "float32 products, on query threads; 0: none inline",
    )
    query_embedding_inline_tokens: int | None = Field(
        default=None,
        ge=0,
        le=256,
        description="A fixed length in word pieces instead of the timed `QUERY_EMBEDDING_INLINE_MS`; 0: every "
        "question goes to a query thread",
    )
    query_embedding_nice: int = Field(
        default=5,
        ge=0,
        le=19,
        description="CPU priority (Linux nice) of the API's threaded query embedding, below the event loops and "
        "PostgreSQL that every request waits for; keep it below `INGEST_NICE`; 0: same priority",
    )
    query_embedding_concurrency: int = Field(
        default=2,
        ge=1,
        le=64,
        description="Threaded query embeddings one API worker computes at once (one thread each); more wait "
        "for a free one",
    )


class ChunkingSettings(BaseModel):
    """How extracted text is cut into chunks: token-aware, in word pieces of the embedding tokenizer."""

    model_config = ConfigDict(title="Chunking")

    chunk_size_tokens: int = Field(
        default=200, ge=16, le=4096, description="Word pieces per chunk (the bundled model reads at most 256)"
    )
    chunk_overlap_tokens: int = Field(
        default=40, ge=0, le=1024, description="Word pieces shared by neighbouring chunks; below the chunk size"
    )

    @model_validator(mode="after")
    def _overlap_below_size(self) -> ChunkingSettings:
        if self.chunk_overlap_tokens >= self.chunk_size_tokens:
            raise ValueError("CHUNK_OVERLAP_TOKENS must be smaller than CHUNK_SIZE_TOKENS")
        return self


class RetrievalSettings(BaseModel):
    """Hybrid retrieval: how many sources an answer gets, how many candidates each side (dense, BM25)
    finds, and how they are fused."""

    model_config = ConfigDict(title="Retrieval")

    default_top_k: int = Field(default=5, ge=1, description="Sources per answer when the request names none")
    max_top_k: int = Field(default=50, ge=1, le=1000, description="Largest `top_k` a request may ask for")
    retrieval_candidates: int = Field(
        default=100, ge=1, le=2000, description="Candidates per side (dense, BM25) before fusion"
    )
    fusion: Fusion = Field(
        default=Fusion.CONVEX,
        description="`convex` (weighted min-max normalised scores) or `rrf` (reciprocal rank fusion)",
    )
    fusion_dense_weight: float = Field(default=0.4, ge=0.0, le=1.0, description="Dense weight in convex fusion")
    rrf_k: int = Field(default=60, ge=1, description="Reciprocal-rank-fusion constant")
    bm25_k1: float = Field(default=1.2, gt=0, description="BM25 term-frequency saturation")
    bm25_b: float = Field(default=0.75, ge=0, le=1, description="BM25 length normalisation")
    hnsw_ef_search: int = Field(
        default=100, ge=10, le=1000, description="HNSW search breadth (iterative scans extend it under filters)"
    )
    bm25_candidate_budget: int = Field(
        default=20_000,
        ge=0,
        le=1_000_000,
        description="BM25 scores exactly the chunks holding a query's rarest terms, adding terms rarest first while "
        "their chunks number at most this; `0`: every chunk of the knowledge base (an exact scan)",
    )


class VectorBackendSettings(BaseModel):
    """Where new knowledge bases keep their chunk vectors; existing ones move with `ragapi vectors
    migrate`. PostgreSQL stays the record of everything else."""

    model_config = ConfigDict(title="Vector backend")

    vector_backend: VectorBackend = Field(
        default=VectorBackend.PGVECTOR, description="`pgvector` or `pinecone`, for new knowledge bases"
    )
    pinecone_api_key: SecretStr | None = Field(default=None, description="Pinecone API key")
    pinecone_index_host: str | None = Field(
        default=None, description="Data-plane host URL of the dense index (cosine, the embedding's dimension)"
    )
    pinecone_sparse_index_host: str | None = Field(
        default=None, description="Data-plane host URL of the sparse index (dotproduct)"
    )
    pinecone_batch_size: int = Field(default=100, ge=1, le=1000, description="Vectors per upsert request")
    pinecone_max_retries: int = Field(
        default=5, ge=0, le=20, description="Retries on 429 and 5xx, with exponential backoff and jitter"
    )


class RerankingSettings(BaseModel):
    """Reranking of the fused candidates: none offline, Cohere Rerank, or a fastembed cross-encoder."""

    model_config = ConfigDict(title="Reranking")

    reranker: Reranker = Field(
        default=Reranker.AUTO,
        description="`auto` (Cohere if `COHERE_API_KEY` is set, fastembed if `RERANKER_MODEL` is, else none), "
        "`none`, `cohere`, `fastembed`",
    )
    reranker_model: str = Field(
        default="", description="fastembed cross-encoder name, e.g. `Xenova/ms-marco-MiniLM-L-6-v2`"
    )
    rerank_candidates: int = Field(default=30, ge=1, le=1000, description="Fused candidates handed to the reranker")
    cohere_api_key: SecretStr | None = Field(default=None, description="Cohere API key (rerank and embeddings)")
    cohere_base_url: str | None = Field(default=None, description="Cohere API base URL; unset: Cohere's own")
    cohere_rerank_model: str = Field(default="rerank-v3.5", description="Cohere Rerank model")

    @property
    def effective_reranker(self) -> Reranker:
        if self.reranker is not Reranker.AUTO:
            return self.reranker
        if self.cohere_api_key is not None:
            return Reranker.COHERE
        if self.reranker_model:
            return Reranker.FASTEMBED
        return Reranker.NONE


class GenerationSettings(BaseModel):
    """Answer generation: an OpenAI-compatible chat model when a key is set, else extractive answers that
    quote the sources."""

    model_config = ConfigDict(title="Generation")

    openai_api_key: SecretStr | None = Field(default=None, description="OpenAI key; unset: extractive answers (no LLM)")
    openai_base_url: str | None = Field(default=None, description="Any OpenAI-compatible server; unset: OpenAI's own")
    openai_model: str = Field(default="gpt-4o", description="Chat model")
    llm_temperature: float = Field(default=0.0, ge=0.0, le=2.0, description="Sampling temperature")
    llm_max_tokens: int = Field(default=800, ge=1, le=32000, description="Longest answer, tokens")
    llm_timeout_s: float = Field(default=60.0, gt=0, description="Per LLM request, seconds")
    condense_with_llm: bool = Field(
        default=True,
        description="A conversation's follow-up questions are made standalone for retrieval by the chat model "
        "when OPENAI_API_KEY is set; false: by the offline rewrite, which adds no latency",
    )
    condense_timeout_s: float = Field(
        default=5.0,
        gt=0,
        le=60,
        description="Longest wait for the chat model to make a follow-up standalone, seconds (no retries); "
        "then the offline rewrite does",
    )
    condense_max_tokens: int = Field(
        default=64,
        ge=16,
        le=1000,
        description="Longest standalone question the chat model may write, tokens; a reply cut off there is not used",
    )
    extractive_sentences: int = Field(
        default=3, ge=1, le=20, description="Most sentences an extractive answer quotes (no LLM configured)"
    )
    extractive_margin: float = Field(
        default=0.05,
        ge=0.0,
        le=1.0,
        description="An extractive answer quotes the sentences whose score (similarity to the question and "
        "share of its terms, 0-1) is within this of the best one's; 0: the best sentence alone",
    )
    extractive_candidates: int = Field(
        default=16,
        ge=1,
        le=500,
        description="Sentences of the sources an extractive answer embeds to compare with the question, those "
        "sharing most of its terms: a bound on the CPU each answer costs",
    )


class AnswerCacheSettings(BaseModel):
    """The answer cache: exact (normalised question) and semantic (paraphrases), per tenant and
    knowledge-base version, so no cached answer outlives a document it cites."""

    model_config = ConfigDict(title="Answer cache")

    cache_enabled: bool = Field(
        default=True, description="Global switch (each tenant also has its own, `tenants.cache_enabled`)"
    )
    cache_ttl_s: int = Field(default=86_400, ge=1, description="Lifetime of cached answers (exact and semantic), s")
    cache_max_entries: int = Field(
        default=10_000, ge=1, description="Size of the in-process exact cache (LRU), used without `REDIS_URL`"
    )
    semantic_cache_enabled: bool = Field(default=True, description="Match paraphrased questions")
    semantic_cache_threshold: float = Field(
        default=0.95,
        ge=0.8,
        le=1.0,
        description="Least cosine similarity of a semantic hit; a tenant may raise it "
        "(`tenants.semantic_cache_threshold`), no request can lower it",
    )


class ConversationSettings(BaseModel):
    """Conversations (`/v1/conversations`, LangServe's `chat_history`, `ragapi chat`): how many messages
    one holds, how much of it a follow-up's rewrite into a standalone question sees, and how long an
    untouched one is kept."""

    model_config = ConfigDict(title="Conversations")

    conversation_max_messages: int = Field(
        default=100,
        ge=2,
        le=10_000,
        description="Messages (questions and answers) one conversation holds: a question that would not fit "
        "with its answer is refused with 409 (start a new conversation); also the most messages a LangServe "
        "`chat_history` may carry",
    )
    conversation_history_turns: int = Field(
        default=5,
        ge=0,
        le=100,
        description="Earlier questions (the newest ones) the rewrite of a follow-up into a standalone question "
        "for retrieval sees; 0: every question is searched as asked",
    )
    conversation_retention_days: int = Field(
        default=90,
        ge=1,
        le=3650,
        description="Conversations untouched (no message, no change) this long are deleted with their messages, "
        "hourly; the query log keeps its own retention",
    )


class RedisSettings(BaseModel):
    """Redis, optional: the exact answer cache and the rate-limit buckets shared by every API replica.
    Without it both live in each process; when it fails, requests are still answered."""

    model_config = ConfigDict(title="Redis")

    redis_url: SecretStr | None = Field(
        default=None,
        description="Exact answer cache and rate-limit buckets in Redis, shared by every replica; unset: in-process",
    )
    redis_timeout_s: float = Field(
        default=0.25,
        gt=0,
        le=10,
        description="Per Redis operation, seconds; after a failure Redis is skipped for 5 s",
    )


class AuthenticationSettings(BaseModel):
    """Users' sign-in: JWT signing and checks, token lifetimes, the password policy and password resets."""

    model_config = ConfigDict(title="Authentication")

    jwt_secret: SecretStr | None = Field(
        default=None,
        description="JWT signing key, at least 32 characters. Unset: generated once into `DATA_DIR/jwt_secret` "
        "(0600), embedded mode only; required with `DATABASE_URL` so every replica verifies every token",
    )
    secrets_key: SecretStr | None = Field(
        default=None,
        description="Key that seals secrets stored for tenants (an identity provider's client secret), at least 32 "
        "characters. Unset: derived from the JWT signing key. Changing it makes the stored secrets unreadable: "
        "their admins set them again",
    )
    jwt_algorithm: JwtAlgorithm = Field(default=JwtAlgorithm.HS256, description="HMAC algorithm of every token")
    jwt_issuer: str = Field(default="ragapi", min_length=1, description="`iss` claim, set and required")
    jwt_audience: str = Field(default="ragapi", min_length=1, description="`aud` claim, set and required")
    jwt_leeway_s: int = Field(
        default=10, ge=0, le=30, description="Clock skew tolerated on `exp`, `nbf` and `iat`, seconds"
    )
    access_token_ttl_s: int = Field(default=900, ge=30, le=86_400, description="Access token lifetime, seconds")
    refresh_token_ttl_s: int = Field(
        default=14 * 86_400,
        ge=300,
        le=365 * 86_400,
        description="Refresh token lifetime, seconds (rotated on every use)",
    )
    password_reset_ttl_s: int = Field(
        default=3600, ge=60, le=7 * 86_400, description="Password-reset token lifetime, seconds"
    )
    password_min_length: int = Field(
        default=12, ge=8, le=128, description="Shortest password accepted (at most 256 characters; Argon2id hashes)"
    )
    session_cookie_secure: bool | None = Field(
        default=None,
        description="The console's session cookies carry `Secure`; unset: always, except over plain http to a "
        "loopback address (`make run`)",
    )
    password_reset_webhook_url: str | None = Field(
        default=None,
        description="Receives `POST {email, token, expires_at}` on forgot-password (your mailer); unset: "
        "nothing is sent",
    )
    playground_session_s: int = Field(
        default=8 * 3600,
        ge=60,
        le=7 * 86_400,
        description="How long the LangServe playground's sign-in lasts (its HttpOnly cookie's Max-Age), seconds",
    )

    @field_validator("jwt_secret", "secrets_key")
    @classmethod
    def _strong_secret(cls, v: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if v is not None and len(v.get_secret_value()) < 32:
            raise ValueError(f"{(info.field_name or '').upper()} must be at least 32 characters")
        return v


class SingleSignOnSettings(BaseModel):
    """Sign-in through a tenant's OpenID Connect identity provider (authorization code flow with PKCE): what
    an issuer may be, how long the provider's metadata and keys are kept, how long a sign-in may take, the
    clock skew tolerated on ID tokens, and the bounds of the groups claim."""

    model_config = ConfigDict(title="Single sign-on (OpenID Connect)")

    oidc_allow_http_loopback: bool = Field(
        default=False,
        description="Accept an `http://` issuer on a loopback address (127.0.0.0/8, ::1, localhost), and "
        "connect to loopback, for development and tests; otherwise every issuer and endpoint must be `https://` "
        "at a public address",
    )
    oidc_allowed_networks: list[str] = Field(
        default_factory=list,
        description="JSON list of CIDRs an identity provider may be at although not public (an intranet "
        "Keycloak); everything else non-public is refused, as for URL documents",
    )
    oidc_redirect_base_url: str | None = Field(
        default=None,
        description="Public base URL of the API (e.g. `https://rag.example.com`) for the redirect URI "
        "registered at the provider, `<base>/v1/auth/oidc/<tenant id>/callback`; unset: `PUBLIC_URL`, else the "
        "request's own",
    )
    oidc_http_timeout_s: float = Field(
        default=10.0, gt=0, le=120, description="Per request to an identity provider (discovery, keys, token)"
    )
    oidc_max_response_bytes: int = Field(
        default=1024 * 1024, ge=4096, description="Largest discovery document, key set or token response, bytes"
    )
    oidc_metadata_ttl_s: int = Field(
        default=3600,
        ge=0,
        le=86_400,
        description="How long a provider's discovery document and keys are kept, seconds; an ID token signed "
        "with an unknown key fetches the keys again at once (key rotation)",
    )
    oidc_state_ttl_s: int = Field(
        default=600, ge=30, le=3600, description="Time from starting a sign-in to its callback, seconds"
    )
    oidc_leeway_s: int = Field(
        default=60, ge=0, le=300, description="Clock skew tolerated on an ID token's `exp` and `iat`, seconds"
    )
    oidc_max_groups: int = Field(
        default=200, ge=1, le=10_000, description="Names the groups claim may carry; more refuses the sign-in"
    )
    oidc_max_group_chars: int = Field(default=200, ge=1, le=1000, description="Longest group name, characters")
    oidc_max_allowed_domains: int = Field(
        default=100, ge=1, le=10_000, description="E-mail domains an identity provider's settings may list"
    )

    @field_validator("oidc_allowed_networks")
    @classmethod
    def _valid_oidc_networks(cls, v: list[str]) -> list[str]:
        return _check_networks(v)


class RateLimitSettings(BaseModel):
    """Rate limits (token buckets per tenant, principal, client address and account), the proxies whose
    client address is believed, and the monthly quotas of tenants whose plan sets none."""

    model_config = ConfigDict(title="Rate limits and quotas")

    rate_limits_enabled: bool = Field(default=True, description="Global switch")
    tenant_rate_limit_per_minute: int = Field(
        default=600, ge=1, description="Requests per tenant, all callers, unless its plan says otherwise"
    )
    principal_rate_limit_per_minute: int = Field(
        default=120, ge=1, description="Requests per API key or user, unless the key has its own limit"
    )
    ip_rate_limit_per_minute: int = Field(
        default=10,
        ge=1,
        description="Per client address on the routes without credentials (login, register, refresh, forgot "
        "and reset password)",
    )
    login_rate_limit_per_minute: int = Field(
        default=10, ge=1, description="Sign-in attempts per account, from any address"
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="JSON list of CIDRs whose `X-Forwarded-For` (and `-Proto`) is believed, e.g. "
        '`["10.0.0.0/8"]`; empty: none, loopback included',
    )
    monthly_query_quota: int | None = Field(
        default=None, ge=0, description="Queries per tenant and month when its plan sets none; unset: unlimited"
    )
    monthly_ingest_bytes_quota: int | None = Field(
        default=None,
        ge=0,
        description="Ingested bytes per tenant and month when its plan sets none; unset: unlimited",
    )

    @field_validator("trusted_proxies")
    @classmethod
    def _valid_proxies(cls, v: list[str]) -> list[str]:
        return _check_networks(v)


class QueryLogSettings(BaseModel):
    """The query log (every answered question, written in batches off the request path), its retention,
    and what analytics count as poorly answered and what tokens cost."""

    model_config = ConfigDict(title="Query log and analytics")

    query_log_enabled: bool = Field(default=True, description="Record every query")
    query_log_store_text: bool = Field(
        default=True,
        description="Keep the question's text (top queries, feedback export); `false` stores none",
    )
    query_log_retention_days: int = Field(
        default=90, ge=1, le=3650, description="Rows older than this are deleted hourly unless they carry feedback"
    )
    query_log_queue_max: int = Field(
        default=10_000,
        ge=100,
        description="Records waiting to be written before new ones are dropped (`rag_query_log_dropped_total`)",
    )
    analytics_low_score: float = Field(
        default=0.5, ge=0.0, le=1.0, description="Fused top score under which a query counts as poorly answered"
    )
    model_prices: dict[str, dict[str, float]] = Field(
        default_factory=lambda: dict(DEFAULT_PRICES),
        description="JSON, USD per 1M tokens by model: `{prompt, completion}` for LLMs, `{embedding}` for "
        "embedders (OpenAI and Cohere list prices by default); unknown models cost 0",
    )


class ObservabilitySettings(BaseModel):
    """Logs, Prometheus metrics, the readiness probe and Sentry. Tracing uses OpenTelemetry's own `OTEL_*`
    variables."""

    model_config = ConfigDict(title="Observability")

    log_level: str = Field(default="INFO", description="Level of the service's and uvicorn's logs")
    log_format: LogFormat = Field(
        default=LogFormat.AUTO,
        description="`json` lines or `text` (both redacted); `auto`: text when stderr is a terminal, else JSON",
    )
    metrics_tenant_labels: int = Field(
        default=20,
        ge=0,
        le=1000,
        description="Tenants with their own `tenant` label per process (the first seen; others `other`); 0: "
        "none. Only with `METRICS_BEARER_TOKEN`: an open `/metrics` labels every tenant `all`",
    )
    metrics_bearer_token: SecretStr | None = Field(
        default=None, description="When set, `/metrics` answers only `Authorization: Bearer <token>`"
    )
    metrics_queue_poll_s: float = Field(
        default=15.0,
        gt=0,
        description="How often the API measures the ingestion queue and returns files whose lease ran out to "
        "work (one replica at a time), seconds",
    )
    worker_metrics_port: int | None = Field(
        default=None, ge=1, le=65535, description="`ragapi worker` serves `/metrics` on this port; unset: off"
    )
    readiness_timeout_s: float = Field(
        default=2.0, gt=0, le=30, description="Per dependency check in `/readyz`, seconds"
    )
    sentry_dsn: SecretStr | None = Field(default=None, description="Sentry (or compatible) DSN; unset: off")
    sentry_environment: str = Field(default="production", description="Sentry environment tag")
    sentry_traces_sample_rate: float = Field(
        default=0.0, ge=0.0, le=1.0, description="Share of requests traced to Sentry (errors are always sent)"
    )

    @property
    def tenant_metric_labels(self) -> int:
        """METRICS_TENANT_LABELS where /metrics is closed: an open one would tell anyone who can reach it
        which tenants exist and what each of them spends."""
        return self.metrics_tenant_labels if self.metrics_bearer_token is not None else 0


class IngestionSettings(BaseModel):
    """Ingestion jobs: the broker that carries them (or the in-process worker), where uploads wait, and
    how workers claim, retry and give up on files."""

    model_config = ConfigDict(title="Ingestion jobs")

    celery_broker_url: SecretStr | None = Field(
        default=None,
        description="RabbitMQ (`amqp://…`) for Celery workers (`ragapi worker`); unset: the in-process worker of "
        "`ragapi serve`. Job state stays in PostgreSQL, so no result backend is needed",
    )
    upload_dir: Path | None = Field(
        default=None,
        description="Where uploads wait for a worker (a shared volume when workers run elsewhere); unset: "
        "`DATA_DIR/uploads`",
    )
    upload_s3_bucket: str | None = Field(
        default=None,
        description="Keep uploads in this S3-compatible bucket instead (AWS credentials from the environment)",
    )
    upload_s3_prefix: str = Field(default="uploads/", description="Key prefix inside the bucket")
    upload_s3_endpoint_url: str | None = Field(default=None, description="e.g. `http://minio:9000`; unset: AWS S3")
    upload_s3_region: str | None = Field(default=None, description="Region of the bucket")
    ingest_worker_enabled: bool = Field(
        default=True,
        description="Run the in-process worker in `ragapi serve` when no broker is set (`false`: another "
        "process indexes)",
    )
    ingest_nice: int = Field(
        default=10,
        ge=0,
        le=19,
        description="CPU priority (Linux nice) of ingestion's local-model embedding, so queries win contested "
        "cores; 0: same priority",
    )
    ingest_task_files: int = Field(
        default=16,
        ge=1,
        le=1000,
        description="Files a worker claims at once (one Celery task, one embedding batch, one transaction)",
    )
    ingest_lease_s: float = Field(
        default=60.0,
        gt=0,
        description="A claimed file returns to the queue this long after its worker stopped extending the lease",
    )
    ingest_max_attempts: int = Field(default=5, ge=1, description="Tries per file before it fails for good")
    ingest_retry_base_s: float = Field(
        default=2.0, gt=0, description="First retry delay of a file, seconds; doubles each time"
    )
    ingest_task_retry_max_s: float = Field(
        default=60.0,
        gt=0,
        le=3600,
        description="Longest delay before a Celery ingestion task that failed unexpectedly runs again "
        "(`INGEST_RETRY_BASE_S`, doubling per retry, up to this)",
    )
    ingest_poll_s: float = Field(
        default=1.0, gt=0, description="Idle worker polling and job `events` interval, seconds"
    )
    ingest_wait_max_s: float = Field(
        default=300.0, gt=0, description="Longest a `POST /v1/ingest?wait=true` waits, seconds"
    )


class UrlDocumentSettings(BaseModel):
    """Documents the server fetches by URL: http and https only, public addresses only (checked again on
    every redirect), unless a network is allowed here."""

    model_config = ConfigDict(title="URL documents")

    url_fetch_timeout_s: float = Field(
        default=20.0, gt=0, le=300, description="Whole fetch of a URL document, redirects included (at most 5)"
    )
    url_fetch_allowed_networks: list[str] = Field(
        default_factory=list,
        description="JSON list of CIDRs URL documents may come from although not public (an intranet); "
        "everything else non-public is refused",
    )

    @field_validator("url_fetch_allowed_networks")
    @classmethod
    def _valid_networks(cls, v: list[str]) -> list[str]:
        return _check_networks(v)


class LimitsSettings(BaseModel):
    """Sizes and counts a request may carry. Bodies over their limit are refused before they are read;
    other excesses are a 422 naming the limit."""

    model_config = ConfigDict(title="Request limits")

    max_upload_bytes: int = Field(
        default=25 * 1024 * 1024,
        ge=1024,
        description="Whole body of an ingest request, bytes (25 MiB), and a plan's default per-document limit",
    )
    max_json_body_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        description="Whole body of every other request (JSON or form), bytes (1 MiB)",
    )
    max_files_per_request: int = Field(default=20, ge=1, description="Multipart files per ingest request")
    max_documents_per_request: int = Field(default=100, ge=1, description="JSON documents per ingest request")
    max_document_chars: int = Field(default=2_000_000, ge=1, description="Extracted text per document, characters")
    max_query_chars: int = Field(default=2000, ge=1, description="Length of a question, characters")
    mcp_document_max_chars: int = Field(
        default=50_000,
        ge=1,
        le=2_000_000,
        description="Text the MCP tool get_document returns of one document, characters; a longer one is cut "
        "there and says so (truncated)",
    )
    max_batch_inputs: int = Field(
        default=20,
        ge=1,
        le=1000,
        description="Inputs of one LangServe `/v1/rag/batch` request (each rate-limited and charged as a query)",
    )
    max_metadata_bytes: int = Field(
        default=16 * 1024, ge=64, le=1024 * 1024, description="A document's metadata as JSON (UTF-8), bytes"
    )
    max_metadata_keys: int = Field(default=64, ge=1, le=10_000, description="Top-level keys of a document's metadata")
    max_pdf_pages: int = Field(default=2000, ge=1, description="Pages extracted from one PDF")
    max_archive_bytes: int = Field(
        default=100 * 1024 * 1024,
        ge=1024,
        description="Uncompressed size of a DOCX (zip) archive, bytes; a larger one is refused before inflating",
    )
    max_archive_ratio: int = Field(
        default=100, ge=2, description="Compression ratio of a DOCX part beyond which it is a zip bomb"
    )
    page_size_max: int = Field(default=100, ge=1, description="Items per page of a list (documents, jobs)")
    max_knowledge_bases: int = Field(
        default=100, ge=1, le=100_000, description="Knowledge bases of one tenant (its default included)"
    )
    max_access_entries: int = Field(
        default=1000,
        ge=1,
        le=100_000,
        description="Users, groups and API keys one document's access list names, together; also the members "
        "one request adds to or removes from a group",
    )
    max_delegated_groups: int = Field(
        default=200,
        ge=0,
        le=10_000,
        description="Groups a delegating key may name for its end user on one request (X-On-Behalf-Of-Groups)",
    )
    user_external_id_max_chars: int = Field(
        default=255,
        ge=1,
        le=1000,
        description="A user's external id (the id a client app or the identity provider knows the user by, "
        "which X-On-Behalf-Of may name), characters; an ID token's longer `sub` is not kept as one",
    )


class Settings(
    BaseSettings,
    ServiceSettings,
    DatabaseSettings,
    EmbeddingSettings,
    QueryEmbeddingSettings,
    ChunkingSettings,
    RetrievalSettings,
    VectorBackendSettings,
    RerankingSettings,
    GenerationSettings,
    AnswerCacheSettings,
    ConversationSettings,
    RedisSettings,
    AuthenticationSettings,
    SingleSignOnSettings,
    RateLimitSettings,
    QueryLogSettings,
    ObservabilitySettings,
    IngestionSettings,
    UrlDocumentSettings,
    LimitsSettings,
):
    """Every group's settings, read from the environment (one variable per field, no prefix), `.env`,
    and files in `SECRETS_DIR`."""

    model_config = SettingsConfigDict(
        title="Settings",  # not the title of the last group it inherits
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        env_ignore_empty=True,  # `KEY=` in a compose .env or a manifest means unset, not an empty secret
    )

    @property
    def uploads_dir(self) -> Path:
        return self.upload_dir or self.data_dir / "uploads"


GROUPS: tuple[type[BaseModel], ...] = tuple(base for base in Settings.__bases__ if base is not BaseSettings)
"""The setting groups in reading order, for the documentation's configuration reference."""


@lru_cache
def get_settings() -> Settings:
    """Settings from the environment, `.env`, and files in SECRETS_DIR (e.g. mounted Kubernetes Secrets)."""
    secrets_dir = os.environ.get("SECRETS_DIR")
    return Settings(_secrets_dir=secrets_dir)  # type: ignore[call-arg]
