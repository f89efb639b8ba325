"""Typed settings for the whole service, read from the environment and `.env`.

Every limit the API enforces lives here so that operators can see and change it in one place.
Settings are built lazily through `get_settings()` (never at import time) so tests can override them.
"""

from __future__ import annotations

import ipaddress
import os
from enum import StrEnum
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
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
    JSON = "json"
    TEXT = "text"


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


class EmbeddingProvider(StrEnum):
    ONNX = "onnx"
    FASTEMBED = "fastembed"
    OPENAI = "openai"
    COHERE = "cohere"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        env_ignore_empty=True,  # `KEY=` in a compose .env or a manifest means unset, not an empty secret
    )

    # --- service ---
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "INFO"
    keepalive_timeout_s: int = Field(
        default=75, ge=1, le=3600, description="Idle keep-alive; keep it above your load balancer's idle timeout"
    )
    shutdown_timeout_s: float = Field(
        default=30.0,
        ge=0,
        le=3600,
        description="On SIGTERM, in-flight requests and SSE streams get this long; a stream still open then "
        "ends with a terminal `error` event (503). Keep it below the orchestrator's grace period",
    )
    migrate_on_start: bool = Field(
        default=True,
        description="Apply migrations at start-up; false where a migration job does it (start fails while "
        "the schema is behind)",
    )
    data_dir: Path = Field(default=Path(".ragapi"), description="Embedded PostgreSQL data and other local state")

    # --- database ---
    database_url: SecretStr | None = Field(
        default=None,
        description="Owner connection (postgresql://...). Unset: embedded PostgreSQL under DATA_DIR/pgdata.",
    )
    db_app_role: str = Field(default="ragapi_app", pattern=r"^[a-z_][a-z0-9_]{0,62}$")
    db_pool_size: int = Field(default=10, ge=1, le=200)
    db_max_overflow: int = Field(default=10, ge=0, le=200)
    # A round-trip ping before every checkout costs three round trips with asyncpg (BEGIN, ping,
    # ROLLBACK); by default a checkout only checks locally that the server has not closed the socket.
    db_pool_pre_ping: bool = False

    # --- embeddings ---
    embedding_provider: EmbeddingProvider = EmbeddingProvider.ONNX
    embedding_model: str = Field(
        default="",
        description="Model name; empty picks the provider default (all-MiniLM-L6-v2-int8 for onnx)",
    )
    embedding_model_path: Path | None = Field(default=None, description="Local model dir (fastembed, air-gapped)")
    embedding_threads: int = Field(default=0, ge=0, le=64, description="ONNX intra-op threads; 0 = all cores")
    embedding_batch_size: int = Field(default=32, ge=1, le=512)
    embedding_int8_matmul: bool = Field(
        default=True,
        description="Bundled model: multiply its int8 weights in int8 (about 3x less CPU per query, "
        "-0.0025 nDCG@10 on SciFact); false: exact float32 products",
    )

    # --- chunking ---
    chunk_size_tokens: int = Field(default=200, ge=16, le=4096)
    chunk_overlap_tokens: int = Field(default=40, ge=0, le=1024)

    # --- retrieval ---
    default_top_k: int = Field(default=5, ge=1)
    max_top_k: int = Field(default=50, ge=1, le=1000)
    retrieval_candidates: int = Field(default=100, ge=1, le=2000, description="Candidates per side before fusion")
    fusion: Fusion = Fusion.CONVEX
    fusion_dense_weight: float = Field(default=0.4, ge=0.0, le=1.0, description="Dense weight in convex fusion")
    rrf_k: int = Field(default=60, ge=1)
    bm25_k1: float = Field(default=1.2, gt=0)
    bm25_b: float = Field(default=0.75, ge=0, le=1)
    hnsw_ef_search: int = Field(default=100, ge=10, le=1000)

    # --- vector backend (new knowledge bases; existing ones move with `ragapi vectors migrate`) ---
    vector_backend: VectorBackend = VectorBackend.PGVECTOR
    pinecone_api_key: SecretStr | None = None
    pinecone_index_host: str | None = Field(default=None, description="Dense index (cosine) data-plane host URL")
    pinecone_sparse_index_host: str | None = Field(default=None, description="Sparse index (dotproduct) host URL")
    pinecone_batch_size: int = Field(default=100, ge=1, le=1000, description="Vectors per upsert request")
    pinecone_max_retries: int = Field(default=5, ge=0, le=20, description="Retries on 429 and 5xx, with backoff")

    # --- reranking ---
    reranker: Reranker = Reranker.AUTO
    reranker_model: str = Field(
        default="", description="fastembed cross-encoder name, e.g. Xenova/ms-marco-MiniLM-L-6-v2"
    )
    rerank_candidates: int = Field(default=30, ge=1, le=1000)
    cohere_api_key: SecretStr | None = None
    cohere_base_url: str | None = None
    cohere_rerank_model: str = "rerank-v3.5"

    # --- generation ---
    openai_api_key: SecretStr | None = None
    openai_base_url: str | None = None
    openai_model: str = "gpt-4o"
    llm_temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    llm_max_tokens: int = Field(default=800, ge=1, le=32000)
    llm_timeout_s: float = Field(default=60.0, gt=0)
    extractive_sentences: int = Field(default=3, ge=1, le=20)

    # --- answer cache ---
    redis_url: SecretStr | None = Field(default=None, description="Exact cache in Redis; unset: in-process LRU")
    redis_timeout_s: float = Field(default=0.25, gt=0, le=10, description="Per-operation Redis timeout")
    cache_enabled: bool = Field(default=True, description="Global switch; tenants can also be switched off")
    cache_ttl_s: int = Field(default=86_400, ge=1)
    cache_max_entries: int = Field(default=10_000, ge=1, description="In-process exact cache size (LRU)")
    semantic_cache_enabled: bool = True
    semantic_cache_threshold: float = Field(
        default=0.95, ge=0.8, le=1.0, description="Cosine similarity for a semantic hit (tenants may raise it)"
    )

    # --- authentication ---
    jwt_secret: SecretStr | None = Field(
        default=None,
        description="JWT signing key (32+ chars). Unset: generated once into DATA_DIR/jwt_secret (embedded mode only)",
    )
    jwt_algorithm: JwtAlgorithm = JwtAlgorithm.HS256
    jwt_issuer: str = Field(default="ragapi", min_length=1)
    jwt_audience: str = Field(default="ragapi", min_length=1)
    jwt_leeway_s: int = Field(default=10, ge=0, le=30, description="Clock skew tolerated on exp/nbf/iat")
    access_token_ttl_s: int = Field(default=900, ge=30, le=86_400)
    refresh_token_ttl_s: int = Field(default=14 * 86_400, ge=300, le=365 * 86_400)
    password_reset_ttl_s: int = Field(default=3600, ge=60, le=7 * 86_400)
    password_min_length: int = Field(default=12, ge=8, le=128)
    password_reset_webhook_url: str | None = Field(
        default=None, description="POSTed {email, token, expires_at} on forgot-password (your mailer)"
    )

    # --- rate limits and quotas (a tenant's plan overrides the tenant-level defaults) ---
    rate_limits_enabled: bool = True
    tenant_rate_limit_per_minute: int = Field(default=600, ge=1, description="Requests per tenant, all callers")
    principal_rate_limit_per_minute: int = Field(default=120, ge=1, description="Requests per API key or user")
    ip_rate_limit_per_minute: int = Field(
        default=10, ge=1, description="Unauthenticated auth routes (login, register, refresh, reset) per client IP"
    )
    login_rate_limit_per_minute: int = Field(default=10, ge=1, description="Login attempts per account")
    trusted_proxies: list[str] = Field(
        default_factory=list, description="CIDRs whose X-Forwarded-For is believed, e.g. 10.0.0.0/8"
    )
    monthly_query_quota: int | None = Field(default=None, ge=0, description="Per tenant; unset = unlimited")
    monthly_ingest_bytes_quota: int | None = Field(default=None, ge=0, description="Per tenant; unset = unlimited")

    # --- query log, analytics, logging ---
    log_format: LogFormat = LogFormat.JSON
    query_log_enabled: bool = True
    query_log_store_text: bool = Field(default=True, description="Keep query text in the query log (top queries)")
    query_log_retention_days: int = Field(
        default=90, ge=1, le=3650, description="Rows without feedback older than this go"
    )
    query_log_queue_max: int = Field(
        default=10_000, ge=100, description="Records waiting to be written; beyond: dropped"
    )
    analytics_low_score: float = Field(
        default=0.5, ge=0.0, le=1.0, description="Fused top score below which a query counts as poorly answered"
    )
    model_prices: dict[str, dict[str, float]] = Field(
        default_factory=lambda: dict(DEFAULT_PRICES),
        description="USD per 1M tokens by model: {prompt, completion} for LLMs, {embedding} for embedders",
    )

    # --- observability ---
    metrics_tenant_labels: int = Field(
        default=20,
        ge=0,
        le=1000,
        description="Tenants with their own metrics label (first seen); others 'other'; 0: off. Needs "
        "METRICS_BEARER_TOKEN: an open /metrics labels every tenant 'all'",
    )
    metrics_bearer_token: SecretStr | None = Field(
        default=None, description="When set, /metrics answers only `Authorization: Bearer <token>`"
    )
    metrics_queue_poll_s: float = Field(default=15.0, gt=0, description="How often the ingestion queue is measured")
    worker_metrics_port: int | None = Field(
        default=None, ge=1, le=65535, description="`ragapi worker` serves /metrics on this port; unset: off"
    )
    readiness_timeout_s: float = Field(default=2.0, gt=0, le=30, description="Per dependency check in /readyz")
    sentry_dsn: SecretStr | None = Field(default=None, description="Sentry (or compatible) DSN; unset: off")
    sentry_environment: str = "production"
    sentry_traces_sample_rate: float = Field(default=0.0, ge=0.0, le=1.0)

    # --- ingestion jobs ---
    celery_broker_url: SecretStr | None = Field(
        default=None, description="RabbitMQ (amqp://) for Celery ingestion workers; unset: in-process worker"
    )
    upload_dir: Path | None = Field(
        default=None, description="Where uploads wait for a worker (shared volume); default DATA_DIR/uploads"
    )
    upload_s3_bucket: str | None = Field(
        default=None, description="Keep uploads in this S3-compatible bucket instead of UPLOAD_DIR"
    )
    upload_s3_prefix: str = Field(default="uploads/", description="Key prefix inside the bucket")
    upload_s3_endpoint_url: str | None = Field(default=None, description="e.g. a MinIO URL; unset: AWS S3")
    upload_s3_region: str | None = None
    ingest_worker_enabled: bool = Field(
        default=True, description="Run the in-process ingestion worker in `ragapi serve` when no broker is set"
    )
    query_embedding_inline_ms: float = Field(
        default=3.0,
        ge=0,
        le=50,
        description="Queries whose bundled int8 embedding takes at most this long (timed per host at warm-up) "
        "are embedded on the event loop, which costs less than a trip to a thread under load; longer ones on "
        "threads; 0: none",
    )
    query_embedding_inline_tokens: int | None = Field(
        default=None,
        ge=0,
        le=256,
        description="Overrides QUERY_EMBEDDING_INLINE_MS with a fixed length in word pieces; 0: none inline",
    )
    query_embedding_nice: int = Field(
        default=5,
        ge=0,
        le=19,
        description="CPU priority (nice) of the API's threaded local-model query embedding, below the event "
        "loops; 0: same",
    )
    query_embedding_concurrency: int = Field(
        default=2,
        ge=1,
        le=64,
        description="Threaded query embeddings (local model) one API worker computes at once; more wait",
    )
    ingest_nice: int = Field(
        default=10, ge=0, le=19, description="CPU priority (nice) of local-model embedding for ingestion; 0: same"
    )
    ingest_task_files: int = Field(default=16, ge=1, le=1000, description="Files one worker task claims at once")
    ingest_lease_s: float = Field(
        default=60.0, gt=0, description="A claimed file returns to the queue this long after its worker stops"
    )
    ingest_max_attempts: int = Field(default=5, ge=1, description="Tries per file before it fails for good")
    ingest_retry_base_s: float = Field(default=2.0, gt=0, description="First retry delay; doubles per attempt")
    ingest_task_retry_max_s: float = Field(
        default=60.0,
        gt=0,
        le=3600,
        description="Longest delay before a Celery ingestion task that failed unexpectedly runs again "
        "(INGEST_RETRY_BASE_S, doubling per retry, up to this)",
    )
    ingest_poll_s: float = Field(default=1.0, gt=0, description="Idle worker and job-progress polling interval")
    ingest_wait_max_s: float = Field(default=300.0, gt=0, description="Longest POST /v1/ingest?wait=true waits")

    # --- limits ---
    max_upload_bytes: int = Field(
        default=25 * 1024 * 1024, ge=1024, description="Whole body of an ingest request (POST /v1/ingest), bytes"
    )
    max_json_body_bytes: int = Field(
        default=1024 * 1024, ge=1024, description="Whole body of every other request (JSON or form), bytes"
    )
    max_files_per_request: int = Field(default=20, ge=1)
    max_documents_per_request: int = Field(default=100, ge=1)
    max_document_chars: int = Field(default=2_000_000, ge=1)
    max_query_chars: int = Field(default=2000, ge=1)
    max_batch_inputs: int = Field(default=20, ge=1, le=1000, description="Inputs of one LangServe /batch request")
    max_metadata_bytes: int = Field(
        default=16 * 1024, ge=64, le=1024 * 1024, description="A document's metadata as JSON (UTF-8), bytes"
    )
    max_metadata_keys: int = Field(default=64, ge=1, le=10_000, description="Top-level keys of a document's metadata")
    max_pdf_pages: int = Field(default=2000, ge=1, description="Pages extracted from one PDF")
    max_archive_bytes: int = Field(
        default=100 * 1024 * 1024, ge=1024, description="Uncompressed size of a DOCX (zip) archive"
    )
    max_archive_ratio: int = Field(default=100, ge=2, description="Compression ratio beyond which a DOCX is a bomb")
    page_size_max: int = Field(default=100, ge=1)
    url_fetch_timeout_s: float = Field(default=20.0, gt=0, le=300, description="Whole fetch of a URL document")
    url_fetch_allowed_networks: list[str] = Field(
        default_factory=list, description="CIDRs URL documents may come from although private, e.g. an intranet"
    )

    @field_validator("chunk_overlap_tokens")
    @classmethod
    def _overlap_below_size(cls, v: int, info: object) -> int:
        size = getattr(info, "data", {}).get("chunk_size_tokens", 200)
        if v >= size:
            raise ValueError("CHUNK_OVERLAP_TOKENS must be smaller than CHUNK_SIZE_TOKENS")
        return v

    @field_validator("database_url")
    @classmethod
    def _postgres_only(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None and v.get_secret_value().split("://", 1)[0].split("+", 1)[0] not in ("postgresql", "postgres"):
            raise ValueError("DATABASE_URL must be a postgresql:// URL")
        return v

    @field_validator("jwt_secret")
    @classmethod
    def _strong_secret(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None and len(v.get_secret_value()) < 32:
            raise ValueError("JWT_SECRET must be at least 32 characters")
        return v

    @field_validator("trusted_proxies", "url_fetch_allowed_networks")
    @classmethod
    def _valid_networks(cls, v: list[str]) -> list[str]:
        for network in v:
            ipaddress.ip_network(network, strict=False)  # raises ValueError on garbage
        return v

    @property
    def tenant_metric_labels(self) -> int:
        """METRICS_TENANT_LABELS where /metrics is closed: an open one would tell anyone who can reach it
        which tenants exist and what each of them spends."""
        return self.metrics_tenant_labels if self.metrics_bearer_token is not None else 0

    @property
    def pgdata_dir(self) -> Path:
        return self.data_dir / "pgdata"

    @property
    def uploads_dir(self) -> Path:
        return self.upload_dir or self.data_dir / "uploads"

    @property
    def effective_reranker(self) -> Reranker:
        if self.reranker is not Reranker.AUTO:
            return self.reranker
        if self.cohere_api_key is not None:
            return Reranker.COHERE
        if self.reranker_model:
            return Reranker.FASTEMBED
        return Reranker.NONE


@lru_cache
def get_settings() -> Settings:
    """Settings from the environment, `.env`, and files in SECRETS_DIR (e.g. mounted Kubernetes Secrets)."""
    secrets_dir = os.environ.get("SECRETS_DIR")
    return Settings(_secrets_dir=secrets_dir)  # type: ignore[call-arg]
