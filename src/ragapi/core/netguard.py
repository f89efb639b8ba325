"""Outbound connections to addresses a tenant names, without becoming an SSRF proxy.

The host is resolved here, every address it resolves to must be public (not loopback, private,
link-local, CGNAT, multicast, reserved, unspecified or cloud metadata; IPv4-mapped IPv6 is judged by its
IPv4) or inside a network the operator allowed, and the connection goes to the address that was checked,
so DNS rebinding between the check and the connect cannot redirect it. The check runs inside the
connection backend, so it applies to every connection a client opens. TLS still verifies the host name.

Used by URL documents (`ingestion.fetch`) and by identity providers (`tenants.oidc`); each says what a
refusal is with the exception type it passes.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import httpcore
import httpx

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
LOOPBACK: tuple[Network, ...] = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))


def parse_networks(cidrs: Sequence[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(c, strict=False) for c in cidrs)


def allowed_address(ip: Address, allowed: Sequence[Network] = ()) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if any(ip in net for net in allowed):
        return True
    return ip.is_global and not (ip.is_multicast or ip.is_reserved or ip.is_private or ip.is_link_local)


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolves, checks, then connects to the checked address; `refuse(message)` is raised otherwise."""

    def __init__(self, allowed: Sequence[Network], refuse: Callable[[str], Exception]) -> None:
        self.allowed = tuple(allowed)
        self.refuse = refuse
        self.inner = httpcore.AnyIOBackend()

    async def connect_tcp(  # signature fixed by httpcore
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            raise self.refuse(f"host {host!r} does not resolve") from exc
        addresses = [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
        if not addresses or not all(allowed_address(a, self.allowed) for a in addresses):
            raise self.refuse(f"host {host!r} resolves to an address that is not public")
        return await self.inner.connect_tcp(
            str(addresses[0]), port, timeout=timeout, local_address=local_address, socket_options=socket_options
        )

    async def connect_unix_socket(  # noqa: ASYNC109 - signature fixed by httpcore
        self,
        path: str,  # noqa: ARG002
        timeout: float | None = None,  # noqa: ARG002, ASYNC109
        socket_options: Iterable[Any] | None = None,  # noqa: ARG002
    ) -> httpcore.AsyncNetworkStream:
        raise self.refuse("unix sockets are not fetched")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport (its request mapping, streams and errors) over a `GuardedBackend`. httpx
    takes no network backend, so the pool it built is replaced by one with the same TLS defaults."""

    def __init__(self, allowed: Sequence[Network], refuse: Callable[[str], Exception]) -> None:
        super().__init__(retries=0)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(), network_backend=GuardedBackend(allowed, refuse)
        )
