"""The embedded PostgreSQL's memory settings, derived from the machine's memory unless set.

PostgreSQL's defaults (128 MB `shared_buffers`, 4 MB `work_mem`) suit a shared laptop, not a knowledge base
of a million chunks: measured on one (docs/benchmarks.md), 8 GB of shared buffers took dense search from
17 to 4 ms and chunk inserts from 32 to 10 ms. The settings go into `ragapi.conf` in the data directory,
included from `postgresql.conf`, before the server starts; a running server reloads it (a new
`shared_buffers` then waits for its next start). JIT compilation is off: it costs more than it saves on
the short statements of this service.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ragapi.core.settings import Settings

CONF_NAME = "ragapi.conf"
_INCLUDE = f"include_if_exists = '{CONF_NAME}'"
MIB = 2**20


def machine_memory_mb() -> int:
    """Physical memory, or the cgroup's limit when the service runs in a smaller container."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // MIB
    for limit in (Path("/sys/fs/cgroup/memory.max"), Path("/sys/fs/cgroup/memory/memory.limit_in_bytes")):
        try:
            value = limit.read_text().strip()
        except OSError:
            continue
        if value.isdigit():
            total = min(total, int(value) // MIB)
    return int(total)


@dataclass(frozen=True, slots=True)
class Memory:
    shared_buffers_mb: int
    effective_cache_size_mb: int
    work_mem_mb: int
    maintenance_work_mem_mb: int

    def conf(self) -> str:
        return (
            "# written by ragapi at start-up from its settings (PG_* ); edits here are overwritten\n"
            f"shared_buffers = '{self.shared_buffers_mb}MB'\n"
            f"effective_cache_size = '{self.effective_cache_size_mb}MB'\n"
            f"work_mem = '{self.work_mem_mb}MB'\n"
            f"maintenance_work_mem = '{self.maintenance_work_mem_mb}MB'\n"
            "jit = off\n"
        )


def memory_settings(settings: Settings, memory_mb: int | None = None) -> Memory:
    """The rules of thumb of PostgreSQL's own tuning guide for a dedicated server, capped where more stops
    paying: a quarter of memory for shared buffers (at most 8 GiB), half as the planner's cache estimate."""
    total = memory_mb if memory_mb is not None else machine_memory_mb()
    return Memory(
        shared_buffers_mb=settings.pg_shared_buffers_mb or max(128, min(total // 4, 8192)),
        effective_cache_size_mb=settings.pg_effective_cache_size_mb or max(512, total // 2),
        work_mem_mb=settings.pg_work_mem_mb or max(4, min(total // 512, 64)),
        maintenance_work_mem_mb=settings.pg_maintenance_work_mem_mb or max(64, min(total // 16, 2048)),
    )


def write_conf(pgdata: Path, memory: Memory) -> bool:
    """Write the settings into an initialised data directory; True when they changed."""
    main = pgdata / "postgresql.conf"
    text = main.read_text()
    if _INCLUDE not in text:
        main.write_text(f"{text.rstrip()}\n{_INCLUDE}\n")
    conf = pgdata / CONF_NAME
    wanted = memory.conf()
    if conf.exists() and conf.read_text() == wanted:
        return False
    conf.write_text(wanted)
    return True
