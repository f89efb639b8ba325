"""A stored conversation as its owner may read it now (`answering.conversations.redaction`): the rules on
stored messages; tests/api/test_permissions.py reads a real conversation after a real revocation."""

from __future__ import annotations

import uuid
from typing import Any

from ragapi.answering.conversations.models import ConversationMessage
from ragapi.answering.conversations.redaction import WITHHELD, as_read, hides

TENANT, CONVERSATION = uuid.uuid4(), uuid.uuid4()
KEPT, GONE = uuid.uuid4(), uuid.uuid4()


def cite(document: uuid.UUID) -> dict[str, Any]:
    return {"n": 1, "document_id": str(document), "chunk_id": str(uuid.uuid4()), "title": "t", "snippet": "s"}


def message(ord_: int, role: str, content: str, **fields: Any) -> ConversationMessage:
    return ConversationMessage(
        tenant_id=TENANT, conversation_id=CONVERSATION, ord=ord_, role=role, content=content, **fields
    )


def test_an_answer_citing_a_document_no_longer_readable_is_withheld_and_what_the_model_made_of_it() -> None:
    stored = [
        message(0, "user", "budget?", standalone_question="budget?", rewrite="none"),
        message(1, "assistant", "Eleven million [1], and the canteen [2].", citations=[cite(GONE), cite(KEPT)]),
        message(2, "user", "and next year?", standalone_question="eleven million budget next year?", rewrite="llm"),
        message(3, "assistant", "The canteen opens at eight [1].", citations=[cite(KEPT)]),
        message(4, "user", "and the year after?", standalone_question="budget? and the year after?", rewrite="offline"),
        message(5, "assistant", "I found nothing about that.", citations=[]),
    ]
    shown, withheld = as_read(stored, {KEPT})
    assert withheld == frozenset({1})
    assert shown[1].content == WITHHELD and [c["document_id"] for c in shown[1].citations] == [str(KEPT)]
    assert shown[2].content == "and next year?" and shown[2].standalone_question is None  # the model saw [1]
    assert shown[4] is stored[4]  # the offline rewrite carries the user's own questions only
    assert shown[3] is stored[3] and shown[5] is stored[5] and shown[0] is stored[0]
    assert stored[1].content.startswith("Eleven million")  # what is stored stays: access given back shows it
    assert as_read(stored, {KEPT, GONE}) == (stored, frozenset())
    # a citation that names no readable id counts as hidden
    assert hides([{"document_id": "not an id"}], {KEPT}) and not hides([], set())
