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

from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from ragapi.answering.answer import Citation
from ragapi.retrieval.knowledge_bases import MAX_NAME_CHARS, MAX_REFS
from ragapi.schemas import Body

MODEL_CHARS = MAX_REFS * (MAX_NAME_CHARS + 1)


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")

    include_usage: bool = Field(default=False, description="A last chunk with the usage and no choices")


class ResponseFormat(BaseModel):
    type: Literal["text"]


class Message(Body):
    """A message as OpenAI's chat API sends it; its other fields (`name`, ...) are accepted and unused."""

    model_config = ConfigDict(extra="allow", allow_inf_nan=False)

    role: Literal["user", "assistant", "system", "developer", "tool", "function"]
    content: str | list[dict[str, Any]] | None = Field(
        description="Text, or a list of text parts ({type: text, text}); images and audio are refused"
    )


REFUSED = {
    "n": "n must be 1: one answer is written per question",
    "stop": "stop sequences are not supported: answers are quoted or written under the service's own prompt",
    "logprobs": "logprobs are not supported",
    "top_logprobs": "logprobs are not supported",
    "tools": "tools are not supported: the model answers from its knowledge bases only",
    "functions": "functions are not supported: the model answers from its knowledge bases only",
    "tool_choice": "tool_choice is not supported: the model calls no tools",
    "function_call": "function_call is not supported: the model calls no functions",
    "response_format": "response_format: only text answers are written",
    "modalities": "modalities: only text answers are written",
    "audio": "audio is not supported",
    "prediction": "prediction is not supported",
    "web_search_options": "web search is not supported: the model answers from its knowledge bases only",
}
_ACCEPTED: dict[str, Callable[[Any], bool]] = {
    "n": lambda v: v == 1 and not isinstance(v, bool),
    "logprobs": lambda v: v is False,
    "top_logprobs": lambda v: v == 0 and not isinstance(v, bool),
    "tool_choice": lambda v: v in ("none", "auto"),
    "function_call": lambda v: v in ("none", "auto"),
    "response_format": lambda v: isinstance(v, dict) and v == {"type": "text"},
    "modalities": lambda v: isinstance(v, list) and all(m == "text" for m in v),
}


class ChatCompletionRequest(Body):
    model: str = Field(
        min_length=1,
        max_length=MODEL_CHARS,
        description="A knowledge base (name or id, as GET /v1/models lists them), or several joined with '+'",
        examples=["handbook", "handbook+wiki"],
    )
    messages: list[Message] = Field(
        min_length=1,
        description="The conversation, oldest first; the last message is the user's question. System and "
        "developer messages are accepted and do not change the answer",
    )
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: Literal[1] | None = Field(default=None, description="1 only: one answer per question")

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

    # Refused (400) unless they ask for nothing: their schema says what is accepted.
    stop: None = Field(default=None, description="Not supported: null or empty only")
    logprobs: Literal[False] | None = None
    top_logprobs: Literal[0] | None = None
    tools: None = Field(default=None, description="Not supported: null or empty only")
    tool_choice: Literal["none", "auto"] | None = None
    functions: None = Field(default=None, description="Not supported: null or empty only")
    function_call: Literal["none", "auto"] | None = None
    response_format: ResponseFormat | None = None
    modalities: list[Literal["text"]] | None = None
    audio: None = Field(default=None, description="Not supported")
    prediction: None = Field(default=None, description="Not supported")
    web_search_options: None = Field(default=None, description="Not supported")

    # Extensions, as on POST /v1/query.
    top_k: int | None = Field(default=None, ge=1, description="Sources to cite (extension); MAX_TOP_K at most")
    filters: dict[str, Any] | None = Field(default=None, description="Metadata filters (extension)")
    cache: bool = Field(default=True, description="false skips the answer cache (extension)")
    references: bool = Field(
        default=True, description="false: the answer's text without the list of the sources it cites (extension)"
    )

    @field_validator(*REFUSED, mode="before")
    @classmethod
    def _refused(cls, value: Any, info: ValidationInfo) -> Any:
        """What cannot be honoured is refused with a reason, rather than with what the type allows."""
        field = str(info.field_name)
        if value in (None, [], "", {}) or _ACCEPTED.get(field, lambda _: False)(value):
            return None if value in ([], "", {}) else value
        raise PydanticCustomError("unsupported_parameter", "{reason}", {"reason": REFUSED[field]})


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
