"""The composition root: what the running service holds, built once at start-up. Routes never see it:
the dependencies in `ragapi.api.dependencies` hand each one the domain service it needs."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from functools import cached_property

from langchain_core.embeddings import Embeddings

from ragapi.analytics.query_log import QueryLogWriter
from ragapi.analytics.query_log import purge as purge_query_log
from ragapi.answering.admission import AdmissionStore
from ragapi.answering.cache import AnswerCache
from ragapi.answering.condense import build_condenser
from ragapi.answering.conversations.service import ConversationService
from ragapi.answering.conversations.store import ConversationStore
from ragapi.answering.conversations.store import purge as purge_conversations
from ragapi.answering.exact_cache import ExactCache, InProcessCache, RedisCache
from ragapi.answering.pipeline import RagPipeline
from ragapi.answering.semantic_cache import SemanticCache
from ragapi.answering.service import AnswerService
from ragapi.api.client_ip import Network, parse_networks
from ragapi.api.readiness import Readiness
from ragapi.core.database import Database
from ragapi.core.metrics import configure_tenant_labels
from ragapi.core.migrate import require_head, upgrade_logged
from ragapi.core.ratelimit import FailoverLimiter, InProcessLimiter, Limiter, RedisLimiter
from ragapi.core.retention import Purge, Retention
from ragapi.core.settings import Settings
from ragapi.core.tasks import cancel_and_wait
from ragapi.embedding import build_embeddings, embedding_identity, ingestion_embeddings
from ragapi.generation.answerers import build_answerer, build_extractive
from ragapi.ingestion import monitor
from ragapi.ingestion.dispatch import CeleryDispatcher, Dispatcher, LocalDispatcher
from ragapi.ingestion.knowledge_bases import KnowledgeBaseService
from ragapi.ingestion.pipeline import IngestPipeline
from ragapi.ingestion.service import IngestionService
from ragapi.ingestion.uploads import UploadStore, build_upload_store
from ragapi.ingestion.worker import IngestWorker
from ragapi.retrieval.chunks import ensure_dense_index
from ragapi.retrieval.hybrid import HybridSearch
from ragapi.retrieval.rerank import build_reranker
from ragapi.retrieval.vectors.base import VectorIndex
from ragapi.retrieval.vectors.registry import build_vector_indexes
from ragapi.tenants.oidc import OidcClient
from ragapi.tenants.sealed import box_for
from ragapi.tenants.sso import SingleSignOn
from ragapi.tenants.tokens import TokenCodec, signing_key

# After a Redis failure, shared state (limits, exact cache) is skipped for this long before a retry.
REDIS_COOLDOWN_S = 5.0


def build_limiter(settings: Settings) -> Limiter:
    """Shared through Redis when REDIS_URL is set (in-process limits while it is down), else in-process."""
    if settings.redis_url is None:
        return InProcessLimiter()
    redis = RedisLimiter(settings.redis_url.get_secret_value(), settings.redis_timeout_s)
    return FailoverLimiter(redis, InProcessLimiter(), settings.redis_timeout_s, REDIS_COOLDOWN_S)


@dataclass
class AppState:
    settings: Settings
    db: Database
    embeddings: Embeddings
    pipeline: IngestPipeline
    answers: AnswerService
    conversations: ConversationService
    ingestion: IngestionService
    knowledge_bases: KnowledgeBaseService
    indexes: dict[str, VectorIndex]
    tokens: TokenCodec
    sso: SingleSignOn
    limiter: Limiter
    trusted_proxies: tuple[Network, ...]
    uploads: UploadStore
    dispatcher: Dispatcher
    worker: IngestWorker | None = None  # the in-process ingestion worker (embedded mode)
    query_log: QueryLogWriter | None = None
    retention: Retention | None = None  # the hourly purges (processes that serve the API)
    ready: bool = False
    worker_task: asyncio.Task[None] | None = None
    monitor_task: asyncio.Task[None] | None = None  # ingestion queue gauges (processes that serve the API)

    @cached_property
    def readiness(self) -> Readiness:
        return Readiness(self)

    def start_worker(self) -> None:
        if self.worker is not None and self.worker_task is None:
            self.worker_task = asyncio.create_task(self.worker.run_forever(), name="ingestion-worker")

    async def stop_worker(self) -> None:
        """Stop the in-process worker; what it was indexing rolls back and returns to the queue."""
        await cancel_and_wait(self.worker_task)
        self.worker_task = None

    def start_monitor(self) -> None:
        """The ingestion queue's gauges and reclaimer (files whose lease ran out go to the dispatcher)."""
        if self.monitor_task is None:
            self.monitor_task = asyncio.create_task(
                monitor.run(self.db, self.settings.metrics_queue_poll_s, self._dispatch), name="ingestion-queue-monitor"
            )

    async def stop_monitor(self) -> None:
        await cancel_and_wait(self.monitor_task)
        self.monitor_task = None

    async def _dispatch(self, job_id: uuid.UUID, file_ids: list[uuid.UUID]) -> None:
        await self.dispatcher.dispatch(job_id, file_ids)  # the dispatcher in place now

    @classmethod
    async def start(cls, settings: Settings, serve: bool = False) -> AppState:
        """`serve`: this process serves the API, so it also runs the in-process ingestion worker."""
        configure_tenant_labels(settings.tenant_metric_labels)
        db = await asyncio.to_thread(Database.connect, settings)
        if settings.migrate_on_start:
            await asyncio.to_thread(
                upgrade_logged, db.url, settings.db_app_role, seal=lambda s: box_for(settings).seal(s)
            )
        else:
            await asyncio.to_thread(require_head, db.url)
        embeddings = build_embeddings(settings)
        warm_up = getattr(embeddings, "warm_up", None)
        if warm_up is not None:
            await asyncio.to_thread(warm_up)
        _, dim = await asyncio.to_thread(embedding_identity, embeddings)
        async with db.admin_session() as session:
            await ensure_dense_index(session, dim)
        indexes = build_vector_indexes(settings, db)
        query_log = QueryLogWriter(db, settings) if settings.query_log_enabled else None
        answers = build_answer_service(settings, db, embeddings, indexes, query_log)
        ingest_embeddings = await asyncio.to_thread(ingestion_embeddings, settings, embeddings)
        pipeline = IngestPipeline(db, ingest_embeddings, settings, indexes)
        uploads = build_upload_store(settings)
        worker = None
        dispatcher: Dispatcher
        if settings.celery_broker_url is not None:
            dispatcher = CeleryDispatcher(settings)
        else:
            if serve and settings.ingest_worker_enabled:
                worker = IngestWorker(db, pipeline, uploads, settings)
            dispatcher = LocalDispatcher(worker)
        knowledge_bases = KnowledgeBaseService(db, embeddings, indexes, settings)
        tokens = TokenCodec(settings, await asyncio.to_thread(signing_key, settings))
        state = cls(
            settings=settings,
            db=db,
            embeddings=embeddings,
            pipeline=pipeline,
            uploads=uploads,
            dispatcher=dispatcher,
            worker=worker,
            indexes=indexes,
            answers=answers,
            conversations=ConversationService(
                ConversationStore(db), answers, knowledge_bases, settings, build_condenser(settings)
            ),
            ingestion=IngestionService(db, uploads, dispatcher, indexes, settings),
            knowledge_bases=knowledge_bases,
            tokens=tokens,
            sso=SingleSignOn(db, settings, tokens, OidcClient(settings)),
            limiter=build_limiter(settings),
            trusted_proxies=parse_networks(settings.trusted_proxies),
            query_log=query_log,
        )
        if state.query_log is not None:
            state.query_log.start()
        if serve:
            state.start_monitor()
            await state.knowledge_bases.resume_deletions()
            state.retention = Retention(retention_purges(settings, db))
            state.retention.start()
        state.start_worker()
        state.ready = True
        return state

    async def stop(self) -> None:
        self.ready = False
        await self.stop_worker()
        await cancel_and_wait(self.monitor_task)
        if "readiness" in self.__dict__:
            await self.readiness.close()
        if self.retention is not None:
            await self.retention.stop()
        if self.query_log is not None:
            await self.query_log.stop()
        await self.knowledge_bases.drain()
        await self.answers.cache.close()
        await self.limiter.close()
        await self.sso.client.close()
        await self.db.dispose()


def retention_purges(settings: Settings, db: Database) -> dict[str, Purge]:
    """What is deleted hourly once past its age: the query log (while it is kept) and conversations."""

    async def conversations() -> int:
        return await purge_conversations(db, settings.conversation_retention_days)

    async def queries() -> int:
        return await purge_query_log(db, settings.query_log_retention_days)

    purges: dict[str, Purge] = {"conversations": conversations}
    if settings.query_log_enabled:
        purges["query_log"] = queries
    return purges


def build_answer_service(
    settings: Settings,
    db: Database,
    embeddings: Embeddings,
    indexes: dict[str, VectorIndex],
    query_log: QueryLogWriter | None,
) -> AnswerService:
    pipeline = RagPipeline(
        HybridSearch(db, embeddings, settings, indexes),
        build_reranker(settings),
        build_answerer(settings, embeddings),
        embeddings,
        settings,
        extractive=build_extractive(settings, embeddings) if settings.openai_api_key is not None else None,
    )
    exact: ExactCache = (
        RedisCache(settings.redis_url.get_secret_value(), settings.redis_timeout_s)
        if settings.redis_url is not None
        else InProcessCache(settings.cache_max_entries)
    )
    cache = AnswerCache(exact, SemanticCache(db, settings.cache_ttl_s), embeddings, settings, pipeline.fingerprint())
    embedding_model = embedding_identity(embeddings)[0]
    return AnswerService(AdmissionStore(db), cache, pipeline, query_log, settings, embedding_model)
