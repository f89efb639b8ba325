"""`ragapi.client.Client` end to end against `ragapi serve` over real HTTP: a folder ingested with progress,
questions, streaming, a conversation, feedback, analytics, keys, pagination, typed errors, isolation."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from ragapi.client import (
    Client,
    Finished,
    Forbidden,
    IngestProgress,
    InvalidInput,
    NotFound,
    Sources,
    Token,
    Unauthenticated,
)
from ragapi.schemas import ConversationAnswer
from tests.client.corpus import PAGES, write_corpus
from tests.conftest import Served, TenantHandle

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tenant(served: Served) -> TenantHandle:
    return served.tenant("sdk-sync")


@pytest.fixture(scope="module")
def rag(served: Served, tenant: TenantHandle) -> Iterator[Client]:
    with Client(served.url, api_key=tenant.api_key) as client:
        yield client


@pytest.fixture(scope="module")
def ingested(rag: Client, tmp_path_factory: pytest.TempPathFactory) -> tuple[object, list[IngestProgress]]:
    seen: list[IngestProgress] = []
    folder = write_corpus(tmp_path_factory.mktemp("handbook"))
    result = rag.ingest_folder(folder, on_progress=seen.append, batch_files=3)
    return result, seen


def test_a_folder_is_ingested_in_jobs_with_progress_and_waited_for(ingested) -> None:  # type: ignore[no-untyped-def]
    result, seen = ingested
    assert len(result.jobs) == 3  # 7 supported files, 3 per request
    assert all(job.status == "succeeded" for job in result.jobs)
    assert result.counts() == {"created": len(PAGES)} and not result.failed
    assert sorted(d.filename for d in result.documents) == sorted(Path(name).name for name in PAGES)
    assert result.chunks >= len(PAGES)
    done = [p.files_done for p in seen]
    assert done == sorted(done), "progress never goes back"
    assert seen[-1].files_total == len(PAGES) and seen[-1].files_done == len(PAGES)
    assert seen[-1].jobs_done == seen[-1].jobs_total == 3


def test_query_and_stream(rag: Client, ingested) -> None:  # type: ignore[no-untyped-def]
    answer = rag.query("How many vacation days does an employee get?")
    assert "27 vacation days" in answer.answer
    assert answer.citations[0].title == "vacation" or "Vacation" in answer.citations[0].title

    events = list(rag.stream("Where is the coffee machine?", cache=False))
    assert isinstance(events[0], Sources) and isinstance(events[-1], Finished)
    tokens = [e.text for e in events if isinstance(e, Token)]
    assert tokens and "".join(tokens) == events[-1].answer.answer
    assert "floor 2" in events[-1].answer.answer
    assert events[0].citations == events[-1].answer.citations


def test_a_conversation_follows_up_and_streams(rag: Client, ingested) -> None:  # type: ignore[no-untyped-def]
    conversation = rag.create_conversation(title="VPN questions")
    first = rag.ask(conversation.id, "What is the VPN endpoint?")
    assert "vpn.example.com" in first.answer
    events = list(rag.stream_ask(conversation.id, "And which port does it listen on?"))
    final = events[-1]
    assert isinstance(final, Finished) and isinstance(final.answer, ConversationAnswer)
    assert "VPN" in final.answer.standalone_question and "4433" in final.answer.answer
    detail = rag.conversation(conversation.id)
    assert [m.role for m in detail.messages] == ["user", "assistant", "user", "assistant"]
    assert conversation.id in {c.id for c in rag.conversations()}
    rag.delete_conversation(conversation.id)
    with pytest.raises(NotFound):
        rag.conversation(conversation.id)


def test_feedback_and_analytics(rag: Client, ingested) -> None:  # type: ignore[no-untyped-def]
    answer = rag.query("How long is parental leave?")
    given = rag.feedback(answer.query_id, 1, comment="exactly right")
    again = rag.feedback(answer.query_id, -1)
    assert given.feedback_id == again.feedback_id and (given.score, again.score) == (1.0, 0.0)
    report = rag.analytics()
    assert report["queries"] >= 2 and report["ingest"]["documents"] == len(PAGES)
    assert report["feedback"]["total"] == 1 and report["feedback"]["negative"] == 1


def test_documents_and_jobs_page_after_page(rag: Client, ingested) -> None:  # type: ignore[no-untyped-def]
    documents = list(rag.documents(page_size=2))  # 4 pages
    assert len(documents) == len(PAGES) == len({d.document_id for d in documents})
    jobs = list(rag.jobs(page_size=1))
    assert len(jobs) == 3 and all(j.progress.files_done == j.progress.files_total for j in jobs)
    one = rag.document(documents[0].document_id)
    assert one.title == documents[0].title
    updated = rag.update_document(one.document_id, {"team": "it"})
    assert updated.metadata == {"team": "it"}


def test_problems_are_typed_exceptions_with_their_details(served: Served, rag: Client, ingested) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(NotFound) as missing:
        rag.document(uuid.uuid4())
    error = missing.value
    assert error.status == 404 and error.title == "Not found" and error.detail
    assert error.type == served.url + "/problems/not-found" and error.request_id  # a page of the server
    with pytest.raises(InvalidInput) as invalid:
        list(rag.documents(page_size=0))
    assert invalid.value.status == 422 and invalid.value.errors[0]["loc"] == ["query", "limit"]
    with pytest.raises(InvalidInput, match="MAX_QUERY_CHARS"):
        rag.query("why " * 1000)


def test_keys_are_made_used_and_revoked(served: Served, rag: Client, ingested) -> None:  # type: ignore[no-untyped-def]
    created = rag.create_api_key("reader", ["query"], rate_limit_per_minute=100)
    assert created.api_key.startswith("rag_") and created.scopes == ["query"]
    assert created.id in {k.id for k in rag.api_keys()}
    with Client(served.url, api_key=created.api_key) as reader:
        assert "4433" in reader.query("Which port does the VPN listen on?").answer
        rag.revoke_api_key(created.id)
        with pytest.raises(Unauthenticated) as refused:
            reader.query("Which port does the VPN listen on?")
        assert refused.value.status == 401


def test_another_tenant_sees_nothing(served: Served, rag: Client, ingested) -> None:  # type: ignore[no-untyped-def]
    result, _ = ingested
    mine = result.documents[0].document_id
    with Client(served.url, api_key=served.tenant("sdk-other").api_key) as other:
        assert list(other.documents()) == [] and list(other.jobs()) == []
        assert other.query("How many vacation days does an employee get?").citations == []
        assert other.search("vacation days").passages == []
        with pytest.raises(NotFound):
            other.document(mine)
        with pytest.raises(NotFound):
            other.job(result.jobs[0].job_id)


def test_a_users_access_token_works_as_a_key_does(served: Served, rag: Client, ingested) -> None:  # type: ignore[no-untyped-def]
    import httpx

    email = f"reader-{uuid.uuid4().hex[:8]}@example.com"  # addresses are unique across the served tenants
    made = httpx.post(
        served.url + "/v1/users",
        headers={"X-API-Key": rag.config.headers["X-API-Key"]},
        json={"email": email, "password": "a long enough password", "role": "member"},
    )
    assert made.status_code == 201, made.text
    tokens = httpx.post(
        served.url + "/v1/auth/login", data={"username": email, "password": "a long enough password"}
    ).json()
    with Client(served.url, token=tokens["access_token"]) as member:
        assert "27 vacation days" in member.query("How many vacation days does an employee get?").answer
        with pytest.raises(Forbidden):
            member.api_keys()  # a member is no admin
