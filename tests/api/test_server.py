"""`ragapi serve` as a user runs it: a real uvicorn process on a loopback port, a real socket,
SSE read as it streams, LangServe's RemoteRunnable, graceful stop, and data that survives a restart."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.helpers import sse_events
from tests.documents import pdf_bytes
from tests.services import ApiServer as Server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(tmp_path_factory.mktemp("served"))
    srv.start()
    yield srv
    if srv.process and srv.process.poll() is None:
        srv.stop()


def test_quick_start_flow(server: Server) -> None:
    tenant = json.loads(server.cli("tenants", "create", "Quickstart Inc", "--json"))
    headers = {"X-API-Key": tenant["api_key"]}
    pdf = pdf_bytes(["Travel policy.", "Economy class is required for flights under 6 hours."], title="Travel Policy")
    upload = httpx.post(
        server.url + "/v1/ingest?wait=true", headers=headers, files={"files": ("travel.pdf", pdf, "application/pdf")}
    )
    assert upload.status_code == 200, upload.text
    question = {"query": "Which class for flights under 6 hours?"}

    answer = httpx.post(server.url + "/v1/query", headers=headers, json=question).json()
    assert "Economy class" in answer["answer"] and answer["citations"][0]["page"] == 2

    with httpx.stream("POST", server.url + "/v1/query", headers=headers, json={**question, "stream": True}) as stream:
        assert stream.headers["x-accel-buffering"] == "no"
        body = "".join(stream.iter_text())
    events = sse_events(body)
    assert events[0][0] == "sources" and events[-1][0] == "done"
    assert events[0][1]["citations"][0]["title"] == "Travel Policy"

    rag = httpx.post(server.url + "/v1/rag/invoke", headers=headers, json={"input": question}).json()
    assert "Economy class" in rag["output"]["answer"]


def test_remote_runnable_client(server: Server) -> None:
    from langchain_core.messages import AIMessage, HumanMessage
    from langserve import RemoteRunnable

    tenant = json.loads(server.cli("tenants", "create", "Remote Co", "--json"))
    headers = {"X-API-Key": tenant["api_key"]}
    httpx.post(
        server.url + "/v1/ingest?wait=true",
        headers=headers,
        json={"documents": [{"text": "The VPN endpoint is vpn.example.com."}]},
    )
    remote = RemoteRunnable(server.url + "/v1/rag/", headers=headers)
    result = remote.invoke({"query": "What is the VPN endpoint?"})
    assert "vpn.example.com" in result["answer"]
    pieces = list(remote.stream({"query": "What is the VPN endpoint?"}))
    assert "citations" in pieces[0] and any("vpn.example.com" in p.get("answer", "") for p in pieces)
    history = [HumanMessage("What is the VPN endpoint?"), AIMessage("vpn.example.com [1]")]
    followed = remote.invoke({"query": "And what is its port?", "chat_history": history})
    assert followed["standalone_question"] == "What is the VPN endpoint? And what is its port?"
    assert "vpn.example.com" in followed["answer"]


def test_x_forwarded_for_from_an_untrusted_peer_does_not_dodge_the_ip_limit(server: Server) -> None:
    """No TRUSTED_PROXIES: a client on loopback rotating X-Forwarded-For is still one address."""
    statuses = [
        httpx.post(
            server.url + "/v1/auth/forgot-password",
            json={"email": f"nobody{n}@example.com"},
            headers={"X-Forwarded-For": f"203.0.113.{n}"},
        ).status_code
        for n in range(12)  # IP_RATE_LIMIT_PER_MINUTE is 10
    ]
    assert statuses[:10] == [202] * 10 and statuses[10:] == [429, 429]


def test_data_survives_a_restart(server: Server) -> None:
    tenant = json.loads(server.cli("tenants", "create", "Durable Ltd", "--json"))
    headers = {"X-API-Key": tenant["api_key"]}
    httpx.post(
        server.url + "/v1/ingest?wait=true",
        headers=headers,
        json={"documents": [{"text": "Durable fact: the vault is blue."}]},
    )
    assert server.stop() in (0, -signal.SIGTERM)  # uvicorn re-raises SIGTERM after a graceful shutdown
    # the embedded PostgreSQL stopped with the service (it removes its pid file when shut down cleanly)
    assert not (Path(server.env["DATA_DIR"]) / "pgdata" / "postmaster.pid").exists()
    server.start()
    answer = httpx.post(server.url + "/v1/query", headers=headers, json={"query": "what colour is the vault"}).json()
    assert "blue" in answer["answer"]


def test_a_job_survives_killing_the_server(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Embedded mode: kill -9 `ragapi serve` mid-job; after a restart the job finishes, every document once."""
    server = Server(tmp_path_factory.mktemp("killed"), INGEST_LEASE_S="3", INGEST_TASK_FILES="10")
    server.start()
    tenant = json.loads(server.cli("tenants", "create", "Crash Co", "--json"))
    headers = {"X-API-Key": tenant["api_key"]}
    documents = [{"text": f"Crash memo {n}: the backup runs at {n % 24}:00 every day."} for n in range(300)]
    accepted = httpx.post(
        server.url + "/v1/ingest", headers=headers, json={"documents": documents[:100]}, timeout=30
    ).json()
    jobs = [accepted["job_id"]] + [
        httpx.post(server.url + "/v1/ingest", headers=headers, json={"documents": documents[n : n + 100]}).json()[
            "job_id"
        ]
        for n in (100, 200)
    ]
    progress = _wait_for(server, headers, jobs[0], lambda job: job["progress"]["files_done"] >= 20)
    assert progress["finished_at"] is None
    assert server.process is not None
    server.process.send_signal(signal.SIGKILL)
    server.process.wait(timeout=30)

    server.start()
    finished = [_wait_for(server, headers, job_id, lambda job: job["finished_at"] is not None) for job_id in jobs]
    assert [job["status"] for job in finished] == ["succeeded"] * 3
    assert {d["status"] for job in finished for d in job["documents"]} == {"created"}
    listed = httpx.get(server.url + "/v1/documents?limit=100", headers=headers).json()
    assert len(listed["items"]) == 100 and listed["next_cursor"]
    total, cursor = 0, ""
    while True:
        page = httpx.get(server.url + f"/v1/documents?limit=100{cursor}", headers=headers).json()
        total += len(page["items"])
        if not page["next_cursor"]:
            break
        cursor = f"&cursor={page['next_cursor']}"
    assert total == 300
    server.stop()
    # the SIGKILL'd process never let go of the embedded server, so it outlives the service (README):
    # stop it as an operator would
    postmaster = Path(server.env["DATA_DIR"]) / "pgdata" / "postmaster.pid"
    os.kill(int(postmaster.read_text().split()[0]), signal.SIGINT)  # PostgreSQL's fast shutdown


def _wait_for(server: Server, headers: dict[str, str], job_id: str, done: Callable[[dict[str, Any]], bool]) -> Any:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        job = httpx.get(server.url + f"/v1/ingest/jobs/{job_id}", headers=headers).json()
        if done(job):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} never reached the expected state: {job}")
