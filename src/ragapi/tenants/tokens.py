"""Signed JWTs (PyJWT) for users: short-lived access tokens, rotated refresh tokens, password-reset tokens.

Every token carries `typ`, so one kind can never stand in for another (a refresh token is not an access
token); the algorithm list is fixed (no `alg=none`, no key confusion); `iss`, `aud`, `exp`, `nbf`, `iat`
and `jti` are required and checked with a small leeway. What makes a token stale (password change,
deactivation, logout) lives in the database and is checked on every request: `ver` must equal the user's
token version and `sid` must name a live session.
"""

from __future__ import annotations

import os
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

import jwt

from ragapi.core.errors import Unauthenticated
from ragapi.core.settings import Settings

REQUIRED_CLAIMS = ["exp", "iat", "nbf", "iss", "aud", "sub", "typ", "jti", "ver"]


class TokenType(StrEnum):
    ACCESS = "access"
    REFRESH = "refresh"
    RESET = "reset"


@dataclass(frozen=True, slots=True)
class Claims:
    user_id: uuid.UUID
    token_type: TokenType
    version: int
    jti: uuid.UUID
    session_id: uuid.UUID | None
    expires_at: datetime


def signing_key(settings: Settings) -> str:
    """JWT_SECRET, or in embedded mode a random key generated once and kept (0600) in DATA_DIR."""
    if settings.jwt_secret is not None:
        return settings.jwt_secret.get_secret_value()
    if settings.database_url is not None:
        # Replicas sharing a database must share the key, or each would reject the others' tokens.
        raise ValueError("JWT_SECRET must be set when DATABASE_URL is set, so every replica verifies tokens")
    path = Path(settings.data_dir) / "jwt_secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


class TokenCodec:
    def __init__(self, settings: Settings, key: str) -> None:
        self.key = key
        self.algorithm = settings.jwt_algorithm.value
        self.issuer = settings.jwt_issuer
        self.audience = settings.jwt_audience
        self.leeway = settings.jwt_leeway_s
        self.ttl = {
            TokenType.ACCESS: timedelta(seconds=settings.access_token_ttl_s),
            TokenType.REFRESH: timedelta(seconds=settings.refresh_token_ttl_s),
            TokenType.RESET: timedelta(seconds=settings.password_reset_ttl_s),
        }

    def issue(
        self,
        token_type: TokenType,
        user_id: uuid.UUID,
        version: int,
        session_id: uuid.UUID | None = None,
        jti: uuid.UUID | None = None,
        now: datetime | None = None,
    ) -> tuple[str, Claims]:
        now = now or datetime.now(UTC)
        claims = Claims(user_id, token_type, version, jti or uuid.uuid4(), session_id, now + self.ttl[token_type])
        payload: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": str(user_id),
            "typ": token_type.value,
            "ver": version,
            "jti": str(claims.jti),
            "iat": now,
            "nbf": now,
            "exp": claims.expires_at,
        }
        if session_id is not None:
            payload["sid"] = str(session_id)
        return jwt.encode(payload, self.key, algorithm=self.algorithm), claims

    def verify(self, token: str, expected: TokenType) -> Claims:
        """Decode and check a token; every failure is the same 401 so nothing about the token leaks."""
        try:
            payload = jwt.decode(
                token,
                self.key,
                algorithms=[self.algorithm],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": REQUIRED_CLAIMS},
            )
            if payload["typ"] != expected.value:
                raise jwt.InvalidTokenError("wrong token type")
            sid = payload.get("sid")
            return Claims(
                user_id=uuid.UUID(payload["sub"]),
                token_type=expected,
                version=int(payload["ver"]),
                jti=uuid.UUID(payload["jti"]),
                session_id=uuid.UUID(sid) if sid else None,
                expires_at=datetime.fromtimestamp(payload["exp"], UTC),
            )
        except (jwt.InvalidTokenError, ValueError, TypeError, KeyError) as exc:
            raise Unauthenticated("invalid or expired token") from exc
