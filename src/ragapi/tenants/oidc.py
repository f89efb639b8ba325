"""The OpenID Connect relying party: discovery, the provider's keys, the code exchange, ID token checks.

Every connection goes to a public address, or one in OIDC_ALLOWED_NETWORKS (loopback too with
OIDC_ALLOW_HTTP_LOOPBACK): a tenant admin names the issuer, and must not make the service reach its own
network (`core.netguard`).

Discovery documents and key sets are kept per issuer for OIDC_METADATA_TTL_S. An ID token whose `kid`
the kept key set lacks fetches the key set again once (the provider rotated its keys); a key still
missing then is a bad token. ID tokens are checked as OpenID Connect Core 1.0 section 3.1.3.7 says:
signature with an asymmetric algorithm the provider announces (never `none` or HMAC), `iss`, `aud`
(and `azp` when there are several audiences), `exp` and `iat` with OIDC_LEEWAY_S, and the `nonce` of
this sign-in.

Errors (none escapes as anything else):
  ProviderUnavailable (502)   the provider cannot be reached, is not at a public address, or answers with
                              an error or garbage
  TokenRejected (502)         the ID token fails a check: who and what is named, never the token
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_plus

import httpx
import jwt

from ragapi.core.errors import UpstreamError
from ragapi.core.netguard import LOOPBACK, GuardedTransport, parse_networks
from ragapi.core.settings import Settings
from ragapi.tenants.identity_providers import IdentityProvider, check_endpoint
from ragapi.tenants.sealed import box_for

# Asymmetric JWS algorithms only: an HMAC one would make the client secret a verification key.
ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"})


class ProviderUnavailable(UpstreamError):
    title = "Identity provider unavailable"


class TokenRejected(UpstreamError):
    title = "ID token rejected"


@dataclass(frozen=True, slots=True)
class Metadata:
    """The parts of a discovery document (OpenID Connect Discovery 1.0 section 3) the sign-in uses."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str | None
    token_auth_methods: tuple[str, ...]
    algorithms: tuple[str, ...]


def pkce_challenge(verifier: str) -> str:
    """S256 (RFC 7636 section 4.2)."""
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


class OidcClient:
    """One per process: an HTTP client for providers and what it keeps of them."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        allowed = parse_networks(settings.oidc_allowed_networks)
        if settings.oidc_allow_http_loopback:
            allowed += LOOPBACK

        def refuse(reason: str) -> ProviderUnavailable:
            return ProviderUnavailable(f"the identity provider's {reason} (OIDC_ALLOWED_NETWORKS)")

        self.http = httpx.AsyncClient(
            timeout=settings.oidc_http_timeout_s,
            follow_redirects=False,
            transport=GuardedTransport(allowed, refuse),
            headers={"User-Agent": "ragapi-oidc/1", "Accept": "application/json"},
        )
        self._metadata: dict[str, tuple[float, Metadata]] = {}
        self._keys: dict[str, tuple[float, jwt.PyJWKSet]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def close(self) -> None:
        await self.http.aclose()

    def _fresh(self, fetched_at: float) -> bool:
        return time.monotonic() - fetched_at < self.settings.oidc_metadata_ttl_s

    async def _json(self, response_or_request: Any, what: str) -> dict[str, Any]:
        """A JSON object from the provider, at most OIDC_MAX_RESPONSE_BYTES."""
        limit = self.settings.oidc_max_response_bytes
        try:
            async with response_or_request as response:
                body = b""
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > limit:
                        raise ProviderUnavailable(f"the identity provider's {what} is over {limit} bytes")
                status = response.status_code
        except httpx.HTTPError as exc:
            raise ProviderUnavailable(
                f"the identity provider's {what} cannot be reached ({type(exc).__name__})"
            ) from exc
        try:
            document = json.loads(body)
        except ValueError:
            document = None
        if status != 200:
            code = document.get("error") if isinstance(document, dict) else None
            said = f": {str(code)[:100]}" if isinstance(code, str) else ""
            raise ProviderUnavailable(f"the identity provider's {what} answered {status}{said}")
        if not isinstance(document, dict):
            raise ProviderUnavailable(f"the identity provider's {what} is not a JSON object")
        return document

    async def metadata(self, issuer: str) -> Metadata:
        kept = self._metadata.get(issuer)
        if kept is not None and self._fresh(kept[0]):
            return kept[1]
        url = issuer.rstrip("/") + "/.well-known/openid-configuration"
        document = await self._json(self.http.stream("GET", url), "discovery document")
        found = self._check_metadata(issuer, document)
        self._metadata[issuer] = (time.monotonic(), found)
        return found

    def _check_metadata(self, issuer: str, document: dict[str, Any]) -> Metadata:
        if document.get("issuer") != issuer:
            # Discovery section 4.3: the document must name the issuer it was fetched for, exactly.
            raise ProviderUnavailable("the discovery document names another issuer than the one configured")
        endpoints: dict[str, str | None] = {"userinfo_endpoint": None}
        for name in ("authorization_endpoint", "token_endpoint", "jwks_uri", "userinfo_endpoint"):
            value = document.get(name)
            if name == "userinfo_endpoint" and value is None:
                continue  # optional (Discovery section 3)
            if not isinstance(value, str):
                raise ProviderUnavailable(f"the discovery document has no {name}")
            try:
                endpoints[name] = check_endpoint(value, self.settings, name)
            except UpstreamError:
                raise
            except Exception as exc:  # InvalidInput: the provider's fault here, not the caller's
                raise ProviderUnavailable(f"the discovery document's {name} is not usable: {exc}") from exc
        methods = document.get("token_endpoint_auth_methods_supported", ["client_secret_basic"])
        algorithms = document.get("id_token_signing_alg_values_supported", ["RS256"])
        challenges = document.get("code_challenge_methods_supported")
        if isinstance(challenges, list) and "S256" not in challenges:
            raise ProviderUnavailable("the identity provider does not support PKCE with S256")
        return Metadata(
            issuer=issuer,
            authorization_endpoint=str(endpoints["authorization_endpoint"]),
            token_endpoint=str(endpoints["token_endpoint"]),
            jwks_uri=str(endpoints["jwks_uri"]),
            userinfo_endpoint=endpoints["userinfo_endpoint"],
            token_auth_methods=tuple(m for m in methods if isinstance(m, str)) if isinstance(methods, list) else (),
            algorithms=tuple(a for a in algorithms if a in ALGORITHMS) if isinstance(algorithms, list) else (),
        )

    async def _key_set(self, jwks_uri: str, refresh: bool) -> jwt.PyJWKSet:
        lock = self._locks.setdefault(jwks_uri, asyncio.Lock())
        async with lock:  # concurrent sign-ins after a rotation fetch the keys once
            kept = self._keys.get(jwks_uri)
            if kept is not None and self._fresh(kept[0]) and not refresh:
                return kept[1]
            document = await self._json(self.http.stream("GET", jwks_uri), "key set")
            try:
                keys = jwt.PyJWKSet.from_dict(document)
            except jwt.PyJWTError as exc:
                raise ProviderUnavailable("the identity provider's key set has no usable key") from exc
            self._keys[jwks_uri] = (time.monotonic(), keys)
            return keys

    async def _signing_key(self, meta: Metadata, kid: str | None) -> jwt.PyJWK:
        for refresh in (False, True):
            keys = await self._key_set(meta.jwks_uri, refresh)
            signing = [k for k in keys.keys if k.public_key_use in (None, "sig")]
            if kid is None and len(signing) == 1:
                return signing[0]
            for key in signing:
                if kid is not None and key.key_id == kid:
                    return key
        raise TokenRejected("the ID token is signed with a key the identity provider does not publish")

    async def exchange(
        self, provider: IdentityProvider, meta: Metadata, code: str, verifier: str, redirect_uri: str
    ) -> dict[str, Any]:
        """The token endpoint's answer to the authorization code (RFC 6749 section 4.1.3, RFC 7636)."""
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": verifier,
        }
        auth: httpx.BasicAuth | None = None
        method = token_auth_method(provider, meta)
        if provider.client_secret is None:
            form["client_id"] = provider.client_id  # a public client: PKCE is its proof
        else:
            secret = provider.client_secret.open(box_for(self.settings))  # here only: for this request
            if method == "client_secret_basic":
                # RFC 6749 section 2.3.1: both halves form-urlencoded before Basic encodes them
                auth = httpx.BasicAuth(_form_escape(provider.client_id), _form_escape(secret))
            else:
                form |= {"client_id": provider.client_id, "client_secret": secret}
        request = self.http.stream("POST", meta.token_endpoint, data=form, auth=auth)
        return await self._json(request, "token endpoint")

    async def userinfo(self, meta: Metadata, access_token: Any, subject: str) -> dict[str, Any]:
        """The UserInfo endpoint's claims (OpenID Connect Core section 5.3), for providers that leave some
        out of the ID token; none without an endpoint or an access token. Its `sub` must be the ID token's."""
        if meta.userinfo_endpoint is None or not isinstance(access_token, str):
            return {}
        headers = {"Authorization": f"Bearer {access_token}"}
        claims = await self._json(self.http.stream("GET", meta.userinfo_endpoint, headers=headers), "userinfo")
        if claims.get("sub") != subject:
            raise TokenRejected("the userinfo endpoint describes another subject than the ID token")
        return claims

    async def verify_id_token(
        self, provider: IdentityProvider, meta: Metadata, token: Any, nonce: str
    ) -> dict[str, Any]:
        if not isinstance(token, str):
            raise TokenRejected("the token endpoint sent no ID token")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise TokenRejected("the ID token is not a signed JWT") from exc
        algorithm = header.get("alg")
        if algorithm not in ALGORITHMS or (meta.algorithms and algorithm not in meta.algorithms):
            raise TokenRejected(f"the ID token's algorithm {str(algorithm)[:20]!r} is not accepted")
        kid = header.get("kid")
        key = await self._signing_key(meta, kid if isinstance(kid, str) else None)
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                audience=provider.client_id,
                issuer=provider.issuer,
                leeway=self.settings.oidc_leeway_s,
                options={"require": ["iss", "sub", "aud", "exp", "iat"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise TokenRejected("the ID token has expired (is the identity provider's clock right?)") from exc
        except jwt.ImmatureSignatureError as exc:
            raise TokenRejected(
                "the ID token is issued in the future (is the identity provider's clock right?)"
            ) from exc
        except jwt.InvalidAudienceError as exc:
            raise TokenRejected("the ID token is meant for another client (aud is not this client_id)") from exc
        except jwt.InvalidIssuerError as exc:
            raise TokenRejected("the ID token names another issuer (iss)") from exc
        except jwt.InvalidSignatureError as exc:
            raise TokenRejected("the ID token's signature does not verify") from exc
        except jwt.PyJWTError as exc:
            raise TokenRejected(f"the ID token is invalid ({type(exc).__name__})") from exc
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if len(audiences) > 1 and claims.get("azp") != provider.client_id:
            raise TokenRejected("the ID token has several audiences and another authorized party (azp)")
        if claims.get("nonce") != nonce:
            raise TokenRejected("the ID token's nonce is not this sign-in's")
        if not isinstance(claims.get("sub"), str) or not 0 < len(claims["sub"]) <= 255:
            raise TokenRejected("the ID token's sub is not a string of 1 to 255 characters")
        return claims


def token_auth_method(provider: IdentityProvider, meta: Metadata) -> str:
    """The provider's setting; else client_secret_basic when discovery announces it or announces neither
    (its default, Discovery section 3), else client_secret_post."""
    if provider.token_auth_method is not None:
        return provider.token_auth_method
    announced = meta.token_auth_methods
    if "client_secret_basic" in announced or "client_secret_post" not in announced:
        return "client_secret_basic"
    return "client_secret_post"


def _form_escape(value: str) -> str:
    return quote_plus(value)
