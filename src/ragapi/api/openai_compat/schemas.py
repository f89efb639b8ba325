"""The OpenAI chat-completions wire format, as far as an answering service can honour it.

A request's parameters fall in three groups (docs/openai-compatible.md lists them):
 * honoured: `model`, `messages`, `stream`, `stream_options.include_usage`, `n` of 1;
 * accepted and ignored, because they steer a language model's sampling and the answer is quoted from the
   sources or written under the service's own prompt: `temperature`, `top_p`, `max_tokens`, penalties,
   `seed`, `user`, `logit_bias`, `metadata`, `store`, ...;
 * refused with 400, because ignoring them would give the client something else than it asked for: `n`
   over 1, `tools` and `functions` (other than none), `stop`, `logprobs`, a `response_format` other than
   text, audio, predictions, web search.
Unknown parameters are refused, as OpenAI refuses them. Our own extensions: `top_k`, `filters` and
`cache` (as on POST /v1/query) and `references` (false: no list of sources after the answer's text).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ragapi.answering.answer import Citation
from ragapi.api.schemas import Body
from ragapi.retrieval.knowledge_bases import MAX_NAME_CHARS, MAX_REFS

MODEL_CHARS = MAX_REFS * (MAX_NAME_CHARS + 1)


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")

    include_usage: bool = Field(default=False, description="A last chunk with the usage and no choices")


class ChatCompletionRequest(Body):
    model: str = Field(
        min_length=1,
        max_length=MODEL_CHARS,
        description="A knowledge base (name or id, as GET /v1/models lists them), or several joined with '+'",
        examples=["handbook", "handbook+wiki"],
    )
    messages: list[Any] = Field(
        min_length=1,
        description="The conversation, oldest first; the last message is the user's question. System and "
        "developer messages are accepted and do not change the answer",
    )
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: int | None = Field(default=None, description="1 only: one answer per question")

    # Accepted and ignored: they tune a language model's sampling, not what the sources say.
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    seed: int | None = None
    user: str | None = Field(default=None, max_length=256)
    logit_bias: dict[str, float] | None = None
    metadata: dict[str, str] | None = None
    store: bool | None = None
    service_tier: str | None = Field(default=None, max_length=64)
    reasoning_effort: str | None = Field(default=None, max_length=64)
    verbosity: str | None = Field(default=None, max_length=64)
    parallel_tool_calls: bool | None = None
    prompt_cache_key: str | None = Field(default=None, max_length=256)
    safety_identifier: str | None = Field(default=None, max_length=256)

    # Refused unless they ask for nothing (checked by `refused`).
    stop: str | list[str] | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = None
    tools: list[Any] | None = None
    tool_choice: Any = None
    functions: list[Any] | None = None
    function_call: Any = None
    response_format: dict[str, Any] | None = None
    modalities: list[str] | None = None
    audio: dict[str, Any] | None = None
    prediction: dict[str, Any] | None = None
    web_search_options: dict[str, Any] | None = None

    # Extensions, as on POST /v1/query.
    top_k: int | None = Field(default=None, ge=1, description="Sources to cite (extension); MAX_TOP_K at most")
    filters: dict[str, Any] | None = Field(default=None, description="Metadata filters (extension)")
    cache: bool = Field(default=True, description="false skips the answer cache (extension)")
    references: bool = Field(
        default=True, description="false: the answer's text without the list of the sources it cites (extension)"
    )

    def refused(self) -> tuple[str, str] | None:
        """The first parameter that asks for what this service cannot do, and why: (param, message)."""
        if self.n is not None and self.n != 1:
            return "n", "n must be 1: one answer is written per question"
        if self.stop:
            return "stop", "stop sequences are not supported: answers are quoted or written under our own prompt"
        if self.logprobs or self.top_logprobs:
            return "logprobs", "logprobs are not supported"
        if self.tools or self.functions:
            param = "tools" if self.tools else "functions"
            return param, f"{param} are not supported: the model answers from its knowledge bases only"
        for param, value in (("tool_choice", self.tool_choice), ("function_call", self.function_call)):
            if value not in (None, "none", "auto"):
                return param, f"{param} is not supported: the model calls no tools"
        if self.response_format is not None and self.response_format.get("type") != "text":
            return "response_format", "response_format: only text answers are written"
        if self.modalities is not None and set(self.modalities) - {"text"}:
            return "modalities", "modalities: only text answers are written"
        for param in ("audio", "prediction", "web_search_options"):
            if getattr(self, param) is not None:
                return param, f"{param} is not supported"
        return None


class ChatMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str
    refusal: None = None


class Choice(BaseModel):
    index: int = 0
    message: ChatMessage
    finish_reason: Literal["stop"] = "stop"
    logprobs: None = None


class CompletionUsage(BaseModel):
    """OpenAI's usage, counted as the query log counts it: `prompt_tokens` are what the language model
    read plus the searched question's embedding tokens, `completion_tokens` what it wrote (0 for an
    extractive answer, which is quoted); a cached answer cost nothing."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    embedding_tokens: int = Field(description="Of prompt_tokens, those the question's embedding took (extension)")
    estimated: bool = Field(description="Counted here, 4 characters a token: the provider sent none (extension)")


class AnswerDetails(BaseModel):
    """What our own API says of an answer (extension): the id to send feedback with, and how it was made."""

    query_id: str
    mode: str
    model: str
    cached: Literal[False, "exact", "semantic"]
    standalone_question: str = Field(description="The question searched: the last message rewritten from the earlier")


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: CompletionUsage
    system_fingerprint: None = None
    citations: list[Citation] = Field(description="The sources, numbered as the answer's [n] markers (extension)")
    ragapi: AnswerDetails


class ModelCard(BaseModel):
    id: str = Field(description="What to send as `model`: the knowledge base's name (its id if the name has a '+')")
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "ragapi"
    knowledge_base_id: str = Field(description="Extension")
    description: str = Field(description="Extension")


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]
