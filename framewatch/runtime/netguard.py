"""Which network addresses framewatch may talk to on a user's behalf (SSRF defence)."""

import asyncio
import ipaddress
import socket

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


NAT64 = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("64:ff9b:1::/48"))


def embedded_ipv4(address: IPAddress) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries and reaches: IPv4-mapped, 6to4 (2002::/16), Teredo (2001::/32:
    its server and its client) and NAT64 (64:ff9b::/96, 64:ff9b:1::/48), whose last 32 bits are the IPv4 host."""
    if not isinstance(address, ipaddress.IPv6Address):
        return []
    found = [a for a in (address.ipv4_mapped, address.sixtofour) if a is not None]
    if address.teredo:
        found.extend(address.teredo)
    if any(address in network for network in NAT64):
        found.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return found


def is_public(address: IPAddress) -> bool:
    """False for loopback, private, link-local (cloud metadata), multicast, reserved and unspecified ranges, and
    for an IPv6 address that embeds any of those."""
    embedded = embedded_ipv4(address)
    if embedded:
        return all(_is_public(inner) for inner in embedded)
    return _is_public(address)


def _is_public(address: IPAddress) -> bool:
    return address.is_global and not (address.is_multicast or address.is_reserved)


async def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address the host name resolves to (an IP literal resolves to itself)."""
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
