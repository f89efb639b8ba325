"""API key format: `rag_<8-char id prefix>_<43-char secret>`, stored as SHA-256.

Keys carry 256 bits of randomness, so a fast hash is safe (as GitHub and Stripe do); the prefix lets
operators recognise a key in logs and secret scanners without it being usable.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

KEY_PREFIX = "rag_"


@dataclass(frozen=True, slots=True)
class NewKey:
    plaintext: str
    prefix: str
    digest: str


def hash_key(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


def generate_key() -> NewKey:
    ident = secrets.token_hex(4)
    plaintext = f"{KEY_PREFIX}{ident}_{secrets.token_urlsafe(32)}"
    return NewKey(plaintext=plaintext, prefix=f"{KEY_PREFIX}{ident}", digest=hash_key(plaintext))


def looks_like_key(value: str) -> bool:
    return value.startswith(KEY_PREFIX) and 20 < len(value) < 200
