"""The analytics report, computed in PostgreSQL, narrowed to one knowledge base: the questions that
searched it (alone or with others), their feedback, and nothing of another knowledge base or tenant."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text

from ragapi.analytics.query_log import QueryLogWriter
from ragapi.analytics.report import Window, report
from ragapi.core.database import Database
from ragapi.core.settings import Settings
from tests.conftest import MakeTenant, TenantHandle


def question(tenant_id: uuid.UUID, query: str, *kbs: uuid.UUID, status: str = "ok") -> dict[str, Any]:
    return {
        "id": uuid.uuid4(),
        "tenant_id": tenant_id,
        "knowledge_base_ids": list(kbs),
        "principal_kind": "key",
        "principal_id": uuid.uuid4(),
        "surface": "rest",
        "created_at": datetime.now(UTC) - timedelta(minutes=5),
        "status": status,
        "cache": "none",
        "query": query,
        "sources": 1,
        "top_score": 0.9,
        "total_ms": 10.0,
        "chunk_ids": [],
        "cited_chunk_ids": [],
    }


async def test_a_report_of_one_knowledge_base(
    db: Database, settings: Settings, tenant: TenantHandle, make_tenant: MakeTenant
) -> None:
    wiki, handbook = uuid.uuid4(), uuid.uuid4()
    other = await make_tenant()
    rows = [
        question(tenant.tenant_id, "Where is the wiki?", wiki),
        question(tenant.tenant_id, "Where is the wiki?", wiki),
        question(tenant.tenant_id, "Who edits the wiki?", wiki, status="error"),
        question(tenant.tenant_id, "How many days off?", handbook),
        question(tenant.tenant_id, "Wiki or handbook?", wiki, handbook),
        question(other.tenant_id, "Another tenant's wiki question", wiki),  # the same id elsewhere: not counted
    ]
    writer = QueryLogWriter(db, settings)
    for row in rows:
        writer.submit(row)
    await writer.flush()
    async with db.admin_session() as session:
        for row, score in ((rows[1], 0.0), (rows[3], 1.0)):
            await session.execute(
                text(
                    "INSERT INTO feedback (id, tenant_id, query_id, principal_kind, principal_id, score) "
                    "VALUES (:id, :t, :q, 'key', :p, :s)"
                ),
                {"id": uuid.uuid4(), "t": tenant.tenant_id, "q": row["id"], "p": uuid.uuid4(), "s": score},
            )
    end = datetime.now(UTC)
    start = end - timedelta(days=1)

    def window(kb: uuid.UUID | None) -> Window:
        return Window(start, end, "hour", tenant.tenant_id, None, kb)

    whole = await report(db, window(None), settings.analytics_low_score)
    assert (whole["queries"], whole["feedback"]["total"]) == (5, 2)

    only_wiki = await report(db, window(wiki), settings.analytics_low_score)
    assert (only_wiki["queries"], only_wiki["errors"]) == (4, 1)  # the one that searched both counts here too
    assert {q["query"]: q["count"] for q in only_wiki["top_queries"]} == {
        "where is the wiki?": 2,
        "who edits the wiki?": 1,
        "wiki or handbook?": 1,
    }
    assert only_wiki["feedback"] == {"total": 1, "positive": 0, "negative": 1, "positive_ratio": 0.0}
    assert [q["query"] for q in only_wiki["poorly_answered"]] == ["Where is the wiki?"]  # rated bad

    only_handbook = await report(db, window(handbook), settings.analytics_low_score)
    assert only_handbook["queries"] == 2
    assert only_handbook["feedback"]["positive"] == 1
    assert sum(bucket["queries"] for bucket in only_handbook["series"]) == 2
