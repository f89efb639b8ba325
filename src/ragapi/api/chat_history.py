"""The `chat_history` a LangServe client that keeps its own conversation sends with a question, read into
the earlier exchanges (each human turn with the AI turns after it, oldest first) that the question is
rewritten from.

A message is what LangChain itself accepts as one: a message as RemoteRunnable serialises it
(`{"type": "human" | "ai" | "system" | ..., "content": ...}`, chunks and `ChatMessage`'s `role` included),
a `{"role": "user" | "assistant" | ..., "content": ...}` dict, a `[role, content]` pair, or a bare string (a
human turn). Content is text, or a list of text blocks. Human and AI turns are read (the offline rewrite
uses the questions, a chat model sees the answers too); the rest must still be well-formed messages.

Bounded like every input: at most CONVERSATION_MAX_MESSAGES messages, a human turn at most MAX_QUERY_CHARS
characters, the whole body at most MAX_JSON_BODY_BYTES. Anything else is InvalidInput naming the message
(`chat_history.3: ...`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from ragapi.core.errors import InvalidInput
from ragapi.core.settings import Settings
from ragapi.generation.condense import Turn as Exchange

HUMAN = frozenset({"human", "user", "HumanMessageChunk"})
AI = frozenset({"ai", "assistant", "AIMessageChunk"})
OTHERS = AI | frozenset(
    {
        "system",
        "developer",
        "SystemMessageChunk",
        "tool",
        "ToolMessageChunk",
        "function",
        "FunctionMessageChunk",
    }
)
ROLES = "human, user, ai, assistant, system, developer, tool or function"


def json_schema(settings: Settings) -> dict[str, Any]:
    """What `chat_history` accepts, for the input schema (and clients and fuzzers that read it); `exchanges`
    is what enforces it, with messages that name the place."""
    roles = sorted(HUMAN | OTHERS)
    block = {"type": "object", "properties": {"type": {"const": "text"}, "text": {"type": "string"}}}
    content = {"anyOf": [{"type": "string"}, {"type": "array", "items": {"anyOf": [{"type": "string"}, block]}}]}
    message = {
        "anyOf": [
            {"type": "string", "maxLength": settings.max_query_chars, "title": "a human turn"},
            {"type": "array", "items": {"type": "string"}, "minItems": 2, "maxItems": 2, "title": "[role, content]"},
            {
                "type": "object",
                "properties": {"type": {"type": "string", "enum": roles}, "content": content},
                "required": ["type", "content"],
                "title": "a LangChain message, as RemoteRunnable sends it",
            },
            {
                "type": "object",
                "properties": {"role": {"type": "string", "enum": roles}, "content": content},
                "required": ["role", "content"],
                "title": "{role, content}",
            },
        ]
    }
    messages = {"type": "array", "items": message, "maxItems": settings.conversation_max_messages}
    return {"anyOf": [messages, {"type": "null"}]}


def exchanges(raw: Any, settings: Settings, field: str = "chat_history") -> list[Exchange]:
    """The human turns of `raw` (None: no history), oldest first, stripped, empty ones left out, each with
    the text of the AI turns that follow it. `field`: what the surface calls the list (errors name it)."""
    if raw is None:
        return []
    limit = settings.conversation_max_messages
    if not isinstance(raw, list):
        raise InvalidInput(f"{field} must be a list of messages")
    if len(raw) > limit:
        raise InvalidInput(f"{field} holds at most {limit} messages (CONVERSATION_MAX_MESSAGES)")
    turns: list[Exchange] = []
    for n, item in enumerate(raw):
        where = f"{field}.{n}"
        role, content = message(item, where)
        text = content.strip()
        if role in AI and turns and text:
            last = turns[-1]
            turns[-1] = replace(last, answer=f"{last.answer}\n{text}" if last.answer else text)
        if role not in HUMAN:
            continue
        if len(text) > settings.max_query_chars:
            raise InvalidInput(f"{where} is longer than {settings.max_query_chars} characters (MAX_QUERY_CHARS)")
        if text:
            turns.append(Exchange(text))
    return turns


def message(item: Any, where: str) -> tuple[str, str]:
    """One message's role and text; InvalidInput naming `where` when it is not a message."""
    if isinstance(item, str):
        return "human", item
    if isinstance(item, list | tuple) and len(item) == 2:
        role, content = item
    elif isinstance(item, Mapping):
        role = item.get("type", item.get("role"))
        if role in ("chat", "ChatMessageChunk"):  # ChatMessage: the role is its own field
            role = item.get("role")
        content = item.get("content")
    else:
        raise InvalidInput(f"{where} must be a message {{type, content}}, a [role, content] pair or a string")
    if not isinstance(role, str) or role not in HUMAN | OTHERS:
        raise InvalidInput(f"{where}: the role must be {ROLES}")
    return role, _text(content, where)


def _text(content: Any, where: str) -> str:
    """Text content, or a list of text blocks (`{"type": "text", "text": ...}` or strings) joined."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for block in content:
            if isinstance(block, str):
                parts.append(block)
            elif isinstance(block, Mapping) and block.get("type") == "text" and isinstance(block.get("text"), str):
                parts.append(block["text"])
            else:
                raise InvalidInput(f"{where}.content may hold text blocks only")
        return " ".join(parts)
    raise InvalidInput(f"{where}.content must be text")
