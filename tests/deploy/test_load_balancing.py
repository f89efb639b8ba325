"""Two `ragapi serve` processes behind Debian's nginx running deploy/nginx/ragapi.conf (the compose load
balancer), one Redis, one database: requests spread over both, limits and the answer cache are shared,
and an SSE answer passes through unbuffered, event by event."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ragapi.api.state import AppState
from ragapi.core.database import Database
from ragapi.tenants.service import create_tenant
from tests.api.helpers import iter_sse
from tests.services import ApiServer, LlmServer, RedisServer, free_port, wait_for_http

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SECRET = "load-balanced-jwt-secret-0123456789abcdef"


class Nginx:
    """nginx in the foreground with its own prefix, serving the repository's site config."""

    def __init__(self, workdir: Path, backends: list[str]) -> None:
        binary = shutil.which("nginx") or "/usr/sbin/nginx"
        if not Path(binary).exists():
            raise RuntimeError("nginx is not installed: run scripts/test-services.sh (make test does)")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        servers = "".join(f"server {b} max_fails=0;\n" for b in backends)
        (workdir / "upstream-servers.conf").write_text(servers)
        site = (ROOT / "deploy/nginx/ragapi.conf").read_text()
        site = site.replace("listen 8080;", f"listen 127.0.0.1:{self.port};")
        site = site.replace("/etc/nginx/ragapi/upstream-servers.conf", str(workdir / "upstream-servers.conf"))
        (workdir / "site.conf").write_text(site)
        temp = "".join(
            f"{kind}_temp_path {workdir / kind};\n" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        (workdir / "nginx.conf").write_text(
            f"daemon off;\npid {workdir / 'nginx.pid'};\nerror_log {workdir / 'error.log'} warn;\n"
            "events { worker_connections 256; }\n"
            f"http {{\naccess_log off;\n{temp}include {workdir / 'site.conf'};\n}}\n"
        )
        self.command = [binary, "-p", str(workdir), "-c", str(workdir / "nginx.conf")]
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        check = subprocess.run([*self.command, "-t"], capture_output=True, timeout=30)  # noqa: S603
        assert check.returncode == 0, check.stderr.decode()
        self.process = subprocess.Popen(self.command)  # noqa: S603
        wait_for_http(self.url + "/healthz", "nginx", 10)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)


@pytest.fixture(scope="module")
def slow_llm() -> Iterator[str]:
    """40 tokens at 20 per second, so an answer streams for about 2 s."""
    server = LlmServer(ttft_s=0.3, tokens_per_s=20, tokens=40)
    yield server.url
    server.stop()


@pytest.fixture(scope="module")
def balanced(
    tmp_path_factory: pytest.TempPathFactory, app_state: AppState, slow_llm: str
) -> Iterator[tuple[Nginx, list[ApiServer]]]:
    redis = RedisServer(tmp_path_factory.mktemp("lb-redis"))
    redis.start()
    env = {
        "DATABASE_URL": app_state.db.url,
        # The suite's in-process worker shares this database and may claim these jobs: one upload store.
        "UPLOAD_DIR": str(app_state.settings.uploads_dir),
        "JWT_SECRET": SECRET,
        "REDIS_URL": redis.url,
        "TRUSTED_PROXIES": '["127.0.0.1/32"]',
        "OPENAI_API_KEY": "sk-test",
        "OPENAI_BASE_URL": slow_llm,
    }
    servers = [ApiServer(tmp_path_factory.mktemp(f"lb{n}"), **env) for n in range(2)]
    for server in servers:
        server.launch()
    nginx = Nginx(tmp_path_factory.mktemp("nginx"), [f"127.0.0.1:{s.port}" for s in servers])
    try:
        for server in servers:
            server.wait_ready()
        nginx.start()
        yield nginx, servers
    finally:
        nginx.stop()
        for server in servers:
            if server.process and server.process.poll() is None:
                server.stop()
        redis.stop()


def test_healthcheck_command_follows_the_server(balanced: tuple[Nginx, list[ApiServer]]) -> None:
    """The image's HEALTHCHECK (`ragapi healthcheck`): 0 for a live server, 1 for nothing listening."""
    _, servers = balanced
    command = [sys.executable, "-m", "ragapi.api.cli", "healthcheck", "--url"]
    live = subprocess.run([*command, servers[0].url + "/healthz"], timeout=60)  # noqa: S603
    dead = subprocess.run([*command, f"http://127.0.0.1:{free_port()}/healthz"], timeout=60)  # noqa: S603
    assert (live.returncode, dead.returncode) == (0, 1)


def _served(server: ApiServer) -> float:
    """Document listings this process answered (its own /metrics: one process each)."""
    text = httpx.get(server.url + "/metrics").text
    mine = [line for line in text.splitlines() if line.startswith("http_requests_total{") and '"/v1/documents"' in line]
    return sum(float(line.rsplit(" ", 1)[1]) for line in mine)


async def test_requests_spread_and_share_limits_and_cache(
    balanced: tuple[Nginx, list[ApiServer]], db: Database
) -> None:
    nginx, servers = balanced
    tenant = await create_tenant(db, "balanced")
    headers = {"X-API-Key": tenant.api_key}
    async with httpx.AsyncClient(base_url=nginx.url, headers=headers, timeout=30) as http:
        before = [_served(s) for s in servers]
        assert {(await http.get("/v1/documents")).status_code for _ in range(20)} == {200}
        spread = [after - earlier for after, earlier in zip([_served(s) for s in servers], before, strict=True)]
        assert sum(spread) == 20 and min(spread) >= 5, spread  # round robin over both replicas

        ingested = await http.post(
            "/v1/ingest?wait=true", json={"documents": [{"text": "The lighthouse lamp is green."}]}
        )
        assert ingested.status_code == 200, ingested.text

        # The answer cache is shared: asked again (on the other replica, round robin), it is a hit.
        question = {"query": "What colour is the lighthouse lamp?"}
        first = (await http.post("/v1/query", json=question)).json()
        again = [(await http.post("/v1/query", json=question)).json() for _ in range(2)]
        assert first["cached"] is False and [a["cached"] for a in again] == ["exact", "exact"]
        assert {a["answer"] for a in again} == {first["answer"]}

    # One limit for the tenant across both replicas: 10 per minute in all, not 10 each.
    limited = await create_tenant(db, "balanced-limited", rate_limit_per_minute=10)
    async with httpx.AsyncClient(base_url=nginx.url, headers={"X-API-Key": limited.api_key}, timeout=30) as http:
        statuses = [(await http.get("/v1/documents")).status_code for _ in range(14)]
    assert statuses == [200] * 10 + [429] * 4, statuses

    # Unauthenticated routes are limited per client address, read from nginx's X-Forwarded-For.
    async with httpx.AsyncClient(base_url=nginx.url, timeout=30) as anonymous:
        logins = [
            await anonymous.post("/v1/auth/login", data={"username": f"nobody{n}@example.com", "password": "x" * 12})
            for n in range(12)
        ]
    codes = [r.status_code for r in logins]
    assert codes[:10] == [401] * 10 and codes[10:] == [429, 429], codes


async def test_sse_passes_through_unbuffered(balanced: tuple[Nginx, list[ApiServer]], db: Database) -> None:
    nginx, _ = balanced
    tenant = await create_tenant(db, "balanced-stream")
    headers = {"X-API-Key": tenant.api_key}
    documents = {"documents": [{"text": "The observatory dome opens at dusk."}]}
    async with httpx.AsyncClient(timeout=30) as http:
        ingested = await http.post(nginx.url + "/v1/ingest?wait=true", headers=headers, json=documents)
        assert ingested.is_success, ingested.text
    arrivals: list[tuple[float, str]] = []

    def read() -> None:
        question = {"query": "When does the dome open?", "stream": True, "cache": False}
        with httpx.stream("POST", nginx.url + "/v1/query", headers=headers, json=question, timeout=30) as response:
            assert response.status_code == 200
            arrivals.extend((time.monotonic(), name) for name, _ in iter_sse(response))

    await asyncio.to_thread(read)
    names = [name for _, name in arrivals]
    assert names[0] == "sources" and names[-1] == "done" and names.count("token") >= 15
    # 40 tokens at 20 per second: events arrive spread over ~2 s, not all at once at the end.
    first_token = next(t for t, name in arrivals if name == "token")
    assert arrivals[-1][0] - first_token > 1.2
    assert first_token - arrivals[0][0] > 0.2  # sources came before the LLM's first token (0.3 s TTFT)
    assert json.dumps(names).count("error") == 0
