"""An OpenAI-compatible chat server that models an LLM's latency, for load tests without a paid API.

It streams `--tokens` tokens after `--ttft` seconds at `--tps` tokens per second (Chat Completions
streaming format, with the `usage` chunk when `stream_options.include_usage` is set), so end-to-end
numbers include realistic generation time. Production keeps using the real OpenAI path; only
OPENAI_BASE_URL points here. A request that is not streamed waits `--ttft` plus the time of its tokens,
then gets them in one reply. `GET /stats` counts the chat completions requested so far.

    uv run python -m bench.llm_server --port 9100 --ttft 0.8 --tps 50 --tokens 60
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route


def build_app(ttft_s: float, tokens_per_s: float, tokens: int) -> Starlette:
    words = ["The", "answer", "is", "in", "the", "sources", "[1]."]
    requested = {"chat_completions": 0}

    def chunk(model: str, delta: dict[str, Any], finish: str | None = None) -> str:
        body = {
            "id": "chatcmpl-bench",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        return f"data: {json.dumps(body)}\n\n"

    async def completions(request: Request) -> Any:
        requested["chat_completions"] += 1
        body = await request.json()
        model = body.get("model", "gpt-4o")
        prompt_tokens = sum(len(str(m.get("content", ""))) for m in body.get("messages", [])) // 4
        if not body.get("stream"):
            await asyncio.sleep(ttft_s + tokens / tokens_per_s)
            text = " ".join(words[i % len(words)] for i in range(tokens))
            return JSONResponse(
                {
                    "id": "chatcmpl-bench",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": model,
                    "choices": [
                        {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
                    ],
                    "usage": {
                        "prompt_tokens": prompt_tokens,
                        "completion_tokens": tokens,
                        "total_tokens": prompt_tokens + tokens,
                    },
                }  # fmt: skip
            )

        async def events() -> AsyncIterator[str]:
            yield chunk(model, {"role": "assistant", "content": ""})
            await asyncio.sleep(ttft_s)
            started = time.perf_counter()
            for i in range(tokens):
                # pace against the clock so a slow event loop does not stretch the stream
                await asyncio.sleep(max(0.0, started + i / tokens_per_s - time.perf_counter()))
                yield chunk(model, {"content": ("" if i == 0 else " ") + words[i % len(words)]})
            yield chunk(model, {}, "stop")
            if (body.get("stream_options") or {}).get("include_usage"):
                usage = {"prompt_tokens": prompt_tokens, "completion_tokens": tokens,
                         "total_tokens": prompt_tokens + tokens}  # fmt: skip
                final = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": int(time.time()),
                         "model": model, "choices": [], "usage": usage}  # fmt: skip
                yield f"data: {json.dumps(final)}\n\n"
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    async def stats(_request: Request) -> JSONResponse:
        return JSONResponse(requested)

    return Starlette(
        routes=[Route("/v1/chat/completions", completions, methods=["POST"]), Route("/stats", stats, methods=["GET"])]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9100)
    parser.add_argument("--ttft", type=float, default=0.8, help="seconds to the first token")
    parser.add_argument("--tps", type=float, default=50.0, help="tokens per second after the first")
    parser.add_argument("--tokens", type=int, default=60, help="tokens per answer")
    args = parser.parse_args()
    uvicorn.run(build_app(args.ttft, args.tps, args.tokens), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
