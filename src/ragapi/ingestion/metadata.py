"""A document's metadata: a JSON object that filters match, bounded in keys and bytes.

It is stored once, on the document; a chunk keeps only what is its own (`page`, `heading`), so metadata
costs the same whether a document has one chunk or ten thousand (`chains.filters` reads both).
"""

from __future__ import annotations

import json
from typing import Any

from ragapi.core import inputs
from ragapi.core.errors import InvalidInput
from ragapi.core.settings import Settings


def check_metadata(value: Any, where: str, settings: Settings) -> dict[str, Any]:
    """`value` as a document's metadata, or InvalidInput naming `where` (the field) and the limit."""
    if not isinstance(value, dict):
        raise InvalidInput(f"{where} must be a JSON object")
    inputs.check(value, where)
    if len(value) > settings.max_metadata_keys:
        limit = settings.max_metadata_keys
        raise InvalidInput(f"{where} has {len(value)} keys; the limit is {limit} (MAX_METADATA_KEYS)")
    size = len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())
    if size > settings.max_metadata_bytes:
        raise InvalidInput(
            f"{where} is {size} bytes as JSON; the limit is {settings.max_metadata_bytes} (MAX_METADATA_BYTES)"
        )
    return value
