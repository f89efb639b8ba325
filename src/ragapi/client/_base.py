"""What the sync and the async client share: configuration, the retry policy, how a request is built and a
response read, the server-sent events decoder, and the bookkeeping of a multi-file ingest. The two clients
only send (`Client._send`, `AsyncClient._send`) and loop."""

from __future__ import annotations

import json
import os
import random
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, TypeAdapter

from ragapi.answering.answer import Answer, AnswerEvent, Citation, Finished, Sources, Token
from ragapi.client._errors import ApiError, error_for, error_from_response, retry_after
from ragapi.ingestion.parsers import EXTENSIONS
from ragapi.schemas import (
    ConversationMessageIn,
    JobFile,
    JobOut,
    JobSummary,
    QueryRequest,
    SearchRequest,
)

M = TypeVar("M", bound=BaseModel)

USER_AGENT = "ragapi-python"
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
RETRIED_STATUSES = frozenset({429, 502, 503, 504})
FINISHED_JOB = frozenset({"succeeded", "failed", "partially_failed", "cancelled"})


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """When and how long to wait before sending a request again.

    Retried: a 429 (the rate limiter and the quota refuse before anything runs, so any request may be
    sent again), and for idempotent methods (GET, HEAD, OPTIONS, PUT, DELETE) a 502, 503, 504 or a
    connection lost mid-request; a connection that could not be opened is retried whatever the method.
    The API has no idempotency keys, so a POST that may have run is never sent twice.

    The wait is the response's Retry-After when it has one (plus up to `jitter_s`), else exponential
    backoff with full jitter (a random wait up to `backoff_s * 2**attempt`, at most `max_backoff_s`:
    "Exponential Backoff And Jitter", AWS Architecture Blog, 2015). A Retry-After beyond
    `max_retry_after_s` (a spent monthly quota) is raised at once rather than waited for.
    """

    max_retries: int = 3
    backoff_s: float = 0.5
    max_backoff_s: float = 30.0
    max_retry_after_s: float = 60.0
    jitter_s: float = 0.25

    def delay(
        self, attempt: int, method: str, response: httpx.Response | None, error: Exception | None
    ) -> float | None:
        """Seconds to wait before attempt `attempt + 1`, or None: do not retry."""
        if attempt >= self.max_retries:
            return None
        if error is not None:
            connect = isinstance(error, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)
            return self._backoff(attempt) if connect or method in IDEMPOTENT else None
        assert response is not None  # noqa: S101 - one of the two
        status = response.status_code
        if status not in RETRIED_STATUSES or (status != 429 and method not in IDEMPOTENT):
            return None
        after = retry_after(response.headers)
        if after is None:
            return self._backoff(attempt)
        if after > self.max_retry_after_s:
            return None
        return after + random.uniform(0, self.jitter_s)  # noqa: S311 - spreading retries, not a secret

    def _backoff(self, attempt: int) -> float:
        return random.uniform(0, min(self.max_backoff_s, self.backoff_s * 2**attempt))  # noqa: S311


@dataclass(frozen=True, slots=True)
class Config:
    base_url: str
    headers: dict[str, str]
    timeout: httpx.Timeout
    retry: RetryPolicy


def config(
    base_url: str | None,
    api_key: str | None,
    token: str | None,
    timeout: float | httpx.Timeout,
    retry: RetryPolicy | None,
) -> Config:
    """The client's settings; the URL and the key default to RAGAPI_URL and RAGAPI_API_KEY (or RAGAPI_TOKEN)."""
    url = base_url or os.environ.get("RAGAPI_URL")
    if not url:
        raise ValueError("give base_url (or set RAGAPI_URL), e.g. http://127.0.0.1:8000")
    if api_key is None and token is None:
        api_key = os.environ.get("RAGAPI_API_KEY") or None
        token = os.environ.get("RAGAPI_TOKEN") or None
    headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
    if api_key:
        headers["X-API-Key"] = api_key
    elif token:
        headers["Authorization"] = f"Bearer {token}"
    limits = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout, connect=min(timeout, 10.0))
    return Config(url.rstrip("/"), headers, limits, retry or RetryPolicy())


@dataclass(frozen=True, slots=True)
class Call:
    """One request, as both clients send it."""

    method: str
    path: str
    params: Mapping[str, Any] | None = None
    json: Any = None
    files: list[tuple[str, tuple[str, bytes, str]]] | None = None
    data: Mapping[str, str] | None = None
    stream: bool = False

    def request(self, client: httpx.Client | httpx.AsyncClient) -> httpx.Request:
        params = {k: v for k, v in (self.params or {}).items() if v is not None}
        headers = {"Accept": "text/event-stream"} if self.stream else None
        return client.build_request(
            self.method, self.path, params=params, json=self.json, files=self.files, data=self.data, headers=headers
        )


def checked(response: httpx.Response) -> httpx.Response:
    """The response, or its problem raised (read the body of a stream first)."""
    if response.is_success:
        return response
    raise error_from_response(response)


def parsed(model: type[M], response: httpx.Response) -> M:
    return model.model_validate_json(response.content)


def parsed_list(model: type[M], response: httpx.Response) -> list[M]:
    return TypeAdapter(list[model]).validate_json(response.content)  # type: ignore[valid-type]


def given(**fields: Any) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not None}


def query_body(
    query: str, knowledge_bases: Sequence[str] | None, top_k: int | None, filters: Mapping[str, Any] | None, cache: bool
) -> Any:
    kbs = list(knowledge_bases) if knowledge_bases is not None else None
    return body(QueryRequest(**given(query=query, knowledge_bases=kbs, top_k=top_k, filters=filters, cache=cache)))


def search_body(
    query: str, knowledge_bases: Sequence[str] | None, top_k: int | None, filters: Mapping[str, Any] | None
) -> Any:
    kbs = list(knowledge_bases) if knowledge_bases is not None else None
    return body(SearchRequest(**given(query=query, knowledge_bases=kbs, top_k=top_k, filters=filters)))


def ask_body(content: str, top_k: int | None, filters: Mapping[str, Any] | None, cache: bool) -> Any:
    return body(ConversationMessageIn(**given(content=content, top_k=top_k, filters=filters, cache=cache)))


def body(model: BaseModel) -> Any:
    """A request model as JSON, without the fields left unset (the server's defaults apply)."""
    return model.model_dump(mode="json", exclude_unset=True)


# --- server-sent events ----------------------------------------------------------------------------------


@dataclass(slots=True)
class SseDecoder:
    """Lines of an event stream to (event, data) pairs (the WHATWG parsing rules, less `id` and `retry`)."""

    name: str = "message"
    data: list[str] = field(default_factory=list)

    def line(self, text: str) -> tuple[str, str] | None:
        text = text.rstrip("\r\n")
        if not text:
            if not self.data:
                self.name = "message"
                return None
            event = (self.name, "\n".join(self.data))
            self.name, self.data = "message", []
            return event
        if text.startswith(":"):
            return None
        key, _, value = text.partition(":")
        value = value.removeprefix(" ")
        if key == "event":
            self.name = value
        elif key == "data":
            self.data.append(value)
        return None


def answer_event(name: str, data: str, answer_model: type[Answer] = Answer) -> AnswerEvent | None:
    """An answer stream's event as the server's own types: Sources, Token, Finished (an `error` event is
    raised as the ApiError it carries; unknown events are skipped)."""
    payload = json.loads(data)
    if name == "sources":
        citations = [Citation.model_validate(c) for c in payload["citations"]]
        return Sources(payload["query_id"], citations, payload["mode"], payload["model"])
    if name == "token":
        return Token(payload["text"])
    if name == "done":
        return Finished(answer_model.model_validate(payload))
    if name == "error":
        raise error_for(int(payload.get("status") or 500), payload)
    return None


def job_event(name: str, data: str) -> JobSummary | None:
    if name in ("progress", "done"):
        return JobSummary.model_validate_json(data)
    if name == "error":
        raise error_for(int(json.loads(data).get("status") or 500), json.loads(data))
    return None


# --- ingest ----------------------------------------------------------------------------------------------

SUPPORTED = frozenset(EXTENSIONS)


def files_in(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Files named, and the supported files under folders named (recursively, sorted)."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUPPORTED))
        elif path.is_file():
            found.append(path)
        else:
            raise FileNotFoundError(f"{path} does not exist")
    return found


def batches(files: Sequence[Path], max_files: int, max_bytes: int) -> Iterator[list[Path]]:
    """Files grouped into requests of at most `max_files` and, past one file, `max_bytes`."""
    group: list[Path] = []
    size = 0
    for path in files:
        length = path.stat().st_size
        if group and (len(group) >= max_files or size + length > max_bytes):
            yield group
            group, size = [], 0
        group.append(path)
        size += length
    if group:
        yield group


def multipart(group: Sequence[Path], metadata: Mapping[str, Any] | None) -> tuple[list[Any], dict[str, str]]:
    files = [
        ("files", (p.name, p.read_bytes(), EXTENSIONS.get(p.suffix.lower(), "application/octet-stream"))) for p in group
    ]
    return files, ({"metadata": json.dumps(dict(metadata))} if metadata else {})


@dataclass(frozen=True, slots=True)
class IngestProgress:
    """Where a whole ingest stands, summed over its jobs (one per request)."""

    files_total: int
    files_done: int
    files_failed: int
    chunks_done: int
    jobs_total: int
    jobs_done: int


ProgressCallback = Callable[[IngestProgress], None]


@dataclass(slots=True)
class IngestTally:
    """Progress of the jobs of one ingest, as their events arrive."""

    files_total: int
    jobs: dict[str, JobSummary] = field(default_factory=dict)
    callback: ProgressCallback | None = None

    def update(self, job: JobSummary) -> None:
        self.jobs[str(job.job_id)] = job
        if self.callback is not None:
            self.callback(self.progress())

    def progress(self) -> IngestProgress:
        jobs = list(self.jobs.values())
        return IngestProgress(
            files_total=self.files_total,
            files_done=sum(j.progress.files_done for j in jobs),
            files_failed=sum(j.progress.files_failed for j in jobs),
            chunks_done=sum(j.progress.chunks_done for j in jobs),
            jobs_total=len(jobs),
            jobs_done=sum(j.status in FINISHED_JOB for j in jobs),
        )


@dataclass(frozen=True, slots=True)
class IngestResult:
    """The jobs an ingest made: finished ones (`JobOut`, every file's outcome) when it waited, else as
    submitted (`JobSummary`)."""

    jobs: list[JobSummary]
    seconds: float

    @property
    def documents(self) -> list[JobFile]:
        return [d for j in self.jobs if isinstance(j, JobOut) for d in j.documents]

    @property
    def failed(self) -> list[JobFile]:
        return [d for d in self.documents if d.status == "failed"]

    def counts(self) -> dict[str, int]:
        """Documents per outcome: created, replaced, unchanged, duplicate, failed, cancelled."""
        out: dict[str, int] = {}
        for d in self.documents:
            out[d.status] = out.get(d.status, 0) + 1
        return out

    @property
    def chunks(self) -> int:
        return sum(d.chunks for d in self.documents)


def raise_for_job_event_failure(exc: ApiError) -> None:
    """A job's event stream ending with an `error` (a server shutting down) is followed by polling; other
    problems are the caller's."""
    if exc.status != 503:
        raise exc
