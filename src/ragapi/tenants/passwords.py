"""Password hashing (Argon2id via pwdlib) and the password policy.

Hashing is deliberately slow (tens of milliseconds), so callers run it in a thread. Unknown e-mails are
checked against a dummy hash so a login takes as long whether or not the account exists.
"""

from __future__ import annotations

import asyncio
from functools import lru_cache

from pwdlib import PasswordHash

from ragapi.core.errors import InvalidInput

MAX_PASSWORD_CHARS = 256  # bounds the hashing cost of a hostile input


@lru_cache(maxsize=1)
def _hasher() -> PasswordHash:
    return PasswordHash.recommended()


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return _hasher().hash("dummy password that matches no account")


def check_policy(password: str, min_length: int) -> None:
    if len(password) < min_length:
        raise InvalidInput(f"password must be at least {min_length} characters (PASSWORD_MIN_LENGTH)")
    if len(password) > MAX_PASSWORD_CHARS:
        raise InvalidInput(f"password must be at most {MAX_PASSWORD_CHARS} characters")


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_hasher().hash, password)


async def verify_password(password: str, password_hash: str | None) -> bool:
    """False for a wrong password or a missing account, in the same time."""
    if len(password) > MAX_PASSWORD_CHARS:
        return False
    target = password_hash if password_hash is not None else _dummy_hash()
    matched = await asyncio.to_thread(_hasher().verify, password, target)
    return matched and password_hash is not None
