"""`AsyncClient`: the API over httpx's AsyncClient. Same methods as `ragapi.client.Client`, awaited."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime
from os import PathLike
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx
from pydantic import BaseModel

from ragapi.answering.answer import Answer, AnswerEvent, Finished
from ragapi.client._base import (
    FINISHED_JOB,
    Call,
    IngestResult,
    IngestTally,
    ProgressCallback,
    RetryPolicy,
    SseDecoder,
    answer_event,
    ask_body,
    batches,
    body,
    checked,
    config,
    files_in,
    job_event,
    multipart,
    parsed,
    parsed_list,
    query_body,
    raise_for_job_event_failure,
    search_body,
)
from ragapi.client._errors import ApiError, ConnectionFailed, StreamEnded
from ragapi.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyOut,
    ConversationAnswer,
    ConversationCreate,
    ConversationDetail,
    ConversationOut,
    ConversationPage,
    DocumentIn,
    DocumentOut,
    DocumentPage,
    DocumentPatch,
    FeedbackExport,
    FeedbackIn,
    FeedbackOut,
    IngestJson,
    JobOut,
    JobPage,
    JobSummary,
    KnowledgeBaseCreate,
    KnowledgeBaseOut,
    SearchResponse,
)

M = TypeVar("M", bound=BaseModel)


class AsyncClient:
    """The Enterprise RAG API, asynchronously.

    async with AsyncClient("http://127.0.0.1:8000", api_key="rag_...") as rag:
        await rag.ingest_folder("handbook/", on_progress=print)
        answer = await rag.query("How many vacation days do I get?")
    """

    def __init__(
        self,
        base_url: str | None = None,
        *,
        api_key: str | None = None,
        token: str | None = None,
        timeout: float | httpx.Timeout = 60.0,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.config = config(base_url, api_key, token, timeout, retry)
        self._http = httpx.AsyncClient(
            base_url=self.config.base_url, headers=self.config.headers, timeout=self.config.timeout, transport=transport
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # --- transport -------------------------------------------------------------------------------------

    async def _send(self, call: Call) -> httpx.Response:
        """The response (a stream left open when `call.stream`), after the retries the policy allows;
        a problem is raised as its ApiError."""
        attempt = 0
        while True:
            response: httpx.Response | None = None
            error: Exception | None = None
            try:
                response = await self._http.send(call.request(self._http), stream=call.stream)
            except httpx.TransportError as exc:
                error = exc
            if response is not None and response.is_success:
                return response
            wait = self.config.retry.delay(attempt, call.method, response, error)
            if wait is None:
                if error is not None:
                    raise ConnectionFailed(f"{call.method} {call.path}: {error!r}") from error
                assert response is not None  # noqa: S101
                await response.aread()
                await response.aclose()
                checked(response)
            if response is not None:
                await response.aclose()
            await asyncio.sleep(wait or 0)
            attempt += 1

    async def _model(self, model: type[M], call: Call) -> M:
        return parsed(model, await self._send(call))

    async def _pages(self, model: type[BaseModel], path: str, params: Mapping[str, Any]) -> AsyncIterator[Any]:
        """Every item of a cursor-paginated list, one page request at a time."""
        cursor: str | None = None
        while True:
            page: Any = await self._model(model, Call("GET", path, {**params, "cursor": cursor}))  # items, next_cursor
            for item in page.items:
                yield item
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    async def _events(self, call: Call) -> AsyncIterator[tuple[str, str]]:
        response = await self._send(call)
        decoder = SseDecoder()
        try:
            async for line in response.aiter_lines():
                event = decoder.line(line)
                if event is not None:
                    yield event
        except httpx.TransportError as exc:
            raise StreamEnded(f"{call.path}: the stream broke off ({exc!r})") from exc
        finally:
            await response.aclose()

    # --- questions -------------------------------------------------------------------------------------

    async def query(
        self,
        query: str,
        *,
        knowledge_bases: Sequence[str] | None = None,
        top_k: int | None = None,
        filters: Mapping[str, Any] | None = None,
        cache: bool = True,
    ) -> Answer:
        """A cited answer from the documents of the knowledge bases named (none: the default one)."""
        return await self._model(
            Answer, Call("POST", "/v1/query", json=query_body(query, knowledge_bases, top_k, filters, cache))
        )

    async def stream(
        self,
        query: str,
        *,
        knowledge_bases: Sequence[str] | None = None,
        top_k: int | None = None,
        filters: Mapping[str, Any] | None = None,
        cache: bool = True,
    ) -> AsyncIterator[AnswerEvent]:
        """The answer as it is written: `Sources`, then `Token`s, then `Finished` with the whole answer."""
        payload = {**query_body(query, knowledge_bases, top_k, filters, cache), "stream": True}
        async for event in self._answer_events(Call("POST", "/v1/query", json=payload, stream=True), Answer):
            yield event

    async def _answer_events(self, call: Call, model: type[Answer]) -> AsyncIterator[AnswerEvent]:
        async for name, data in self._events(call):
            event = answer_event(name, data, model)
            if event is not None:
                yield event
                if isinstance(event, Finished):
                    return
        raise StreamEnded("the answer stream ended before its `done` event")

    async def search(
        self,
        query: str,
        *,
        knowledge_bases: Sequence[str] | None = None,
        top_k: int | None = None,
        filters: Mapping[str, Any] | None = None,
    ) -> SearchResponse:
        """The passages a question retrieves, with their citations, and no answer."""
        return await self._model(
            SearchResponse, Call("POST", "/v1/search", json=search_body(query, knowledge_bases, top_k, filters))
        )

    # --- conversations ---------------------------------------------------------------------------------

    async def create_conversation(
        self, *, title: str | None = None, knowledge_bases: Sequence[str] = ()
    ) -> ConversationOut:
        payload = body(ConversationCreate(title=title, knowledge_bases=list(knowledge_bases)))
        return await self._model(ConversationOut, Call("POST", "/v1/conversations", json=payload))

    async def ask(
        self,
        conversation_id: uuid.UUID | str,
        content: str,
        *,
        top_k: int | None = None,
        filters: Mapping[str, Any] | None = None,
        cache: bool = True,
    ) -> ConversationAnswer:
        """A question in a conversation, answered from it made standalone by the earlier ones."""
        payload = ask_body(content, top_k, filters, cache)
        path = f"/v1/conversations/{conversation_id}/messages"
        return await self._model(ConversationAnswer, Call("POST", path, json=payload))

    async def stream_ask(
        self,
        conversation_id: uuid.UUID | str,
        content: str,
        *,
        top_k: int | None = None,
        filters: Mapping[str, Any] | None = None,
        cache: bool = True,
    ) -> AsyncIterator[AnswerEvent]:
        """`ask`, streamed as `stream` streams (the `Finished` answer is a ConversationAnswer)."""
        payload = {**ask_body(content, top_k, filters, cache), "stream": True}
        call = Call("POST", f"/v1/conversations/{conversation_id}/messages", json=payload, stream=True)
        async for event in self._answer_events(call, ConversationAnswer):
            yield event

    def conversations(self, *, page_size: int = 50) -> AsyncIterator[ConversationOut]:
        return self._pages(ConversationPage, "/v1/conversations", {"limit": page_size})

    async def conversation(self, conversation_id: uuid.UUID | str) -> ConversationDetail:
        return await self._model(ConversationDetail, Call("GET", f"/v1/conversations/{conversation_id}"))

    async def delete_conversation(self, conversation_id: uuid.UUID | str) -> None:
        await self._send(Call("DELETE", f"/v1/conversations/{conversation_id}"))

    # --- feedback and analytics ------------------------------------------------------------------------

    async def feedback(
        self,
        query_id: uuid.UUID | str,
        rating: float,
        *,
        comment: str | None = None,
        chunk_ids: Sequence[uuid.UUID | str] | None = None,
    ) -> FeedbackOut:
        """Rate an answer: +1 or -1, or a score from 0 to 1 (again: your earlier rating is replaced)."""
        given = FeedbackIn(
            query_id=uuid.UUID(str(query_id)),
            rating=rating,
            comment=comment,
            chunk_ids=[uuid.UUID(str(c)) for c in chunk_ids] if chunk_ids is not None else None,
        )
        return await self._model(FeedbackOut, Call("POST", "/v1/feedback", json=body(given)))

    async def export_feedback(self, *, knowledge_base: str | None = None) -> FeedbackExport:
        """Positively rated answers as BEIR queries and qrels (admin scope), for `ragapi eval --tenant`."""
        params = {"knowledge_base": knowledge_base}
        return await self._model(FeedbackExport, Call("GET", "/v1/feedback/export", params))

    async def analytics(
        self,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        interval: str = "day",
        group_by: str | None = None,
        knowledge_base: str | None = None,
    ) -> dict[str, Any]:
        """The tenant's report (admin scope): volume, errors, latency per stage, cache, tokens, cost, feedback."""
        params = {
            "start": start.isoformat() if start else None,
            "end": end.isoformat() if end else None,
            "interval": interval,
            "group_by": group_by,
            "knowledge_base": knowledge_base,
        }
        report: dict[str, Any] = (await self._send(Call("GET", "/v1/analytics", params))).json()
        return report

    # --- ingest and jobs -------------------------------------------------------------------------------

    async def ingest_folder(
        self,
        folder: str | PathLike[str],
        *,
        knowledge_base: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        wait: bool = True,
        on_progress: ProgressCallback | None = None,
        batch_files: int = 20,
        batch_bytes: int = 16 * 1024 * 1024,
    ) -> IngestResult:
        """Every supported file under `folder` (recursively); see `ingest_files`."""
        return await self.ingest_files(
            [folder],
            knowledge_base=knowledge_base,
            metadata=metadata,
            wait=wait,
            on_progress=on_progress,
            batch_files=batch_files,
            batch_bytes=batch_bytes,
        )

    async def ingest_files(
        self,
        paths: Sequence[str | PathLike[str]],
        *,
        knowledge_base: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        wait: bool = True,
        on_progress: ProgressCallback | None = None,
        batch_files: int = 20,
        batch_bytes: int = 16 * 1024 * 1024,
    ) -> IngestResult:
        """Upload files (folders: their supported files) in requests of at most `batch_files` files and
        `batch_bytes` (keep them within the server's MAX_FILES_PER_REQUEST and MAX_UPLOAD_BYTES), one job
        each; with `wait`, follow the jobs to their end, `on_progress` told as their events arrive."""
        started = time.perf_counter()
        files = files_in(paths)
        tally = IngestTally(len(files), callback=on_progress)
        submitted = []
        for group in batches(files, batch_files, batch_bytes):
            parts, form = multipart(group, metadata)
            job = await self._model(
                JobSummary, Call("POST", "/v1/ingest", {"knowledge_base": knowledge_base}, files=parts, data=form)
            )
            tally.update(job)
            submitted.append(job)
        return await self._finish(submitted, tally, wait, started)

    async def ingest_documents(
        self,
        documents: Sequence[DocumentIn | Mapping[str, Any]],
        *,
        knowledge_base: str | None = None,
        wait: bool = True,
        on_progress: ProgressCallback | None = None,
        batch_documents: int = 100,
    ) -> IngestResult:
        """JSON documents ({text | url, title, metadata, external_id}), `batch_documents` per request."""
        started = time.perf_counter()
        given = [d if isinstance(d, DocumentIn) else DocumentIn.model_validate(d) for d in documents]
        tally = IngestTally(len(given), callback=on_progress)
        submitted = []
        for start in range(0, len(given), batch_documents):
            payload = body(IngestJson(documents=given[start : start + batch_documents]))
            job = await self._model(
                JobSummary, Call("POST", "/v1/ingest", {"knowledge_base": knowledge_base}, json=payload)
            )
            tally.update(job)
            submitted.append(job)
        return await self._finish(submitted, tally, wait, started)

    async def _finish(self, jobs: list[JobSummary], tally: IngestTally, wait: bool, started: float) -> IngestResult:
        if wait:
            jobs = [await self.wait_for_job(j.job_id, tally=tally) for j in jobs]
        return IngestResult(list(jobs), time.perf_counter() - started)

    async def job(self, job_id: uuid.UUID | str) -> JobOut:
        return await self._model(JobOut, Call("GET", f"/v1/ingest/jobs/{job_id}"))

    def jobs(self, *, status: str | None = None, page_size: int = 50) -> AsyncIterator[JobSummary]:
        """The tenant's ingest jobs, newest first."""
        return self._pages(JobPage, "/v1/ingest/jobs", {"status": status, "limit": page_size})

    async def cancel_job(self, job_id: uuid.UUID | str) -> JobOut:
        return await self._model(JobOut, Call("POST", f"/v1/ingest/jobs/{job_id}/cancel"))

    async def job_events(self, job_id: uuid.UUID | str) -> AsyncIterator[JobSummary]:
        """The job's state each time it moves, the last one finished."""
        async for name, data in self._events(Call("GET", f"/v1/ingest/jobs/{job_id}/events", stream=True)):
            summary = job_event(name, data)
            if summary is not None:
                yield summary
                if name == "done":
                    return

    async def wait_for_job(
        self,
        job_id: uuid.UUID | str,
        *,
        on_progress: ProgressCallback | None = None,
        poll_s: float = 1.0,
        tally: IngestTally | None = None,
    ) -> JobOut:
        """The finished job, every file's outcome in it. Follows its event stream, and polls when the
        stream is cut (a server shutting down says so and the job goes on elsewhere)."""
        tally = tally or IngestTally(0, callback=on_progress)
        try:
            async for summary in self.job_events(job_id):
                tally.files_total = max(tally.files_total, summary.progress.files_total)
                tally.update(summary)
        except ApiError as exc:
            raise_for_job_event_failure(exc)
        except StreamEnded:
            pass
        while True:
            job = await self.job(job_id)
            tally.update(job)
            if job.status in FINISHED_JOB:
                return job
            await asyncio.sleep(poll_s)

    # --- documents -------------------------------------------------------------------------------------

    def documents(self, *, knowledge_base: str | None = None, page_size: int = 50) -> AsyncIterator[DocumentOut]:
        """The documents the credential may read, newest first, page after page."""
        return self._pages(DocumentPage, "/v1/documents", {"knowledge_base": knowledge_base, "limit": page_size})

    async def document(self, document_id: uuid.UUID | str) -> DocumentOut:
        return await self._model(DocumentOut, Call("GET", f"/v1/documents/{document_id}"))

    async def update_document(self, document_id: uuid.UUID | str, metadata: Mapping[str, Any]) -> DocumentOut:
        """Replace a document's metadata (no re-embedding)."""
        payload = body(DocumentPatch(metadata=dict(metadata)))
        return await self._model(DocumentOut, Call("PATCH", f"/v1/documents/{document_id}", json=payload))

    async def delete_document(self, document_id: uuid.UUID | str) -> None:
        await self._send(Call("DELETE", f"/v1/documents/{document_id}"))

    # --- knowledge bases -------------------------------------------------------------------------------

    async def knowledge_bases(self) -> list[KnowledgeBaseOut]:
        return parsed_list(KnowledgeBaseOut, await self._send(Call("GET", "/v1/knowledge-bases")))

    async def knowledge_base(self, ref: str) -> KnowledgeBaseOut:
        return await self._model(KnowledgeBaseOut, Call("GET", f"/v1/knowledge-bases/{ref}"))

    async def create_knowledge_base(
        self, name: str, *, description: str = "", settings: Mapping[str, Any] | None = None
    ) -> KnowledgeBaseOut:
        payload = body(
            KnowledgeBaseCreate.model_validate({"name": name, "description": description, **_settings(settings)})
        )
        return await self._model(KnowledgeBaseOut, Call("POST", "/v1/knowledge-bases", json=payload))

    async def delete_knowledge_base(self, ref: str) -> KnowledgeBaseOut:
        """Starts the deletion (202); the knowledge base's GET shows its progress until it is gone."""
        return await self._model(KnowledgeBaseOut, Call("DELETE", f"/v1/knowledge-bases/{ref}"))

    # --- API keys --------------------------------------------------------------------------------------

    async def api_keys(self) -> list[ApiKeyOut]:
        return parsed_list(ApiKeyOut, await self._send(Call("GET", "/v1/api-keys")))

    async def create_api_key(
        self,
        name: str,
        scopes: Sequence[str],
        *,
        knowledge_bases: Sequence[str] | None = None,
        expires_at: datetime | None = None,
        rate_limit_per_minute: int | None = None,
    ) -> ApiKeyCreated:
        """A new key (its `api_key` is shown in this response only)."""
        given = ApiKeyCreate.model_validate(
            {
                "name": name,
                "scopes": list(scopes),
                "knowledge_bases": list(knowledge_bases) if knowledge_bases is not None else None,
                "expires_at": expires_at,
                "rate_limit_per_minute": rate_limit_per_minute,
            }
        )
        return await self._model(ApiKeyCreated, Call("POST", "/v1/api-keys", json=body(given)))

    async def revoke_api_key(self, key_id: uuid.UUID | str) -> None:
        await self._send(Call("DELETE", f"/v1/api-keys/{key_id}"))


def _settings(settings: Mapping[str, Any] | None) -> dict[str, Any]:
    return {"settings": dict(settings)} if settings else {}
