"""CPU per streamed answer: the service's OpenAI answerer against ChatOpenAI, on the same stream.

    uv run python bench/answer_stream_bench.py [--answers 200] [--tokens 60]

Starts the LLM latency model (`bench/llm_server.py`) with no delay, so what is measured is the client's
own work per answer (request, event-stream decoding, chunk handling), in CPU time of this process: the
time a worker's event loop spends on it in the service. Writes bench/results/answer_stream.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

# a sibling module: run as a script (`python bench/...py`), whose folder is on the import path
from run_load import free_port, wait_until
from run_scifact import machine

from ragapi.core.settings import Settings
from ragapi.generation.answerers import OpenAIAnswerer
from ragapi.retrieval.chunks import Hit


async def drain(stream: AsyncIterator[object]) -> None:
    async for _ in stream:
        pass


async def cpu_ms_per_answer(answer: Callable[[], Awaitable[None]], answers: int) -> float:
    for _ in range(10):  # connections and lazy imports
        await answer()
    started = time.process_time()
    for _ in range(answers):
        await answer()
    return (time.process_time() - started) * 1000 / answers


async def measure(base_url: str, answers: int) -> dict[str, float]:
    from langchain_openai import ChatOpenAI

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(_env_file=None, data_dir=Path(tmp), openai_api_key="sk-bench", openai_base_url=base_url)  # type: ignore[call-arg]
        answerer = OpenAIAnswerer(settings)
    source = Hit(uuid.uuid4(), uuid.uuid4(), "Parental leave is 16 weeks.", "Handbook", {}, 1.0)
    chat = ChatOpenAI(model="gpt-4o", api_key="sk-bench", base_url=base_url, streaming=True, stream_usage=True)  # type: ignore[arg-type]
    question = "How long is parental leave?"
    return {
        "service (openai client, own event-stream reading)": await cpu_ms_per_answer(
            lambda: drain(answerer.astream(question, [source])), answers
        ),
        "ChatOpenAI.astream": await cpu_ms_per_answer(
            lambda: drain(chat.astream([("system", "Answer."), ("human", question)])), answers
        ),
    }


def main(answers: int, tokens: int) -> dict[str, object]:
    port = free_port()
    model = subprocess.Popen(  # noqa: S603 - our own latency model
        [sys.executable, "-m", "bench.llm_server", "--port", str(port), "--ttft", "0", "--tps", "1e6"]
        + ["--tokens", str(tokens)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(f"http://127.0.0.1:{port}/v1/chat/completions")  # 405 once it listens
        results = asyncio.run(measure(f"http://127.0.0.1:{port}/v1", answers))
    finally:
        model.terminate()
        model.wait()
    return {
        "answers": answers,
        "tokens_per_answer": tokens,
        "machine": machine(),
        "cpu_ms_per_answer": {name: round(ms, 2) for name, ms in results.items()},
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--answers", type=int, default=200)
    parser.add_argument("--tokens", type=int, default=60)
    args = parser.parse_args()
    report = main(args.answers, args.tokens)
    out = Path(__file__).parent / "results" / "answer_stream.json"
    out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
