"""Fetching a document from a URL without becoming an SSRF proxy.

Only http(s). Every connection goes through `core.netguard.GuardedBackend`: the host is resolved by us,
every address it resolves to must be public, and the connection goes to the address that was checked
(DNS rebinding cannot redirect it); the check applies to every hop of a redirect chain too. Bodies are
capped in bytes and the whole fetch in time. URL_FETCH_ALLOWED_NETWORKS can open specific internal
ranges (an intranet wiki) on purpose.

`check_url` is the one place a URL is judged and normalised, for the API (refusing a malformed URL
before a job exists) and for every hop here: anything it cannot make into a fetchable http(s) URL
(a bad IPv6 literal, a port out of range, no host, a host that is not a host name) is `BlockedUrl`;
internationalised host names are encoded to IDNA (punycode, UTS #46 as browsers do).
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import quote, urljoin, urlsplit, urlunsplit

import httpcore
import idna

from ragapi.core.errors import InvalidInput, PayloadTooLarge
from ragapi.core.netguard import GuardedBackend, Network

MAX_REDIRECTS = 5
USER_AGENT = "ragapi-fetch/1"


class BlockedUrl(InvalidInput):
    title = "URL not allowed"


class FetchFailed(InvalidInput):
    title = "URL could not be fetched"


@dataclass(frozen=True, slots=True)
class Fetched:
    data: bytes
    content_type: str | None
    url: str  # after redirects


_HOST_NAME = re.compile(r"[a-z0-9_-]+(\.[a-z0-9_-]+)*\.?")
# Left as they are in a path or query (RFC 3986 reserved and unreserved characters, and `%` so that
# escapes are not escaped twice); everything else (spaces, non-ASCII, controls) is percent-encoded.
_PATH_SAFE = "/:@!$&'()*+,;=%~"
_QUERY_SAFE = _PATH_SAFE + "?"


def check_url(url: str) -> str:
    """The URL normalised for fetching (IDNA host, percent-encoded path and query, no fragment), or
    BlockedUrl saying what is wrong with it. Raises nothing else."""
    try:
        parts = urlsplit(url.strip())
        scheme, host, port = parts.scheme, parts.hostname, parts.port
    except ValueError as exc:  # a bad IPv6 literal, a port out of range, NFKC tricks in the host
        raise BlockedUrl(f"the URL is malformed: {_reason(exc)}") from exc
    if scheme not in ("http", "https"):
        raise BlockedUrl("only http and https URLs are fetched")
    if not host:
        raise BlockedUrl("the URL has no host")
    if port == 0:
        raise BlockedUrl("the URL's port must be between 1 and 65535")
    netloc = _host(host)
    if port is not None:
        netloc = f"{netloc}:{port}"
    try:
        if parts.username is not None or parts.password is not None:
            password = "" if parts.password is None else ":" + quote(parts.password, safe="%")
            netloc = f"{quote(parts.username or '', safe='%')}{password}@{netloc}"
        path, query = quote(parts.path, safe=_PATH_SAFE), quote(parts.query, safe=_QUERY_SAFE)
    except UnicodeError as exc:  # a lone surrogate has no UTF-8 form to percent-encode
        raise BlockedUrl("the URL contains characters that cannot be encoded") from exc
    return urlunsplit((scheme, netloc, path, query, ""))


def _host(host: str) -> str:
    """The host as it goes on the wire: an IP literal (IPv6 in brackets) or an ASCII host name."""
    literal = host[1:-1] if host.startswith("[") else host
    try:
        ip = ipaddress.ip_address(literal.split("%", 1)[0])
    except ValueError:
        ip = None
    if ip is not None:
        return f"[{ip}]" if ip.version == 6 else str(ip)
    if not host.isascii():
        try:
            host = idna.encode(host, uts46=True).decode("ascii")
        except (idna.IDNAError, UnicodeError, ValueError) as exc:
            raise BlockedUrl(f"the URL's host is not a valid international domain name: {_reason(exc)}") from exc
    if len(host) > 253 or not _HOST_NAME.fullmatch(host) or any(len(label) > 63 for label in host.split(".")):
        raise BlockedUrl("the URL's host is not a valid host name")
    return host


def _reason(exc: Exception) -> str:
    """The library's own explanation, short and without the input's control characters."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return "".join(c if c.isprintable() else "?" for c in text)[:200]


async def fetch_url(url: str, max_bytes: int, timeout_s: float, allowed: Sequence[Network] = ()) -> Fetched:
    try:
        async with asyncio.timeout(timeout_s):
            return await _fetch(url, max_bytes, allowed)
    except TimeoutError as exc:
        raise FetchFailed(f"fetching the URL took longer than {timeout_s:.0f} s (URL_FETCH_TIMEOUT_S)") from exc


async def _fetch(url: str, max_bytes: int, allowed: Sequence[Network]) -> Fetched:
    current = check_url(url)
    async with httpcore.AsyncConnectionPool(network_backend=GuardedBackend(allowed, BlockedUrl), retries=0) as pool:
        for _ in range(MAX_REDIRECTS + 1):
            try:
                async with pool.stream("GET", current, headers={"User-Agent": USER_AGENT}) as response:
                    headers = {k.decode().lower(): v.decode("latin-1") for k, v in response.headers}
                    if response.status in (301, 302, 303, 307, 308) and "location" in headers:
                        current = check_url(_join(current, headers["location"]))
                        continue
                    if response.status >= 400:
                        raise FetchFailed(f"the server answered {response.status}")
                    declared = headers.get("content-length", "")
                    if declared.isdigit() and int(declared) > max_bytes:
                        raise PayloadTooLarge(f"the document is {declared} bytes; the limit is {max_bytes}")
                    body = bytearray()
                    async for piece in response.aiter_stream():
                        body += piece
                        if len(body) > max_bytes:
                            raise PayloadTooLarge(f"the document is over the limit of {max_bytes} bytes")
                    kind = headers.get("content-type", "").split(";")[0].strip() or None
                    return Fetched(bytes(body), kind, current)
            except httpcore.UnsupportedProtocol as exc:
                raise BlockedUrl("only http and https URLs are fetched") from exc
            except (httpcore.NetworkError, httpcore.ProtocolError, httpcore.TimeoutException) as exc:
                raise FetchFailed(f"fetching the URL failed: {type(exc).__name__}") from exc
    raise FetchFailed(f"more than {MAX_REDIRECTS} redirects")


def _join(base: str, location: str) -> str:
    try:
        return urljoin(base, location)
    except ValueError as exc:  # a malformed Location header
        raise BlockedUrl(f"the server redirected to a malformed URL: {_reason(exc)}") from exc
