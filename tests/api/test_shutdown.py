"""Graceful shutdown of a real `ragapi serve`: SIGTERM while answers stream from a (local, latency-modelled)
OpenAI-compatible LLM. Streams that finish within SHUTDOWN_TIMEOUT_S finish; those that would not end with
a terminal `error` event; the listening socket closes at once; job-progress streams end right away."""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.helpers import iter_sse
from tests.services import ApiServer, LlmServer

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def slow_llm() -> Iterator[str]:
    """20 tokens per second after 0.2 s, so a 300-token answer takes 15 s."""
    server = LlmServer(ttft_s=0.2, tokens_per_s=20, tokens=300)
    yield server.url
    server.stop()


@dataclass
class Stream:
    """One SSE response read on a thread, each event stamped with when it arrived."""

    events: list[tuple[float, str, Any]] = field(default_factory=list)
    first: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None

    def read(self, method: str, url: str, **kwargs: Any) -> threading.Thread:
        def run() -> None:
            try:
                with httpx.stream(method, url, timeout=60, **kwargs) as response:
                    assert response.status_code == 200, response.read()
                    for name, data in iter_sse(response):
                        self.events.append((time.monotonic(), name, data))
                        self.first.set()
            except BaseException as exc:  # reported by the test
                self.error = exc
                self.first.set()

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        return thread

    @property
    def names(self) -> list[str]:
        return [name for _, name, _ in self.events]


def started(tmp_path: Path, llm_url: str, timeout_s: float, **env: str) -> tuple[ApiServer, dict[str, str]]:
    server = ApiServer(
        tmp_path, OPENAI_API_KEY="sk-test", OPENAI_BASE_URL=llm_url, SHUTDOWN_TIMEOUT_S=str(timeout_s), **env
    )
    server.start()
    tenant = json.loads(server.cli("tenants", "create", "Drain Co", "--json"))
    memo = tmp_path / "vault.txt"
    memo.write_text("The vault door is painted blue and opens at nine.")
    server.cli("ingest", str(memo), "--tenant", tenant["tenant_id"])  # in-process: needs no ingestion worker
    return server, {"X-API-Key": tenant["api_key"]}


def test_sigterm_lets_a_stream_finish_and_closes_the_door(tmp_path: Path, slow_llm: str) -> None:
    server, headers = started(tmp_path, slow_llm, timeout_s=40)
    stream = Stream()
    question = {"query": "What colour is the vault door?", "stream": True}
    reader = stream.read("POST", server.url + "/v1/query", headers=headers, json=question)
    assert stream.first.wait(30) and stream.error is None
    while stream.names.count("token") < 3:  # the LLM is streaming
        time.sleep(0.05)
    assert server.process is not None
    server.process.send_signal(signal.SIGTERM)
    signalled = time.monotonic()

    time.sleep(0.5)
    with pytest.raises(httpx.ConnectError):  # no new connections while draining
        httpx.get(server.url + "/healthz", timeout=2)

    reader.join(40)
    assert stream.error is None
    assert stream.names[0] == "sources" and stream.names[-1] == "done"
    done = stream.events[-1][2]
    assert done["answer"].count("[1].") >= 40  # all 300 tokens, about 15 s after the signal
    assert stream.events[-1][0] - signalled > 10
    assert server.process.wait(timeout=30) in (0, -signal.SIGTERM)


def test_streams_still_open_at_the_deadline_end_with_a_terminal_event(tmp_path: Path, slow_llm: str) -> None:
    server, headers = started(tmp_path, slow_llm, timeout_s=2, INGEST_WORKER_ENABLED="false")
    question = {"query": "What colour is the vault door?", "stream": True}
    answer, langserve = Stream(), Stream()
    readers = [
        answer.read("POST", server.url + "/v1/query", headers=headers, json=question),
        langserve.read("POST", server.url + "/v1/rag/stream", headers=headers, json={"input": {"query": "vault"}}),
    ]
    # With no ingestion worker the job stays queued, so its progress stream would never end by itself.
    queued = httpx.post(server.url + "/v1/ingest", headers=headers, json={"documents": [{"text": "Later."}]})
    progress = Stream()
    readers.append(progress.read("GET", server.url + queued.json()["links"]["events"], headers=headers))
    assert answer.first.wait(30) and langserve.first.wait(30) and progress.first.wait(30)
    assert server.process is not None
    server.process.send_signal(signal.SIGTERM)
    signalled = time.monotonic()
    for reader in readers:
        reader.join(30)

    for stream in (answer, langserve, progress):
        assert stream.error is None, stream.error
        at, name, data = stream.events[-1]
        assert name == "error" and data["status"] == 503, stream.events[-1]
    # The job stream lets go at once; answers get the full SHUTDOWN_TIMEOUT_S.
    assert progress.events[-1][0] - signalled < 1.5
    for stream in (answer, langserve):
        assert 1.8 < stream.events[-1][0] - signalled < 5
    assert "token" in answer.names and "done" not in answer.names
    assert server.process.wait(timeout=30) in (0, -signal.SIGTERM)
    assert time.monotonic() - signalled < 15
