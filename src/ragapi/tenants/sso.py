"""Signing in through a tenant's identity provider: OpenID Connect's authorization code flow with PKCE.

`start` records a sign-in (hashes of its `state` and of the browser's binding cookie, its nonce and PKCE
verifier, its redirect URI) in the database, so any replica can finish it, and returns the provider's
authorization URL. Where the sign-in ends (`Destination`: tokens for an API client, or a console
session) is marked in the `state` itself, which the row's hash authenticates: a callback cannot end a
sign-in anywhere but where it was started to end.

`finish` takes the callback: the sign-in's row is deleted as it is read (a state works once), it must
belong to this tenant, be on time and come back to the browser that started it; then the code is
exchanged, the ID token checked (`tenants.oidc`; claims it lacks are read from the userinfo endpoint),
the e-mail address must be verified and of an allowed domain, and the user is found, linked or created
(`tenants.users.external_user`; the subject becomes its external id, by which a delegating
key may name it) and signed in exactly as a password sign-in is
(`tenants.users.start_session`).

Errors: SignInRejected (400) for a callback that does not finish a sign-in this browser started here;
Forbidden (403) for an account the tenant does not admit; the 502s of `tenants.oidc` for the provider.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from ragapi.core.database import Database
from ragapi.core.errors import Forbidden, InvalidInput, RagApiError
from ragapi.core.settings import Settings
from ragapi.tenants import groups, identity_providers, users
from ragapi.tenants.identity_providers import GroupsClaimError, IdentityProvider, claimed_groups
from ragapi.tenants.oidc import OidcClient, TokenRejected, pkce_challenge
from ragapi.tenants.tokens import TokenCodec

log = logging.getLogger(__name__)

MAX_PARAM_CHARS = 2048  # a state, code or error a callback may carry


class SignInRejected(RagApiError):
    status = 400
    title = "Sign-in rejected"


class Destination(StrEnum):
    """Where a finished sign-in goes: its tokens in the callback's answer (API clients and apps), or a
    browser session of the console, which the callback starts before sending the browser to /console."""

    TOKENS = "tokens"
    CONSOLE = "console"


# A console sign-in's state begins with this mark; `secrets.token_urlsafe` never writes a dot.
_CONSOLE_MARK = "c."


def destination_of(state: str | None) -> Destination:
    """Where a callback's state says its sign-in goes. Authentic only once `finish` has matched the state;
    before that, good for choosing how to show an error, nothing else."""
    return Destination.CONSOLE if state is not None and state.startswith(_CONSOLE_MARK) else Destination.TOKENS


@dataclass(frozen=True, slots=True)
class Started:
    authorization_url: str
    browser_secret: str  # the binding cookie's value (the browser's own, when it sent a usable one)


@dataclass(frozen=True, slots=True)
class SignedIn:
    pair: users.TokenPair
    destination: Destination


@dataclass(frozen=True, slots=True)
class Callback:
    """What the provider sent back through the browser (RFC 6749 section 4.1.2, RFC 9207 `iss`)."""

    state: str | None = None
    code: str | None = None
    error: str | None = None
    iss: str | None = None


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode()).digest()


def _with_query(url: str, params: dict[str, str]) -> str:
    parts = urlsplit(url)
    query = "&".join(q for q in (parts.query, urlencode(params)) if q)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


def verified_email(claims: dict[str, Any], provider: IdentityProvider) -> str:
    """The account's e-mail address, if the provider verified it and the tenant admits its domain."""
    email, verified = claims.get("email"), claims.get("email_verified")
    if not isinstance(email, str):
        raise Forbidden("the identity provider sent no e-mail address (ask for the 'email' scope)")
    if verified is not True and verified != "true":  # some providers send the JSON string
        raise Forbidden("the identity provider has not verified this account's e-mail address")
    try:
        email = users.normalise_email(email)
    except InvalidInput as exc:
        raise Forbidden("the identity provider's e-mail address for this account is not usable") from exc
    if not provider.allows_email(email):
        raise Forbidden(f"e-mail addresses of {email.rsplit('@', 1)[-1]} may not sign in to this tenant")
    return email


class SingleSignOn:
    def __init__(self, db: Database, settings: Settings, codec: TokenCodec, client: OidcClient) -> None:
        self.db = db
        self.settings = settings
        self.codec = codec
        self.client = client

    async def start(
        self,
        tenant_id: uuid.UUID,
        redirect_uri: str,
        browser_secret: str | None,
        destination: Destination = Destination.TOKENS,
    ) -> Started:
        provider = await identity_providers.for_sign_in(self.db, tenant_id)
        meta = await self.client.metadata(provider.issuer)
        if browser_secret is None or not 32 <= len(browser_secret) <= 128:
            browser_secret = secrets.token_urlsafe(32)
        state, nonce, verifier = secrets.token_urlsafe(32), secrets.token_urlsafe(32), secrets.token_urlsafe(48)
        if destination is Destination.CONSOLE:
            state = _CONSOLE_MARK + state
        expires_at = datetime.now(UTC) + timedelta(seconds=self.settings.oidc_state_ttl_s)
        await self.db.fetch_row("DELETE FROM oidc_logins WHERE expires_at < now()")  # abandoned sign-ins
        await self.db.fetch_row(
            "INSERT INTO oidc_logins (state_hash, tenant_id, browser_hash, nonce, code_verifier, redirect_uri, "
            "expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            _digest(state),
            tenant_id,
            _digest(browser_secret),
            nonce,
            verifier,
            redirect_uri,
            expires_at,
        )
        params = {
            "response_type": "code",
            "client_id": provider.client_id,
            "redirect_uri": redirect_uri,
            "scope": " ".join(provider.scopes),
            "state": state,
            "nonce": nonce,
            "code_challenge": pkce_challenge(verifier),
            "code_challenge_method": "S256",
        }
        return Started(_with_query(meta.authorization_endpoint, params), browser_secret)

    async def finish(self, tenant_id: uuid.UUID, callback: Callback, browser_secret: str | None) -> SignedIn:
        if any(v is not None and len(v) > MAX_PARAM_CHARS for v in _params(callback)):
            raise SignInRejected(f"a callback parameter is over {MAX_PARAM_CHARS} characters")
        row = None
        if callback.state:
            row = await self.db.fetch_row(
                "DELETE FROM oidc_logins WHERE state_hash = $1 "
                "RETURNING tenant_id, browser_hash, nonce, code_verifier, redirect_uri, expires_at",
                _digest(callback.state),
            )
        if callback.error is not None:
            raise SignInRejected(f"the identity provider ended the sign-in: {callback.error[:100]}")
        if not callback.state or not callback.code:
            raise SignInRejected("the callback needs the state and code the identity provider sends")
        if row is None or row["tenant_id"] != tenant_id or row["expires_at"] <= datetime.now(UTC):
            raise SignInRejected("unknown, expired or already used sign-in state: start the sign-in again")
        if browser_secret is None or not hmac.compare_digest(_digest(browser_secret), row["browser_hash"]):
            raise SignInRejected("this sign-in was started in another browser (its cookie is missing or different)")
        provider = await identity_providers.for_sign_in(self.db, tenant_id)
        if callback.iss is not None and callback.iss != provider.issuer:
            raise SignInRejected("the callback comes from another issuer than this tenant's (RFC 9207)")
        meta = await self.client.metadata(provider.issuer)
        answer = await self.client.exchange(provider, meta, callback.code, row["code_verifier"], row["redirect_uri"])
        claims = await self.client.verify_id_token(provider, meta, answer.get("id_token"), row["nonce"])
        wanted = ("email", "email_verified", *([provider.groups_claim] if provider.groups_claim else []))
        if any(name not in claims for name in wanted):
            # Some providers put only `sub` in an ID token the token endpoint gives; the signed claims win.
            claims = {**await self.client.userinfo(meta, answer.get("access_token"), claims["sub"]), **claims}
        email = verified_email(claims, provider)
        try:
            group_names = claimed_groups(
                claims, provider.groups_claim, self.settings.oidc_max_groups, self.settings.oidc_max_group_chars
            )
        except GroupsClaimError as exc:
            raise TokenRejected(str(exc)) from exc
        account = users.ExternalAccount(
            tenant_id, provider.issuer, claims["sub"], email, provider.default_role, self._external_id(claims["sub"])
        )
        async with self.db.admin_session() as session:
            user = await users.external_user(session, account)
        if provider.groups_claim:
            # The provider is the source of truth for membership once it sends groups; without a groups
            # claim configured, memberships an admin set by hand are left alone.
            await groups.sync_memberships(self.db, tenant_id, user.id, group_names)
        log.debug("sign-in through the identity provider", extra={"user": str(user.id), "groups": len(group_names)})
        pair = await users.start_session(self.db, self.codec, user)
        return SignedIn(pair, destination_of(callback.state))  # the state matched its row: authentic

    def _external_id(self, subject: str) -> str | None:
        """The subject as the user's external id, if it can be one (printable ASCII within the limit)."""
        try:
            return users.check_external_id(subject, self.settings.user_external_id_max_chars)
        except InvalidInput:
            return None


def _params(callback: Callback) -> tuple[str | None, ...]:
    return (callback.state, callback.code, callback.error, callback.iss)
