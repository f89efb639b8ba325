"""`ragapi.client.AsyncClient` end to end against `ragapi serve`: the same surface as the sync client, awaited."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from ragapi.client import AsyncClient, Finished, IngestProgress, NotFound, Sources, Token
from ragapi.schemas import ConversationAnswer
from tests.conftest import Served

pytestmark = pytest.mark.slow


async def test_ingest_ask_stream_converse_and_page(served: Served) -> None:
    tenant = served.tenant("sdk-async")
    seen: list[IngestProgress] = []
    documents = [
        {"text": f"Meeting room {n} is on floor {n + 3} and seats {n * 2 + 4} people.", "title": f"Room {n}"}
        for n in range(1, 6)
    ]
    async with AsyncClient(served.url, api_key=tenant.api_key) as rag:
        result = await rag.ingest_documents(documents, on_progress=seen.append, batch_documents=2)
        assert len(result.jobs) == 3 and result.counts() == {"created": 5}
        assert seen[-1].files_done == 5 and seen[-1].jobs_done == 3

        answer = await rag.query("Which floor is meeting room 4 on?", cache=False)
        assert "floor 7" in answer.answer and answer.citations[0].title == "Room 4"
        events = [e async for e in rag.stream("How many people does meeting room 2 seat?")]
        assert isinstance(events[0], Sources) and isinstance(events[-1], Finished)
        assert "".join(e.text for e in events if isinstance(e, Token)) == events[-1].answer.answer
        assert "8 people" in events[-1].answer.answer

        conversation = await rag.create_conversation()
        await rag.ask(conversation.id, "Which floor is meeting room 5 on?")
        followed = [e async for e in rag.stream_ask(conversation.id, "And how many people does it seat?")]
        final = followed[-1]
        assert isinstance(final, Finished) and isinstance(final.answer, ConversationAnswer)
        assert "14 people" in final.answer.answer

        for _ in range(2):
            await rag.create_conversation(title="another")
        listed = [c.id async for c in rag.conversations(page_size=2)]  # 2 pages
        assert len(listed) == 3 and conversation.id in listed
        assert len([d async for d in rag.documents(page_size=2)]) == 5

        passages = (await rag.search("meeting room 3", top_k=2)).passages
        assert passages[0].title == "Room 3" and passages[0].text.startswith("Meeting room 3")
        assert len(passages) == 2 and [p.n for p in passages] == [1, 2]

        with pytest.raises(NotFound) as missing:
            await rag.job(uuid.uuid4())
        assert missing.value.request_id


async def test_concurrent_questions_share_one_client(served: Served) -> None:
    tenant = served.tenant("sdk-async-concurrent")
    async with AsyncClient(served.url, api_key=tenant.api_key) as rag:
        await rag.ingest_documents([{"text": "The fire assembly point is the north car park."}])
        answers = await asyncio.gather(*(rag.query("Where is the fire assembly point?") for _ in range(4)))
    assert all("north car park" in a.answer for a in answers)
