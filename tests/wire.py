"""A real HTTP server on loopback that plays a cloud API from its documented wire format.

Tests point the production client (openai / cohere SDKs via LangChain) at it, so everything up to the
socket is the code that runs in production; the server records what it received.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    status: int = 200
    body: Any = None
    sse: list[str] | None = None  # raw `data:` payloads, streamed one by one
    delay_s: float = 0.0  # before the response starts: a slow provider


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class WireServer:
    url: str
    requests: list[Recorded] = field(default_factory=list)


@contextmanager
def wire_server(respond: Callable[[Recorded], Reply]) -> Iterator[WireServer]:
    state = WireServer(url="")

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - keep test output quiet
            return

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", 0))
            raw = self.rfile.read(length) if length else b""
            recorded = Recorded(
                "POST", self.path, {k.lower(): v for k, v in self.headers.items()}, json.loads(raw or b"null")
            )
            state.requests.append(recorded)
            reply = respond(recorded)
            time.sleep(reply.delay_s)
            try:
                self._send(reply)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up waiting
                return

        def _send(self, reply: Reply) -> None:
            if reply.sse is not None:
                self.send_response(reply.status)
                self.send_header("content-type", "text/event-stream")
                self.end_headers()
                for payload in reply.sse:
                    self.wfile.write(f"data: {payload}\n\n".encode())
                    self.wfile.flush()
                return
            data = json.dumps(reply.body).encode()
            self.send_response(reply.status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def openai_stream(tokens: list[str], model: str = "gpt-4o", usage: dict[str, int] | None = None) -> list[str]:
    """Chat Completions streaming chunks as documented (role first, content deltas, stop, [DONE]); with
    `usage`, the extra chunk that `stream_options: {include_usage: true}` asks for (no choices, usage)."""

    def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
        return json.dumps(
            {
                "id": "chatcmpl-test",
                "object": "chat.completion.chunk",
                "created": 1700000000,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
            }
        )

    usage_chunk = {
        "id": "chatcmpl-test",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": model,
        "choices": [],
        "usage": {**(usage or {}), "total_tokens": sum((usage or {}).values())},
    }
    return [
        chunk({"role": "assistant", "content": ""}),
        *(chunk({"content": t}) for t in tokens),
        chunk({}, "stop"),
        *([json.dumps(usage_chunk)] if usage else []),
        "[DONE]",
    ]


def openai_completion(
    content: str | None,
    model: str = "gpt-4o",
    finish_reason: str = "stop",
    usage: dict[str, int] | None = None,
) -> dict[str, Any]:
    """A Chat Completions reply as documented (not streamed); `usage` absent when not given, as some
    OpenAI-compatible servers send none."""
    body: dict[str, Any] = {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 1700000000,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": None},
                "logprobs": None,
                "finish_reason": finish_reason,
            }
        ],
    }
    if usage is not None:
        body["usage"] = {**usage, "total_tokens": sum(usage.values())}
    return body
