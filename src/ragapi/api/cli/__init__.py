"""`ragapi`: serve the API, migrate, create tenants, ingest, query, chat and evaluate from the command line.

Most commands work in-process against the local database (`--tenant`); ingest, query, chat, knowledge
bases, documents and keys also work against a running service (`--url` and `--api-key`, or RAGAPI_URL and
RAGAPI_API_KEY) through the Python client.
"""

from ragapi.api.cli import local, remote  # noqa: F401 - their commands register on `app`
from ragapi.api.cli.base import app

__all__ = ["app"]
