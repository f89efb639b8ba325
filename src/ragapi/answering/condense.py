"""The condenser a conversation's follow-up questions go through before retrieval, chosen by the settings.

`OfflineCondenser` is the offline rewrite (`ragapi.answering.rewrite`) behind the `Condenser` protocol of
`ragapi.generation.condense`; `build_condenser` puts the chat model in front of it when one is configured
(OPENAI_API_KEY, CONDENSE_WITH_LLM), with the offline rewrite as its fallback.
"""

from __future__ import annotations

from collections.abc import Sequence

from ragapi.answering.rewrite import standalone_question
from ragapi.core.settings import Settings
from ragapi.generation.condense import ChatCondenser, Condensed, Condenser, Turn


class OfflineCondenser:
    """The offline rewrite: the earlier questions an elliptical follow-up leans on, or a few of their terms,
    added to it; no model, no tokens."""

    async def condense(self, history: Sequence[Turn], question: str) -> Condensed:
        rewritten = standalone_question([turn.question for turn in history], question)
        return Condensed(rewritten, "unchanged" if rewritten == question else "offline")


def build_condenser(settings: Settings) -> Condenser:
    """The chat model, falling back to the offline rewrite, when a key is set and CONDENSE_WITH_LLM allows;
    else the offline rewrite alone."""
    offline = OfflineCondenser()
    if settings.openai_api_key is not None and settings.condense_with_llm:
        return ChatCondenser(settings, fallback=offline)
    return offline
