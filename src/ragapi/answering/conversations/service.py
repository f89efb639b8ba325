"""Conversations, the use case: a principal's multi-turn questions, each made standalone from the questions
before it, answered by the answering service like any other question, and kept with their answers.

    ask(tenant, conversation, question)
        the conversation's last CONVERSATION_HISTORY_TURNS questions read (NotFound unless the caller owns it;
        Conflict when it is full, before anything is charged)
        → `follow_up`: the question rewritten into a standalone one, and the `AnswerRequest` whose question
          is that text (so the answer cache, retrieval and the query log all see what was searched) and
          which carries the chat model's tokens condensing it cost (the answer's usage counts them)
        → admitted (the quota charged) → the user's message stored
        → the answer's events; the assistant's message stored when `Finished` comes by, before it is passed
          on (a stream the client abandons before then keeps the question only)

`follow_up` is the one place a follow-up is rewritten: the REST and SSE routes, the CLI's `ragapi chat`
and LangServe's `chat_history` all go through it.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from ragapi.answering.answer import Answer, AnswerEvent, Finished
from ragapi.answering.condense import OfflineCondenser
from ragapi.answering.conversations.models import Conversation, ConversationMessage, NewMessage, Owner
from ragapi.answering.conversations.redaction import as_read, cited_documents
from ragapi.answering.conversations.store import ConversationStore
from ragapi.answering.question import AnswerRequest, Condensing, Question, Surface
from ragapi.answering.service import AnswerService
from ragapi.core import inputs
from ragapi.core.errors import Conflict, NotFound
from ragapi.core.settings import Settings
from ragapi.generation.condense import Condenser
from ragapi.generation.condense import Turn as Exchange
from ragapi.ingestion.knowledge_bases import KnowledgeBaseService
from ragapi.retrieval.knowledge_bases import parse_refs
from ragapi.tenants.context import TenantContext

AS_ASKED = "none"  # the question stood on its own (or there was nothing before it): searched as asked
OFFLINE = "offline"  # terms of the earlier questions carried over (`ragapi.answering.rewrite`)
LLM = "llm"  # the chat model condensed it (`ragapi.generation.condense`)
_REWRITES = {"unchanged": AS_ASKED, "offline": OFFLINE, "llm": LLM}


@dataclass(frozen=True, slots=True)
class Standalone:
    text: str  # what is searched
    rewrite: str  # how it was made: AS_ASKED, OFFLINE or LLM


@dataclass(frozen=True, slots=True)
class FollowUp:
    request: AnswerRequest  # its question's text is the standalone question
    standalone: Standalone


@dataclass(frozen=True, slots=True)
class ConversationView:
    conversation: Conversation
    messages: list[ConversationMessage]  # oldest first, as the reader may read them now (`redaction`)
    withheld: frozenset[int] = frozenset()  # the `ord` of each answer whose text is withheld


@dataclass(frozen=True, slots=True)
class Turn:
    """A question asked in a conversation: stored, admitted, and its answer's events to come."""

    conversation_id: uuid.UUID
    question: ConversationMessage
    standalone: Standalone
    events: AsyncIterator[AnswerEvent]


class ConversationService:
    def __init__(
        self,
        store: ConversationStore,
        answers: AnswerService,
        knowledge_bases: KnowledgeBaseService,
        settings: Settings,
        condenser: Condenser | None = None,
    ) -> None:
        """`condenser`: how follow-ups are made standalone (`build_condenser`); default the offline rewrite."""
        self.store = store
        self.answers = answers
        self.knowledge_bases = knowledge_bases
        self.settings = settings
        self.condenser = condenser or OfflineCondenser()
        self._offline = OfflineCondenser()

    async def follow_up(
        self, tenant: TenantContext, surface: Surface, question: Question, history: Sequence[Exchange]
    ) -> FollowUp:
        """The request that answers `question` after the earlier exchanges in `history` (oldest first):
        its text rewritten into a standalone question from the last CONVERSATION_HISTORY_TURNS of them by
        the condenser (the chat model when one is configured, else the offline rewrite)."""
        turns = self.settings.conversation_history_turns
        recent = list(history)[-turns:] if turns > 0 else []
        condensed = await self.condenser.condense(recent, question.text) if recent else None
        if condensed is not None and not self._usable(condensed.question):  # a model's reply is input too
            offline = await self._offline.condense(recent, question.text)
            condensed = dataclasses.replace(offline, usage=condensed.usage, model=condensed.model)  # still spent
        text = condensed.question if condensed is not None else question.text
        standalone = Standalone(text, _REWRITES[condensed.method] if condensed is not None else AS_ASKED)
        spent = None
        if condensed is not None and condensed.model is not None:
            used = condensed.usage
            spent = Condensing(condensed.model, used.prompt_tokens, used.completion_tokens, used.estimated)
        request = AnswerRequest(tenant, surface, dataclasses.replace(question, text=text), spent)
        return FollowUp(request, standalone)

    def _usable(self, text: str) -> bool:
        """What a question must be (`Question.parse`): storable, not blank, within MAX_QUERY_CHARS."""
        return bool(text.strip()) and len(text) <= self.settings.max_query_chars and inputs.problem(text) is None

    async def create(self, tenant: TenantContext, title: str | None, knowledge_bases: Sequence[str]) -> Conversation:
        """Bound to `knowledge_bases` (ids or names: each must be one the caller may use, else NotFound),
        kept by id, so a rename does not move the conversation; none: its questions search what a question
        naming none searches."""
        refs = parse_refs(knowledge_bases) if knowledge_bases else ()
        ids = await self.knowledge_bases.ids(tenant, refs or ())
        return await self.store.create(Owner.of(tenant), title, [str(kb_id) for kb_id in ids])

    async def page(
        self, tenant: TenantContext, cursor: str | None, limit: int
    ) -> tuple[list[Conversation], str | None]:
        """The caller's own conversations, newest first."""
        return await self.store.page(Owner.of(tenant), cursor, limit, self.settings.page_size_max)

    async def read(self, tenant: TenantContext, conversation_id: uuid.UUID) -> ConversationView:
        """The caller's conversation with its messages, as its view reads them now: citations of documents
        it can no longer read dropped, and such answers withheld (`redaction`); NotFound for anyone else's."""
        found = await self.store.with_messages(Owner.of(tenant), conversation_id)
        if found is None:
            raise NotFound("no such conversation")
        conversation, stored = found
        cited = {d for m in stored if m.role == "assistant" for d in cited_documents(m.citations)}
        readable = await self.store.readable_documents(tenant.tenant_id, cited)
        return ConversationView(conversation, *as_read(stored, readable))

    async def delete(self, tenant: TenantContext, conversation_id: uuid.UUID) -> None:
        if not await self.store.delete(Owner.of(tenant), conversation_id):
            raise NotFound("no such conversation")

    async def forget_user(self, tenant_id: uuid.UUID, user_id: uuid.UUID) -> int:
        """Delete the conversations of a user who has been deleted: nobody else could ever read them."""
        return await self.store.delete_all(Owner(tenant_id, "user", user_id))

    async def ask(
        self, tenant: TenantContext, conversation_id: uuid.UUID, question: Question, surface: Surface
    ) -> Turn:
        """Ask `question` (validated) in the caller's conversation (see the module's docstring)."""
        owner, limit = Owner.of(tenant), self.settings.conversation_max_messages
        found = await self.store.exchanges(owner, conversation_id, self.settings.conversation_history_turns)
        if found is None:
            raise NotFound("no such conversation")
        conversation, history = found
        if conversation.message_count + 2 > limit:  # the question and its answer
            raise Conflict(f"this conversation is full: at most {limit} messages (CONVERSATION_MAX_MESSAGES)")
        if question.knowledge_bases is None and conversation.knowledge_bases:  # the ones it is bound to
            question = dataclasses.replace(question, knowledge_bases=tuple(conversation.knowledge_bases))
        follow_up = await self.follow_up(tenant, surface, question, history)
        admission = await self.answers.admit(follow_up.request)
        # Checked again under the row's lock: a question racing this one to the last places, or a delete,
        # fails it here, after its charge.
        asked = NewMessage(
            role="user",
            content=question.text,
            standalone_question=follow_up.standalone.text,
            rewrite=follow_up.standalone.rewrite,
        )
        stored = await self.store.append(owner, conversation_id, asked, limit, room_for=1)
        if stored is None:
            raise NotFound("no such conversation")
        events = self._kept(owner, conversation_id, self.answers.answer(admission))
        return Turn(conversation_id, stored, follow_up.standalone, events)

    async def _kept(
        self, owner: Owner, conversation_id: uuid.UUID, events: AsyncIterator[AnswerEvent]
    ) -> AsyncIterator[AnswerEvent]:
        """The answer's events; the answer stored as the assistant's message before `Finished` is passed on."""
        async for event in events:
            if isinstance(event, Finished):
                await self._keep(owner, conversation_id, event.answer)
            yield event

    async def _keep(self, owner: Owner, conversation_id: uuid.UUID, answer: Answer) -> None:
        message = NewMessage(
            role="assistant",
            content=answer.answer,
            query_id=answer.query_id,
            citations=[c.model_dump(mode="json") for c in answer.citations],
            mode=answer.mode,
            model=answer.model,
            usage=answer.usage.model_dump(mode="json") if answer.usage is not None else None,
        )
        # No limit: the question kept room for its answer.
        if await self.store.append(owner, conversation_id, message, None) is None:
            raise NotFound("the conversation was deleted while its question was answered")
