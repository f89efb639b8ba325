"""Write ragapi/client/_sync.py from _async.py (the sync client is the async one without `await`), as
httpcore's unasync script does; `--check` exits 1 when the committed file differs (tests run it)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

CLIENT = Path(__file__).resolve().parents[1] / "src" / "ragapi" / "client"

SUBSTITUTIONS = [
    (
        '"""`AsyncClient`: the API over httpx\'s AsyncClient. Same methods as `ragapi.client.Client`, awaited."""',
        '"""`Client`: the API over httpx\'s Client. Made from _async.py by scripts/unasync_client.py."""',
    ),
    ("The Enterprise RAG API, asynchronously.", "The Enterprise RAG API."),
    ("async with AsyncClient(", "with Client("),
    ("async def __aenter__", "def __enter__"),
    ("async def __aexit__", "def __exit__"),
    ("async def aclose", "def close"),
    ("self.aclose()", "self.close()"),
    ("self._http.aclose()", "self._http.close()"),
    ("response.aclose()", "response.close()"),
    ("response.aread()", "response.read()"),
    ("response.aiter_lines()", "response.iter_lines()"),
    ("httpx.AsyncClient", "httpx.Client"),
    ("httpx.AsyncBaseTransport", "httpx.BaseTransport"),
    ("class AsyncClient", "class Client"),
    ("AsyncIterator", "Iterator"),
    ("asyncio.sleep", "time.sleep"),
    ("import asyncio\n", ""),
]
PATTERNS = [(r"\basync def\b", "def"), (r"\basync for\b", "for"), (r"\basync with\b", "with"), (r"\bawait ", "")]


def generate() -> str:
    text = (CLIENT / "_async.py").read_text()
    for old, new in SUBSTITUTIONS:
        text = text.replace(old, new)
    for pattern, new in PATTERNS:
        text = re.sub(pattern, new, text)
    formatted = subprocess.run(  # noqa: S603 - the project's formatter, as `make lint` runs it
        [sys.executable, "-m", "ruff", "format", "--stdin-filename", str(CLIENT / "_sync.py"), "-"],
        input=text.encode(),
        capture_output=True,
        check=True,
    )
    return formatted.stdout.decode()


def main() -> int:
    target = CLIENT / "_sync.py"
    text = generate()
    if "--check" in sys.argv:
        return 0 if target.read_text() == text else 1
    target.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
