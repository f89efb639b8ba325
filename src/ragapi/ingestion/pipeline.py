"""The ingestion pipeline: parse → chunk → embed → index, one transaction per document.

Each document either lands completely (document row, chunks, BM25 statistics) or not at all, and one
bad file never takes the rest of its batch down. Replacing by `external_id` deletes the old version and
inserts the new one in the same transaction, so readers see exactly one version at any time. The
tenant's knowledge-base row is locked first in every write, which serialises a tenant's writers and
makes content-hash de-duplication race-free.

Every stage (fetch, parse and chunk, embed, write) turns any exception about one item into that item's
failure: a `RagApiError` with its own status, title and detail; anything unexpected as 500 "Internal
error" naming the exception type only (logged with its traceback). Only what concerns the whole batch
propagates: the database gone, or an embedding provider that is unavailable (502, retried by the worker).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
from langchain_core.embeddings import Embeddings
from langchain_text_splitters import RecursiveCharacterTextSplitter
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from ragapi.core import tracing
from ragapi.core.access import DocumentAccess, ReaderView
from ragapi.core.database import Database
from ragapi.core.errors import (
    Forbidden,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    RagApiError,
    ServiceUnavailable,
    UpstreamError,
)
from ragapi.core.metrics import PROVIDER_ERRORS
from ragapi.core.netguard import parse_networks
from ragapi.core.settings import Settings
from ragapi.embedding import embedder_for, embedding_identity
from ragapi.ingestion.access import apply_again
from ragapi.ingestion.access import stored as stored_access
from ragapi.ingestion.chunk_store import (
    ChunkRow,
    add_chunks,
    lock_knowledge_base,
    remove_document_chunks,
)
from ragapi.ingestion.chunking import TextChunk, chunk_document, make_splitter
from ragapi.ingestion.fetch import fetch_url
from ragapi.ingestion.models import Document
from ragapi.ingestion.parsers import ParsedDocument, ParseLimits, parse, url_file_name
from ragapi.retrieval import knowledge_bases
from ragapi.retrieval.bm25 import BM25Params, document_weights, term_counts
from ragapi.retrieval.chunks import record_id, record_ids
from ragapi.retrieval.knowledge_bases import KnowledgeBase
from ragapi.retrieval.vectors.base import VectorIndex, VectorRecord, index_for, record_metadata
from ragapi.retrieval.vectors.pgvector import PgVectorIndex

log = logging.getLogger(__name__)

# Problem statuses the worker retries with backoff (provider overloaded, unavailable or timing out);
# any other failure is final for its document.
TRANSIENT_STATUSES = frozenset({429, 502, 503, 504})


@dataclass(slots=True)
class IngestItem:
    data: bytes
    filename: str | None = None
    content_type: str | None = None
    title: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    external_id: str | None = None
    url: str | None = None  # fetched into `data` by the pipeline (SSRF-guarded)
    access: DocumentAccess | None = None  # who may read it; None: the whole tenant
    # the submitter's view, for changing the access of a document already holding these bytes (None: it
    # may not; `ingestion.access.apply_again`)
    access_by: ReaderView | None = None


@dataclass(slots=True)
class ItemResult:
    index: int
    filename: str | None
    status: str  # created | replaced | duplicate | unchanged | failed
    document_id: uuid.UUID | None = None
    chunks: int = 0
    error: dict[str, Any] | None = None
    removed_characters: int = 0  # NUL and lone surrogates removed from the extracted text

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "index": self.index,
            "filename": self.filename,
            "status": self.status,
            "document_id": str(self.document_id) if self.document_id else None,
            "chunks": self.chunks,
            "removed_characters": self.removed_characters,
        }
        if self.error:
            out["error"] = self.error
        return out


# Called inside a document's transaction with its result; raising rolls the document back.
OnWritten = Callable[[AsyncSession, "ItemResult"], Awaitable[None]]


@dataclass(slots=True)
class JobReport:
    job_id: uuid.UUID
    status: str
    results: list[ItemResult]


@dataclass(slots=True)
class _Prepared:
    index: int
    item: IngestItem
    parsed: ParsedDocument
    chunks: list[TextChunk]
    digest: str
    vectors: list[list[float]] = field(default_factory=list)

    @property
    def removed(self) -> int:
        return self.parsed.removed_characters


def _failure(index: int, item: IngestItem, exc: Exception, stage: str) -> ItemResult:
    """The item's failure: a RagApiError as it is; anything else as a 500 that names the exception type
    but not its text (which may hold internals), logged with its traceback."""
    if isinstance(exc, RagApiError):
        error = {"status": exc.status, "title": exc.title, "detail": exc.detail}
    else:
        log.error("ingestion: %s of item %d (%s) failed unexpectedly", stage, index, item.filename, exc_info=exc)
        detail = f"{stage} failed unexpectedly ({type(exc).__name__})"
        error = {"status": 500, "title": "Internal error", "detail": detail}
    return ItemResult(index=index, filename=item.filename, status="failed", error=error)


# Provider statuses that refuse the input itself; any other (401 bad key, 429, 5xx...) is the
# provider's problem, the same for every document, and retried.
_PROVIDER_REFUSALS = frozenset({400, 413, 422})


def _provider_status(exc: BaseException) -> int | None:
    """The HTTP status a provider SDK's exception carries (openai, cohere, httpx), if any."""
    status = getattr(exc, "status_code", None)
    if status is None:
        status = getattr(getattr(exc, "response", None), "status_code", None)
    return status if isinstance(status, int) else None


def _provider_unavailable(exc: BaseException) -> bool:
    """Worth retrying later: a network failure anywhere in the exception's chain, or a provider status
    other than a refusal of the input (overloaded, rate-limited, failing, misconfigured)."""
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            return False
        status = _provider_status(seen)
        if status is not None:
            return status not in _PROVIDER_REFUSALS
        if isinstance(seen, OSError | TimeoutError | httpx.TransportError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _embedding_failure(exc: Exception) -> Exception:
    """What an embedding failure means for the documents: retry (502), refused (422) or unexpected."""
    if isinstance(exc, RagApiError):
        return exc
    if _provider_unavailable(exc):
        PROVIDER_ERRORS.labels("embeddings").inc()
        return UpstreamError(f"embedding provider failed: {type(exc).__name__}")
    status = _provider_status(exc)
    if status is not None:
        PROVIDER_ERRORS.labels("embeddings").inc()
        return InvalidInput(f"the embedding provider refused this document: {type(exc).__name__} (HTTP {status})")
    return exc


def _session_lost(exc: Exception) -> bool:
    """The database connection itself failed (not a statement): the batch's transaction is gone."""
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


# SQLSTATE classes of a statement worth running again (a deadlock, a serialisation failure, a lock or
# statement timeout, resources exhausted); any other database error is about the document's values.
_DATABASE_TRANSIENT = ("40", "53", "55P03", "57")


def _database_failure(exc: Exception) -> Exception:
    sqlstate = getattr(exc.orig, "sqlstate", None) if isinstance(exc, DBAPIError) else None
    if isinstance(sqlstate, str) and sqlstate.startswith(_DATABASE_TRANSIENT):
        return ServiceUnavailable(f"the database could not write this document now (SQLSTATE {sqlstate})")
    return exc


def _is_retryable(exc: Exception) -> bool:
    return isinstance(exc, RagApiError) and exc.status in TRANSIENT_STATUSES


def job_status(results: Sequence[ItemResult]) -> str:
    failed = sum(r.status == "failed" for r in results)
    if failed == 0:
        return "succeeded"
    return "failed" if failed == len(results) else "partially_failed"


class IngestPipeline:
    def __init__(
        self,
        db: Database,
        embeddings: Embeddings,
        settings: Settings,
        indexes: dict[str, VectorIndex] | None = None,
    ) -> None:
        self.db = db
        self.embeddings = embeddings
        self.settings = settings
        self.indexes = indexes or {
            "pgvector": PgVectorIndex(db, settings.hnsw_ef_search, settings.bm25_candidate_budget)
        }
        self._splitters: dict[
            tuple[int, int], RecursiveCharacterTextSplitter
        ] = {}  # by (size, overlap): a knowledge base's own
        self.bm25 = BM25Params(k1=settings.bm25_k1, b=settings.bm25_b)
        self.limits = ParseLimits(settings.max_pdf_pages, settings.max_archive_bytes, settings.max_archive_ratio)
        self.allowed_networks = parse_networks(settings.url_fetch_allowed_networks)

    async def run(
        self,
        tenant_id: uuid.UUID,
        items: Sequence[IngestItem],
        progress: Callable[[int], None] | None = None,
        fetch_max_bytes: int | None = None,
        kb_id: uuid.UUID | None = None,
    ) -> JobReport:
        """Ingest in this process and wait (the CLI, evaluation); the API goes through durable jobs."""
        results = await self.process(tenant_id, items, progress=progress, fetch_max_bytes=fetch_max_bytes, kb_id=kb_id)
        ordered = [results[i] for i in sorted(results)]
        return JobReport(job_id=uuid.uuid4(), status=job_status(ordered), results=ordered)

    async def process(
        self,
        tenant_id: uuid.UUID,
        items: Sequence[IngestItem],
        progress: Callable[[int], None] | None = None,
        fetch_max_bytes: int | None = None,
        on_written: OnWritten | None = None,
        kb_id: uuid.UUID | None = None,
    ) -> dict[int, ItemResult]:
        """Every item's result by its index, ingested into knowledge base `kb_id` (None: the tenant's
        default, created on first use). `on_written` runs inside each document's transaction, so
        whatever it records commits (or rolls back) together with the document."""
        kb_id = kb_id or tenant_id
        results: dict[int, ItemResult] = {}
        prepared: list[_Prepared] = []
        await self._fetch_urls(items, results, fetch_max_bytes or self.settings.max_upload_bytes)
        kb = await self._knowledge_base(tenant_id, kb_id)
        if kb is None and kb_id != tenant_id:  # deleted since the job was accepted
            gone = NotFound("knowledge base not found (it was deleted)")
            results.update(
                {n: _failure(n, item, gone, "ingesting") for n, item in enumerate(items) if n not in results}
            )
            return results
        splitter = self._splitter(kb)
        for index, item in enumerate(items):
            if index in results:
                continue
            try:
                prepared.append(await asyncio.to_thread(self._prepare, index, item, splitter))
            except Exception as exc:  # the document's own failure, whatever it is
                results[index] = _failure(index, item, exc, "parsing")

        prepared = await self._skip_known(tenant_id, kb_id, prepared, results)
        # A knowledge base not yet re-embedded after a model change keeps growing with its own model.
        embedder = embedder_for(kb.embedding_model, self.embeddings, self.settings) if kb else self.embeddings
        if embedder is None:
            refused = InvalidInput(
                f"this knowledge base is indexed with {kb and kb.embedding_model}, which this service cannot "
                "embed with; re-embed it (ragapi reembed) before ingesting"
            )
            results.update({p.index: _failure(p.index, p.item, refused, "embedding") for p in prepared})
        else:
            prepared = await self._embed_all(prepared, results, embedder)
            await self._write_all(tenant_id, kb_id, prepared, results, progress, on_written, embedder)
        return results

    async def _knowledge_base(self, tenant_id: uuid.UUID, kb_id: uuid.UUID) -> KnowledgeBase | None:
        async with self.db.tenant_session(tenant_id) as session:
            kb = await knowledge_bases.get(session, kb_id)
        return kb if kb is not None and kb.status == "active" else None

    def _splitter(self, kb: KnowledgeBase | None) -> RecursiveCharacterTextSplitter:
        """The knowledge base's chunking (its own settings, else the service's)."""
        own = kb.settings if kb is not None else None
        size = (own and own.chunk_size_tokens) or self.settings.chunk_size_tokens
        overlap = own.chunk_overlap_tokens if own and own.chunk_overlap_tokens is not None else None
        overlap = min(overlap if overlap is not None else self.settings.chunk_overlap_tokens, size - 1)
        if (size, overlap) not in self._splitters:
            self._splitters[(size, overlap)] = make_splitter(size, overlap)
        return self._splitters[(size, overlap)]

    async def _fetch_urls(self, items: Sequence[IngestItem], results: dict[int, ItemResult], max_bytes: int) -> None:
        """Download URL documents, a few at a time; a URL that fails fails its document only."""
        gate = asyncio.Semaphore(4)

        async def one(index: int, item: IngestItem) -> None:
            assert item.url is not None  # noqa: S101 - filtered below
            async with gate:
                try:
                    fetched = await fetch_url(
                        item.url, max_bytes, self.settings.url_fetch_timeout_s, self.allowed_networks
                    )
                except Exception as exc:  # the URL's own failure, whatever it is
                    results[index] = _failure(index, item, exc, "fetching the URL")
                    return
            item.data, item.content_type = fetched.data, fetched.content_type
            item.filename = item.filename or url_file_name(fetched.url)
            item.metadata = {"url": item.url, **item.metadata}

        await asyncio.gather(*(one(i, item) for i, item in enumerate(items) if item.url and not item.data))

    def _prepare(self, index: int, item: IngestItem, splitter: RecursiveCharacterTextSplitter) -> _Prepared:
        parsed = parse(item.data, item.filename, item.content_type, self.limits)
        if parsed.char_count > self.settings.max_document_chars:
            raise PayloadTooLarge(
                f"document has {parsed.char_count} characters; the limit is {self.settings.max_document_chars}"
            )
        if item.title:
            parsed.title = item.title
        return _Prepared(
            index=index,
            item=item,
            parsed=parsed,
            chunks=chunk_document(parsed, splitter),
            digest=hashlib.sha256(item.data).hexdigest(),
        )

    async def _skip_known(
        self, tenant_id: uuid.UUID, kb_id: uuid.UUID, prepared: list[_Prepared], results: dict[int, ItemResult]
    ) -> list[_Prepared]:
        """Drop documents whose bytes are already in the knowledge base before spending time embedding them;
        such a document takes the access it came with (`apply_again`)."""
        if not prepared:
            return prepared
        keep: list[_Prepared] = []
        async with self.db.tenant_session(tenant_id) as session:
            rows = (
                await session.execute(
                    select(Document).where(
                        col(Document.tenant_id) == tenant_id,
                        col(Document.knowledge_base_id) == kb_id,
                        col(Document.content_hash).in_([p.digest for p in prepared]),
                    )
                )
            ).scalars()
            known = {d.content_hash: d for d in rows}
            for p in prepared:
                document = known.get(p.digest)
                if document is None:
                    keep.append(p)
                    continue
                try:
                    async with session.begin_nested():  # a refused access list leaves the document as it was
                        results[p.index] = await self._known(session, document, p)
                except Exception as exc:  # e.g. a user of the list deleted since the submit: this file's failure
                    if _session_lost(exc):
                        raise
                    results[p.index] = _failure(p.index, p.item, exc, "changing the access")
        return keep

    @staticmethod
    async def _known(session: AsyncSession, document: Document, p: _Prepared) -> ItemResult:
        """The outcome of bytes the knowledge base holds already: `unchanged` when the external id is the
        same too, else `duplicate`; the access they came with applied to the document."""
        await apply_again(session, document, p.item.access, p.item.access_by)
        same = p.item.external_id and document.external_id == p.item.external_id
        return ItemResult(
            p.index,
            p.item.filename,
            "unchanged" if same else "duplicate",
            document.id,
            document.chunk_count,
            removed_characters=p.removed,
        )

    async def _embed_all(
        self, prepared: list[_Prepared], results: dict[int, ItemResult], embedder: Embeddings
    ) -> list[_Prepared]:
        """Embed every document's chunks in one call; the documents that got their vectors. When that
        call fails for any reason but an unavailable provider (which every document would meet: all are
        retried), each document is embedded alone, so a text the model or the provider refuses fails
        its own document only."""
        try:
            await self._embed(prepared, embedder)
            return prepared
        except Exception as exc:  # classified below
            failure = _embedding_failure(exc)
            if len(prepared) == 1 or _is_retryable(failure):
                results.update({p.index: _failure(p.index, p.item, failure, "embedding") for p in prepared})
                return []
        embedded: list[_Prepared] = []
        for p in prepared:
            try:
                await self._embed([p], embedder)
                embedded.append(p)
            except Exception as exc:  # this document's own failure
                results[p.index] = _failure(p.index, p.item, _embedding_failure(exc), "embedding")
        return embedded

    async def _embed(self, prepared: list[_Prepared], embedder: Embeddings) -> None:
        texts = [f"{p.parsed.title}\n\n{c.text}" for p in prepared for c in p.chunks]
        if not texts:
            return
        with tracing.tracer.start_as_current_span("ingest.embed", attributes={"chunks": len(texts)}):
            vectors = await asyncio.to_thread(embedder.embed_documents, texts)
        offset = 0
        for p in prepared:
            p.vectors = vectors[offset : offset + len(p.chunks)]
            offset += len(p.chunks)

    async def _write_all(
        self,
        tenant_id: uuid.UUID,
        kb_id: uuid.UUID,
        prepared: list[_Prepared],
        results: dict[int, ItemResult],
        progress: Callable[[int], None] | None,
        on_written: OnWritten | None,
        embedder: Embeddings,
    ) -> None:
        """One transaction for the batch, one savepoint per document: a failing document rolls back
        alone, and the batch pays for one commit instead of one per document."""
        if not prepared:
            return
        model, dim = embedding_identity(embedder)
        stale: list[str] = []  # vector records of replaced versions, deleted once the swap is committed
        async with self.db.tenant_session(tenant_id) as session:
            try:
                kb = await lock_knowledge_base(
                    session, tenant_id, kb_id, model, dim, self.settings.vector_backend.value
                )
            except NotFound as gone:  # deleted while the batch was being embedded
                results.update({p.index: _failure(p.index, p.item, gone, "writing") for p in prepared})
                return
            index = index_for(self.indexes, kb)
            mismatch = (kb.embedding_model, kb.embedding_dim) != (model, dim)
            for p in prepared:
                written: list[str] = []
                replaced: list[str] = []  # the old version's records, stale only if this document commits
                try:
                    if mismatch:  # re-embedded to another model since these vectors were computed: redo
                        raise ServiceUnavailable(
                            f"this knowledge base switched to {kb.embedding_model} while the document was being "
                            f"embedded with {model}; ingest it again"
                        )
                    async with session.begin_nested():  # a failure rolls back this document only
                        results[p.index] = await self._write(session, kb, index, p, written, replaced)
                        if on_written is not None:
                            await on_written(session, results[p.index])
                    stale.extend(replaced)
                except Exception as exc:
                    if _session_lost(exc):  # nothing of the batch can commit any more
                        raise
                    results[p.index] = _failure(p.index, p.item, _database_failure(exc), "writing")
                    await self._forget(index, tenant_id, written)  # vectors of a rolled-back document
                if progress:
                    progress(1)
        await self._forget(index, tenant_id, stale)

    @staticmethod
    async def _forget(index: VectorIndex, tenant_id: uuid.UUID, ids: list[str]) -> None:
        """Delete vector records no chunk row refers to; a failure leaves orphans that no search returns
        (every match is joined back to visible chunk rows), so it is logged, not raised."""
        if not ids:
            return
        try:
            await index.delete(tenant_id, ids)
        except Exception:
            log.warning("ingestion: could not delete %d orphaned vector records", len(ids), exc_info=True)

    async def _write(
        self,
        session: AsyncSession,
        kb: KnowledgeBase,
        index: VectorIndex,
        p: _Prepared,
        written: list[str],
        stale: list[str],
    ) -> ItemResult:
        item, tenant_id = p.item, kb.tenant_id
        same_bytes = (
            await session.execute(
                select(Document).where(col(Document.knowledge_base_id) == kb.id, col(Document.content_hash) == p.digest)
            )
        ).scalar_one_or_none()
        if same_bytes is not None:  # written since `_skip_known` looked
            return await self._known(session, same_bytes, p)

        status = "created"
        if item.external_id:
            previous = (
                await session.execute(
                    select(Document).where(
                        col(Document.knowledge_base_id) == kb.id, col(Document.external_id) == item.external_id
                    )
                )
            ).scalar_one_or_none()
            if previous is not None:
                if item.access_by is not None and not item.access_by.reads(previous.readers):
                    # replacing is deleting: only for a caller that could delete it (reads it, or manages access)
                    raise Forbidden(f"external id {item.external_id!r} names a document this caller may not replace")
                removed = await remove_document_chunks(session, tenant_id, kb, previous.id)
                stale.extend(record_ids(previous.id, removed))
                await session.delete(previous)
                await session.flush()
                status = "replaced"

        document = Document(
            tenant_id=tenant_id,
            knowledge_base_id=kb.id,
            external_id=item.external_id,
            title=p.parsed.title,
            source=item.filename,
            content_type=p.parsed.content_type,
            content_hash=p.digest,
            metadata_=item.metadata,
            chunk_count=len(p.chunks),
            size_bytes=len(item.data),
            **stored_access(item.access),
        )
        session.add(document)
        await session.flush()
        kb = await knowledge_bases.get(session, kb.id) or kb  # its counts now (a replaced version left them)
        rows = self._rows(p, kb)
        await add_chunks(session, tenant_id, document.id, kb, rows)
        records = [
            VectorRecord(
                id=record_id(document.id, r.ord),
                dense=r.embedding,
                sparse=r.weights,
                metadata=record_metadata(item.metadata, r.metadata, item.filename, document.id, kb.id),
            )
            for r in rows
        ]
        written.extend(r.id for r in records)
        await index.upsert(tenant_id, records)  # before the commit that makes the chunks visible
        return ItemResult(p.index, item.filename, status, document.id, len(p.chunks), removed_characters=p.removed)

    def _rows(self, p: _Prepared, kb: KnowledgeBase) -> list[ChunkRow]:
        counts = [term_counts(f"{p.parsed.title}\n{c.text}") for c in p.chunks]
        lengths = [sum(c.values()) for c in counts]
        # avgdl including this document, so the first document of a tenant is normalised sensibly
        avgdl = (kb.token_count + sum(lengths)) / max(kb.chunk_count + len(counts), 1)
        rows: list[ChunkRow] = []
        for chunk, vector, tc, length in zip(p.chunks, p.vectors, counts, lengths, strict=True):
            rows.append(
                ChunkRow(
                    ord=chunk.ord,
                    text=chunk.text,
                    title=p.parsed.title,
                    metadata=chunk.metadata,  # its own (page, heading); the document's is on the document
                    embedding=vector,
                    weights=document_weights(tc, avgdl, self.bm25),
                    token_count=length,
                )
            )
        return rows
