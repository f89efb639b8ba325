"""The embedded server's memory settings: derived from the machine's memory, overridable, applied at start."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine, text

from ragapi.core.database import start_embedded_postgres, with_driver
from ragapi.core.pg_tuning import machine_memory_mb, memory_settings
from tests.conftest import make_settings


def test_memory_follows_the_machine_within_limits(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, pg_shared_buffers_mb=None)  # derived, not the test suite's own
    small, large = memory_settings(settings, 2_048), memory_settings(settings, 65_536)
    assert (small.shared_buffers_mb, small.work_mem_mb, small.maintenance_work_mem_mb) == (512, 4, 128)
    assert (large.shared_buffers_mb, large.effective_cache_size_mb, large.work_mem_mb) == (8_192, 32_768, 64)
    assert large.maintenance_work_mem_mb == 2_048
    assert machine_memory_mb() > 0


def test_the_embedded_server_starts_with_the_settings(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, pg_shared_buffers_mb=144, pg_work_mem_mb=7, pg_maintenance_work_mem_mb=99)
    url = start_embedded_postgres(tmp_path / "pgdata", settings)
    engine = create_engine(with_driver(url, "psycopg"))
    try:
        with engine.connect() as conn:
            shown = [conn.execute(text(f"SHOW {n}")).scalar_one() for n in ("shared_buffers", "work_mem", "jit")]
            assert shown == ["144MB", "7MB", "off"]
            assert conn.execute(text("SHOW maintenance_work_mem")).scalar_one() == "99MB"
    finally:
        engine.dispose()
