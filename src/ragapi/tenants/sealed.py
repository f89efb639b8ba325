"""Secrets kept at rest for a tenant, sealed: today the client secret of its identity provider.

A sealed value is `enc:v1:` and a Fernet token (AES-128-CBC with HMAC-SHA256, from `cryptography`): what
the database holds, what a backup or a read of the table as its owner shows, and what an admin's API
never returns. It is opened only where the secret is used (the token request to the provider).

The key is derived (HKDF-SHA256, per purpose) from SECRETS_KEY, or when that is unset from the key that
signs the service's tokens (JWT_SECRET, or in embedded mode DATA_DIR/jwt_secret): a sealed secret is
readable only by a server configured like the one that sealed it. Changing that key makes the stored
secrets unreadable (`SecretUnreadable`): an admin sets them again.
"""

from __future__ import annotations

import base64
import functools

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ragapi.core.errors import ServiceUnavailable
from ragapi.core.settings import Settings
from ragapi.tenants.tokens import signing_key

PREFIX = "enc:v1:"
_PURPOSE = b"ragapi identity provider client secrets v1"


class SecretUnreadable(ServiceUnavailable):
    """A stored secret that this server's key does not open (the key changed since it was sealed)."""


class SecretBox:
    def __init__(self, key_material: str) -> None:
        derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_PURPOSE).derive(key_material.encode())
        self._fernet = Fernet(base64.urlsafe_b64encode(derived))

    def seal(self, secret: str) -> str:
        return PREFIX + self._fernet.encrypt(secret.encode()).decode("ascii")

    def open(self, sealed: str) -> str:
        if not sealed.startswith(PREFIX):
            raise SecretUnreadable("a stored secret is not sealed; set it again")
        try:
            return self._fernet.decrypt(sealed.removeprefix(PREFIX).encode("ascii")).decode()
        except InvalidToken as exc:
            raise SecretUnreadable(
                "a stored secret cannot be opened with this server's key (SECRETS_KEY, or JWT_SECRET when it is "
                "unset, changed since it was stored): a tenant admin sets it again"
            ) from exc


def key_material(settings: Settings) -> str:
    """SECRETS_KEY, else the token signing key (which, in embedded mode, this may generate)."""
    if settings.secrets_key is not None:
        return settings.secrets_key.get_secret_value()
    return signing_key(settings)


@functools.lru_cache(maxsize=8)
def _box(material: str) -> SecretBox:
    return SecretBox(material)


def box_for(settings: Settings) -> SecretBox:
    return _box(key_material(settings))


class Sealed:
    """A sealed secret in memory: it shows nothing of itself (repr, logs) and opens only with the box."""

    __slots__ = ("token",)

    def __init__(self, token: str) -> None:
        self.token = token

    def __repr__(self) -> str:
        return "Sealed(***)"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sealed) and other.token == self.token

    def __hash__(self) -> int:
        return hash(self.token)

    def open(self, box: SecretBox) -> str:
        return box.open(self.token)
