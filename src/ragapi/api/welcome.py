"""What `ragapi serve` says once it is ready: where it answers and the first steps, as text for a person
at a terminal, or as one log record for a log collector."""

from __future__ import annotations

import logging
import sys
from typing import TextIO

from ragapi.core.logs import resolved_format
from ragapi.core.settings import Settings

log = logging.getLogger("ragapi")


def base_url(settings: Settings) -> str:
    """The address to open: the public one when configured; a wildcard bind address is reached on loopback."""
    if settings.public_url:
        return settings.public_url
    host = {"0.0.0.0": "127.0.0.1", "::": "[::1]", "": "127.0.0.1"}.get(settings.host, settings.host)  # noqa: S104
    host = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return f"http://{host}:{settings.port}"


def first_steps(url: str) -> str:
    return f"""
  ragapi is ready at {url}

  console         {url}/console
  API docs        {url}/docs   (ReDoc: {url}/redoc)
  playground      {url}/v1/rag/playground/

  First steps, in another terminal:
    make demo                                    load sample documents, ask a first question
    make cli ARGS='tenants create "Acme"'        a tenant and its admin API key (shown once)
    make cli ARGS='--help'                       every command

"""


def announce(settings: Settings, stream: TextIO | None = None) -> None:
    stream = stream if stream is not None else sys.stderr
    url = base_url(settings)
    if resolved_format(settings.log_format.value, stream) == "text":
        stream.write(first_steps(url))
        stream.flush()
    else:
        log.info("ragapi ready", extra={"url": url, "console": f"{url}/console", "docs": f"{url}/docs"})
