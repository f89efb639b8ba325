"""A stored conversation as its owner may read it now: what was answered from documents they can no
longer read is not shown again.

An answer is kept with its citations (each names its document). When the conversation is read, or its
answers are handed to the condenser for a follow-up, each citation of a document the reader's view does
not read now (its access changed, its reader left a group, it was deleted) is dropped, and the answer's
text, which may quote or paraphrase such a passage and cannot be taken apart sentence by sentence, is
withheld behind a notice: the citations still readable stay, and asking again answers from what the
reader may read. A question the chat model made standalone after such an answer may carry what the answer
said: its standalone form is withheld too (the question as asked stays; the offline rewrite uses earlier
questions only). The change applies from the next read, like every change of access.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from ragapi.answering.conversations.models import ConversationMessage

WITHHELD = (
    "This answer is withheld: it cited documents you can no longer read (their access changed, or they were "
    "deleted). Ask again for an answer from what you can read."
)


def cited_documents(citations: Iterable[dict[str, Any]]) -> set[uuid.UUID]:
    """The documents stored citations name (a citation without a readable id names none)."""
    found: set[uuid.UUID] = set()
    for citation in citations:
        try:
            found.add(uuid.UUID(str(citation.get("document_id"))))
        except ValueError:
            continue
    return found


def _readable(citation: dict[str, Any], readable: set[uuid.UUID]) -> bool:
    return bool(cited_documents([citation]) & readable)


def hides(citations: Sequence[dict[str, Any]], readable: set[uuid.UUID]) -> bool:
    """Whether an answer with these citations cites a document outside `readable`."""
    return not all(_readable(c, readable) for c in citations)


CONDENSED_BY_MODEL = "llm"  # `conversations.service.LLM`


def as_read(
    messages: Sequence[ConversationMessage], readable: set[uuid.UUID]
) -> tuple[list[ConversationMessage], frozenset[int]]:
    """The messages as a reader of `readable` sees them, oldest first, and the `ord` of each answer
    withheld."""
    shown: list[ConversationMessage] = []
    withheld: set[int] = set()
    for message in messages:
        if message.role == "assistant":
            kept = redacted(message, readable)
            if kept is not message:
                withheld.add(message.ord)
            shown.append(kept)
        elif withheld and message.rewrite == CONDENSED_BY_MODEL and message.standalone_question is not None:
            shown.append(ConversationMessage(**{**message.model_dump(), "standalone_question": None}))
        else:
            shown.append(message)
    return shown, frozenset(withheld)


def redacted(message: ConversationMessage, readable: set[uuid.UUID]) -> ConversationMessage:
    """The message as a reader of `readable` sees it: unchanged, or (an answer citing anything else) a copy
    with those citations dropped and the notice for its text. The stored row is left as it is: a grant
    given back shows the answer again."""
    if message.role != "assistant" or not hides(message.citations, readable):
        return message
    kept = [c for c in message.citations if _readable(c, readable)]
    return ConversationMessage(**{**message.model_dump(), "content": WITHHELD, "citations": kept})
