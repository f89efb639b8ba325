"""Opaque keyset cursors over (created_at, id), newest first: stable while rows are added."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from datetime import datetime

from core.errors import InvalidInput


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
