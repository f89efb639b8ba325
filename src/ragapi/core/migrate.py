"""Apply the Alembic migrations shipped in `core/migrations` (used by `ragapi migrate` and at start-up)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config

from ragapi.core.database import with_driver
from ragapi.core.errors import ServiceUnavailable

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"


# Seals (and opens) a secret stored for a tenant: migrations that change how secrets are kept need the
# service's key, which lives with the tenants (`ragapi.tenants.sealed`); called only when there is one.
Sealer = Callable[[str], str]


def alembic_config(owner_url: str, app_role: str, seal: Sealer | None = None, unseal: Sealer | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", with_driver(owner_url, "psycopg").replace("%", "%%"))
    config.attributes["app_role"] = app_role
    config.attributes["seal"] = seal
    config.attributes["unseal"] = unseal
    return config


def upgrade(owner_url: str, app_role: str, revision: str = "head", seal: Sealer | None = None) -> None:
    command.upgrade(alembic_config(owner_url, app_role, seal=seal), revision)


def upgrade_logged(owner_url: str, app_role: str, seal: Sealer | None = None) -> None:
    """Migrate to head, saying so in one line when anything changed (alembic's own lines are quiet at start)."""
    before = current_revision(owner_url)
    upgrade(owner_url, app_role, seal=seal)
    head = head_revision()
    if before != head:
        log.info("database schema migrated from %s to %s", before or "empty", head)


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    head = ScriptDirectory.from_config(config).get_current_head()
    if head is None:
        raise RuntimeError("no migrations found")
    return head


def current_revision(owner_url: str) -> str | None:
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy import create_engine

    engine = create_engine(with_driver(owner_url, "psycopg"))
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


class SchemaBehind(ServiceUnavailable):
    """The database has not been migrated to this build's schema (MIGRATE_ON_START=false)."""


def require_head(owner_url: str) -> None:
    current, head = current_revision(owner_url), head_revision()
    if current != head:
        raise SchemaBehind(f"database schema is at {current}, this build needs {head}: run `ragapi migrate`")
