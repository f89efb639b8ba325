"""Metadata filters: a small, validated language translated to SQL with bound parameters.

`{"lang": "en"}` matches chunks whose metadata has lang = "en"; `{"lang": ["en", "de"]}` matches either;
several keys must all match. A chunk's metadata is its document's (stored once, on the document) and
its own (`page`, `heading`); a key matches either. `source` also matches the document's file name, and
the reserved key `document_id` filters on the owning document. Keys must be plain identifiers, so nothing
from the caller ever reaches the SQL text.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from ragapi.core import inputs
from ragapi.core.errors import InvalidInput

Scalar = str | int | float | bool
Filters = dict[str, Scalar | list[Scalar]]  # validated: keys are identifiers, values scalars
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")
MAX_FILTER_KEYS = 16
MAX_FILTER_VALUES = 100


def validate_filters(filters: dict[str, Any] | None) -> Filters:
    if not filters:
        return {}
    if len(filters) > MAX_FILTER_KEYS:
        raise InvalidInput(f"at most {MAX_FILTER_KEYS} filter keys are allowed")
    clean: dict[str, Scalar | list[Scalar]] = {}
    for key, value in filters.items():
        if not _KEY.match(key):
            raise InvalidInput(f"invalid filter key {key!r}")
        values = value if isinstance(value, list) else [value]
        if not values or len(values) > MAX_FILTER_VALUES:
            raise InvalidInput(f"filter {key!r} needs 1 to {MAX_FILTER_VALUES} values")
        if not all(isinstance(v, str | int | float | bool) for v in values):
            raise InvalidInput(f"filter {key!r} values must be strings, numbers or booleans")
        inputs.check(values, f"filters.{key}")
        if key == "document_id":
            try:
                values = [str(uuid.UUID(str(v))) for v in values]
            except ValueError as exc:
                raise InvalidInput("document_id filter values must be UUIDs") from exc
        clean[key] = values if isinstance(value, list) else values[0]
    return clean


def filter_sql(filters: Filters, alias: str = "c") -> tuple[str, dict[str, Any]]:
    """SQL conjunction (starting with ' AND ') and its parameters for validated filters, on chunks
    `alias` of the tenant whose scope the transaction is in (`tenant_session`).

    A key's documents are found once per statement, through the GIN index on documents' metadata
    (`documents_matching`, migration 0014); each chunk is then one hash lookup (the subquery sits inside
    an OR, so PostgreSQL hashes it rather than joining, which keeps the dense search an ordered index
    scan)."""
    parts: list[str] = []
    params: dict[str, Any] = {}
    for n, (key, value) in enumerate(filters.items()):
        values = value if isinstance(value, list) else [value]
        if key == "document_id":
            params[f"f{n}"] = [uuid.UUID(str(v)) for v in values]
            parts.append(f"{alias}.document_id = ANY(CAST(:f{n} AS uuid[]))")
            continue
        params[f"f{n}"] = [json.dumps({key: v}) for v in values]
        matching = f"SELECT documents_matching(CAST(:f{n} AS jsonb[]))"
        if key == "source":  # the document's file name (not indexed: one per document)
            params[f"f{n}_s"] = [str(v) for v in values]
            matching += f" UNION ALL SELECT d.id FROM documents d WHERE d.source = ANY(CAST(:f{n}_s AS text[]))"
        own = f"{alias}.metadata @> ANY(CAST(:f{n} AS jsonb[]))"
        parts.append(f"({own} OR {alias}.document_id IN ({matching}))")
    return "".join(f" AND {p}" for p in parts), params
