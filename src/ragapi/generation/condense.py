"""A conversation's follow-up question made standalone before retrieval ("condensed").

"And how do I remove one?" finds nothing by itself; what "one" is lives in the turns before it. A
conversation keeps each earlier exchange as a `Turn` (the user's question, the answer, the titles of the
answer's citations), and a `Condenser` turns the latest question and those turns into one question a
retriever can search:

    Condenser                 condense(history, question) -> Condensed(question, method, usage)
     ├── OfflineCondenser     no model: the earlier questions an elliptical follow-up leans on, or a
     │                        few of their terms (ragapi.answering.condense, over ragapi.answering.rewrite)
     └── ChatCondenser        a chat model with CONDENSE_PROMPT (this module); any failure or unusable
                              reply hands the question to a fallback condenser, the offline one

`Condensed.method` says how the question was made: `llm` (the chat model wrote it, even when it kept
the question as it was), `offline` (the offline rewrite added to it) or `unchanged` (nothing to add: no
history, or the offline rewrite found nothing).

The prompt is LangChain's history-aware retriever's (`create_history_aware_retriever`): the system
prompt, the conversation as alternating user and assistant messages, then the question. The call is
not streamed (the retriever needs the whole question), short (CONDENSE_MAX_TOKENS) and bounded in time
(CONDENSE_TIMEOUT_S, no retries: the offline rewrite is a better use of a slow second than a retry).
It sends `max_tokens`, which every OpenAI-compatible server reads, rather than the answerer's
`max_completion_tokens` (OpenAI's reasoning models refuse `max_tokens`: with them every follow-up falls
back). A fallback is counted in `rag_condense_fallbacks_total` by reason and logged.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from ragapi.core.metrics import CONDENSE_FALLBACKS, PROVIDER_ERRORS
from ragapi.core.settings import Settings
from ragapi.generation.answerers import Usage, estimate_tokens

log = logging.getLogger(__name__)

CONDENSE_PROMPT = (
    "Given a chat history and the latest user question which might reference context in the chat history, "
    "formulate a standalone question which can be understood without the chat history. Do NOT answer the "
    "question, just reformulate it if needed and otherwise return it as is."
)
HISTORY_TURNS = 6  # the newest turns the model is shown; older ones rarely name what a follow-up means
ANSWER_CHARS = 1000  # of each earlier answer: enough to name its subject, not the whole answer's tokens
CHARS_PER_TOKEN = 4  # OpenAI's rule of thumb, as in estimate_tokens
TOO_LONG_FACTOR = 2  # a reply longer than twice what max_tokens holds was not cut off by the server

Method = Literal["llm", "offline", "unchanged"]
FallbackReason = Literal["error", "timeout", "empty", "truncated", "too_long"]


@dataclass(frozen=True, slots=True)
class Turn:
    """One earlier exchange of a conversation."""

    question: str
    answer: str = ""
    sources: tuple[str, ...] = ()  # the title of each of the answer's citations, [1] first


@dataclass(frozen=True, slots=True)
class Condensed:
    """The standalone question, how it was made, and the tokens it cost (none without a model)."""

    question: str
    method: Method
    usage: Usage = field(default_factory=Usage)
    model: str | None = None  # the chat model whose reply `usage` counts (None: no reply, no tokens)


class Condenser(Protocol):
    async def condense(self, history: Sequence[Turn], question: str) -> Condensed: ...


def condense_messages(history: Sequence[Turn], question: str) -> list[dict[str, str]]:
    """The Chat Completions messages: the prompt, the newest HISTORY_TURNS turns, the question."""
    messages = [{"role": "system", "content": CONDENSE_PROMPT}]
    for turn in history[-HISTORY_TURNS:]:
        messages.append({"role": "user", "content": turn.question})
        if turn.answer:
            messages.append({"role": "assistant", "content": turn.answer[:ANSWER_CHARS]})
    messages.append({"role": "user", "content": question})
    return messages


def unusable(content: str | None, finish_reason: str | None, max_chars: int) -> FallbackReason | None:
    """Why a reply cannot stand in for the question, if it cannot: nothing in it, cut off at max_tokens
    (half a question), or longer than `max_chars` (a server that ignored max_tokens: an answer, not a
    question)."""
    if not content or not content.strip():
        return "empty"
    if finish_reason == "length":
        return "truncated"
    if len(content.strip()) > max_chars:
        return "too_long"
    return None


class ChatCondenser:
    """Condenses with the answerer's chat model (OPENAI_API_KEY, OPENAI_BASE_URL, OPENAI_MODEL) through the
    official `openai` client; `fallback` condenses when the model fails, times out or replies with
    something unusable, and the fallback is counted (`rag_condense_fallbacks_total`) and logged."""

    def __init__(self, settings: Settings, fallback: Condenser) -> None:
        from openai import APITimeoutError, AsyncOpenAI

        if settings.openai_api_key is None:
            raise ValueError("ChatCondenser needs OPENAI_API_KEY")
        self.model = settings.openai_model
        self.fallback = fallback
        self.timeout_s = settings.condense_timeout_s
        self.max_tokens = settings.condense_max_tokens
        self.max_chars = min(settings.max_query_chars, TOO_LONG_FACTOR * CHARS_PER_TOKEN * self.max_tokens)
        self._timeouts = (TimeoutError, APITimeoutError)
        self._client = AsyncOpenAI(
            api_key=settings.openai_api_key.get_secret_value(),
            base_url=settings.openai_base_url,
            timeout=settings.condense_timeout_s,
            max_retries=0,
        )

    async def condense(self, history: Sequence[Turn], question: str) -> Condensed:
        if not history:
            return Condensed(question, "unchanged")  # nothing to condense: no call
        messages = condense_messages(history, question)
        usage, replied = Usage(), False
        reason: FallbackReason | None
        try:
            async with asyncio.timeout(self.timeout_s):  # the whole call, however slowly the reply trickles
                completion = await self._client.chat.completions.create(
                    model=self.model,
                    messages=messages,  # type: ignore[arg-type]
                    temperature=0.0,
                    max_tokens=self.max_tokens,
                )
        except Exception as exc:  # timeouts, openai.APIError (a 5xx, a refused key), httpx errors, a bad body
            reason = "timeout" if isinstance(exc, self._timeouts) else "error"
            PROVIDER_ERRORS.labels("openai").inc()
            detail = type(exc).__name__
        else:
            choice = completion.choices[0] if completion.choices else None
            content = choice.message.content if choice is not None else None
            reason = unusable(content, choice.finish_reason if choice is not None else None, self.max_chars)
            usage, replied = completion_usage(completion.usage, messages, content), True
            if reason is None:
                return Condensed((content or "").strip(), "llm", usage, self.model)
            detail = f"{len(content or '')} characters, finish_reason {choice.finish_reason if choice else None}"
        CONDENSE_FALLBACKS.labels(reason).inc()
        log.warning("the chat model did not condense a follow-up question (%s: %s): falling back", reason, detail)
        condensed = await self.fallback.condense(history, question)
        # with the tokens a reply cost, unusable or not
        return Condensed(condensed.question, condensed.method, usage, self.model if replied else None)


def completion_usage(counted: Any, messages: Sequence[dict[str, str]], content: str | None) -> Usage:
    """The tokens of a reply: the server's counts, else estimated (4 characters a token)."""
    if counted is not None and isinstance(counted.prompt_tokens, int) and isinstance(counted.completion_tokens, int):
        return Usage(counted.prompt_tokens, counted.completion_tokens)
    prompt = estimate_tokens("".join(m["content"] for m in messages))
    return Usage(prompt, estimate_tokens(content or ""), estimated=True)
