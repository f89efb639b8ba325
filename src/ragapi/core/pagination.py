"""Opaque keyset cursors over (created_at, id), newest first: stable while rows are added."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol, TypeVar

from sqlalchemy import and_, or_
from sqlmodel import col
from sqlmodel.sql.expression import SelectOfScalar

from ragapi.core.errors import InvalidInput


class Keyed(Protocol):
    created_at: datetime | None
    id: uuid.UUID


T = TypeVar("T", bound=Keyed)


def encode_cursor(created_at: datetime | None, ident: uuid.UUID) -> str:
    assert created_at is not None  # noqa: S101 - stored rows have it
    raw = json.dumps([created_at.isoformat(), str(ident)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        created, ident = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        return datetime.fromisoformat(created), uuid.UUID(ident)
    except (binascii.Error, ValueError, TypeError, json.JSONDecodeError) as exc:
        raise InvalidInput("invalid cursor") from exc


def page_query(
    statement: SelectOfScalar[T], model: Any, cursor: str | None, limit: int, max_limit: int
) -> SelectOfScalar[T]:
    """`statement` narrowed to the rows after `cursor`, newest first, one more than `limit` (that one
    only says whether another page follows)."""
    if limit > max_limit:
        raise InvalidInput(f"limit must be at most {max_limit}")
    created, ident = col(model.created_at), col(model.id)
    if cursor:
        after_created, after_id = decode_cursor(cursor)
        statement = statement.where(or_(created < after_created, and_(created == after_created, ident < after_id)))
    return statement.order_by(created.desc(), ident.desc()).limit(limit + 1)


def split_page(rows: Sequence[T], limit: int) -> tuple[list[T], str | None]:
    """The page and the cursor of the next one (None on the last page)."""
    page = list(rows[:limit])
    return page, encode_cursor(page[-1].created_at, page[-1].id) if len(rows) > limit else None
