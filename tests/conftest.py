"""Session fixtures: one embedded PostgreSQL, one app (real ONNX model), tenants made per test."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from ragapi.api.app import create_app
from ragapi.api.state import AppState
from ragapi.core.database import Database
from ragapi.core.settings import Settings
from ragapi.tenants.service import create_tenant
from tests.services import ApiServer, RedisServer


def make_settings(data_dir: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "data_dir": data_dir,
        "max_upload_bytes": 2 * 1024 * 1024,
        "max_query_chars": 500,
        "max_files_per_request": 5,
        "max_documents_per_request": 50,
        "chunk_size_tokens": 120,
        "chunk_overlap_tokens": 20,
        "openai_api_key": None,
        "cohere_api_key": None,
        "database_url": None,
        # Shared by the whole session: tests of limits set their own per key, tenant or monkeypatch.
        "tenant_rate_limit_per_minute": 1_000_000,
        "principal_rate_limit_per_minute": 1_000_000,
        "ip_rate_limit_per_minute": 1_000_000,
        "login_rate_limit_per_minute": 1_000_000,
        "password_min_length": 12,
        "oidc_allow_http_loopback": True,  # the test identity provider (tests/oidc) serves http on loopback
        # many embedded servers run at once under the test suite: not a quarter of the machine each
        "pg_shared_buffers_mb": 256,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return make_settings(tmp_path_factory.mktemp("ragapi"))


@pytest.fixture(scope="session")
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture(scope="session")
def app_state(app: FastAPI) -> AppState:
    state: AppState = app.state.services
    return state


@pytest.fixture(scope="session")
def db(app_state: AppState) -> Database:
    return app_state.db


@pytest.fixture(scope="session")
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ragapi.test") as c:
        yield c


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@dataclass(frozen=True)
class TenantHandle:
    tenant_id: uuid.UUID
    api_key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"X-API-Key": self.api_key}


@pytest.fixture
def make_tenant(db: Database) -> MakeTenant:
    async def make(name: str = "") -> TenantHandle:
        created = await create_tenant(db, name or f"tenant-{uuid.uuid4().hex[:8]}")
        return TenantHandle(created.tenant_id, created.api_key)

    return make


@pytest.fixture
async def tenant(make_tenant: MakeTenant) -> TenantHandle:
    return await make_tenant()


@dataclass(frozen=True)
class UserHandle:
    user_id: uuid.UUID
    tenant_id: uuid.UUID | None
    email: str
    password: str
    access_token: str
    refresh_token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


MakeUser = Callable[..., Awaitable[UserHandle]]
MakeTenant = Callable[[], Awaitable[TenantHandle]]


@pytest.fixture
def make_user(db: Database, settings: Settings, client: httpx.AsyncClient) -> MakeUser:
    """A user created through the service layer and signed in through the API."""
    from ragapi.tenants.context import Role
    from ragapi.tenants.users import create_user
    from tests.api.helpers import PASSWORD, login

    async def make(tenant_id: uuid.UUID | None, role: str = "member", password: str = PASSWORD) -> UserHandle:
        email = f"user-{uuid.uuid4().hex[:10]}@example.com"
        user = await create_user(db, settings, tenant_id, email, password, Role(role))
        tokens = await login(client, email, password)
        return UserHandle(user.id, tenant_id, email, password, tokens["access_token"], tokens["refresh_token"])

    return make


@pytest.fixture
async def superadmin(make_user: MakeUser) -> UserHandle:
    return await make_user(None, "superadmin")


@dataclass(frozen=True)
class Served:
    """A `ragapi serve` process on a loopback port, its superadmin, and that superadmin's token to make
    tenants over HTTP."""

    server: ApiServer
    superadmin_email: str
    superadmin_password: str
    superadmin_token: str

    @property
    def url(self) -> str:
        return self.server.url

    def cli(self, *args: str) -> str:
        return self.server.cli(*args)

    def tenant(self, name: str = "") -> TenantHandle:
        response = httpx.post(
            self.url + "/v1/tenants",
            headers={"Authorization": f"Bearer {self.superadmin_token}"},
            json={"name": name or f"tenant-{uuid.uuid4().hex[:8]}"},
            timeout=30,
        )
        assert response.status_code == 201, response.text
        body = response.json()
        return TenantHandle(uuid.UUID(body["id"]), body["api_key"])


@pytest.fixture(scope="session")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """The session's one real server, started once, for every test that speaks only HTTP: the Python client,
    the remote CLI, OpenAI's SDK, LangChain's ChatOpenAI, the MCP client, and the browser tests (the console,
    /docs and the playground). Each test makes its own tenants, so none sees another's data; the environment
    is one all of them pass with."""
    email, password = "root@example.com", "a superadmin password"
    unlimited = {f"{name}_RATE_LIMIT_PER_MINUTE": "1000000" for name in ("TENANT", "PRINCIPAL", "IP", "LOGIN")}
    server = ApiServer(
        tmp_path_factory.mktemp("served"),
        CHUNK_SIZE_TOKENS="120",
        CHUNK_OVERLAP_TOKENS="20",
        MAX_FILES_PER_REQUEST="5",
        MCP_DOCUMENT_MAX_CHARS="1000",
        INGEST_POLL_S="0.2",  # the console's pages follow jobs as they poll
        OIDC_ALLOW_HTTP_LOOPBACK="true",  # the session's identity provider (tests/oidc) is http on loopback
        RAGAPI_PASSWORD=password,
        # shared by every test: tests of limits give their own keys or tenants a limit
        **unlimited,
    )
    server.start()
    try:
        server.cli("users", "create", "--email", email, "--superadmin")
        tokens = httpx.post(
            server.url + "/v1/auth/login", data={"username": email, "password": password}, timeout=30
        ).json()
        yield Served(server, email, password, tokens["access_token"])
    finally:
        if server.process is not None and server.process.poll() is None:
            server.stop()
