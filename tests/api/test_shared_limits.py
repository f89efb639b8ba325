"""Two API processes behind one Redis enforce one combined limit; a user signed in on one is known to the
other; Redis paused and killed mid-run costs no request, and shared limits come back with it."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ragapi.core.database import Database
from ragapi.tenants.context import Role
from ragapi.tenants.service import create_tenant
from ragapi.tenants.users import create_user
from tests.api.helpers import PASSWORD
from tests.services import ApiServer, RedisServer

pytestmark = pytest.mark.slow

SECRET = "shared-jwt-secret-for-both-replicas-0123456789"


@pytest.fixture(scope="module")
def replicas(tmp_path_factory: pytest.TempPathFactory, db: Database) -> Iterator[tuple[RedisServer, list[ApiServer]]]:
    redis = RedisServer(tmp_path_factory.mktemp("shared-redis"))
    redis.start()
    env = {"DATABASE_URL": db.url, "JWT_SECRET": SECRET, "REDIS_URL": redis.url, "REDIS_TIMEOUT_S": "0.2"}
    servers = [ApiServer(Path(tmp_path_factory.mktemp(f"replica{n}")), **env) for n in range(2)]
    for server in servers:
        server.launch()
    try:
        for server in servers:
            server.wait_ready()
        yield redis, servers
    finally:
        for server in servers:
            if server.process and server.process.poll() is None:
                server.stop()
        if redis._process is not None and redis._process.poll() is None:
            os.kill(redis._process.pid, signal.SIGCONT)
        redis.stop()


async def test_two_replicas_share_one_limit_and_one_login(
    replicas: tuple[RedisServer, list[ApiServer]], db: Database, settings
) -> None:  # type: ignore[no-untyped-def]
    redis, servers = replicas
    tenant = await create_tenant(db, "shared-limits", rate_limit_per_minute=10)
    headers = {"X-API-Key": tenant.api_key}
    async with httpx.AsyncClient(timeout=10) as http:
        responses = [await http.get(servers[n % 2].url + "/v1/documents", headers=headers) for n in range(14)]
        assert [r.status_code for r in responses] == [200] * 10 + [429] * 4
        assert [r.headers["ratelimit-remaining"] for r in responses[:10]] == [str(9 - n) for n in range(10)]
        assert {r.headers["x-request-id"] != "" for r in responses} == {True}

        # One user, signed in on replica 0, is known to replica 1 (shared secret, shared database).
        second = await create_tenant(db, "shared-limits-2", rate_limit_per_minute=1000)
        user = await create_user(db, settings, second.tenant_id, "replica-user@example.com", PASSWORD, Role.READONLY)
        login = await http.post(servers[0].url + "/v1/auth/login", data={"username": user.email, "password": PASSWORD})
        assert login.status_code == 200, login.text
        me = await http.get(
            servers[1].url + "/v1/auth/me", headers={"Authorization": f"Bearer {login.json()['access_token']}"}
        )
        assert me.status_code == 200 and me.json()["email"] == user.email

        # Redis hangs, then dies: every request is still answered (limited per replica meanwhile).
        other = {"X-API-Key": second.api_key}
        assert redis._process is not None
        os.kill(redis._process.pid, signal.SIGSTOP)
        paused = [await http.get(servers[n % 2].url + "/v1/documents", headers=other) for n in range(6)]
        assert [r.status_code for r in paused] == [200] * 6
        os.kill(redis._process.pid, signal.SIGCONT)
        redis._process.kill()
        redis._process.wait()
        dead = [await http.get(servers[n % 2].url + "/v1/documents", headers=other) for n in range(6)]
        assert [r.status_code for r in dead] == [200] * 6

        # Redis returns (same port, empty): after the cool-down the replicas share limits again.
        redis.start()
        await asyncio.sleep(5.5)
        third = await create_tenant(db, "shared-limits-3", rate_limit_per_minute=4)
        back = [
            await http.get(servers[n % 2].url + "/v1/documents", headers={"X-API-Key": third.api_key}) for n in range(6)
        ]
        assert [r.status_code for r in back] == [200] * 4 + [429] * 2
